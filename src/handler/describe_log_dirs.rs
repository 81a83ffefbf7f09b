//! DescribeLogDirs: the one data directory and the size of each partition
//! in it. The authorizer needs DESCRIBE on the cluster (else no directory,
//! and from v3 CLUSTER_AUTHORIZATION_FAILED).

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::{Call, str_bytes};
use crate::acl::{CLUSTER_NAME, op, resource};
use crate::error::Result;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: DescribeLogDirsRequest,
    version: i16,
) -> Result<DescribeLogDirsResponse> {
    let mut response = DescribeLogDirsResponse::default();
    if let Err(refused) = ctx.check(op::DESCRIBE, resource::CLUSTER, CLUSTER_NAME) {
        if version >= 3 {
            response.error_code = refused.code();
        }
        return Ok(response);
    }
    let wanted = |topic: &str, index: i32| match &req.topics {
        None => true,
        Some(list) => list
            .iter()
            .any(|t| t.topic.as_str() == topic && t.partitions.contains(&index)),
    };
    let mut dir = DescribeLogDirsResult::default();
    dir.log_dir = str_bytes(&ctx.catalog.data_dir().display().to_string());
    if version >= 4 {
        dir.total_bytes = -1;
        dir.usable_bytes = -1;
    }
    for topic in ctx.catalog.topics() {
        let mut out = DescribeLogDirsTopic::default();
        out.name = TopicName(str_bytes(&topic.name));
        for partition in topic.partitions() {
            if !wanted(&topic.name, partition.index) {
                continue;
            }
            let mut p = DescribeLogDirsPartition::default();
            p.partition_index = partition.index;
            p.partition_size = partition.size_bytes() as i64;
            out.partitions.push(p);
        }
        if !out.partitions.is_empty() {
            dir.topics.push(out);
        }
    }
    response.results = vec![dir];
    Ok(response)
}
