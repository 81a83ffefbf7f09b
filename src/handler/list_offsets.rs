//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local
//! (-4), or the first record whose timestamp is at or after a time.
//!
//! As Kafka does, times resolve to a record, not a batch (see
//! [`Partition::offset_for_time`](crate::catalog::Partition::offset_for_time)).

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::Context;
use crate::error::Result;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub(super) async fn handle(
    ctx: &Context,
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
            match lookup(ctx, &topic.name, p.partition_index, p.timestamp) {
                Ok((offset, timestamp)) => {
                    r.offset = offset;
                    r.timestamp = timestamp;
                    if version >= 4 {
                        r.leader_epoch = 0;
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

/// (offset, timestamp) for one partition; (-1, -1) when no record matches a time.
fn lookup(ctx: &Context, topic: &str, index: i32, timestamp: i64) -> Result<(i64, i64)> {
    let partition = ctx.catalog.partition(topic, index)?;
    let found = match timestamp {
        LATEST => Some((partition.offsets().high_watermark, -1)),
        EARLIEST | EARLIEST_LOCAL => Some((partition.offsets().log_start, -1)),
        MAX_TIMESTAMP => partition.max_timestamp()?,
        t if t >= 0 => partition.offset_for_time(t)?,
        _ => Some((partition.offsets().high_watermark, -1)),
    };
    Ok(found.unwrap_or((-1, -1)))
}
