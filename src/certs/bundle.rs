//! `pixstream certs dev --out DIR`: everything a secure test deployment needs, in one
//! folder — a dev CA; per node of the cluster, a certificate for its listeners (server
//! and peer); a client certificate per PSP ISPB; an operator client certificate;
//! producer, operator and auditor bearer tokens; the access files naming them
//! (`clients.toml`, `credentials.toml`) and `cluster-tls.toml`, the given cluster
//! configuration with the TLS and internal-auth sections added. Keys and tokens are
//! written with mode 0600. One CA signs everything here; production keeps separate
//! CAs for PSP clients, operators and the cluster.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use super::{CertError, DevCa, write_private};
use crate::access::sha256_hex;
use crate::config::ConfigFile;

/// What to generate.
#[derive(Clone, Debug)]
pub struct BundleSpec {
    pub out: PathBuf,
    /// The cluster configuration to secure (its nodes get certificates); `None`: a
    /// single node on 127.0.0.1:8443 (public), 8444 (internal), 8445 (peer).
    pub cluster_toml: Option<String>,
    /// ISPBs that get a PSP client certificate each.
    pub psps: Vec<String>,
}

/// What was written, for the command to print.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub files: Vec<PathBuf>,
    pub config: PathBuf,
    /// The first node's public and internal addresses, for the examples printed.
    pub first_public: String,
    pub first_internal: String,
}

/// The single node `cluster-tls.toml` describes when no cluster file is given.
const SINGLE_NODE: &str = r#"[[nodes]]
id = 1
public_addr = "127.0.0.1:8443"
internal_addr = "127.0.0.1:8444"
peer_addr = "127.0.0.1:8445"
"#;

/// Generates the bundle of `spec` into `spec.out` (created if missing).
pub fn write_bundle(spec: &BundleSpec) -> Result<Bundle, CertError> {
    let cluster_toml = spec.cluster_toml.clone().unwrap_or_else(|| SINGLE_NODE.to_owned());
    let file: ConfigFile =
        toml::from_str(&cluster_toml).map_err(|e| CertError::Input(format!("cluster configuration: {e}")))?;
    if !file.tls.is_empty() {
        return Err(CertError::Input("the cluster configuration already has a [tls] section".into()));
    }
    for ispb in &spec.psps {
        if storage::Ispb::parse(ispb).is_none() {
            return Err(CertError::Input(format!("{ispb:?} is not an ISPB (8 characters of [0-9A-Z])")));
        }
    }
    let out = &spec.out;
    fs::create_dir_all(out).map_err(|source| CertError::Write { path: out.clone(), source })?;
    let mut written = Written { dir: out.clone(), files: Vec::new() };

    let ca = DevCa::new("pixstream dev CA")?;
    written.record("ca", |dir, stem| ca.write(dir, stem), &["pem", "key"])?;
    for node in &file.nodes {
        let hosts: BTreeSet<String> = [&node.public_addr, &node.internal_addr, &node.peer_addr]
            .iter()
            .filter_map(|addr| addr.rsplit_once(':').map(|(host, _)| host.trim_matches(['[', ']']).to_owned()))
            .filter(|host| !host.is_empty() && host != "0.0.0.0" && host != "::")
            .collect();
        let hosts: Vec<String> = hosts.into_iter().collect();
        let certificate = ca.issue_server(&format!("pixstream node {}", node.id), &hosts)?;
        written.record(&format!("node-{}", node.id), |dir, stem| certificate.write(dir, stem), &["pem", "key"])?;
    }

    let mut clients = String::from("# Public listener: which client certificate may read which ISPBs.\n");
    for ispb in &spec.psps {
        let certificate = ca.issue_client(&format!("psp-{ispb}"))?;
        written.record(&format!("psp-{ispb}"), |dir, stem| certificate.write(dir, stem), &["pem", "key"])?;
        let _ = write!(
            clients,
            "\n[[client]]\nname = \"psp-{ispb}\"\nfingerprint = \"{}\"\nispbs = [\"{ispb}\"]\n",
            certificate.fingerprint()
        );
    }
    written.write("clients.toml", clients.as_bytes(), false)?;

    let operator = ca.issue_client("operator")?;
    written.record("operator", |dir, stem| operator.write(dir, stem), &["pem", "key"])?;
    let mut credentials = String::from(
        "# Internal listener: bearer tokens (SHA-256 of the token) and client certificates, with roles.\n\n[[certificate]]\nname = \"operator\"\nsubject_cn = \"operator\"\nroles = [\"operator\", \"auditor\"]\n",
    );
    for role in ["producer", "operator", "auditor"] {
        let token = new_token();
        written.write(&format!("{role}.token"), token.as_bytes(), true)?;
        let _ = write!(
            credentials,
            "\n[[token]]\nname = \"{role}-token\"\nsha256 = \"{}\"\nroles = [\"{role}\"]\n",
            sha256_hex(token.as_bytes())
        );
    }
    written.write("credentials.toml", credentials.as_bytes(), false)?;

    let config = format!("{}\n{TLS_SECTIONS}", cluster_toml.trim_end());
    written.write("cluster-tls.toml", config.as_bytes(), false)?;
    let first = file.nodes.first().ok_or_else(|| CertError::Input("the cluster configuration has no node".into()))?;
    Ok(Bundle {
        config: out.join("cluster-tls.toml"),
        files: written.files,
        first_public: first.public_addr.clone(),
        first_internal: first.internal_addr.clone(),
    })
}

/// The sections `cluster-tls.toml` adds; paths are relative to its own folder.
const TLS_SECTIONS: &str = r#"
# Added by `pixstream certs dev`: every listener over TLS with the dev CA.
[tls.public]
cert_file = "node-{node_id}.pem"
key_file = "node-{node_id}.key"
client_auth = "required"
client_ca_file = "ca.pem"
clients_file = "clients.toml"

[tls.internal]
cert_file = "node-{node_id}.pem"
key_file = "node-{node_id}.key"
client_auth = "optional"
client_ca_file = "ca.pem"

[tls.peer]
cert_file = "node-{node_id}.pem"
key_file = "node-{node_id}.key"
ca_file = "ca.pem"

[internal_auth]
credentials_file = "credentials.toml"
"#;

/// A new bearer token: 32 random bytes, base64url.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("pxs_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The files written so far.
struct Written {
    dir: PathBuf,
    files: Vec<PathBuf>,
}

impl Written {
    fn record(
        &mut self,
        stem: &str,
        write: impl FnOnce(&Path, &str) -> std::io::Result<()>,
        extensions: &[&str],
    ) -> Result<(), CertError> {
        write(&self.dir, stem).map_err(|source| CertError::Write { path: self.dir.join(stem), source })?;
        self.files.extend(extensions.iter().map(|ext| self.dir.join(format!("{stem}.{ext}"))));
        Ok(())
    }

    fn write(&mut self, name: &str, content: &[u8], private: bool) -> Result<(), CertError> {
        let path = self.dir.join(name);
        let result = if private { write_private(&path, content) } else { fs::write(&path, content) };
        result.map_err(|source| CertError::Write { path: path.clone(), source })?;
        self.files.push(path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientAuth, Config, StartMode};

    #[test]
    fn the_bundle_for_the_example_cluster_is_a_valid_configuration_of_every_node() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = BundleSpec {
            out: dir.path().to_path_buf(),
            cluster_toml: Some(include_str!("../../cluster.toml").to_owned()),
            psps: vec!["12345678".into(), "87654321".into()],
        };
        let bundle = write_bundle(&spec).expect("bundle");
        assert_eq!(bundle.first_public, "127.0.0.1:8080");
        for id in 1..=3 {
            let config = Config::load(&bundle.config, id, StartMode::Bootstrap).expect("valid for every node");
            let public = config.security.public_tls.expect("public TLS");
            assert_eq!(public.cert_file, dir.path().join(format!("node-{id}.pem")));
            assert_eq!(public.client_auth, ClientAuth::Required);
            assert!(public.cert_file.exists() && config.security.peer_tls.is_some());
        }
        for name in ["psp-12345678.pem", "psp-87654321.key", "operator.pem", "auditor.token", "credentials.toml"] {
            assert!(dir.path().join(name).exists(), "{name} written");
        }
        assert!(
            write_bundle(&BundleSpec { psps: vec!["bad".into()], ..spec.clone() }).is_err(),
            "a bad ISPB is refused"
        );
        let secured = BundleSpec { cluster_toml: Some(std::fs::read_to_string(&bundle.config).expect("read")), ..spec };
        assert!(write_bundle(&secured).is_err(), "a configuration with TLS already is refused");
    }
}
