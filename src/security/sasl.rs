//! One connection's SASL authentication (SaslHandshake, then
//! SaslAuthenticate until done): PLAIN or SCRAM-SHA-256/512 against
//! [`Credentials`]. On a SASL listener nothing but ApiVersions, SaslHandshake
//! and SaslAuthenticate is served before it succeeds; with
//! `connections_max_reauth_ms` (KIP-368) the client must authenticate again
//! before its session lifetime runs out.

use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;

use super::credentials::Credentials;
use super::scram::{Exchange, Mechanism, Step};

/// The principal of a connection that has not authenticated (Kafka's).
pub(crate) const ANONYMOUS: &str = "User:ANONYMOUS";

/// The mechanisms Sluice offers.
pub(crate) const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

#[derive(Debug)]
enum State {
    /// SaslHandshake is expected.
    Start,
    /// PLAIN was chosen: one SaslAuthenticate carries the credentials.
    Plain,
    /// A SCRAM exchange is under way.
    Scram(Exchange),
}

/// The SASL side of one connection.
#[derive(Debug)]
pub(crate) struct Auth {
    /// This connection came in on a SASL listener.
    required: bool,
    state: State,
    /// "User:<name>" once authenticated; [`ANONYMOUS`] before.
    principal: String,
    authenticated: bool,
    /// KIP-368: the client must authenticate again before this.
    expires: Option<Instant>,
    /// SaslHandshake v0: the tokens come as bare frames, without a request header.
    raw_tokens: bool,
    /// The connection closes once the current answer is written.
    closing: bool,
}

impl Auth {
    pub(crate) fn new(required: bool) -> Auth {
        Auth {
            required,
            state: State::Start,
            principal: ANONYMOUS.to_string(),
            authenticated: false,
            expires: None,
            raw_tokens: false,
            closing: false,
        }
    }

    /// An SSL connection with a verified client certificate is that
    /// certificate's subject (a SASL login on SASL_SSL replaces it).
    pub(crate) fn set_certificate_principal(&mut self, principal: String) {
        self.principal = principal;
    }

    /// The authenticated principal ([`ANONYMOUS`] on a plain listener).
    pub(crate) fn principal(&self) -> &str {
        &self.principal
    }

    /// Whether `api` may be served now: on a SASL listener only the SASL
    /// APIs (and ApiVersions) before authentication or after its lifetime.
    pub(crate) fn allows(&self, api: ApiKey) -> bool {
        if matches!(
            api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) {
            return true;
        }
        if !self.required {
            return true;
        }
        self.authenticated && self.expires.is_none_or(|e| Instant::now() < e)
    }

    /// A SASL listener's connection that has not logged in: its frames are
    /// held to `sasl.max_receive_size`.
    pub(crate) fn logged_out(&self) -> bool {
        self.required && !self.authenticated
    }

    /// True when the next frame is a bare SASL token (after SaslHandshake v0).
    pub(crate) fn expects_raw_token(&self) -> bool {
        self.raw_tokens && !matches!(self.state, State::Start)
    }

    /// The connection must close after the answer now being sent.
    pub(crate) fn closing(&self) -> bool {
        self.closing
    }

    /// SaslHandshake: picks `mechanism` if it is enabled; `version` 0 means
    /// bare tokens follow.
    pub(crate) fn handshake(
        &mut self,
        mechanism: &str,
        enabled: &[String],
        version: i16,
    ) -> Result<(), ResponseError> {
        if !self.required {
            return Err(ResponseError::IllegalSaslState);
        }
        if !matches!(self.state, State::Start) {
            self.closing = true;
            return Err(ResponseError::IllegalSaslState);
        }
        if !enabled.iter().any(|m| m == mechanism) {
            return Err(ResponseError::UnsupportedSaslMechanism);
        }
        self.state = match Mechanism::from_name(mechanism) {
            Some(m) => State::Scram(Exchange::Start(m)),
            None => State::Plain,
        };
        self.raw_tokens = version == 0;
        Ok(())
    }

    /// SaslAuthenticate: one step. On success returns the bytes to send and,
    /// once authenticated, the session lifetime (0: no re-authentication).
    /// On failure the connection closes after the answer.
    pub(crate) fn authenticate(
        &mut self,
        token: &[u8],
        credentials: &Credentials,
        reauth_ms: i64,
    ) -> Result<(Vec<u8>, Option<i64>), (ResponseError, String)> {
        let step = match &mut self.state {
            State::Start => {
                // On a SASL listener the exchange is broken: give up on the connection.
                self.closing = self.required;
                return Err((
                    ResponseError::IllegalSaslState,
                    "SaslAuthenticate before SaslHandshake".into(),
                ));
            }
            State::Plain => plain(token, credentials),
            State::Scram(exchange) => exchange.step(token, |user, m| credentials.lookup(user, m)),
        };
        match step {
            Step::Continue(reply) => Ok((reply, None)),
            Step::Done(user, reply) => {
                let principal = format!("User:{user}");
                if self.authenticated && principal != self.principal {
                    // KIP-368: re-authentication may not change who the client is.
                    self.closing = true;
                    return Err((
                        ResponseError::SaslAuthenticationFailed,
                        "Re-authentication must keep the same principal".into(),
                    ));
                }
                self.principal = principal;
                self.authenticated = true;
                self.state = State::Start;
                self.raw_tokens = false;
                self.expires = (reauth_ms > 0)
                    .then(|| Instant::now() + Duration::from_millis(reauth_ms as u64));
                tracing::debug!(principal = %self.principal, "SASL authentication succeeded");
                Ok((reply, Some(reauth_ms.max(0))))
            }
            Step::Failed(why) => {
                tracing::info!(reason = %why, "SASL authentication failed");
                self.closing = true;
                Err((
                    ResponseError::SaslAuthenticationFailed,
                    "Authentication failed: invalid credentials".into(),
                ))
            }
        }
    }
}

/// SASL/PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`.
fn plain(token: &[u8], credentials: &Credentials) -> Step {
    let mut parts = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Step::Failed("malformed PLAIN token".into());
    };
    let (Ok(authzid), Ok(user), Ok(password)) = (
        std::str::from_utf8(authzid),
        std::str::from_utf8(user),
        std::str::from_utf8(password),
    ) else {
        return Step::Failed("PLAIN token is not UTF-8".into());
    };
    if !authzid.is_empty() && authzid != user {
        return Step::Failed("PLAIN authorization id differs from the user".into());
    }
    if credentials.check_password(user, password) {
        Step::Done(user.to_string(), Vec::new())
    } else {
        Step::Failed(format!("wrong password or unknown user {user:?}"))
    }
}

/// A client-supplied name cut for a log line.
pub(crate) fn shorten(name: &str) -> &str {
    match name.char_indices().nth(64) {
        Some((i, _)) => &name[..i],
        None => name,
    }
}
