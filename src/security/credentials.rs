//! SCRAM credentials: the users of `[[sasl.users]]` (salted at start-up,
//! their passwords kept nowhere else) and the users added at run time with
//! AlterUserScramCredentials, stored salted in
//! `<data_dir>/scram-credentials.toml`. A run-time credential wins over a
//! configured one of the same user and mechanism.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use super::scram::{Credential, MAX_ITERATIONS, MIN_ITERATIONS, Mechanism};
use crate::error::{Error, Result, io_err};

const FILE: &str = "scram-credentials.toml";

/// A user's credentials, by mechanism.
type UserCredentials = BTreeMap<Mechanism, Credential>;
/// An error code and its message.
type Refusal = (ResponseError, String);
/// DescribeUserScramCredentials for one user: (mechanism code, iterations) of each credential.
type Described = std::result::Result<Vec<(i8, i32)>, ResponseError>;

/// One AlterUserScramCredentials change.
#[derive(Debug, Clone)]
pub(crate) enum Alteration {
    Upsert {
        user: String,
        mechanism: i8,
        iterations: i32,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
    },
    Delete {
        user: String,
        mechanism: i8,
    },
}

impl Alteration {
    pub(crate) fn user(&self) -> &str {
        match self {
            Alteration::Upsert { user, .. } | Alteration::Delete { user, .. } => user,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredFile {
    #[serde(default)]
    credential: Vec<StoredCredential>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredCredential {
    user: String,
    mechanism: String,
    iterations: i32,
    salt: String,
    stored_key: String,
    server_key: String,
}

/// Every SCRAM credential the broker knows.
#[derive(Debug)]
pub(crate) struct Credentials {
    path: PathBuf,
    configured: BTreeMap<String, UserCredentials>,
    runtime: Mutex<BTreeMap<String, UserCredentials>>,
}

impl Credentials {
    /// Salts the configured users' passwords and reads the run-time users.
    pub(crate) fn open(data_dir: &Path, users: &[(String, String)]) -> Result<Credentials> {
        let mut configured: BTreeMap<String, UserCredentials> = BTreeMap::new();
        for (name, password) in users {
            let creds = configured.entry(name.clone()).or_default();
            for m in [Mechanism::Sha256, Mechanism::Sha512] {
                creds.insert(m, Credential::new(m, password, MIN_ITERATIONS));
            }
        }
        let path = data_dir.join(FILE);
        let mut runtime: BTreeMap<String, UserCredentials> = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: StoredFile = toml::from_str(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                for c in file.credential {
                    let bad =
                        || Error::Config(format!("{}: a malformed credential", path.display()));
                    let m = Mechanism::from_name(&c.mechanism).ok_or_else(bad)?;
                    let decode = |s: &str| B64.decode(s).map_err(|_| bad());
                    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&c.iterations) {
                        return Err(bad());
                    }
                    let credential = Credential {
                        salt: decode(&c.salt)?,
                        iterations: c.iterations,
                        stored_key: decode(&c.stored_key)?,
                        server_key: decode(&c.server_key)?,
                    };
                    runtime.entry(c.user).or_default().insert(m, credential);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        Ok(Credentials {
            path,
            configured,
            runtime: Mutex::new(runtime),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, UserCredentials>> {
        self.runtime.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `user`'s credential for `mechanism`.
    pub(crate) fn lookup(&self, user: &str, mechanism: Mechanism) -> Option<Credential> {
        if let Some(c) = self.lock().get(user).and_then(|u| u.get(&mechanism)) {
            return Some(c.clone());
        }
        self.configured.get(user)?.get(&mechanism).cloned()
    }

    /// SASL/PLAIN: whether `password` is `user`'s (checked against any of its credentials).
    pub(crate) fn check_password(&self, user: &str, password: &str) -> bool {
        // One credential is checked (one PBKDF2 run): the SCRAM-SHA-256 one if any.
        [Mechanism::Sha256, Mechanism::Sha512]
            .into_iter()
            .find_map(|m| Some((m, self.lookup(user, m)?)))
            .is_some_and(|(m, c)| c.matches(m, password))
    }

    /// DescribeUserScramCredentials: `users` (every user when `None`) with
    /// (mechanism code, iterations) of each credential; RESOURCE_NOT_FOUND
    /// for a user without any.
    pub(crate) fn describe(&self, users: Option<&[String]>) -> Vec<(String, Described)> {
        let runtime = self.lock();
        let infos = |user: &str| {
            let mut by_mechanism: BTreeMap<Mechanism, i32> = BTreeMap::new();
            for source in [self.configured.get(user), runtime.get(user)]
                .into_iter()
                .flatten()
            {
                for (m, c) in source {
                    by_mechanism.insert(*m, c.iterations);
                }
            }
            by_mechanism
                .into_iter()
                .map(|(m, i)| (m.code(), i))
                .collect::<Vec<_>>()
        };
        let names: Vec<String> = match users {
            Some(list) => list.to_vec(),
            None => {
                let mut all: Vec<String> = self
                    .configured
                    .keys()
                    .chain(runtime.keys())
                    .cloned()
                    .collect();
                all.sort();
                all.dedup();
                all
            }
        };
        names
            .into_iter()
            .map(|user| {
                let found = infos(&user);
                let result = if found.is_empty() {
                    Err(ResponseError::ResourceNotFound)
                } else {
                    Ok(found)
                };
                (user, result)
            })
            .collect()
    }

    /// AlterUserScramCredentials: each user's changes are applied together
    /// or refused together; returns one result per user, in first-seen order.
    pub(crate) fn alter(
        &self,
        changes: &[Alteration],
    ) -> Vec<(String, std::result::Result<(), Refusal>)> {
        let mut users: Vec<String> = Vec::new();
        for c in changes {
            if !users.iter().any(|u| u == c.user()) {
                users.push(c.user().to_string());
            }
        }
        let mut runtime = self.lock();
        let mut next = runtime.clone();
        let mut results = Vec::new();
        for user in users {
            let mine: Vec<&Alteration> = changes.iter().filter(|c| c.user() == user).collect();
            let result = apply(&mut next, &self.configured, &user, &mine);
            results.push((user, result));
        }
        if next != *runtime {
            let written = match self.write(&next) {
                Ok(durable) => {
                    // In place: kept, as a restart reads it, though perhaps not durable.
                    *runtime = next;
                    durable
                }
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                let failed = (ResponseError::UnknownServerError, e.to_string());
                return results
                    .into_iter()
                    .map(|(u, r)| (u, r.and(Err(failed.clone()))))
                    .collect();
            }
        }
        results
    }

    fn write(&self, runtime: &BTreeMap<String, UserCredentials>) -> Result<crate::util::Durable> {
        let file = StoredFile {
            credential: runtime
                .iter()
                .flat_map(|(user, creds)| {
                    creds.iter().map(move |(m, c)| StoredCredential {
                        user: user.clone(),
                        mechanism: m.name().to_string(),
                        iterations: c.iterations,
                        salt: B64.encode(&c.salt),
                        stored_key: B64.encode(&c.stored_key),
                        server_key: B64.encode(&c.server_key),
                    })
                })
                .collect(),
        };
        let text = toml::to_string(&file).map_err(|e| Error::Config(e.to_string()))?;
        crate::util::write_atomically(&self.path, text.as_bytes())
    }
}

/// One user's changes, checked as Kafka does, applied to `runtime` when all pass.
fn apply(
    runtime: &mut BTreeMap<String, UserCredentials>,
    configured: &BTreeMap<String, UserCredentials>,
    user: &str,
    changes: &[&Alteration],
) -> std::result::Result<(), Refusal> {
    if user.is_empty() {
        return Err(unacceptable("Username must not be empty"));
    }
    let mechanisms = mechanisms_once(changes)?;
    let in_file = configured.get(user);
    let mut mine = runtime.get(user).cloned().unwrap_or_default();
    for (change, m) in changes.iter().zip(mechanisms) {
        match change {
            Alteration::Upsert {
                iterations,
                salt,
                salted_password,
                ..
            } => {
                if in_file.is_some() {
                    return Err(unacceptable(IN_THE_FILE));
                }
                let credential = salted(m, *iterations, salt, salted_password)?;
                mine.insert(m, credential);
            }
            Alteration::Delete { .. } => {
                let from_file = in_file.is_some_and(|u| u.contains_key(&m));
                if mine.remove(&m).is_none() && !from_file {
                    return Err((
                        ResponseError::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist".into(),
                    ));
                }
                if from_file {
                    return Err(unacceptable(IN_THE_FILE));
                }
            }
        }
    }
    if mine.is_empty() {
        runtime.remove(user);
    } else {
        runtime.insert(user.to_string(), mine);
    }
    Ok(())
}

/// The credential an upsert gives, if Kafka would accept its parameters.
fn salted(
    m: Mechanism,
    iterations: i32,
    salt: &[u8],
    salted_password: &[u8],
) -> std::result::Result<Credential, Refusal> {
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(unacceptable("Iterations must be in [4096, 16384]"));
    }
    if salt.is_empty() || salted_password.is_empty() {
        return Err(unacceptable("Salt and salted password must not be empty"));
    }
    Ok(Credential::from_salted(
        m,
        salted_password,
        salt.to_vec(),
        iterations,
    ))
}

/// Why a user of the configuration file cannot be changed by a request.
const IN_THE_FILE: &str = "A user of the configuration file is changed in the file";

fn unacceptable(message: &str) -> Refusal {
    (ResponseError::UnacceptableCredential, message.to_string())
}

/// The mechanism of each change, in order: each known, and none twice.
fn mechanisms_once(changes: &[&Alteration]) -> std::result::Result<Vec<Mechanism>, Refusal> {
    let mut mechanisms = Vec::with_capacity(changes.len());
    for c in changes {
        let (Alteration::Upsert { mechanism, .. } | Alteration::Delete { mechanism, .. }) = c;
        let Some(m) = Mechanism::from_code(*mechanism) else {
            return Err((
                ResponseError::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism".into(),
            ));
        };
        if mechanisms.contains(&m) {
            return Err((
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request".into(),
            ));
        }
        mechanisms.push(m);
    }
    Ok(mechanisms)
}

#[cfg(test)]
mod tests;
