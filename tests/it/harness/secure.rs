//! TLS for test nodes: a dev CA (`pixstream::certs::DevCa`) with certificates for
//! 127.0.0.1 and clients, the access files naming them, and HTTPS clients that
//! trust the CA and present a client certificate.

use std::path::PathBuf;
use std::sync::Arc;

use pixstream::certs::{DevCa, IssuedCertificate};
use pixstream::config::{ClientAuth, ServerTlsSection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A CA and a folder for the files the tests write.
pub struct Pki {
    pub ca: DevCa,
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let pki = Pki { ca: DevCa::new(name).expect("dev CA"), dir: tempfile::tempdir().expect("temp dir") };
        pki.ca.write(pki.dir.path(), "ca").expect("write CA");
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA certificate file.
    pub fn ca_file(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// A server certificate for 127.0.0.1 written as `{stem}.pem` / `{stem}.key`.
    pub fn server(&self, stem: &str) -> IssuedCertificate {
        let certificate = self.ca.issue_server(stem, &["127.0.0.1".to_owned()]).expect("server certificate");
        certificate.write(self.dir.path(), stem).expect("write server certificate");
        certificate
    }

    /// A `[tls.public]` or `[tls.internal]` section serving the `node` certificate (see `server`), client
    /// certificates of this CA per `client_auth`, mapped by `clients_file`.
    pub fn server_tls(&self, client_auth: ClientAuth, clients_file: Option<PathBuf>) -> ServerTlsSection {
        let asks = client_auth != ClientAuth::None;
        ServerTlsSection {
            cert_file: self.path("node.pem"),
            key_file: self.path("node.key"),
            client_auth,
            client_ca_file: asks.then(|| self.ca_file()),
            clients_file,
        }
    }

    /// A client certificate with CN `common_name`.
    pub fn client(&self, common_name: &str) -> IssuedCertificate {
        self.ca.issue_client(common_name).expect("client certificate")
    }

    /// Writes `clients.toml`: each certificate (by fingerprint) with its ISPBs.
    pub fn write_clients(&self, clients: &[(&str, &IssuedCertificate, &[&str])]) -> PathBuf {
        let mut text = String::new();
        for (name, certificate, ispbs) in clients {
            let ispbs: Vec<String> = ispbs.iter().map(|i| format!("{i:?}")).collect();
            text.push_str(&format!(
                "[[client]]\nname = {name:?}\nfingerprint = {:?}\nispbs = [{}]\n\n",
                certificate.fingerprint(),
                ispbs.join(", ")
            ));
        }
        let path = self.path("clients.toml");
        std::fs::write(&path, text).expect("write clients.toml");
        path
    }

    /// Writes `credentials.toml`: bearer tokens and certificates (by CN) with roles.
    pub fn write_credentials(&self, tokens: &[(&str, &str, &[&str])], certificates: &[(&str, &[&str])]) -> PathBuf {
        let roles = |roles: &[&str]| roles.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join(", ");
        let mut text = String::new();
        for (name, token, token_roles) in tokens {
            text.push_str(&format!(
                "[[token]]\nname = {name:?}\nsha256 = {:?}\nroles = [{}]\n\n",
                pixstream::access::sha256_hex(token.as_bytes()),
                roles(token_roles)
            ));
        }
        for (common_name, cert_roles) in certificates {
            text.push_str(&format!(
                "[[certificate]]\nname = {common_name:?}\nsubject_cn = {common_name:?}\nroles = [{}]\n\n",
                roles(cert_roles)
            ));
        }
        let path = self.path("credentials.toml");
        std::fs::write(&path, text).expect("write credentials.toml");
        path
    }

    /// An HTTPS client trusting this CA, presenting `identity` when given.
    pub fn https_client(&self, identity: Option<&IssuedCertificate>) -> reqwest::Client {
        https_client(&self.ca.cert_pem(), identity)
    }
}

/// The rustls client configuration of `https_client` (HTTP/1.1, ring provider).
pub fn client_tls(ca_pem: &str, identity: Option<&IssuedCertificate>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(certificate.expect("CA PEM")).expect("CA certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(identity) => {
            let chain = vec![CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).expect("client cert")];
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).expect("client key");
            builder.with_client_auth_cert(chain, key).expect("client identity")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// An HTTPS client trusting `ca_pem`, presenting `identity` when given; keeps
/// connections alive like a PSP client does.
pub fn https_client(ca_pem: &str, identity: Option<&IssuedCertificate>) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_tls(ca_pem, identity))
        .no_gzip()
        .timeout(super::timing::REQUEST)
        .build()
        .expect("https client")
}
