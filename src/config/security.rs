//! The security sections of `cluster.toml` — `[tls.public]`, `[tls.internal]`,
//! `[tls.peer]`, `[internal_auth]` and the connection limits of `[listeners]` — and their
//! validation into `SecurityConfig` and `ListenerLimits`. Relative file paths are
//! resolved against the directory of the configuration file (`resolve_paths`);
//! `{node_id}` in a path is replaced by the node's id, so one file serves every
//! node of a cluster (`cert_file = "node-{node_id}.pem"`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[tls]`: one subsection per listener; a listener without one speaks plain HTTP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The PSP-facing pull API.
    pub public: Option<ServerTlsSection>,
    /// The producer, admin and metrics API.
    pub internal: Option<ServerTlsSection>,
    /// Raft and forwarded traffic between nodes: always mutual.
    pub peer: Option<PeerTlsSection>,
}

/// TLS of a client-facing listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsSection {
    /// PEM: the server certificate, then its chain.
    pub cert_file: PathBuf,
    /// PEM: the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Whether clients present a certificate.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// PEM: the CAs client certificates must chain to (required unless `none`).
    pub client_ca_file: Option<PathBuf>,
    /// Public listener only: which client certificate may read which ISPBs.
    pub clients_file: Option<PathBuf>,
}

/// Mutual TLS between nodes with the cluster CA.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerTlsSection {
    /// PEM: this node's peer certificate (server and client), then its chain.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// PEM: the cluster CA; peers must present a certificate it issued.
    pub ca_file: PathBuf,
}

/// Client certificates on a TLS listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// Asked for and verified when sent; a request without one is refused by the
    /// API with a problem body (403 on the public API, 401 on the internal one),
    /// which is easier for a client to read than a failed handshake.
    Optional,
    /// The handshake fails without a certificate the client CA issued.
    Required,
}

/// `[internal_auth]`: who may call the internal API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InternalAuthSection {
    /// TOML file of bearer tokens (SHA-256 hashes) and client certificates with
    /// their roles (`producer`, `operator`, `auditor`).
    pub credentials_file: Option<PathBuf>,
    /// Serve the internal API without credentials although it listens beyond
    /// loopback (a network the operator trusts). Off by default.
    pub allow_anonymous: bool,
}

/// `[listeners]`: the limits every listener applies to its connections.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenersSection {
    /// Open connections per listener; one more is answered 503 and closed (plain
    /// HTTP) or closed (TLS).
    pub max_connections: usize,
    /// Time a client has to send a request head, and the idle time after which a
    /// keep-alive connection is closed.
    pub header_read_timeout_ms: u64,
    /// Time a client has to complete the TLS handshake.
    pub tls_handshake_timeout_ms: u64,
    /// Headers per request (more: 431).
    pub max_headers: usize,
    /// Bytes of a request head (more: 431).
    pub max_header_bytes: usize,
    /// Longest a request may take, body upload included; must exceed the long-poll
    /// wait so that long polls are never cut.
    pub request_timeout_ms: u64,
    /// Requests the node works on at once (long polls that only wait do not
    /// count); more are answered 503 with `Retry-After` instead of queueing.
    pub max_in_flight: usize,
    /// Appends the node serves at once (counted where they are served, the shard
    /// leader); more are answered 503 with `Retry-After`: an admitted append waits
    /// for its Raft commit behind the others, so this bounds its latency.
    pub max_in_flight_appends: usize,
}

impl Default for ListenersSection {
    fn default() -> Self {
        ListenersSection {
            max_connections: 16_384,
            header_read_timeout_ms: 10_000,
            tls_handshake_timeout_ms: 5_000,
            max_headers: 64,
            max_header_bytes: 16 << 10,
            request_timeout_ms: 60_000,
            max_in_flight: 4_096,
            max_in_flight_appends: 256,
        }
    }
}

/// Validated TLS of a client-facing listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub client_ca_file: Option<PathBuf>,
}

/// Validated peer TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
}

/// Everything the listeners and the access checks are configured with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    pub public_tls: Option<ServerTls>,
    pub internal_tls: Option<ServerTls>,
    pub peer_tls: Option<PeerTls>,
    /// Certificate → ISPB mapping of the public listener.
    pub clients_file: Option<PathBuf>,
    /// Tokens and certificates → roles of the internal listener.
    pub credentials_file: Option<PathBuf>,
}

impl SecurityConfig {
    /// The public API checks which ISPBs a client may read.
    pub fn checks_public_access(&self) -> bool {
        self.clients_file.is_some()
    }

    /// The internal API demands credentials.
    pub fn checks_internal_access(&self) -> bool {
        self.credentials_file.is_some()
    }
}

/// Validated connection limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
    pub max_in_flight_appends: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        validate_limits(ListenersSection::default(), Duration::from_secs(5))
            .expect("the default connection limits are valid")
    }
}

/// Smallest head buffer hyper accepts.
const MIN_HEADER_BYTES: usize = 8 << 10;
/// How much longer than the long-poll wait a request may take at least.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(5);

fn bad(field: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::field(field, why)
}

/// Checks the connection limits; `long_poll_wait` must fit in the request timeout.
pub(super) fn validate_limits(
    section: ListenersSection,
    long_poll_wait: Duration,
) -> Result<ListenerLimits, ConfigError> {
    let ListenersSection {
        max_connections,
        header_read_timeout_ms,
        tls_handshake_timeout_ms,
        max_headers,
        max_header_bytes,
        request_timeout_ms,
        max_in_flight,
        max_in_flight_appends,
    } = section;
    if max_in_flight == 0 {
        return Err(bad("listeners.max_in_flight", "must be at least 1"));
    }
    if max_in_flight_appends == 0 {
        return Err(bad("listeners.max_in_flight_appends", "must be at least 1"));
    }
    if max_connections == 0 {
        return Err(bad("listeners.max_connections", "must be at least 1"));
    }
    if header_read_timeout_ms == 0 {
        return Err(bad("listeners.header_read_timeout_ms", "must be at least 1"));
    }
    if tls_handshake_timeout_ms == 0 {
        return Err(bad("listeners.tls_handshake_timeout_ms", "must be at least 1"));
    }
    if !(1..=1024).contains(&max_headers) {
        return Err(bad("listeners.max_headers", format!("{max_headers} is not in 1..=1024")));
    }
    if !(MIN_HEADER_BYTES..=1 << 20).contains(&max_header_bytes) {
        return Err(bad(
            "listeners.max_header_bytes",
            format!("{max_header_bytes} is not in {MIN_HEADER_BYTES}..=1048576"),
        ));
    }
    let request_timeout = Duration::from_millis(request_timeout_ms);
    if request_timeout < long_poll_wait + LONG_POLL_MARGIN {
        return Err(bad(
            "listeners.request_timeout_ms",
            format!(
                "{request_timeout_ms} must be at least limits.long_poll_wait_ms + {} so long polls are not cut",
                LONG_POLL_MARGIN.as_millis()
            ),
        ));
    }
    Ok(ListenerLimits {
        max_connections,
        header_read_timeout: Duration::from_millis(header_read_timeout_ms),
        tls_handshake_timeout: Duration::from_millis(tls_handshake_timeout_ms),
        max_headers,
        max_header_bytes,
        request_timeout,
        max_in_flight,
        max_in_flight_appends,
    })
}

/// Checks the TLS and internal-auth sections for node `node_id`, whose internal
/// listener is `internal_addr`.
pub(super) fn validate_security(
    mut tls: TlsSection,
    mut auth: InternalAuthSection,
    node_id: u64,
    internal_addr: SocketAddr,
    node_count: usize,
) -> Result<SecurityConfig, ConfigError> {
    tls.for_each_path(|path| substitute_node_id(path, node_id));
    if let Some(path) = auth.credentials_file.as_mut() {
        substitute_node_id(path, node_id);
    }
    let TlsSection { public, internal, peer } = tls;
    let (public_tls, clients_file) = match public {
        None => (None, None),
        Some(section) => {
            let (tls, clients) = validate_server_tls("tls.public", section)?;
            if tls.client_auth != ClientAuth::None && clients.is_none() {
                return Err(bad("tls.public.clients_file", "is required when client_auth is optional or required"));
            }
            if tls.client_auth == ClientAuth::None && clients.is_some() {
                return Err(bad("tls.public.clients_file", "needs client_auth = \"optional\" or \"required\""));
            }
            (Some(tls), clients)
        }
    };
    let internal_tls = match internal {
        None => None,
        Some(section) => {
            let (tls, clients) = validate_server_tls("tls.internal", section)?;
            if clients.is_some() {
                return Err(bad(
                    "tls.internal.clients_file",
                    "belongs to tls.public; the internal listener's certificates are in internal_auth.credentials_file",
                ));
            }
            Some(tls)
        }
    };
    let peer_tls = peer.map(|PeerTlsSection { cert_file, key_file, ca_file }| PeerTls { cert_file, key_file, ca_file });
    let InternalAuthSection { credentials_file, allow_anonymous } = auth;
    let secured = public_tls.is_some() || internal_tls.is_some() || credentials_file.is_some();
    if node_count > 1 && peer_tls.is_none() && secured {
        // Forwarded requests are authorized by the node that received them: the
        // peer listener must only take them from the cluster's own nodes.
        return Err(bad("tls.peer", "is required on a cluster whose client listeners use TLS or credentials"));
    }
    if credentials_file.is_none() && !allow_anonymous && !internal_addr.ip().is_loopback() {
        return Err(bad(
            "internal_auth.credentials_file",
            format!(
                "the internal listener {internal_addr} is reachable beyond loopback: give credentials, or set allow_anonymous = true"
            ),
        ));
    }
    if internal_tls.as_ref().is_some_and(|t| t.client_auth != ClientAuth::None) && credentials_file.is_none() {
        return Err(bad(
            "internal_auth.credentials_file",
            "is required when tls.internal asks for client certificates",
        ));
    }
    Ok(SecurityConfig { public_tls, internal_tls, peer_tls, clients_file, credentials_file })
}

fn validate_server_tls(
    section_name: &'static str,
    section: ServerTlsSection,
) -> Result<(ServerTls, Option<PathBuf>), ConfigError> {
    let ServerTlsSection { cert_file, key_file, client_auth, client_ca_file, clients_file } = section;
    if client_auth != ClientAuth::None && client_ca_file.is_none() {
        let field =
            if section_name == "tls.public" { "tls.public.client_ca_file" } else { "tls.internal.client_ca_file" };
        return Err(bad(field, "is required when client_auth is optional or required"));
    }
    Ok((ServerTls { cert_file, key_file, client_auth, client_ca_file }, clients_file))
}

/// Replaces `{node_id}` in `path`.
fn substitute_node_id(path: &mut PathBuf, node_id: u64) {
    if let Some(text) = path.to_str()
        && text.contains("{node_id}")
    {
        *path = PathBuf::from(text.replace("{node_id}", &node_id.to_string()));
    }
}

impl TlsSection {
    /// No listener is configured with TLS.
    pub fn is_empty(&self) -> bool {
        self.public.is_none() && self.internal.is_none() && self.peer.is_none()
    }

    /// Makes every relative path absolute against `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        self.for_each_path(|path| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        });
    }

    fn for_each_path(&mut self, mut visit: impl FnMut(&mut PathBuf)) {
        for server in [self.public.as_mut(), self.internal.as_mut()].into_iter().flatten() {
            visit(&mut server.cert_file);
            visit(&mut server.key_file);
            if let Some(path) = server.client_ca_file.as_mut() {
                visit(path);
            }
            if let Some(path) = server.clients_file.as_mut() {
                visit(path);
            }
        }
        if let Some(peer) = self.peer.as_mut() {
            visit(&mut peer.cert_file);
            visit(&mut peer.key_file);
            visit(&mut peer.ca_file);
        }
    }
}

impl InternalAuthSection {
    /// Makes the credentials path absolute against `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(path) = self.credentials_file.as_mut()
            && path.is_relative()
        {
            *path = base.join(&*path);
        }
    }
}
