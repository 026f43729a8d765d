//! `pixstream send`: posts sample SPI messages (or the given XML files) to a node's
//! producer API and prints the assigned seqs and ids.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use loadgen::sample::{SampleKind, sample_message};
use rand::SeedableRng;
use wire::multipart::{self, Part};
use wire::paths::append_path;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    Pacs008,
    Pacs002,
    Admi002,
    Mixed,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Receiving participant.
    #[arg(long)]
    pub ispb: String,
    /// Internal API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub url: String,
    #[command(flatten)]
    pub auth: super::client_auth::ClientAuthArgs,
    /// Sample messages to generate (ignored when files are given).
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    /// Kind of sample messages.
    #[arg(long, value_enum, default_value = "mixed")]
    pub kind: Kind,
    /// Messages per request (1 sends bare XML, more sends multipart/mixed; ≤ 100).
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// XML files to send instead of samples.
    pub files: Vec<PathBuf>,
}

/// Sends the messages and prints one line per request.
pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let bodies = if args.files.is_empty() { samples(&args) } else { read_files(&args.files)? };
    let client = args.auth.client(reqwest::Client::builder())?;
    let url = format!("{}{}", args.url.trim_end_matches('/'), append_path(&args.ispb));
    for chunk in bodies.chunks(args.batch.clamp(1, 100)) {
        let request = if chunk.len() == 1 {
            client.post(&url).header("content-type", "application/xml").body(chunk[0].clone())
        } else {
            let parts: Vec<Part> = chunk
                .iter()
                .map(|b| Part {
                    headers: vec![(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/xml"))],
                    body: bytes::Bytes::from(b.clone()),
                })
                .collect();
            let boundary = multipart::choose_boundary(&parts);
            client
                .post(&url)
                .header("content-type", multipart::content_type(&boundary))
                .body(multipart::render(&parts, &boundary))
        };
        let response = request.send().await.with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        println!("{status} {text}");
        if !status.is_success() {
            bail!("producer API answered {status}");
        }
    }
    Ok(())
}

fn samples(args: &SendArgs) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::from_entropy();
    (0..args.count)
        .map(|i| {
            let kind = match args.kind {
                Kind::Pacs008 => SampleKind::Pacs008,
                Kind::Pacs002 => SampleKind::Pacs002,
                Kind::Admi002 => SampleKind::Admi002,
                Kind::Mixed => SampleKind::ALL[i % SampleKind::ALL.len()],
            };
            sample_message(kind, &args.ispb, &mut rng).body
        })
        .collect()
}

fn read_files(files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    files.iter().map(|f| std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))).collect()
}
