//! SCRAM (RFC 5802, RFC 7677) for SCRAM-SHA-256 and SCRAM-SHA-512: the
//! stored credential, and the server side of the three-message exchange.
//! The primitives (HMAC, SHA-2, PBKDF2) come from the RustCrypto crates.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The longest client-first message accepted (user name and nonce).
const MAX_FIRST_MESSAGE: usize = 1024;
/// The longest client-final message accepted, beyond the nonce.
const MAX_FINAL_MESSAGE: usize = 1024;

/// Kafka's lowest and highest iteration counts for a SCRAM credential.
pub(crate) const MIN_ITERATIONS: i32 = 4096;
pub(crate) const MAX_ITERATIONS: i32 = 16384;

/// A SCRAM mechanism; the codes are Kafka's (AlterUserScramCredentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Mechanism> {
        [Mechanism::Sha256, Mechanism::Sha512]
            .into_iter()
            .find(|m| m.name() == name)
    }

    pub(crate) fn code(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    pub(crate) fn from_code(code: i8) -> Option<Mechanism> {
        match code {
            1 => Some(Mechanism::Sha256),
            2 => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key)
                    .expect("HMAC should take a key of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Mechanism::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key)
                    .expect("HMAC should take a key of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// Hi(password, salt, iterations): PBKDF2 with this mechanism's HMAC.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            Mechanism::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

/// What the broker keeps of a SCRAM password: never the password itself.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credential {
    pub(crate) salt: Vec<u8>,
    pub(crate) iterations: i32,
    pub(crate) stored_key: Vec<u8>,
    pub(crate) server_key: Vec<u8>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys would let anyone pose as the server: never printed.
        f.debug_struct("Credential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The credential of a salted password (as AlterUserScramCredentials sends it).
    pub(crate) fn from_salted(
        m: Mechanism,
        salted: &[u8],
        salt: Vec<u8>,
        iterations: i32,
    ) -> Credential {
        let client_key = m.hmac(salted, b"Client Key");
        Credential {
            salt,
            iterations,
            stored_key: m.hash(&client_key),
            server_key: m.hmac(salted, b"Server Key"),
        }
    }

    /// A new credential for `password`, with a fresh random salt.
    pub(crate) fn new(m: Mechanism, password: &str, iterations: i32) -> Credential {
        let salt = random_bytes(24);
        let salted = m.salted_password(password.as_bytes(), &salt, iterations.max(1) as u32);
        Credential::from_salted(m, &salted, salt, iterations)
    }

    /// Whether `password` is the one this credential was made from (SASL/PLAIN).
    pub(crate) fn matches(&self, m: Mechanism, password: &str) -> bool {
        let salted = m.salted_password(
            password.as_bytes(),
            &self.salt,
            self.iterations.max(1) as u32,
        );
        let candidate = Credential::from_salted(m, &salted, self.salt.clone(), self.iterations);
        constant_time_eq(&candidate.stored_key, &self.stored_key)
    }
}

/// `n` bytes from the operating system's random source.
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    if getrandom::fill(&mut out).is_err() {
        // No OS randomness: fall back on a v4 UUID's (still unpredictable) bytes.
        for (i, b) in out.iter_mut().enumerate() {
            *b = uuid::Uuid::new_v4().as_bytes()[i % 16];
        }
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The server's side of one SCRAM exchange.
#[derive(Debug)]
pub(crate) enum Exchange {
    /// The client-first message is expected.
    Start(Mechanism),
    /// The server-first message was sent; the client-final one is expected.
    Challenged(Challenge),
}

/// What the server said in its first message, and to whom.
#[derive(Debug)]
pub(crate) struct Challenge {
    mechanism: Mechanism,
    user: String,
    credential: Credential,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// What one step of the exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send these bytes and wait for the next message.
    Continue(Vec<u8>),
    /// Authenticated as this user; send these bytes (server-final).
    Done(String, Vec<u8>),
    /// Refused, with why (for the log, never the client's secrets).
    Failed(String),
}

impl Exchange {
    /// Handles the next client message. `lookup` finds a user's credential.
    pub(crate) fn step(
        &mut self,
        message: &[u8],
        lookup: impl Fn(&str, Mechanism) -> Option<Credential>,
    ) -> Step {
        let Ok(text) = std::str::from_utf8(message) else {
            return Step::Failed("the SCRAM message is not UTF-8".into());
        };
        match self {
            Exchange::Start(mechanism) => match Challenge::new(*mechanism, text, lookup) {
                Ok(challenge) => {
                    let reply = challenge.server_first.clone().into_bytes();
                    *self = Exchange::Challenged(challenge);
                    Step::Continue(reply)
                }
                Err(why) => Step::Failed(why),
            },
            Exchange::Challenged(challenge) => match challenge.verify(text) {
                Ok(reply) => Step::Done(challenge.user.clone(), reply),
                Err(why) => Step::Failed(why),
            },
        }
    }
}

impl Challenge {
    /// The answer to the client-first message `text`: a nonce of the
    /// client's extended by ours, and the user's salt and iterations.
    fn new(
        mechanism: Mechanism,
        text: &str,
        lookup: impl Fn(&str, Mechanism) -> Option<Credential>,
    ) -> Result<Challenge, String> {
        // gs2-header "n,,": no channel binding and no authorization id.
        let bare = text.strip_prefix("n,,").ok_or("unsupported GS2 header")?;
        if bare.len() > MAX_FIRST_MESSAGE {
            return Err("client-first message too long".into());
        }
        let attrs = attributes(bare);
        let (Some(user), Some(client_nonce)) = (attrs.get("n"), attrs.get("r")) else {
            return Err("client-first message without n= or r=".into());
        };
        let user = user.replace("=2C", ",").replace("=3D", "=");
        let credential = lookup(&user, mechanism)
            .ok_or_else(|| format!("no {} credential for user {user:?}", mechanism.name()))?;
        let nonce = format!("{client_nonce}{}", B64.encode(random_bytes(18)));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        Ok(Challenge {
            mechanism,
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
        })
    }

    /// Checks the client-final message `text`: our nonce, no channel
    /// binding, and a proof of the password. Gives the server-final message.
    fn verify(&self, text: &str) -> Result<Vec<u8>, String> {
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or("client-final message without a proof")?;
        if text.len() > MAX_FINAL_MESSAGE + self.nonce.len() {
            return Err("client-final message too long".into());
        }
        let attrs = attributes(without_proof);
        if attrs.get("r") != Some(&self.nonce) {
            return Err("the nonce does not match".into());
        }
        // "biws" is base64 of "n,,": no channel binding, as the GS2 header said.
        if attrs.get("c").map(String::as_str) != Some("biws") {
            return Err("unexpected channel binding".into());
        }
        let proof = B64.decode(proof).map_err(|_| "the proof is not base64")?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let (mechanism, credential) = (self.mechanism, &self.credential);
        let signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err("the proof has the wrong length".into());
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if !constant_time_eq(&mechanism.hash(&client_key), &credential.stored_key) {
            return Err(format!(
                "wrong password for user {:?}",
                super::sasl::shorten(&self.user)
            ));
        }
        let server_signature = mechanism.hmac(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// `k=v` attributes of a SCRAM message.
fn attributes(message: &str) -> std::collections::HashMap<String, String> {
    message
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests;
