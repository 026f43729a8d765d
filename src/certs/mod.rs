//! Development certificates (rcgen on ring): a dev CA and the certificates it
//! issues — server + peer certificates for nodes, client certificates for PSPs and
//! operators. `pixstream certs dev` writes a whole bundle with them (`bundle`); the
//! tests use `DevCa` directly. Production certificates come from the institution's
//! own PKI; nothing here is meant for it.

pub mod bundle;

use std::fs;
use std::io::Write;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate this module generated, with its private key.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
    /// The DER certificate (its SHA-256 is the fingerprint access files name).
    pub der: Vec<u8>,
}

impl IssuedCertificate {
    /// Writes `{stem}.pem` and `{stem}.key` (mode 0600) into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<()> {
        fs::write(dir.join(format!("{stem}.pem")), &self.cert_pem)?;
        write_private(&dir.join(format!("{stem}.key")), self.key_pem.as_bytes())
    }

    /// SHA-256 of the DER certificate, lowercase hex.
    pub fn fingerprint(&self) -> String {
        crate::access::sha256_hex(&self.der)
    }
}

/// A certificate or file this module could not make.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("writing {}: {source}", path.display())]
    Write { path: std::path::PathBuf, source: std::io::Error },
    #[error("{0}")]
    Input(String),
}

/// A development certificate authority.
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
}

impl DevCa {
    /// A new CA whose subject CN is `name`.
    pub fn new(name: &str) -> Result<DevCa, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        Ok(DevCa { issuer: CertifiedIssuer::self_signed(params, key)?, key_pem })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate and key, as files are written.
    pub fn write(&self, dir: &Path, stem: &str) -> std::io::Result<()> {
        fs::write(dir.join(format!("{stem}.pem")), self.cert_pem())?;
        write_private(&dir.join(format!("{stem}.key")), self.key_pem.as_bytes())
    }

    /// A certificate for a node's listeners: server and client authentication (the
    /// peer listener uses it both ways), valid for `hosts` (DNS names or IP
    /// addresses) and `localhost`.
    pub fn issue_server(&self, name: &str, hosts: &[String]) -> Result<IssuedCertificate, CertError> {
        let mut names: Vec<String> = hosts.to_vec();
        for default in ["localhost", "127.0.0.1"] {
            if !names.iter().any(|n| n == default) {
                names.push(default.to_owned());
            }
        }
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name = distinguished_name(name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    /// A server certificate as `issue_server` makes, for an existing private key
    /// (PKCS#8 PEM) — e.g. an RSA key, for clients that pin ECDHE-RSA suites.
    pub fn issue_server_for_key(
        &self,
        name: &str,
        hosts: &[String],
        key_pem: &str,
    ) -> Result<IssuedCertificate, CertError> {
        let key = KeyPair::from_pem(key_pem)?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name = distinguished_name(name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue_with(params, key)
    }

    /// A client certificate with subject CN `common_name`.
    pub fn issue_client(&self, common_name: &str) -> Result<IssuedCertificate, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = distinguished_name(common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Result<IssuedCertificate, CertError> {
        self.issue_with(params, KeyPair::generate()?)
    }

    fn issue_with(&self, mut params: CertificateParams, key: KeyPair) -> Result<IssuedCertificate, CertError> {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.use_authority_key_identifier_extension = true;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().to_vec(),
        })
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "pixstream development");
    name.push(DnType::CommonName, common_name);
    name
}

/// Writes a file only its owner can read (keys, tokens).
pub fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(content)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
