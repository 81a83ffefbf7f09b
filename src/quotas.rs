//! Client quotas (DescribeClientQuotas, AlterClientQuotas): stored in
//! `<data_dir>/client-quotas.toml` and reported as Kafka reports them. They
//! are kept, not enforced: no client is throttled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};

const FILE: &str = "client-quotas.toml";

/// Entity types and the quota keys each combination may carry (Kafka's).
const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
const IP: &str = "ip";
const CLIENT_KEYS: [&str; 4] = [
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
];
const IP_KEYS: [&str; 1] = ["connection_creation_rate"];

/// One entity: (entity type, name; `None` is the type's default), sorted by type.
pub(crate) type Entity = Vec<(String, Option<String>)>;
/// An entity's quotas: key → value.
pub(crate) type Values = BTreeMap<String, f64>;
/// An error code and its message.
type Refusal = (ResponseError, String);

/// How a DescribeClientQuotas filter component matches a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// Exactly this name (match type 0).
    Exact(String),
    /// The type's default entity (match type 1).
    Default,
    /// Any name but the default (match type 2).
    Specified,
}

/// An alteration of one key: set to a value, or remove.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Op {
    pub key: String,
    pub value: Option<f64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct QuotasFile {
    #[serde(default)]
    quota: Vec<StoredQuota>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredQuota {
    entity: Vec<StoredEntity>,
    values: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredEntity {
    #[serde(rename = "type")]
    entity_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// Every client quota of the broker.
#[derive(Debug)]
pub(crate) struct ClientQuotas {
    path: PathBuf,
    quotas: Mutex<BTreeMap<Entity, Values>>,
}

impl ClientQuotas {
    /// Reads `<data_dir>/client-quotas.toml` (none yet: no quotas).
    pub(crate) fn open(data_dir: &Path) -> Result<ClientQuotas> {
        let path = data_dir.join(FILE);
        let mut quotas = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: QuotasFile = toml::from_str(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                for q in file.quota {
                    let mut entity: Entity = q
                        .entity
                        .into_iter()
                        .map(|e| (e.entity_type, e.name))
                        .collect();
                    entity.sort();
                    quotas.insert(entity, q.values);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        Ok(ClientQuotas {
            path,
            quotas: Mutex::new(quotas),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Entity, Values>> {
        self.quotas.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// DescribeClientQuotas: entities matching every component of `filter`
    /// (and, when `strict`, of no other type).
    pub(crate) fn describe(
        &self,
        filter: &[(String, Match)],
        strict: bool,
    ) -> std::result::Result<Vec<(Entity, Values)>, Refusal> {
        for (t, _) in filter {
            check_type(t)?;
        }
        let quotas = self.lock();
        Ok(quotas
            .iter()
            .filter(|(entity, _)| {
                let matches = filter.iter().all(|(t, m)| {
                    entity.iter().any(|(et, name)| {
                        et == t
                            && match m {
                                Match::Exact(n) => name.as_deref() == Some(n.as_str()),
                                Match::Default => name.is_none(),
                                Match::Specified => name.is_some(),
                            }
                    })
                });
                matches && (!strict || entity.len() == filter.len())
            })
            .map(|(e, v)| (e.clone(), v.clone()))
            .collect())
    }

    /// AlterClientQuotas for one entity; with `validate_only` nothing changes.
    pub(crate) fn alter(
        &self,
        mut entity: Entity,
        ops: &[Op],
        validate_only: bool,
    ) -> std::result::Result<(), Refusal> {
        check_entity(&entity)?;
        let allowed: &[&str] = if entity.iter().any(|(t, _)| t == IP) {
            &IP_KEYS
        } else {
            &CLIENT_KEYS
        };
        for op in ops {
            if !allowed.contains(&op.key.as_str()) {
                return Err(invalid(format!("Invalid configuration key {}", op.key)));
            }
            if op.value.is_some_and(|v| !v.is_finite() || v <= 0.0) {
                return Err(invalid(format!(
                    "Quota {} must be a positive number",
                    op.key
                )));
            }
        }
        if validate_only {
            return Ok(());
        }
        entity.sort();
        let mut quotas = self.lock();
        let mut next = quotas.clone();
        let values = next.entry(entity.clone()).or_default();
        for op in ops {
            match op.value {
                Some(v) => values.insert(op.key.clone(), v),
                None => values.remove(&op.key),
            };
        }
        if values.is_empty() {
            next.remove(&entity);
        }
        let failed = |e: Error| (ResponseError::UnknownServerError, e.to_string());
        let durable = self.write(&next).map_err(failed)?;
        *quotas = next;
        durable.map_err(failed)
    }

    fn write(&self, quotas: &BTreeMap<Entity, Values>) -> Result<crate::util::Durable> {
        let file = QuotasFile {
            quota: quotas
                .iter()
                .map(|(entity, values)| StoredQuota {
                    entity: entity
                        .iter()
                        .map(|(t, n)| StoredEntity {
                            entity_type: t.clone(),
                            name: n.clone(),
                        })
                        .collect(),
                    values: values.clone(),
                })
                .collect(),
        };
        let text = toml::to_string(&file).map_err(|e| Error::Config(e.to_string()))?;
        crate::util::write_atomically(&self.path, text.as_bytes())
    }
}

fn invalid(message: String) -> Refusal {
    (ResponseError::InvalidRequest, message)
}

fn check_type(t: &str) -> std::result::Result<(), Refusal> {
    if [USER, CLIENT_ID, IP].contains(&t) {
        Ok(())
    } else {
        Err(invalid(format!("Unexpected quota entity type {t}")))
    }
}

/// Kafka's valid entities: user, client-id, user and client-id, or ip alone.
fn check_entity(entity: &Entity) -> std::result::Result<(), Refusal> {
    let mut types: Vec<&str> = Vec::new();
    for (t, _) in entity {
        check_type(t)?;
        if types.contains(&t.as_str()) {
            return Err(invalid(format!("Duplicate quota entity type {t}")));
        }
        types.push(t);
    }
    if types.is_empty() || (types.contains(&IP) && types.len() > 1) {
        return Err(invalid(format!("Invalid quota entity {entity:?}")));
    }
    Ok(())
}
