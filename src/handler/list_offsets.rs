//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local
//! (-4), or the first record whose timestamp is at or after a time.
//!
//! As Kafka does, times resolve to a record, not a batch (see
//! [`Partition::offset_for_time`](crate::catalog::Partition::offset_for_time)).
//! The authorizer needs DESCRIBE on each topic.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{Call, Context};
use crate::acl::{op, resource};
use crate::error::Result;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub(super) async fn handle(
    ctx: &Call<'_>,
    req: ListOffsetsRequest,
    version: i16,
) -> Result<ListOffsetsResponse> {
    let mut response = ListOffsetsResponse::default();
    for topic in req.topics {
        let mut out = ListOffsetsTopicResponse::default();
        out.name = topic.name.clone();
        for p in topic.partitions {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            let committed = req.isolation_level == 1;
            let allowed = ctx.require(op::DESCRIBE, resource::TOPIC, &topic.name);
            let found = allowed.and_then(|()| {
                lookup(
                    ctx,
                    (&topic.name, p.partition_index, p.current_leader_epoch),
                    p.timestamp,
                    committed,
                )
            });
            match found {
                Ok((offset, timestamp, leader_epoch)) => {
                    r.offset = offset;
                    r.timestamp = timestamp;
                    if version >= 4 {
                        r.leader_epoch = leader_epoch;
                    }
                }
                Err(e) => r.error_code = e.code(),
            }
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    Ok(response)
}

/// (offset, timestamp, leader epoch) for one partition this node leads
/// (at the client's `epoch`, -1 for any); (-1, -1) when no record below the
/// latest offset matches a time. Under read_committed (`committed`) the
/// latest offset is the last stable one.
fn lookup(
    ctx: &Context,
    (topic, index, epoch): (&str, i32, i32),
    timestamp: i64,
    committed: bool,
) -> Result<(i64, i64, i32)> {
    let partition = ctx.catalog.partition(topic, index)?;
    let leader = ctx
        .leads_at(topic, index, epoch)
        .map_err(super::placement::not_led)?;
    let offsets = partition.offsets()?;
    let latest = if committed {
        offsets.last_stable
    } else {
        offsets.high_watermark
    };
    // A record found by its time counts only below the latest offset, as
    // in Kafka: one a read_committed consumer may not read yet (in an open
    // transaction), or that is not yet fsynced under `flush = "always"`,
    // is not there.
    let readable = |found: Option<(i64, i64)>| found.filter(|(offset, _)| *offset < latest);
    let found = match timestamp {
        LATEST => Some((latest, -1)),
        EARLIEST | EARLIEST_LOCAL => Some((offsets.log_start, -1)),
        MAX_TIMESTAMP => readable(partition.max_timestamp()?),
        t if t >= 0 => readable(partition.offset_for_time(t)?),
        _ => Some((latest, -1)),
    };
    let (offset, timestamp) = found.unwrap_or((-1, -1));
    Ok((offset, timestamp, leader.epoch))
}
