//! TLS of the listeners and of the peer client, on rustls with the `ring` provider:
//! TLS 1.2 and 1.3 with rustls' safe default suites (TLS 1.2 ECDHE-RSA/ECDSA with
//! AES-GCM or ChaCha20 among them), ALPN `h2` and `http/1.1`.
//!
//! `ReloadableTls` holds a listener's server configuration behind an `ArcSwap`:
//! every new connection takes the current one, so `reload` (SIGHUP) changes the
//! certificate and the client CA without touching open connections; a reload that
//! fails keeps the old configuration. Private key files must be readable by their
//! owner only (mode 0600). Errors name files, never their content.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{ClientAuth, PeerTls, ServerTls};

/// A certificate, key or CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {why}", path.display())]
    BadFile { path: PathBuf, why: String },
    #[error("TLS configuration with {}: {why}", path.display())]
    Rejected { path: PathBuf, why: String },
}

/// The files a server configuration is built from.
#[derive(Clone, Debug)]
struct ServerFiles {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_auth: ClientAuth,
    client_ca_file: Option<PathBuf>,
    alpn: Vec<Vec<u8>>,
}

/// A listener's TLS configuration, replaceable while it serves.
pub struct ReloadableTls {
    files: ServerFiles,
    current: ArcSwap<ServerConfig>,
}

impl std::fmt::Debug for ReloadableTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadableTls").field("files", &self.files).finish_non_exhaustive()
    }
}

impl ReloadableTls {
    /// A client-facing listener (public or internal): HTTP/2 and HTTP/1.1.
    pub fn server(tls: &ServerTls) -> Result<ReloadableTls, TlsError> {
        let ServerTls { cert_file, key_file, client_auth, client_ca_file } = tls.clone();
        ReloadableTls::load(ServerFiles {
            cert_file,
            key_file,
            client_auth,
            client_ca_file,
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        })
    }

    /// The peer listener: client certificates of the cluster CA required.
    pub fn peer(tls: &PeerTls) -> Result<ReloadableTls, TlsError> {
        ReloadableTls::load(ServerFiles {
            cert_file: tls.cert_file.clone(),
            key_file: tls.key_file.clone(),
            client_auth: ClientAuth::Required,
            client_ca_file: Some(tls.ca_file.clone()),
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        })
    }

    fn load(files: ServerFiles) -> Result<ReloadableTls, TlsError> {
        let config = build_server_config(&files)?;
        Ok(ReloadableTls { files, current: ArcSwap::from_pointee(config) })
    }

    /// Re-reads the files; on error the configuration in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = build_server_config(&self.files)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// An acceptor with the configuration in use now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }
}

/// The provider every TLS configuration uses: ring, never aws-lc-rs.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build_server_config(files: &ServerFiles) -> Result<ServerConfig, TlsError> {
    let certs = read_certificates(&files.cert_file)?;
    let key = read_private_key(&files.key_file)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| rejected(&files.cert_file, &e))?;
    let builder = match (files.client_auth, &files.client_ca_file) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca_file)) => {
            let roots = Arc::new(read_roots(ca_file)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
            let verifier = if auth == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| rejected(ca_file, &e))?)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| rejected(&files.key_file, &e))?;
    config.alpn_protocols = files.alpn.clone();
    Ok(config)
}

/// The TLS configuration of the node's peer client: it presents the node's peer
/// certificate and trusts only the cluster CA.
pub fn peer_client_config(tls: &PeerTls) -> Result<ClientConfig, TlsError> {
    let roots = read_roots(&tls.ca_file)?;
    let certs = read_certificates(&tls.cert_file)?;
    let key = read_private_key(&tls.key_file)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| rejected(&tls.cert_file, &e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| rejected(&tls.key_file, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn rejected(path: &Path, error: &dyn std::fmt::Display) -> TlsError {
    TlsError::Rejected { path: path.to_path_buf(), why: error.to_string() }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

/// Every certificate of a PEM file, in order (leaf first).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadFile { path: path.to_path_buf(), why: format!("not PEM certificates: {e}") })?;
    if certs.is_empty() {
        return Err(TlsError::BadFile { path: path.to_path_buf(), why: "holds no certificate".into() });
    }
    Ok(certs)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    check_private_mode(path)?;
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|_| TlsError::BadFile { path: path.to_path_buf(), why: "holds no PEM private key".into() })
}

/// Refuses a private key file that group or others may access.
fn check_private_mode(path: &Path) -> Result<(), TlsError> {
    match crate::private_file::exposed_mode(path) {
        Ok(None) => Ok(()),
        Ok(Some(mode)) => Err(TlsError::BadFile {
            path: path.to_path_buf(),
            why: format!("private key has mode {mode:03o}: only the service user may read it: chmod 600"),
        }),
        Err(source) => Err(TlsError::Read { path: path.to_path_buf(), source }),
    }
}

fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates(path)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::BadFile { path: path.to_path_buf(), why: format!("not a CA certificate: {e}") })?;
    }
    Ok(roots)
}
