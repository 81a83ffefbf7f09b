//! ACLs (CreateAcls, DescribeAcls, DeleteAcls): Kafka's bindings, filters
//! and authorization rules, stored in `<data_dir>/acls.toml`.
//!
//! A binding allows or denies one principal, from one host (or `*`), one
//! operation on resources named literally (or `*`) or by prefix.
//! [`Acls::authorize`] is Kafka's `StandardAuthorizer`: a matching DENY wins,
//! otherwise a matching ALLOW is needed; ALL grants every operation, and READ,
//! WRITE, DELETE or ALTER imply DESCRIBE, ALTER_CONFIGS implies
//! DESCRIBE_CONFIGS.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};

const FILE: &str = "acls.toml";

/// Kafka's resource type codes.
pub(crate) mod resource {
    pub(crate) const ANY: i8 = 1;
    pub(crate) const TOPIC: i8 = 2;
    pub(crate) const GROUP: i8 = 3;
    pub(crate) const CLUSTER: i8 = 4;
    pub(crate) const TRANSACTIONAL_ID: i8 = 5;
    pub(crate) const USER: i8 = 7;
}

/// Kafka's pattern type codes.
pub(crate) mod pattern {
    pub(crate) const ANY: i8 = 1;
    pub(crate) const MATCH: i8 = 2;
    pub(crate) const LITERAL: i8 = 3;
    pub(crate) const PREFIXED: i8 = 4;
}

/// Kafka's operation codes.
pub(crate) mod op {
    pub(crate) const ANY: i8 = 1;
    pub(crate) const ALL: i8 = 2;
    pub(crate) const READ: i8 = 3;
    pub(crate) const WRITE: i8 = 4;
    pub(crate) const CREATE: i8 = 5;
    pub(crate) const DELETE: i8 = 6;
    pub(crate) const ALTER: i8 = 7;
    pub(crate) const DESCRIBE: i8 = 8;
    pub(crate) const CLUSTER_ACTION: i8 = 9;
    pub(crate) const DESCRIBE_CONFIGS: i8 = 10;
    pub(crate) const ALTER_CONFIGS: i8 = 11;
    pub(crate) const IDEMPOTENT_WRITE: i8 = 12;
    /// The highest operation code (TWO_PHASE_COMMIT).
    pub(crate) const LAST: i8 = 15;
}

/// Kafka's permission type codes.
pub(crate) mod permission {
    pub(crate) const ANY: i8 = 1;
    pub(crate) const DENY: i8 = 2;
    pub(crate) const ALLOW: i8 = 3;
}

/// Every operation a topic allows, as KIP-430's bit set (1 << operation
/// code): READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS. Reported while no authorizer restricts anything.
pub(crate) const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Every operation a group allows: READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
pub(crate) const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);
/// Every operation the cluster allows: CREATE, ALTER, DESCRIBE,
/// CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub(crate) const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// The name of the one cluster resource.
pub(crate) const CLUSTER_NAME: &str = "kafka-cluster";
/// The literal resource name and host that match every name and host.
pub(crate) const WILDCARD: &str = "*";

/// One ACL binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Binding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// A DescribeAcls or DeleteAcls filter (`None` fields match anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl Filter {
    /// Kafka's `AclBindingFilter.matches`.
    pub(crate) fn matches(&self, b: &Binding) -> bool {
        let resource_type =
            self.resource_type == resource::ANY || self.resource_type == b.resource_type;
        let name = match (self.pattern_type, &self.resource_name) {
            (pattern::ANY, None) => true,
            (pattern::ANY, Some(n)) => *n == b.resource_name,
            (pattern::MATCH, None) => true,
            (pattern::MATCH, Some(n)) => match b.pattern_type {
                pattern::LITERAL => b.resource_name == *n || b.resource_name == WILDCARD,
                pattern::PREFIXED => n.starts_with(&b.resource_name),
                _ => false,
            },
            (p, n) => p == b.pattern_type && n.as_ref().is_none_or(|n| *n == b.resource_name),
        };
        let principal = self.principal.as_ref().is_none_or(|p| *p == b.principal);
        let host = self.host.as_ref().is_none_or(|h| *h == b.host);
        let operation = self.operation == op::ANY || self.operation == b.operation;
        let permission = self.permission == permission::ANY || self.permission == b.permission;
        resource_type && name && principal && host && operation && permission
    }

    /// A filter must name known codes (ANY allowed); INVALID_REQUEST otherwise.
    pub(crate) fn validate(&self) -> std::result::Result<(), (ResponseError, String)> {
        let known = (resource::ANY..=resource::USER).contains(&self.resource_type)
            && (pattern::ANY..=pattern::PREFIXED).contains(&self.pattern_type)
            && (op::ANY..=op::LAST).contains(&self.operation)
            && (permission::ANY..=permission::ALLOW).contains(&self.permission);
        if known {
            Ok(())
        } else {
            Err((ResponseError::InvalidRequest, "Invalid ACL filter".into()))
        }
    }
}

impl Binding {
    /// Kafka's checks of a new binding: concrete types, a `Type:name`
    /// principal, a cluster named `kafka-cluster`.
    pub(crate) fn validate(&self) -> std::result::Result<(), (ResponseError, String)> {
        let invalid = |m: &str| Err((ResponseError::InvalidRequest, m.to_string()));
        if !(resource::TOPIC..=resource::USER).contains(&self.resource_type) {
            return invalid("Invalid resource type");
        }
        if ![pattern::LITERAL, pattern::PREFIXED].contains(&self.pattern_type) {
            return invalid("Invalid pattern type: must be LITERAL or PREFIXED");
        }
        if !(op::ALL..=op::LAST).contains(&self.operation) {
            return invalid("Invalid operation");
        }
        if ![permission::ALLOW, permission::DENY].contains(&self.permission) {
            return invalid("Invalid permission type");
        }
        if self.resource_name.is_empty() {
            return invalid("Resource name must not be empty");
        }
        if self.resource_type == resource::CLUSTER && self.resource_name != CLUSTER_NAME {
            return invalid("The only valid name for the CLUSTER resource is kafka-cluster");
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => return invalid("Principal must be of the form Type:name"),
        }
        if self.host.is_empty() {
            return invalid("Host must not be empty");
        }
        Ok(())
    }

    /// Whether this binding covers `operation` (ALL covers everything; READ,
    /// WRITE, DELETE, ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS).
    fn covers(&self, operation: i8) -> bool {
        if self.operation == operation || self.operation == op::ALL {
            return true;
        }
        self.permission == permission::ALLOW
            && match operation {
                op::DESCRIBE => {
                    [op::READ, op::WRITE, op::DELETE, op::ALTER].contains(&self.operation)
                }
                op::DESCRIBE_CONFIGS => self.operation == op::ALTER_CONFIGS,
                _ => false,
            }
    }

    fn names(&self, resource_type: i8, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                pattern::LITERAL => self.resource_name == name || self.resource_name == WILDCARD,
                pattern::PREFIXED => name.starts_with(&self.resource_name),
                _ => false,
            }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AclsFile {
    #[serde(default)]
    acl: Vec<Binding>,
}

/// Every ACL binding of the broker.
#[derive(Debug)]
pub(crate) struct Acls {
    path: PathBuf,
    bindings: Mutex<BTreeSet<Binding>>,
    /// With the authorizer on: the super users (who may do everything).
    /// `None`: every request is allowed, as on a Kafka without an authorizer.
    enforced: Option<BTreeSet<String>>,
}

impl Acls {
    /// Reads `<data_dir>/acls.toml` (none yet: no bindings).
    pub(crate) fn open(data_dir: &Path) -> Result<Acls> {
        let path = data_dir.join(FILE);
        let bindings = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: AclsFile = toml::from_str(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                file.acl.into_iter().collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        Ok(Acls {
            path,
            bindings: Mutex::new(bindings),
            enforced: None,
        })
    }

    /// Turns the authorizer on: requests need a binding that allows them,
    /// except from `super_users` ("User:name" each).
    pub(crate) fn enforce(mut self, super_users: &[String]) -> Acls {
        self.enforced = Some(super_users.iter().cloned().collect());
        self
    }

    fn lock(&self) -> MutexGuard<'_, BTreeSet<Binding>> {
        self.bindings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// CreateAcls: each valid binding is added (adding one twice is no error).
    pub(crate) fn create(
        &self,
        new: Vec<Binding>,
    ) -> Vec<std::result::Result<(), (ResponseError, String)>> {
        let results: Vec<_> = new.iter().map(Binding::validate).collect();
        let mut bindings = self.lock();
        let mut next = bindings.clone();
        next.extend(
            new.into_iter()
                .zip(&results)
                .filter(|(_, r)| r.is_ok())
                .map(|(b, _)| b),
        );
        if next.len() == bindings.len() {
            return results;
        }
        let written = match self.write(&next) {
            Ok(durable) => {
                // In place: kept, as a restart reads it, though perhaps not durable.
                *bindings = next;
                durable
            }
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            let failed = (ResponseError::UnknownServerError, e.to_string());
            return results
                .into_iter()
                .map(|r| r.and(Err(failed.clone())))
                .collect();
        }
        results
    }

    /// DescribeAcls: every binding `filter` matches.
    pub(crate) fn describe(&self, filter: &Filter) -> Vec<Binding> {
        self.lock()
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// DeleteAcls: removes what each filter matches; returns the removed
    /// bindings per filter.
    pub(crate) fn delete(&self, filters: &[Filter]) -> Result<Vec<Vec<Binding>>> {
        let mut bindings = self.lock();
        let removed: Vec<Vec<Binding>> = filters
            .iter()
            .map(|f| bindings.iter().filter(|b| f.matches(b)).cloned().collect())
            .collect();
        let next: BTreeSet<Binding> = bindings
            .iter()
            .filter(|b| !filters.iter().any(|f| f.matches(b)))
            .cloned()
            .collect();
        if next.len() != bindings.len() {
            let durable = self.write(&next)?;
            *bindings = next;
            durable?;
        }
        Ok(removed)
    }

    fn write(&self, bindings: &BTreeSet<Binding>) -> Result<crate::util::Durable> {
        let file = AclsFile {
            acl: bindings.iter().cloned().collect(),
        };
        let text = toml::to_string(&file).map_err(|e| Error::Config(e.to_string()))?;
        crate::util::write_atomically(&self.path, text.as_bytes())
    }
}

pub(crate) mod authorizer;
#[cfg(test)]
mod tests;
