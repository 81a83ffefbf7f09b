//! [`Call`]: one request's view of the broker, with who sent it, and the
//! authorizer's checks that handlers make through it.

use kafka_protocol::ResponseError;

use super::Context;
use crate::acl::resource;
use crate::error::{Error, Result};

/// One request's view: the listener's [`Context`] (it derefs to it) and who
/// sent the request, for the authorizer's checks.
pub(crate) struct Call<'a> {
    pub(super) ctx: &'a Context,
    /// The authenticated principal ("User:ANONYMOUS" without authentication).
    pub(super) principal: &'a str,
    /// The client's address, as ACL bindings name hosts.
    pub(super) host: &'a str,
    /// Set once the broker stops (the connection's view of it).
    pub(super) stop: &'a crate::shutdown::Stop,
}

impl std::ops::Deref for Call<'_> {
    type Target = Context;

    fn deref(&self) -> &Context {
        self.ctx
    }
}

impl Call<'_> {
    /// Whether the caller may do `operation` on the resource (`resource_type`, `name`).
    pub(crate) fn may(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        self.acls
            .allows(self.principal, self.host, operation, resource_type, name)
    }

    /// [`Call::may`] as a result: a refusal is the resource type's
    /// *_AUTHORIZATION_FAILED code.
    pub(crate) fn check(
        &self,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> std::result::Result<(), ResponseError> {
        if self.may(operation, resource_type, name) {
            return Ok(());
        }
        Err(match resource_type {
            resource::TOPIC => ResponseError::TopicAuthorizationFailed,
            resource::GROUP => ResponseError::GroupAuthorizationFailed,
            resource::TRANSACTIONAL_ID => ResponseError::TransactionalIdAuthorizationFailed,
            _ => ResponseError::ClusterAuthorizationFailed,
        })
    }

    /// [`Call::check`] as a handler error, with a message for the client.
    pub(crate) fn require(&self, operation: i8, resource_type: i8, name: &str) -> Result<()> {
        self.check(operation, resource_type, name)
            .map_err(|code| Error::api(code, format!("not authorized for {name:?}")))
    }

    /// Whether the caller may do `operation` on some resource of `resource_type`.
    pub(crate) fn may_some(&self, operation: i8, resource_type: i8) -> bool {
        self.acls
            .allows_some(self.principal, self.host, operation, resource_type)
    }

    /// KIP-430's authorized operations of a resource, when the client asked
    /// (`asked`); else Kafka's "not asked" value, `i32::MIN`.
    pub(crate) fn operations(&self, asked: bool, resource_type: i8, name: &str) -> i32 {
        if !asked {
            return i32::MIN;
        }
        let candidates = crate::acl::authorizer::candidates(resource_type);
        self.acls
            .operations(self.principal, self.host, resource_type, name, candidates)
    }
}
