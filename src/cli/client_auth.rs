//! The TLS and credential options every client subcommand shares (`send`, `pull`,
//! `cluster members`): the CA to trust, a client certificate and key to present,
//! a bearer token file for the internal API. Without them a client speaks plain
//! HTTP, as to the embedded default.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// `--cacert`, `--cert`, `--key`, `--token-file`.
#[derive(Debug, Default, Args)]
pub struct ClientAuthArgs {
    /// PEM CA certificate(s) the server's certificate must chain to (HTTPS).
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// PEM client certificate to present (with --key).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// File holding a bearer token for the internal API.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl ClientAuthArgs {
    /// An HTTP client with these options applied to `builder`.
    pub fn client(&self, builder: reqwest::ClientBuilder) -> anyhow::Result<reqwest::Client> {
        let mut builder = builder;
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .with_context(|| format!("{} does not hold a token", path.display()))?;
            value.set_sensitive(true);
            builder = builder.default_headers(HeaderMap::from_iter([(AUTHORIZATION, value)]));
        }
        if self.cacert.is_some() || self.cert.is_some() {
            builder = builder.use_preconfigured_tls(self.tls()?);
        }
        builder.build().context("http client")
    }

    fn tls(&self) -> anyhow::Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = &self.cacert {
            for certificate in
                CertificateDer::pem_file_iter(path).with_context(|| format!("read {}", path.display()))?
            {
                roots.add(certificate.with_context(|| format!("{}: not PEM", path.display()))?)?;
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let mut config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .with_context(|| format!("read {}", cert.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("{}: not PEM certificates", cert.display()))?;
                let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("read key {}", key.display()))?;
                builder.with_client_auth_cert(chain, key)?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}
