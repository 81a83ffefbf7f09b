//! FindCoordinator: the node coordinating each group or transactional id
//! (a single broker coordinates everything). Before v4 one key is answered
//! in the top-level fields; from v4 a batch of keys in `coordinators`.
//! The authorizer needs DESCRIBE on the group or transactional id.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Call, str_bytes};
use crate::acl::{op, resource};
use crate::error::Result;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: FindCoordinatorRequest,
    version: i16,
) -> Result<FindCoordinatorResponse> {
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| coordinator(ctx, key, req.key_type))
            .collect();
        return Ok(response);
    }
    let found = coordinator(ctx, req.key, req.key_type);
    response.error_code = found.error_code;
    response.node_id = found.node_id;
    response.host = found.host;
    response.port = found.port;
    if version >= 1 {
        response.error_message = found.error_message;
    }
    Ok(response)
}

fn coordinator(ctx: &Call<'_>, key: StrBytes, key_type: i8) -> Coordinator {
    let mut c = Coordinator::default();
    c.key = key;
    let refused = match key_type {
        GROUP_KEY if c.key.is_empty() => Some((ResponseError::InvalidRequest, "empty group id")),
        TRANSACTION_KEY if c.key.is_empty() => {
            Some((ResponseError::InvalidRequest, "empty transactional id"))
        }
        GROUP_KEY if !ctx.may(op::DESCRIBE, resource::GROUP, &c.key) => Some((
            ResponseError::GroupAuthorizationFailed,
            "not authorized to describe the group",
        )),
        TRANSACTION_KEY if !ctx.may(op::DESCRIBE, resource::TRANSACTIONAL_ID, &c.key) => Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "not authorized to describe the transactional id",
        )),
        GROUP_KEY | TRANSACTION_KEY => None,
        _ => Some((
            ResponseError::InvalidRequest,
            "unknown coordinator key type",
        )),
    };
    let node = match key_type {
        GROUP_KEY => ctx.group_coordinator(&c.key),
        _ => ctx.transaction_coordinator(&c.key),
    };
    let refused = refused.or_else(|| {
        (!ctx.nodes.is_live(node)).then_some((
            ResponseError::CoordinatorNotAvailable,
            "the coordinator's node is down",
        ))
    });
    match refused {
        None => {
            let (host, port) = ctx.address_of(node);
            c.node_id = BrokerId(node);
            c.host = str_bytes(&host);
            c.port = port;
        }
        Some((code, message)) => {
            c.error_code = code.code();
            c.error_message = Some(str_bytes(message));
            c.node_id = BrokerId(-1);
            c.port = -1;
        }
    }
    c
}
