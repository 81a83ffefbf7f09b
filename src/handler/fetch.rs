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

use encode::{Answer, PartitionAnswer, Records, TopicAnswer};
pub(crate) use session::Sessions;
use session::{Answered, Plan, Told, TopicRef, Wants};

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Call, Context, Reply};
use crate::acl::{op, resource};
use crate::catalog::{FetchSpec, Located, Offsets, Partition};
use crate::error::{Error, Result};
use crate::protocol::Request;

/// Longest a fetch parks, whatever it asks for.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(300);

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
            let answer = Answer {
                error_code: error.code(),
                ..Answer::default()
            };
            let frame = encode::encode(version, req.header.correlation_id, &answer);
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
    // As in Kafka, the broker's limit caps the client's: an answer's size
    // must fit its frame's i32 whatever the client asked for.
    body.max_bytes = body.max_bytes.clamp(0, ctx.config.fetch_max_bytes as i32);
    let mut located = seen_and_located(&mut watches, &wanted, &body);
    loop {
        let bytes: usize = located.iter().flatten().map(Located::len).sum();
        // An answer holds at most max_bytes: min_bytes counts up to that
        // (and a max_bytes of 0 still waits for a byte, as in Kafka).
        let done = bytes >= body.min_bytes.max(0).min(body.max_bytes.max(1)) as usize
            || answers_at_once(&wanted, &located)
            || ctx.stop.is_set()
            || Instant::now() >= deadline;
        if done {
            let mut answer = respond(&wants, &wanted, located);
            // A session's answer leaves out only partitions without records.
            count_bytes_out(ctx, &wanted, &answer);
            answer.session_id = session_id;
            if session_id != 0 {
                note_session(ctx, session_id, incremental, &mut answer);
            }
            let frame = encode::encode(version, req.header.correlation_id, &answer);
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
fn note_session(ctx: &Context, session_id: i32, incremental: bool, answer: &mut Answer) {
    let mut answered = Vec::new();
    for topic in &answer.topics {
        for p in &topic.partitions {
            let now = Told {
                high_watermark: p.high_watermark,
                last_stable: p.last_stable,
                log_start: p.log_start,
            };
            // After an error the client is told again once it clears, as
            // Kafka does by remembering a high watermark of -1.
            let now = if p.error_code == 0 {
                now
            } else {
                Told {
                    high_watermark: -1,
                    ..now
                }
            };
            answered.push(Answered {
                key: (topic.topic.clone(), p.index),
                now,
                records: !p.records.is_empty(),
                error: p.error_code != 0,
            });
        }
    }
    let mut keep = ctx
        .fetch_sessions
        .answer(session_id, incremental, &answered)
        .into_iter();
    for topic in &mut answer.topics {
        topic.partitions.retain(|_| keep.next().unwrap_or(true));
    }
    answer.topics.retain(|t| !t.partitions.is_empty());
}

/// Counts the record bytes answered, per topic.
fn count_bytes_out(ctx: &Context, wanted: &[Wanted], answer: &Answer) {
    let mut first = 0;
    for topic in &answer.topics {
        let of_topic = &wanted[first..first + topic.partitions.len()];
        first += topic.partitions.len();
        let Some(partition) = of_topic.iter().find_map(|w| w.partition.as_ref().ok()) else {
            continue;
        };
        let bytes: usize = topic.partitions.iter().map(|p| p.records.len()).sum();
        ctx.metrics.fetched(&partition.topic, bytes);
    }
}

/// Located bytes at least this long are sent from their file; shorter ones
/// cost less to read than a system call of their own.
const SEND_FILE_BYTES: usize = 16 * 1024;

/// The answer, topic by topic, partition by partition: the located bytes
/// read, or their file range to send in place of the records.
fn respond(wants: &Wants, wanted: &[Wanted], located: Vec<Result<Located>>) -> Answer {
    let mut partitions = wanted.iter().zip(located);
    let topics = wants
        .iter()
        .map(|(topic, asked)| TopicAnswer {
            topic: topic.clone(),
            partitions: asked
                .iter()
                .zip(partitions.by_ref())
                .map(|((index, _), (w, located))| partition_answer(*index, w, located))
                .collect(),
        })
        .collect();
    Answer {
        topics,
        ..Answer::default()
    }
}

fn partition_answer(index: i32, wanted: &Wanted, located: Result<Located>) -> PartitionAnswer {
    let offsets = match (&located, &wanted.partition) {
        (Ok(l), _) => Some(l.offsets),
        (Err(_), Ok(partition)) => partition.offsets().ok(),
        (Err(_), Err(_)) => None,
    };
    let (log_start, high_watermark, last_stable) = offsets.map_or((-1, -1, -1), |o| {
        (o.log_start, o.high_watermark, o.last_stable)
    });
    let aborted = match &located {
        Ok(Located {
            aborted: Some(aborted),
            ..
        }) => Some(
            aborted
                .iter()
                .map(|t| (t.producer_id, t.first_offset))
                .collect(),
        ),
        _ => None,
    };
    let records = located.and_then(|l| {
        if l.len() >= SEND_FILE_BYTES
            && let Some(range) = l.send_from()?
        {
            return Ok(Records::File(range));
        }
        l.read().map(Records::Bytes)
    });
    let (error_code, records) = match records {
        Ok(records) => (0, records),
        Err(e) => (e.code(), Records::Bytes(bytes::Bytes::new())),
    };
    PartitionAnswer {
        index,
        error_code,
        high_watermark,
        last_stable,
        log_start,
        aborted,
        records,
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
