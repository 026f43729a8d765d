//! `ClientCertificate`: what access rules can name of a client certificate that
//! rustls verified against the configured CA — its SHA-256 fingerprint, subject CN
//! and subject alternative names. Plain data, read once per connection.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// What access rules can name of a verified client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    /// SHA-256 of the DER certificate, lowercase hex (as `openssl x509 -fingerprint
    /// -sha256` prints it, without the colons).
    pub fingerprint: String,
    /// The subject's common name, when it has one.
    pub subject_cn: Option<String>,
    /// DNS names, URIs and e-mail addresses of the subject alternative names.
    pub sans: Vec<String>,
}

impl ClientCertificate {
    /// Reads a DER certificate. A certificate whose fields cannot be parsed keeps
    /// its fingerprint (rules naming the fingerprint still match it).
    pub fn from_der(der: &[u8]) -> ClientCertificate {
        let fingerprint = sha256_hex(der);
        let Ok((_, certificate)) = X509Certificate::from_der(der) else {
            return ClientCertificate { fingerprint, subject_cn: None, sans: Vec::new() };
        };
        let subject_cn =
            certificate.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
        let sans = match certificate.subject_alternative_name() {
            Ok(Some(extension)) => extension
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(text) | GeneralName::URI(text) | GeneralName::RFC822Name(text) => {
                        Some((*text).to_owned())
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        ClientCertificate { fingerprint, subject_cn, sans }
    }

    /// How logs and audit records name the certificate: its CN, else its fingerprint.
    pub fn display_name(&self) -> String {
        match &self.subject_cn {
            Some(cn) => format!("cn={cn}"),
            None => format!("sha256={}", self.fingerprint),
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_lowercase_hex_sha256() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn an_unparseable_certificate_keeps_its_fingerprint() {
        let certificate = ClientCertificate::from_der(b"not a certificate");
        assert_eq!(certificate.fingerprint, sha256_hex(b"not a certificate"));
        assert_eq!((certificate.subject_cn, certificate.sans.len()), (None, 0));
    }
}
