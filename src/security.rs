//! Listeners and who is on the other end: Kafka's security protocols
//! (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), TLS with optional client
//! certificates ([`tls`]), SASL authentication ([`sasl`]) with PLAIN and
//! SCRAM ([`scram`]) against the broker's users ([`credentials`]).

pub(crate) mod credentials;
pub(crate) mod sasl;
pub(crate) mod scram;
pub mod tls;

pub use tls::TlsConfig;

use serde::Deserialize;

/// A listener's security protocol (Kafka's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Clients must authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// The connection is TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// Parses `PROTOCOL://host:port` into the protocol and `host:port`.
pub fn parse_listener(spec: &str) -> Result<(SecurityProtocol, String), String> {
    let (name, address) = spec
        .split_once("://")
        .ok_or_else(|| format!("listener {spec:?} is not PROTOCOL://host:port"))?;
    let protocol = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ]
    .into_iter()
    .find(|p| p.name().eq_ignore_ascii_case(name))
    .ok_or_else(|| {
        format!("listener {spec:?}: {name} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    })?;
    crate::config::split_host_port(address).map_err(|e| format!("listener {spec:?}: {e}"))?;
    Ok((protocol, address.to_string()))
}

/// The `[sasl]` table: mechanisms offered, KIP-368 re-authentication, users.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SaslConfig {
    /// `sasl.enabled.mechanisms`: of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.
    pub mechanisms: Vec<String>,
    /// `connections.max.reauth.ms`: a SASL session lasts this long before the
    /// client must authenticate again; 0 means forever.
    pub connections_max_reauth_ms: i64,
    /// Users who log in with every enabled mechanism.
    pub users: Vec<SaslUser>,
    /// `sasl.server.max.receive.size`: the largest frame a client may send
    /// before it has logged in; a larger one closes the connection.
    pub max_receive_size: u32,
}

/// One configured user.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslUser {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for SaslUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a password in a log line.
        f.debug_struct("SaslUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Default for SaslConfig {
    fn default() -> Self {
        SaslConfig {
            mechanisms: sasl::MECHANISMS.iter().map(|m| m.to_string()).collect(),
            connections_max_reauth_ms: 0,
            users: Vec::new(),
            max_receive_size: 524_288,
        }
    }
}

impl SaslConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(m) = self
            .mechanisms
            .iter()
            .find(|m| !sasl::MECHANISMS.contains(&m.as_str()))
        {
            return Err(format!(
                "sasl.mechanisms: {m:?} is not one of {}",
                sasl::MECHANISMS.join(", ")
            ));
        }
        if self.connections_max_reauth_ms < 0 {
            return Err("sasl.connections_max_reauth_ms must be >= 0".into());
        }
        if self
            .users
            .iter()
            .any(|u| u.name.is_empty() || u.password.is_empty())
        {
            return Err("sasl.users: every user needs a name and a password".into());
        }
        Ok(())
    }
}
