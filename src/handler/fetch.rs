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
mod request;
mod session;

pub(crate) use session::Sessions;
use session::{Answered, Plan, Told, TopicRef, Wants};

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchResponse, ProducerId};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Call, Context, Reply};
use crate::acl::{op, resource};
use crate::catalog::{FetchSpec, Located, Offsets, Partition};
use crate::connection::FileRange;
use crate::error::{Error, Result};
use crate::protocol::Request;

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
    let version = req.version();
    let mut body = request::decode(&req.body, version)?;
    let (session_id, wants, incremental) = match ctx.fetch_sessions.begin(&mut body) {
        Plan::Full { session_id, wants } => (session_id, wants, false),
        Plan::Incremental { session_id, wants } => (session_id, wants, true),
        Plan::Refused(error) => {
            let mut response = FetchResponse::default();
            response.error_code = error.code();
            let frame = encode::encode(version, req.header.correlation_id, &response, &[]);
            return Ok(Reply::Frame(frame));
        }
    };
    let max_wait = Duration::from_millis(body.max_wait_ms.max(0) as u64);
    let deadline = Instant::now() + max_wait.min(MAX_WAIT);
    // A leader moving (in a test cluster) answers a waiting fetch at once.
    let mut moves = ctx.nodes.moves();
    let mut wanted = resolve(ctx, &wants);
    let mut watches: Vec<watch::Receiver<Offsets>> = wanted
        .iter()
        .filter_map(|w| w.partition.as_ref().ok().map(|p| p.watch()))
        .collect();
    let mut located = seen_and_located(&mut watches, &wanted, &body);
    loop {
        let bytes: usize = located.iter().flatten().map(Located::len).sum();
        let done = bytes >= body.min_bytes.max(0) as usize
            || answers_at_once(&wanted, &located)
            || ctx.stop.is_set()
            || Instant::now() >= deadline;
        if done {
            let (mut response, mut files) = respond(&wants, &wanted, located, version);
            // A session's answer leaves out only partitions without records.
            count_bytes_out(ctx, (&wants, &wanted), &response, &files);
            response.session_id = session_id;
            if session_id != 0 {
                note_session(
                    ctx,
                    session_id,
                    incremental,
                    (&wants, &mut response, &mut files),
                );
            }
            let frame = encode::encode(version, req.header.correlation_id, &response, &files);
            return Ok(Reply::Frame(frame));
        }
        // At the deadline with nothing changed, the last pass is the answer.
        let changed = tokio::select! {
            changed = tokio::time::timeout_at(deadline, any_changed(&mut watches)) => changed.is_ok(),
            _ = ctx.stop.wait() => true,
            _ = moved(&mut moves) => {
                wanted = resolve(ctx, &wants);
                true
            }
        };
        if changed {
            located = seen_and_located(&mut watches, &wanted, &body);
        }
    }
}

/// Marks every watch seen, then locates: a change after this pass wakes the
/// fetch for another.
fn seen_and_located(
    watches: &mut [watch::Receiver<Offsets>],
    wanted: &[Wanted],
    body: &request::Fetch,
) -> Vec<Result<Located>> {
    watches.iter_mut().for_each(|w| {
        w.borrow_and_update();
    });
    locate(
        wanted,
        body.max_bytes.max(0) as usize,
        body.isolation_level == 1,
    )
}

/// True when an error answers a waiting fetch at once: any error reading a
/// partition or about its leadership. As in Kafka, a partition the client
/// may not read or that does not exist does not: the others are waited on
/// (a session would otherwise spin on it), unless there are no others.
fn answers_at_once(wanted: &[Wanted], located: &[Result<Located>]) -> bool {
    let mut none_readable = true;
    for (w, l) in wanted.iter().zip(located) {
        let skipped = matches!(
            w.partition,
            Err(ResponseError::TopicAuthorizationFailed
                | ResponseError::UnknownTopicOrPartition
                | ResponseError::UnknownTopicId)
        );
        if !skipped {
            none_readable = false;
            if l.is_err() {
                return true;
            }
        }
    }
    none_readable
}

/// The partitions wanted, in the order of `wants` (topic by topic), each
/// resolved to its partition (or the error to answer for it).
fn resolve(ctx: &Call<'_>, wants: &Wants) -> Vec<Wanted> {
    let mut wanted = Vec::with_capacity(wants.iter().map(|(_, p)| p.len()).sum());
    for (topic, partitions) in wants {
        // One lookup per topic, by the id or name the client gave.
        let found = match topic {
            TopicRef::Id(id) => ctx.catalog.topic_by_id(*id),
            TopicRef::Name(name) => ctx.catalog.topic(name),
        };
        let name: Option<&str> = match topic {
            TopicRef::Id(_) => found.as_deref().map(|t| t.name.as_str()),
            TopicRef::Name(name) => Some(name),
        };
        wanted.extend(partitions.iter().map(|(index, p)| {
            Wanted {
                partition: match name {
                    Some(name) if !ctx.may(op::READ, resource::TOPIC, name) => {
                        Err(ResponseError::TopicAuthorizationFailed)
                    }
                    Some(name) => found
                        .as_ref()
                        .and_then(|t| t.partition(*index))
                        .ok_or(ResponseError::UnknownTopicOrPartition)
                        .and_then(|partition| {
                            ctx.leads_at(name, *index, p.leader_epoch)?;
                            Ok(partition)
                        }),
                    None => Err(ResponseError::UnknownTopicId),
                },
                offset: p.offset,
                max_bytes: p.max_bytes.max(0) as usize,
            }
        }));
    }
    wanted
}

/// One pass: where the bytes of every partition are, within the response's
/// `max_bytes` budget. KIP-74: only the first non-empty partition may exceed it.
fn locate(wanted: &[Wanted], max_bytes: usize, read_committed: bool) -> Vec<Result<Located>> {
    let mut budget = max_bytes;
    let mut total = 0usize;
    wanted
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
}

/// An answer of session `session_id`: an incremental one keeps only the
/// partitions with records, an error, or offsets the client was not told
/// yet; the session remembers what this answer tells.
fn note_session(
    ctx: &Context,
    session_id: i32,
    incremental: bool,
    (wants, response, files): (&Wants, &mut FetchResponse, &mut Vec<Vec<Option<FileRange>>>),
) {
    let topics = std::mem::take(&mut response.responses);
    let topic_files = std::mem::take(files);
    let mut answered = Vec::new();
    let mut grouped = Vec::with_capacity(topics.len());
    for (((topic, asked), mut out), topic_files) in wants.iter().zip(topics).zip(topic_files) {
        let partitions = std::mem::take(&mut out.partitions);
        let mut parts = Vec::with_capacity(partitions.len());
        for (((index, _), data), file) in asked.iter().zip(partitions).zip(topic_files) {
            let now = Told {
                high_watermark: data.high_watermark,
                last_stable: data.last_stable_offset,
                log_start: data.log_start_offset,
            };
            // After an error the client is told again once it clears, as
            // Kafka does by remembering a high watermark of -1.
            let now = if data.error_code == 0 {
                now
            } else {
                Told {
                    high_watermark: -1,
                    ..now
                }
            };
            answered.push(Answered {
                key: (topic.clone(), *index),
                now,
                records: file.is_some() || data.records.as_ref().is_some_and(|r| !r.is_empty()),
                error: data.error_code != 0,
            });
            parts.push((data, file));
        }
        grouped.push((out, parts));
    }
    let mut keep = ctx
        .fetch_sessions
        .answer(session_id, incremental, &answered)
        .into_iter();
    for (mut out, parts) in grouped {
        let (kept, kept_files): (Vec<_>, Vec<_>) = parts
            .into_iter()
            .filter(|_| keep.next().unwrap_or(true))
            .unzip();
        if !kept.is_empty() {
            out.partitions = kept;
            response.responses.push(out);
            files.push(kept_files);
        }
    }
}

/// Counts the record bytes answered, per topic.
fn count_bytes_out(
    ctx: &Context,
    (wants, wanted): (&Wants, &[Wanted]),
    response: &FetchResponse,
    files: &[Vec<Option<FileRange>>],
) {
    let mut first = 0;
    for (((_, asked), topic), files) in wants.iter().zip(&response.responses).zip(files) {
        let of_topic = &wanted[first..first + asked.len()];
        first += asked.len();
        let Some(partition) = of_topic.iter().find_map(|w| w.partition.as_ref().ok()) else {
            continue;
        };
        let read: usize = topic
            .partitions
            .iter()
            .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
            .sum();
        let sent: usize = files.iter().flatten().map(|f| f.len).sum();
        ctx.metrics.fetched(&partition.topic, read + sent);
    }
}

/// Located bytes at least this long are sent from their file; shorter ones
/// cost less to read than a system call of their own.
const SEND_FILE_BYTES: usize = 16 * 1024;

/// Builds the response for `version`, reading the located bytes or giving
/// their file ranges, topic by topic, partition by partition, to send in
/// place of the records.
fn respond(
    wants: &Wants,
    wanted: &[Wanted],
    located: Vec<Result<Located>>,
    version: i16,
) -> (FetchResponse, Vec<Vec<Option<FileRange>>>) {
    let mut response = FetchResponse::default();
    response.responses.reserve_exact(wants.len());
    let mut files = Vec::with_capacity(wants.len());
    let mut partitions = wanted.iter().zip(located);
    for (topic, asked) in wants {
        let mut out = FetchableTopicResponse::default();
        match topic {
            TopicRef::Id(id) => out.topic_id = *id,
            TopicRef::Name(name) => out.topic = name.clone(),
        }
        out.partitions.reserve_exact(asked.len());
        let mut topic_files = Vec::with_capacity(asked.len());
        for ((index, _), (w, located)) in asked.iter().zip(partitions.by_ref()) {
            let (data, file) = partition_data(*index, w, located, version);
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

/// Resolves when a leader moves (never on a single broker).
async fn moved(moves: &mut Option<watch::Receiver<u64>>) {
    match moves {
        Some(moves) => {
            let _ = moves.changed().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves when any of `watches` changes (never, when there are none).
async fn any_changed(watches: &mut [watch::Receiver<Offsets>]) {
    if let [one] = watches {
        // The common case, a consumer of one partition, allocates nothing.
        let _ = one.changed().await;
        return;
    }
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
