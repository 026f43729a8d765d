//! `pixstream pull`: follows an ISPB's stream as a PSP does — `stream/start`, then
//! every `PI-Pull-Next` at once — printing each message and optionally saving it.
//! Ctrl-C (or `--max`) ends the stream with a DELETE that confirms the last batch.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use reqwest::StatusCode;

use crate::error::ApiError;
use crate::multipart;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Participant whose stream to follow.
    #[arg(long)]
    pub ispb: String,
    /// Public API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
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
pub async fn run(args: PullArgs) -> Result<(), ApiError> {
    let fail = |what: String| ApiError::Startup(what);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(40))
        .build()
        .map_err(|e| fail(format!("http client: {e}")))?;
    let base = args.url.trim_end_matches('/').to_owned();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
    }
    let accept = if args.single { "application/xml" } else { "multipart/mixed" };
    let mut path = format!("/api/v1/out/{}/stream/start", args.ispb);
    let (mut received, mut empty_polls) = (0usize, 0usize);
    loop {
        let request = client.get(format!("{base}{path}")).header("accept", accept).send();
        let response = tokio::select! {
            r = request => r.map_err(|e| fail(format!("GET {path}: {e}")))?,
            _ = tokio::signal::ctrl_c() => break,
        };
        let status = response.status();
        let next = response.headers().get("pi-pull-next").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let slots = response.headers().get("pix-stream-slots").and_then(|v| v.to_str().ok()).unwrap_or("?").to_owned();
        let messages = match status {
            StatusCode::OK => parse_response(response).await?,
            StatusCode::NO_CONTENT => Vec::new(),
            other => {
                let text = response.text().await.unwrap_or_default();
                return Err(fail(format!("{other}: {text}")));
            }
        };
        path = next.ok_or_else(|| fail(format!("{status} without PI-Pull-Next")))?;
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
                std::fs::write(&file, &message.body).map_err(|e| fail(format!("write {}: {e}", file.display())))?;
            }
        }
        received += messages.len();
        let done_by_count = args.max.is_some_and(|max| received >= max);
        let done_by_idle = args.idle_polls.is_some_and(|n| empty_polls >= n);
        if done_by_count || done_by_idle {
            break;
        }
    }
    let response = client.delete(format!("{base}{path}")).send().await.map_err(|e| fail(format!("DELETE: {e}")))?;
    eprintln!("stream closed ({}), {received} messages received", response.status());
    Ok(())
}

async fn parse_response(response: reqwest::Response) -> Result<Vec<Received>, ApiError> {
    let fail = |what: String| ApiError::Startup(what);
    let headers = response.headers().clone();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let content_type = header("content-type");
    let body = response.bytes().await.map_err(|e| fail(format!("read body: {e}")))?;
    if let Some(boundary) = multipart::boundary_from_content_type(&content_type) {
        let parts = multipart::parse(&body, &boundary, 100).map_err(|e| fail(format!("multipart: {e}")))?;
        return Ok(parts
            .into_iter()
            .map(|part| {
                let get = |name: &str| {
                    part.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default()
                };
                Received {
                    seq: get("pix-sequence"),
                    resource_id: get("pi-resourceid"),
                    msg_type: get("pix-message-type"),
                    body: part.body.clone(),
                }
            })
            .collect());
    }
    Ok(vec![Received {
        seq: header("pix-sequence"),
        resource_id: header("pi-resourceid"),
        msg_type: header("pix-message-type"),
        body,
    }])
}
