//! CreateAcls, DescribeAcls and DeleteAcls over [`crate::acl`]: Kafka's
//! bindings and filters, stored across restarts. The bindings are enforced
//! only when the `authorizer` setting is on.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{Call, str_bytes};
use crate::acl::{Binding, Filter};
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::Result;

/// CreateAcls; the authorizer needs ALTER on the cluster.
pub(super) async fn create(
    ctx: &Call<'_>,
    req: CreateAclsRequest,
    _version: i16,
) -> Result<CreateAclsResponse> {
    let bindings: Vec<Binding> = req
        .creations
        .iter()
        .map(|c| Binding {
            resource_type: c.resource_type,
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission: c.permission_type,
        })
        .collect();
    let mut response = CreateAclsResponse::default();
    let results = match ctx.check(op::ALTER, resource::CLUSTER, CLUSTER_NAME) {
        Ok(()) => ctx.acls.create(bindings),
        Err(refused) => {
            let refused = Err((refused, "not authorized to create ACLs".to_string()));
            bindings.iter().map(|_| refused.clone()).collect()
        }
    };
    response.results = results
        .into_iter()
        .map(|r| {
            let mut out = AclCreationResult::default();
            if let Err((code, message)) = r {
                out.error_code = code.code();
                out.error_message = Some(str_bytes(&message));
            }
            out
        })
        .collect();
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Filter {
    Filter {
        resource_type,
        resource_name: name.map(|s| s.to_string()),
        pattern_type,
        principal: principal.map(|s| s.to_string()),
        host: host.map(|s| s.to_string()),
        operation,
        permission,
    }
}

/// DescribeAcls; the authorizer needs DESCRIBE on the cluster.
pub(super) async fn describe(
    ctx: &Call<'_>,
    req: DescribeAclsRequest,
    _version: i16,
) -> Result<DescribeAclsResponse> {
    let f = filter(
        req.resource_type_filter,
        req.resource_name_filter.as_ref(),
        req.pattern_type_filter,
        req.principal_filter.as_ref(),
        req.host_filter.as_ref(),
        req.operation,
        req.permission_type,
    );
    let mut response = DescribeAclsResponse::default();
    let allowed = ctx
        .check(op::DESCRIBE, resource::CLUSTER, CLUSTER_NAME)
        .map_err(|refused| (refused, "not authorized to describe ACLs".to_string()));
    if let Err((code, message)) = allowed.and_then(|()| f.validate()) {
        response.error_code = code.code();
        response.error_message = Some(str_bytes(&message));
        return Ok(response);
    }
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in ctx.acls.describe(&f) {
        let mut d = AclDescription::default();
        d.principal = str_bytes(&b.principal);
        d.host = str_bytes(&b.host);
        d.operation = b.operation;
        d.permission_type = b.permission;
        by_resource
            .entry((b.resource_type, b.resource_name, b.pattern_type))
            .or_default()
            .push(d);
    }
    response.resources = by_resource
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            let mut r = DescribeAclsResource::default();
            r.resource_type = resource_type;
            r.resource_name = str_bytes(&name);
            r.pattern_type = pattern_type;
            r.acls = acls;
            r
        })
        .collect();
    Ok(response)
}

/// A binding DeleteAcls removed, as its answer gives it.
fn matching_acl(b: &Binding) -> DeleteAclsMatchingAcl {
    let mut m = DeleteAclsMatchingAcl::default();
    m.resource_type = b.resource_type;
    m.resource_name = str_bytes(&b.resource_name);
    m.pattern_type = b.pattern_type;
    m.principal = str_bytes(&b.principal);
    m.host = str_bytes(&b.host);
    m.operation = b.operation;
    m.permission_type = b.permission;
    m
}

/// DeleteAcls; the authorizer needs ALTER on the cluster.
pub(super) async fn delete(
    ctx: &Call<'_>,
    req: DeleteAclsRequest,
    _version: i16,
) -> Result<DeleteAclsResponse> {
    let filters: Vec<Filter> = req
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let mut response = DeleteAclsResponse::default();
    let allowed = ctx
        .check(op::ALTER, resource::CLUSTER, CLUSTER_NAME)
        .map_err(|refused| (refused, "not authorized to delete ACLs".to_string()));
    let check = |f: &Filter| allowed.clone().and_then(|()| f.validate());
    // Invalid (or refused) filters answer their error and delete nothing.
    let valid: Vec<Filter> = filters
        .iter()
        .filter(|f| check(f).is_ok())
        .cloned()
        .collect();
    let mut removed = ctx.acls.delete(&valid)?.into_iter();
    for f in &filters {
        let mut out = DeleteAclsFilterResult::default();
        match check(f) {
            Err((code, message)) => {
                out.error_code = code.code();
                out.error_message = Some(str_bytes(&message));
            }
            Ok(()) => {
                out.matching_acls = removed
                    .next()
                    .unwrap_or_default()
                    .iter()
                    .map(matching_acl)
                    .collect();
            }
        }
        response.filter_results.push(out);
    }
    Ok(response)
}
