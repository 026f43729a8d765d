//! What every admin subcommand shares: the node to ask (`--url`, the output form
//! `--json`, the client credentials) and the call itself — send, read the answer,
//! and make a non-2xx answer an error carrying the status and the node's problem.

use anyhow::{Context, bail};
use clap::Args;

/// `--url`, `--json` and the client credentials of an admin subcommand.
#[derive(Debug, Args)]
pub struct AdminTarget {
    /// Internal API base URL of the node to ask.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub url: String,
    /// Print the node's JSON answer instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub auth: super::client_auth::ClientAuthArgs,
}

impl AdminTarget {
    /// A client with the credentials applied.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        self.auth.client(reqwest::Client::builder())
    }

    /// The URL of `path` on the node.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }
}

/// `request` with `body` as its JSON.
pub fn with_json(
    request: reqwest::RequestBuilder,
    body: &impl serde::Serialize,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let body = serde_json::to_vec(body).context("encode the request")?;
    Ok(request.header("content-type", "application/json").body(body))
}

/// Sends `request` and returns the answer's body; a non-2xx answer is an error
/// naming the status and the node's problem.
pub async fn answer(request: reqwest::RequestBuilder) -> anyhow::Result<String> {
    let response = request.send().await.context("request")?;
    let status = response.status();
    let body = response.text().await.context("answer body")?;
    if !status.is_success() {
        bail!("{status}: {}", body.trim());
    }
    Ok(body)
}
