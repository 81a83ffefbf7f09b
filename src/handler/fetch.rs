//! Fetch: whole batches from each requested offset, long-polling until
//! `min_bytes` are available or `max_wait_ms` has passed. Waiting is woken by
//! appends, never by a sleeping poll loop.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use tokio::time::Instant;

use super::{Context, Reply, str_bytes};
use crate::error::{Error, Result};
use crate::protocol::{Request, encode_response};
use crate::storage::ReadSlice;

pub(super) async fn handle(ctx: &Context, req: &Request) -> Result<Reply> {
    let body: FetchRequest = req.decode()?;
    let version = req.version();
    let max_wait = Duration::from_millis(body.max_wait_ms.max(0) as u64);
    let deadline = Instant::now() + max_wait.min(Duration::from_secs(300));
    let mut appended = ctx.catalog.subscribe_appends();
    loop {
        appended.borrow_and_update();
        let (response, bytes, errors) = fetch_once(ctx, &body, version)?;
        let stopping = *ctx.stopping.borrow();
        let done = bytes >= body.min_bytes.max(0) as usize
            || errors
            || stopping
            || Instant::now() >= deadline;
        if done {
            let frame =
                encode_response(ApiKey::Fetch, version, req.header.correlation_id, &response)?;
            return Ok(Reply::Frame(vec![frame.freeze()]));
        }
        // Wait for the next append anywhere (then look again), the deadline, or a stop.
        let mut stopping = ctx.stopping.clone();
        tokio::select! {
            _ = tokio::time::timeout_at(deadline, appended.changed()) => {}
            _ = crate::server::stopped(&mut stopping) => {}
        }
    }
}

/// One pass over the requested partitions: (response, record bytes, any error).
fn fetch_once(
    ctx: &Context,
    req: &FetchRequest,
    version: i16,
) -> Result<(FetchResponse, usize, bool)> {
    let mut response = FetchResponse::default();
    let mut budget = req.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    for topic in &req.topics {
        let mut out = FetchableTopicResponse::default();
        let name = topic_name(ctx, topic, version);
        if version >= 13 {
            out.topic_id = topic.topic_id;
        } else {
            out.topic = topic.topic.clone();
        }
        for p in &topic.partitions {
            let mut data = PartitionData::default();
            data.partition_index = p.partition;
            let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
            // KIP-74: only the first non-empty partition may exceed the budget.
            let first = total == 0;
            match read_partition(
                ctx,
                name.as_ref(),
                p.partition,
                p.fetch_offset,
                limit,
                first,
                version,
            ) {
                Ok((records, hw, start)) => {
                    data.high_watermark = hw;
                    data.last_stable_offset = hw;
                    if version >= 5 {
                        data.log_start_offset = start;
                    }
                    total += records.len();
                    budget = budget.saturating_sub(records.len());
                    data.records = Some(records);
                }
                Err((e, hw, start)) => {
                    errors = true;
                    data.error_code = e.code();
                    data.high_watermark = hw;
                    data.last_stable_offset = hw;
                    if version >= 5 {
                        data.log_start_offset = start;
                    }
                    data.records = Some(Bytes::new());
                }
            }
            out.partitions.push(data);
        }
        response.responses.push(out);
    }
    Ok((response, total, errors))
}

fn topic_name(ctx: &Context, topic: &FetchTopic, version: i16) -> Option<TopicName> {
    if version >= 13 {
        ctx.catalog
            .topic_by_id(topic.topic_id)
            .map(|t| TopicName(str_bytes(&t.name)))
    } else {
        Some(topic.topic.clone())
    }
}

type ReadError = (Error, i64, i64);

fn read_partition(
    ctx: &Context,
    name: Option<&TopicName>,
    index: i32,
    offset: i64,
    limit: usize,
    first: bool,
    version: i16,
) -> std::result::Result<(Bytes, i64, i64), ReadError> {
    let Some(name) = name else {
        return Err((
            Error::api(ResponseError::UnknownTopicId, "unknown topic id"),
            -1,
            -1,
        ));
    };
    let _ = version;
    let partition = ctx
        .catalog
        .partition(name, index)
        .map_err(|e| (e, -1, -1))?;
    // Positions are worked out under the lock; the bytes are read after it is released.
    let (slice, hw, start) = {
        let log = partition.log();
        let (hw, start) = (log.end_offset(), log.start_offset());
        let slice = if limit == 0 && !first {
            Ok(ReadSlice::empty())
        } else {
            log.read(offset, limit)
        };
        (slice.map_err(|e| (Error::from(e), hw, start))?, hw, start)
    };
    if !first && slice.len() > limit {
        return Ok((Bytes::new(), hw, start));
    }
    let records = slice.read().map_err(|e| {
        (
            Error::api(ResponseError::KafkaStorageError, e.to_string()),
            hw,
            start,
        )
    })?;
    Ok((records, hw, start))
}
