//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local
//! (-4), or the first record whose timestamp is at or after a time.
//!
//! As Kafka does, times resolve to a record, not a batch: storage finds the
//! batch (by max timestamp), then [`records_time`] walks its records. If the
//! records cannot be read, the batch's base offset (or, for max timestamp,
//! its last offset) and max timestamp are the answer.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{Context, records_time};
use crate::error::Result;
use crate::storage::{Log, ReadSlice};

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

/// (offset, timestamp) for one partition; (-1, -1) when no batch matches a time.
fn lookup(ctx: &Context, topic: &str, index: i32, timestamp: i64) -> Result<(i64, i64)> {
    let partition = ctx.catalog.partition(topic, index)?;
    // Storage answers per batch; the record inside it is found after the lock is released.
    let (found, refine) = {
        let log = partition.log();
        match timestamp {
            LATEST => return Ok((log.end_offset(), -1)),
            EARLIEST | EARLIEST_LOCAL => return Ok((log.start_offset(), -1)),
            MAX_TIMESTAMP => match log.max_timestamp()? {
                // The batch holding the max: its first record with that timestamp.
                Some((ts, last)) => (
                    (last, ts),
                    Refine::new(&log, last, log.start_offset(), Want::Equal(ts)),
                ),
                None => return Ok((-1, -1)),
            },
            t if t >= 0 => match log.offset_for_timestamp(t)? {
                // The first batch whose max is >= t: its first record at or after t.
                Some((base, ts)) => (
                    (base, ts),
                    Refine::new(&log, base, base, Want::AtOrAfter(t)),
                ),
                None => return Ok((-1, -1)),
            },
            _ => return Ok((log.end_offset(), -1)),
        }
    };
    Ok(refine.and_then(Refine::run).unwrap_or(found))
}

/// The record wanted: the first at or after a time, or the first at exactly one.
#[derive(Debug, Clone, Copy)]
enum Want {
    AtOrAfter(i64),
    Equal(i64),
}

/// The batch storage picked and the record wanted in it.
#[derive(Debug)]
struct Refine {
    slice: ReadSlice,
    min_offset: i64,
    want: Want,
}

impl Refine {
    /// The batch holding `offset`; `None` when it cannot be located.
    fn new(log: &Log, offset: i64, min_offset: i64, want: Want) -> Option<Refine> {
        let slice = log.read(offset, 1).ok()?;
        Some(Refine {
            slice,
            min_offset,
            want,
        })
    }

    /// (offset, timestamp) of the record, or `None` to keep the batch's answer.
    fn run(self) -> Option<(i64, i64)> {
        let bytes = self.slice.read().ok()?;
        records_time::first_record(&bytes, self.min_offset, |ts| match self.want {
            Want::AtOrAfter(t) => ts >= t,
            Want::Equal(t) => ts == t,
        })
    }
}
