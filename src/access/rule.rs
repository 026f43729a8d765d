//! `CertificateRule`: how an access file names a client certificate — by SHA-256
//! fingerprint, subject common name or subject alternative name (exactly one).

use serde::Deserialize;

use super::certificate::ClientCertificate;

/// The certificate part of an access entry, as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateMatch {
    /// SHA-256 of the DER certificate, hex (colons and case ignored).
    pub fingerprint: Option<String>,
    pub subject_cn: Option<String>,
    /// A DNS name, URI or e-mail address among the subject alternative names.
    pub san: Option<String>,
}

/// One way of recognising a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateRule {
    Fingerprint(String),
    SubjectCn(String),
    San(String),
}

impl CertificateMatch {
    /// The rule, when exactly one field is given.
    pub fn rule(&self) -> Result<CertificateRule, &'static str> {
        match (&self.fingerprint, &self.subject_cn, &self.san) {
            (Some(fingerprint), None, None) => {
                let hex: String = fingerprint.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
                if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(CertificateRule::Fingerprint(hex))
                } else {
                    Err("fingerprint is not 64 hex digits (SHA-256)")
                }
            }
            (None, Some(cn), None) if !cn.is_empty() => Ok(CertificateRule::SubjectCn(cn.clone())),
            (None, None, Some(san)) if !san.is_empty() => Ok(CertificateRule::San(san.clone())),
            (None, None, None) => Err("names no certificate: give fingerprint, subject_cn or san"),
            _ => Err("give exactly one of fingerprint, subject_cn, san (non-empty)"),
        }
    }
}

impl CertificateRule {
    /// Whether `certificate` is the one this rule names.
    pub fn matches(&self, certificate: &ClientCertificate) -> bool {
        match self {
            CertificateRule::Fingerprint(hex) => certificate.fingerprint == *hex,
            CertificateRule::SubjectCn(cn) => certificate.subject_cn.as_deref() == Some(cn.as_str()),
            CertificateRule::San(san) => certificate.sans.iter().any(|s| s == san),
        }
    }
}
