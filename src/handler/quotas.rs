//! DescribeClientQuotas and AlterClientQuotas over [`crate::quotas`]: stored
//! and reported, not enforced. The authorizer needs DESCRIBE_CONFIGS or
//! ALTER_CONFIGS on the cluster.

use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlteredEntity, EntryData as AlteredEntry,
};
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};

use super::{Call, str_bytes};
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::Result;
use crate::quotas::{Entity, Match, Op, Values};

pub(super) async fn describe(
    ctx: &Call<'_>,
    req: DescribeClientQuotasRequest,
    _version: i16,
) -> Result<DescribeClientQuotasResponse> {
    let mut response = DescribeClientQuotasResponse::default();
    if let Err(refused) = ctx.check(op::DESCRIBE_CONFIGS, resource::CLUSTER, CLUSTER_NAME) {
        response.error_code = refused.code();
        return Ok(response);
    }
    let mut filter = Vec::new();
    for c in &req.components {
        let m = match (c.match_type, &c._match) {
            (0, Some(name)) => Match::Exact(name.to_string()),
            (1, _) => Match::Default,
            (2, _) => Match::Specified,
            _ => {
                response.error_code = kafka_protocol::ResponseError::InvalidRequest.code();
                response.error_message = Some(str_bytes("Invalid match type or name"));
                return Ok(response);
            }
        };
        filter.push((c.entity_type.to_string(), m));
    }
    match ctx.quotas.describe(&filter, req.strict) {
        Ok(found) => response.entries = Some(found.into_iter().map(entry).collect()),
        Err((code, message)) => {
            response.error_code = code.code();
            response.error_message = Some(str_bytes(&message));
        }
    }
    Ok(response)
}

/// One entity's quotas as DescribeClientQuotas answers them.
fn entry((entity, values): (Entity, Values)) -> EntryData {
    let mut e = EntryData::default();
    e.entity = entity
        .into_iter()
        .map(|(t, name)| {
            let mut d = EntityData::default();
            d.entity_type = str_bytes(&t);
            d.entity_name = name.as_deref().map(str_bytes);
            d
        })
        .collect();
    e.values = values
        .into_iter()
        .map(|(key, value)| {
            let mut v = ValueData::default();
            v.key = str_bytes(&key);
            v.value = value;
            v
        })
        .collect();
    e
}

pub(super) async fn alter(
    ctx: &Call<'_>,
    req: AlterClientQuotasRequest,
    _version: i16,
) -> Result<AlterClientQuotasResponse> {
    let mut response = AlterClientQuotasResponse::default();
    let allowed = ctx.check(op::ALTER_CONFIGS, resource::CLUSTER, CLUSTER_NAME);
    for entry in req.entries {
        let entity: Vec<(String, Option<String>)> = entry
            .entity
            .iter()
            .map(|e| {
                (
                    e.entity_type.to_string(),
                    e.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        let ops: Vec<Op> = entry
            .ops
            .iter()
            .map(|o| Op {
                key: o.key.to_string(),
                value: (!o.remove).then_some(o.value),
            })
            .collect();
        let mut out = AlteredEntry::default();
        let altered = allowed
            .map_err(|refused| (refused, "not authorized to alter quotas".to_string()))
            .and_then(|()| ctx.quotas.alter(entity, &ops, req.validate_only));
        if let Err((code, message)) = altered {
            out.error_code = code.code();
            out.error_message = Some(str_bytes(&message));
        }
        out.entity = entry
            .entity
            .into_iter()
            .map(|e| {
                let mut d = AlteredEntity::default();
                d.entity_type = e.entity_type;
                d.entity_name = e.entity_name;
                d
            })
            .collect();
        response.entries.push(out);
    }
    Ok(response)
}
