//! The authorizer: whether a principal may do an operation on a resource,
//! by Kafka's `StandardAuthorizer` rules.
//!
//! Off (the default), everything is allowed, as on a Kafka without an
//! authorizer. On, a super user may do everything; anyone else needs a
//! binding that allows the operation and none that denies it (no binding:
//! refused, Kafka's `allow.everyone.if.no.acl.found=false`).

use super::{Acls, Binding, TOPIC_OPERATIONS, WILDCARD, pattern, permission, resource};

/// The principal every binding for `User:*` applies to.
const ANY_USER: &str = "User:*";

impl Acls {
    /// Whether `principal` from `host` may do `operation` on the resource
    /// (`resource_type`, `name`).
    pub(crate) fn allows(
        &self,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> bool {
        self.exempt(principal) || self.authorize(principal, host, operation, resource_type, name)
    }

    /// Whether `principal` needs no binding: the authorizer is off, or it is a super user.
    fn exempt(&self, principal: &str) -> bool {
        self.enforced
            .as_ref()
            .is_none_or(|super_users| super_users.contains(principal))
    }

    /// KIP-430's authorized operations of a resource for `principal`: the bit
    /// (1 << code) of each operation of `candidates` that is allowed.
    pub(crate) fn operations(
        &self,
        principal: &str,
        host: &str,
        resource_type: i8,
        name: &str,
        candidates: i32,
    ) -> i32 {
        (0..31)
            .filter(|code| candidates & (1 << code) != 0)
            .filter(|&code| self.allows(principal, host, code as i8, resource_type, name))
            .fold(0, |bits, code| bits | (1 << code))
    }

    /// Kafka's `authorizeByResourceType`: whether `operation` is allowed on
    /// at least one resource of `resource_type` (a literal or prefixed ALLOW
    /// binding that no DENY binding covers). An idempotent producer may
    /// start (InitProducerId) if it may write some topic.
    pub(crate) fn allows_some(
        &self,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
    ) -> bool {
        if self.exempt(principal) {
            return true;
        }
        let bindings = self.lock();
        let applies =
            |b: &&Binding| b.resource_type == resource_type && b.grants(principal, host, operation);
        let denies: Vec<&Binding> = bindings
            .iter()
            .filter(applies)
            .filter(|b| b.permission == permission::DENY)
            .collect();
        // A literal DENY cancels the same literal ALLOW (or, for `*`, every
        // one); a prefixed DENY cancels what lies under its prefix.
        let denied = |allow: &Binding| {
            denies.iter().any(|d| match d.pattern_type {
                pattern::LITERAL => {
                    d.resource_name == WILDCARD
                        || (allow.pattern_type == pattern::LITERAL
                            && d.resource_name == allow.resource_name)
                }
                pattern::PREFIXED => allow.resource_name.starts_with(&d.resource_name),
                _ => false,
            })
        };
        bindings
            .iter()
            .filter(applies)
            .filter(|b| b.permission == permission::ALLOW)
            .any(|b| !denied(b))
    }

    /// Kafka's rule for `principal` from `host` doing `operation` on the
    /// resource (`resource_type`, `name`): a matching DENY refuses, else a
    /// matching ALLOW is needed.
    pub(crate) fn authorize(
        &self,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> bool {
        let bindings = self.lock();
        let applies =
            |b: &&Binding| b.names(resource_type, name) && b.grants(principal, host, operation);
        let mut allowed = false;
        for b in bindings.iter().filter(applies) {
            if b.permission == permission::DENY {
                return false;
            }
            allowed = true;
        }
        allowed
    }
}

impl Binding {
    /// Whether this binding speaks of `principal` from `host` doing
    /// `operation` (allowing or denying it).
    fn grants(&self, principal: &str, host: &str, operation: i8) -> bool {
        (self.principal == principal || self.principal == ANY_USER)
            && (self.host == host || self.host == WILDCARD)
            && self.covers(operation)
    }
}

/// The operations KIP-430 reports for a resource type (every one the type has).
pub(crate) fn candidates(resource_type: i8) -> i32 {
    match resource_type {
        resource::TOPIC => TOPIC_OPERATIONS,
        resource::GROUP => super::GROUP_OPERATIONS,
        resource::CLUSTER => super::CLUSTER_OPERATIONS,
        _ => 0,
    }
}
