//! The public listener's client mapping: which certificate may read which ISPBs.
//!
//! ```toml
//! [[client]]
//! name = "banco-exemplo"          # how logs and audit records name the client
//! subject_cn = "psp-12345678"     # or fingerprint = "…", or san = "…"
//! ispbs = ["12345678"]
//! ```

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use storage::Ispb;

use super::certificate::ClientCertificate;
use super::rule::{CertificateMatch, CertificateRule};
use super::{AccessError, read_toml};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    #[serde(default)]
    client: Vec<ClientEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    name: String,
    #[serde(flatten)]
    certificate: CertificateMatch,
    ispbs: Vec<String>,
}

/// One client of the mapping.
#[derive(Clone, Debug)]
struct Client {
    name: String,
    rule: CertificateRule,
    ispbs: HashSet<Ispb>,
}

/// The mapping in use.
#[derive(Clone, Debug, Default)]
pub struct ClientRules {
    clients: Vec<Client>,
}

impl ClientRules {
    /// Reads a clients file; every entry is checked.
    pub fn load(path: &Path) -> Result<ClientRules, AccessError> {
        let file: ClientsFile = read_toml(path)?;
        let bad =
            |entry: &str, why: String| AccessError::BadEntry { path: path.to_path_buf(), entry: entry.to_owned(), why };
        let mut clients = Vec::with_capacity(file.client.len());
        for entry in file.client {
            if entry.name.is_empty() {
                return Err(bad("", "name must not be empty".into()));
            }
            let rule = entry.certificate.rule().map_err(|why| bad(&entry.name, why.into()))?;
            let ispbs = entry
                .ispbs
                .iter()
                .map(|text| Ispb::parse(text).ok_or_else(|| bad(&entry.name, format!("{text:?} is not an ISPB"))))
                .collect::<Result<HashSet<_>, _>>()?;
            clients.push(Client { name: entry.name, rule, ispbs });
        }
        Ok(ClientRules { clients })
    }

    /// The name of the client `certificate` is, when the mapping knows it.
    pub fn client_name(&self, certificate: &ClientCertificate) -> Option<&str> {
        self.clients.iter().find(|c| c.rule.matches(certificate)).map(|c| c.name.as_str())
    }

    /// Whether `certificate` may read `ispb`: some entry naming it lists the ISPB.
    pub fn may_read(&self, certificate: &ClientCertificate, ispb: &Ispb) -> bool {
        self.clients.iter().any(|c| c.rule.matches(certificate) && c.ispbs.contains(ispb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ClientRules, AccessError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("clients.toml");
        std::fs::write(&path, text).expect("write");
        ClientRules::load(&path)
    }

    fn certificate(cn: &str, sans: &[&str]) -> ClientCertificate {
        ClientCertificate {
            fingerprint: "ab".repeat(32),
            subject_cn: Some(cn.to_owned()),
            sans: sans.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn a_certificate_reads_only_the_ispbs_of_its_entries() {
        let fingerprint = "AB:".repeat(31) + "AB";
        let text = format!(
            "[[client]]\nname = \"a\"\nfingerprint = \"{fingerprint}\"\nispbs = [\"12345678\"]\n[[client]]\nname = \"b\"\nsan = \"psp.example\"\nispbs = [\"87654321\"]\n"
        );
        let rules = load(&text).expect("valid");
        let cert = certificate("whoever", &["psp.example"]);
        let ispb = |text| Ispb::parse(text).expect("ISPB");
        assert!(rules.may_read(&cert, &ispb("12345678")), "by fingerprint (colons and case ignored)");
        assert!(rules.may_read(&cert, &ispb("87654321")), "by SAN");
        assert!(!rules.may_read(&cert, &ispb("11111111")));
        assert_eq!(rules.client_name(&cert), Some("a"));
        let stranger = ClientCertificate { fingerprint: "cd".repeat(32), ..certificate("a", &[]) };
        assert!(!rules.may_read(&stranger, &ispb("12345678")) && !rules.may_read(&stranger, &ispb("87654321")));
        assert_eq!(rules.client_name(&stranger), None);
    }

    #[test]
    fn bad_entries_are_refused_naming_the_entry() {
        let error = load("[[client]]\nname = \"a\"\nsubject_cn = \"a\"\nispbs = [\"nope\"]\n").expect_err("bad ISPB");
        assert!(error.to_string().contains("\"a\"") && error.to_string().contains("nope"), "{error}");
        let error = load("[[client]]\nname = \"a\"\nfingerprint = \"12\"\nispbs = []\n").expect_err("bad fingerprint");
        assert!(error.to_string().contains("64 hex"), "{error}");
    }
}
