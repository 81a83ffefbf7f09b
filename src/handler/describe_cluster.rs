//! DescribeCluster: one broker, which is also the controller, and (KIP-430)
//! the operations the client may perform on the cluster.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{Call, str_bytes};
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: DescribeClusterRequest,
    _version: i16,
) -> Result<DescribeClusterResponse> {
    let mut response = DescribeClusterResponse::default();
    if req.include_cluster_authorized_operations {
        // KIP-430: asked for, the operations this client may perform (none
        // shown without DESCRIBE on the cluster).
        response.cluster_authorized_operations =
            match ctx.may(op::DESCRIBE, resource::CLUSTER, CLUSTER_NAME) {
                true => ctx.operations(true, resource::CLUSTER, CLUSTER_NAME),
                false => 0,
            };
    }
    response.cluster_id = str_bytes(&ctx.config.cluster_id);
    response.controller_id = BrokerId(ctx.nodes.controller());
    response.brokers = ctx
        .brokers()
        .into_iter()
        .map(|(id, host, port)| {
            let mut broker = DescribeClusterBroker::default();
            broker.broker_id = BrokerId(id);
            broker.host = str_bytes(&host);
            broker.port = port;
            broker
        })
        .collect();
    Ok(response)
}
