//! Fetch: whole batches from each requested offset, long-polling until
//! `min_bytes` are available or `max_wait_ms` has passed.
//!
//! A waiting fetch parks on the partitions it asked for and is woken only
//! when one of their offsets moves (or the broker stops). Each pass locates
//! the bytes it would return without reading them. When the fetch answers,
//! a partition's bytes are either read (when they are few) or handed to the
//! connection as a file range, which the kernel sends from the page cache
//! (see [`encode`]; TLS reads it in pieces). The authorizer needs READ on each topic.

mod encode;

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Call, Context, Reply};
use crate::acl::{op, resource};
use crate::catalog::{FetchSpec, Located, Offsets, Partition};
use crate::connection::FileRange;
use crate::error::{Error, Result};
use crate::protocol::Request;
use crate::shutdown::{is_stopping, stopped};

/// Longest a fetch parks, whatever it asks for.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// One requested partition, resolved once per request.
#[derive(Debug)]
struct Wanted {
    /// The partition, or why it cannot be fetched.
    partition: std::result::Result<Arc<Partition>, ResponseError>,
    offset: i64,
    max_bytes: usize,
}

pub(super) async fn handle(ctx: &Call<'_>, req: &Request) -> Result<Reply> {
    let body: FetchRequest = req.decode()?;
    let version = req.version();
    let max_wait = Duration::from_millis(body.max_wait_ms.max(0) as u64);
    let deadline = Instant::now() + max_wait.min(MAX_WAIT);
    // A leader moving (in a test cluster) answers a waiting fetch at once.
    let mut moves = ctx.nodes.moves();
    moves.borrow_and_update();
    let mut wanted = resolve(ctx, &body, version);
    let mut watches: Vec<watch::Receiver<Offsets>> = wanted
        .iter()
        .flatten()
        .filter_map(|w| w.partition.as_ref().ok().map(|p| p.watch()))
        .collect();
    let mut stopping = ctx.stopping.clone();
    loop {
        watches.iter_mut().for_each(|w| {
            w.borrow_and_update();
        });
        let read_committed = body.isolation_level == 1;
        let located = locate(&wanted, body.max_bytes.max(0) as usize, read_committed);
        let bytes: usize = located.iter().flatten().flatten().map(Located::len).sum();
        let errors = located.iter().flatten().any(Result::is_err);
        let done = bytes >= body.min_bytes.max(0) as usize
            || errors
            || is_stopping(&stopping)
            || Instant::now() >= deadline;
        if done {
            let (response, files) = respond(&body, &wanted, located, version);
            count_bytes_out(ctx, &wanted, &response, &files);
            let frame = encode::encode(version, req.header.correlation_id, &response, &files);
            return Ok(Reply::Frame(frame));
        }
        tokio::select! {
            _ = tokio::time::timeout_at(deadline, any_changed(&mut watches)) => {}
            _ = stopped(&mut stopping) => {}
            _ = moves.changed() => wanted = resolve(ctx, &body, version),
        }
    }
}

/// The partitions of the request, by topic, each resolved to its partition
/// (or the error to answer for it).
fn resolve(ctx: &Call<'_>, req: &FetchRequest, version: i16) -> Vec<Vec<Wanted>> {
    req.topics
        .iter()
        .map(|topic| {
            let name = if version >= 13 {
                ctx.catalog
                    .topic_by_id(topic.topic_id)
                    .map(|t| t.name.clone())
            } else {
                Some(topic.topic.to_string())
            };
            topic
                .partitions
                .iter()
                .map(|p| Wanted {
                    partition: match &name {
                        Some(name) if !ctx.may(op::READ, resource::TOPIC, name) => {
                            Err(ResponseError::TopicAuthorizationFailed)
                        }
                        Some(name) => ctx
                            .catalog
                            .partition(name, p.partition)
                            .map_err(|e| {
                                ResponseError::try_from_code(e.code())
                                    .unwrap_or(ResponseError::UnknownServerError)
                            })
                            .and_then(|partition| {
                                ctx.leads_at(name, p.partition, p.current_leader_epoch)?;
                                Ok(partition)
                            }),
                        None => Err(ResponseError::UnknownTopicId),
                    },
                    offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes.max(0) as usize,
                })
                .collect()
        })
        .collect()
}

/// One pass: where the bytes of every partition are, within the response's
/// `max_bytes` budget. KIP-74: only the first non-empty partition may exceed it.
fn locate(
    wanted: &[Vec<Wanted>],
    max_bytes: usize,
    read_committed: bool,
) -> Vec<Vec<Result<Located>>> {
    let mut budget = max_bytes;
    let mut total = 0usize;
    wanted
        .iter()
        .map(|topic| {
            topic
                .iter()
                .map(|w| {
                    let partition = w
                        .partition
                        .as_ref()
                        .map_err(|code| Error::api(*code, "unknown topic or partition"))?;
                    let located = partition.locate(FetchSpec {
                        offset: w.offset,
                        max_bytes: w.max_bytes.min(budget),
                        may_exceed: total == 0,
                        read_committed,
                    })?;
                    total += located.len();
                    budget = budget.saturating_sub(located.len());
                    Ok(located)
                })
                .collect()
        })
        .collect()
}

/// Counts the record bytes answered, per topic.
fn count_bytes_out(
    ctx: &Context,
    wanted: &[Vec<Wanted>],
    response: &FetchResponse,
    files: &[Vec<Option<FileRange>>],
) {
    for ((wanted, topic), files) in wanted.iter().zip(&response.responses).zip(files) {
        let Some(partition) = wanted.iter().find_map(|w| w.partition.as_ref().ok()) else {
            continue;
        };
        let read: usize = topic
            .partitions
            .iter()
            .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
            .sum();
        let sent: usize = files.iter().flatten().map(|f| f.len).sum();
        let bytes = read + sent;
        ctx.metrics.fetched(&partition.topic, bytes);
    }
}

/// Located bytes at least this long are sent from their file; shorter ones
/// cost less to read than a system call of their own.
const SEND_FILE_BYTES: usize = 16 * 1024;

/// Builds the response for `version`, reading the located bytes or giving
/// their file ranges, topic by topic, partition by partition, to send in
/// place of the records.
fn respond(
    req: &FetchRequest,
    wanted: &[Vec<Wanted>],
    located: Vec<Vec<Result<Located>>>,
    version: i16,
) -> (FetchResponse, Vec<Vec<Option<FileRange>>>) {
    let mut response = FetchResponse::default();
    let mut files = Vec::with_capacity(req.topics.len());
    for ((topic, wanted), located) in req.topics.iter().zip(wanted).zip(located) {
        let mut out = FetchableTopicResponse::default();
        if version >= 13 {
            out.topic_id = topic.topic_id;
        } else {
            out.topic = topic.topic.clone();
        }
        let mut topic_files = Vec::with_capacity(topic.partitions.len());
        for ((p, w), located) in topic.partitions.iter().zip(wanted).zip(located) {
            let (data, file) = partition_data(p.partition, w, located, version);
            out.partitions.push(data);
            topic_files.push(file);
        }
        response.responses.push(out);
        files.push(topic_files);
    }
    (response, files)
}

fn partition_data(
    index: i32,
    wanted: &Wanted,
    located: Result<Located>,
    version: i16,
) -> (PartitionData, Option<FileRange>) {
    let mut data = PartitionData::default();
    data.partition_index = index;
    let offsets = match (&located, &wanted.partition) {
        (Ok(l), _) => Some(l.offsets),
        (Err(_), Ok(partition)) => Some(partition.offsets()),
        (Err(_), Err(_)) => None,
    };
    let (start, high, stable) = offsets.map_or((-1, -1, -1), |o| {
        (o.log_start, o.high_watermark, o.last_stable)
    });
    data.high_watermark = high;
    data.last_stable_offset = stable;
    if version >= 5 {
        data.log_start_offset = start;
    }
    if let Ok(Located {
        aborted: Some(aborted),
        ..
    }) = &located
    {
        data.aborted_transactions = Some(
            aborted
                .iter()
                .map(|t| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_first_offset(t.first_offset)
                })
                .collect(),
        );
    }
    let sent = located.and_then(|l| {
        if l.len() >= SEND_FILE_BYTES {
            l.send_from().map(|range| (None, range))
        } else {
            l.read().map(|records| (Some(records), None))
        }
    });
    match sent {
        Ok((records, range)) => {
            data.records = records;
            (data, range)
        }
        Err(e) => {
            data.error_code = e.code();
            data.records = Some(bytes::Bytes::new());
            (data, None)
        }
    }
}

/// Resolves when any of `watches` changes (never, when there are none).
async fn any_changed(watches: &mut [watch::Receiver<Offsets>]) {
    let mut changes: Vec<_> = watches.iter_mut().map(|w| Box::pin(w.changed())).collect();
    std::future::poll_fn(|cx| {
        for change in &mut changes {
            if change.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}
