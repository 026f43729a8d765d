//! `pixstream pull`: follows an ISPB's stream as a PSP does — `stream/start`, then
//! every `PI-Pull-Next` at once — printing each message and optionally saving it.
//! Ctrl-C (or `--max`) ends the stream with a DELETE that confirms the last batch.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderName};
use wire::headers::{PI_PULL_NEXT, PI_RESOURCE_ID, PIX_MESSAGE_TYPE, PIX_SEQUENCE, PIX_STREAM_SLOTS};
use wire::multipart;
use wire::paths::stream_start_path;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Participant whose stream to follow.
    #[arg(long)]
    pub ispb: String,
    /// Public API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[command(flatten)]
    pub auth: super::client_auth::ClientAuthArgs,
    /// Ask for one message per response instead of multipart batches of up to 10.
    #[arg(long)]
    pub single: bool,
    /// Save each message as `<seq>.xml` in this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop (confirming with DELETE) after this many messages.
    #[arg(long)]
    pub max: Option<usize>,
    /// Stop (confirming with DELETE) after this many empty long polls in a row.
    #[arg(long)]
    pub idle_polls: Option<usize>,
}

/// One received message.
struct Received {
    seq: String,
    resource_id: String,
    msg_type: String,
    body: Bytes,
}

/// Follows the stream until Ctrl-C, `--max` or `--idle-polls`.
pub async fn run(args: PullArgs) -> anyhow::Result<()> {
    let client = args.auth.client(reqwest::Client::builder().timeout(Duration::from_secs(40)))?;
    let base = args.url.trim_end_matches('/').to_owned();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let accept = if args.single { "application/xml" } else { "multipart/mixed" };
    let mut path = stream_start_path(&args.ispb);
    let (mut received, mut empty_polls) = (0usize, 0usize);
    loop {
        let request = client.get(format!("{base}{path}")).header("accept", accept).send();
        let response = tokio::select! {
            r = request => r.with_context(|| format!("GET {path}"))?,
            _ = tokio::signal::ctrl_c() => break,
        };
        let status = response.status();
        let next = response.headers().get(PI_PULL_NEXT).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let slots = response.headers().get(PIX_STREAM_SLOTS).and_then(|v| v.to_str().ok()).unwrap_or("?").to_owned();
        let messages = match status {
            StatusCode::OK => parse_response(response).await?,
            StatusCode::NO_CONTENT => Vec::new(),
            other => {
                let text = response.text().await.unwrap_or_default();
                bail!("{other}: {text}");
            }
        };
        path = next.ok_or_else(|| anyhow!("{status} without PI-Pull-Next"))?;
        if messages.is_empty() {
            empty_polls += 1;
            eprintln!("204 no messages (slots {slots})");
        } else {
            empty_polls = 0;
        }
        for message in &messages {
            println!(
                "seq={} id={} type={} bytes={}",
                message.seq,
                message.resource_id,
                message.msg_type,
                message.body.len()
            );
            if let Some(dir) = &args.out {
                let file = dir.join(format!("{}.xml", message.seq));
                std::fs::write(&file, &message.body).with_context(|| format!("write {}", file.display()))?;
            }
        }
        received += messages.len();
        let done_by_count = args.max.is_some_and(|max| received >= max);
        let done_by_idle = args.idle_polls.is_some_and(|n| empty_polls >= n);
        if done_by_count || done_by_idle {
            break;
        }
    }
    let response = client.delete(format!("{base}{path}")).send().await.context("DELETE")?;
    eprintln!("stream closed ({}), {received} messages received", response.status());
    Ok(())
}

async fn parse_response(response: reqwest::Response) -> anyhow::Result<Vec<Received>> {
    let headers = response.headers().clone();
    let header = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let content_type = header(&CONTENT_TYPE);
    let body = response.bytes().await.context("read body")?;
    if let Some(boundary) = multipart::boundary_from_content_type(&content_type) {
        let parts = multipart::parse(&body, &boundary, 100).context("multipart")?;
        return Ok(parts
            .into_iter()
            .map(|part| {
                let get = |name: &HeaderName| {
                    part.headers.iter().find(|(n, _)| n == name.as_str()).map(|(_, v)| v.clone()).unwrap_or_default()
                };
                Received {
                    seq: get(&PIX_SEQUENCE),
                    resource_id: get(&PI_RESOURCE_ID),
                    msg_type: get(&PIX_MESSAGE_TYPE),
                    body: part.body.clone(),
                }
            })
            .collect());
    }
    Ok(vec![Received {
        seq: header(&PIX_SEQUENCE),
        resource_id: header(&PI_RESOURCE_ID),
        msg_type: header(&PIX_MESSAGE_TYPE),
        body,
    }])
}
