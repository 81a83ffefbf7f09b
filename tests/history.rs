//! A history check in the spirit of Jepsen's Kafka workload: idempotent
//! acks=all producers and a consumer group that commits synchronously after
//! processing run against the `sluice` binary while it is SIGKILLed and
//! restarted again and again on one data directory and one port. Every
//! operation is recorded in a history (produce attempts with their outcome,
//! every polled record with the consumer and its assignment, every commit with
//! its outcome, rebalances, crashes). After a clean restart the whole log is
//! read back and the history is checked:
//!
//! - every acknowledged record is in the log at the offset it was acknowledged with;
//! - no value is stored twice (idempotence across crashes);
//! - each partition's offsets are dense from 0, and one producer's records of
//!   a partition are stored in send order;
//! - every polled record is in the log at the offset it was read from;
//! - after a successful commit of offset `o` for a partition, no member of the
//!   group is handed a record of that partition below `o` again (at-least-once
//!   re-delivery above the last successful commit is fine);
//! - within one assignment a consumer sees a partition's offsets increasing.
//!
//! The crash schedule comes from a seed taken from the clock and printed;
//! `HISTORY_SEED=<n>` replays a schedule (timing still differs run to run).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::raw::{Raw, decode_records};
use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;
const PRODUCERS: usize = 2;
const CONSUMERS: usize = 3;
/// Each producer sends BURST records every PACE: ~1000 records/s each.
const BURST: u64 = 5;
const PACE: Duration = Duration::from_millis(5);
/// Crashes: CRASHES_MIN plus 0..=2 more, chosen by the seed.
const CRASHES_MIN: u64 = 8;
/// Time between a restart and the next crash, and how long the broker stays down.
const UP_MS: (u64, u64) = (1_500, 3_200);
const DOWN_MS: (u64, u64) = (0, 1_200);
/// After the last restart the workload runs this long before it is stopped.
const SETTLE: Duration = Duration::from_secs(2);
/// A consumer commits once it has processed this many records or this much time has passed.
const COMMIT_EVERY: usize = 100;
const COMMIT_AFTER: Duration = Duration::from_millis(200);
/// Bound on every phase that waits for clients to finish.
const STOP_WAIT: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------
// The history

/// A producer or consumer: its slot and which incarnation in that slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Who {
    kind: char,
    slot: usize,
    life: u32,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}.{}", self.kind, self.slot, self.life)
    }
}

/// The value a producer sends as its `seq`-th record: unique over the run.
fn value_of(producer: Who, seq: u64) -> String {
    format!("{producer}-{seq}")
}

/// `(producer, seq)` back from a value.
fn parse_value(value: &str) -> Option<(&str, u64)> {
    let (who, seq) = value.rsplit_once('-')?;
    Some((who, seq.parse().ok()?))
}

#[derive(Debug, Clone)]
enum Event {
    /// The outcome of one produce attempt: acknowledged at an offset, or failed
    /// (the record may or may not be stored).
    Produced {
        producer: Who,
        seq: u64,
        partition: i32,
        outcome: Result<i64, String>,
    },
    /// librdkafka reported a fatal error; the producer is replaced.
    ProducerFatal {
        producer: Who,
        error: String,
    },
    /// A rebalance callback; `epoch` counts the consumer's rebalance events.
    Rebalanced {
        consumer: Who,
        epoch: u32,
        generation: Option<i32>,
        member: Option<String>,
        what: String,
    },
    Polled {
        consumer: Who,
        epoch: u32,
        generation: Option<i32>,
        partition: i32,
        offset: i64,
        value: String,
    },
    PollError {
        consumer: Who,
        error: String,
    },
    Committed {
        consumer: Who,
        epoch: u32,
        generation: Option<i32>,
        offsets: Vec<(i32, i64)>,
        result: Result<(), String>,
    },
    Crashed {
        n: usize,
    },
    Restarted {
        n: usize,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Produced {
                producer,
                seq,
                partition,
                outcome,
            } => {
                let value = value_of(*producer, *seq);
                match outcome {
                    Ok(offset) => write!(
                        f,
                        "{producer} produce {value} -> acked {partition}/{offset}"
                    ),
                    Err(e) => write!(f, "{producer} produce {value} -> {partition}/? failed: {e}"),
                }
            }
            Event::ProducerFatal { producer, error } => write!(f, "{producer} fatal: {error}"),
            Event::Rebalanced {
                consumer,
                epoch,
                generation,
                member,
                what,
            } => write!(
                f,
                "{consumer} epoch {epoch} {what} (generation {generation:?}, member {member:?})"
            ),
            Event::Polled {
                consumer,
                epoch,
                generation,
                partition,
                offset,
                value,
            } => write!(
                f,
                "{consumer} epoch {epoch} gen {generation:?} poll {partition}/{offset} = {value}"
            ),
            Event::PollError { consumer, error } => write!(f, "{consumer} poll error: {error}"),
            Event::Committed {
                consumer,
                epoch,
                generation,
                offsets,
                result,
            } => write!(
                f,
                "{consumer} epoch {epoch} gen {generation:?} commit {offsets:?} -> {result:?}"
            ),
            Event::Crashed { n } => write!(f, "broker SIGKILL #{n}"),
            Event::Restarted { n } => write!(f, "broker restarted after SIGKILL #{n}"),
        }
    }
}

#[derive(Debug)]
struct History {
    start: Instant,
    events: Mutex<Vec<(Duration, Event)>>,
}

impl History {
    fn new() -> History {
        History {
            start: Instant::now(),
            events: Mutex::new(Vec::with_capacity(1 << 17)),
        }
    }

    fn push(&self, event: Event) {
        let at = self.start.elapsed();
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((at, event));
    }

    fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().filter(|(_, e)| pred(e)).count()
    }

    fn take(&self) -> Vec<(Duration, Event)> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

// ---------------------------------------------------------------------------
// The seed and the schedule

/// SplitMix64: small, and enough to spread a schedule from one seed.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn seed() -> u64 {
    match std::env::var("HISTORY_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("HISTORY_SEED={s:?} is not a number")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

/// A port that is free now and outside the kernel's ephemeral range, so that
/// no client connection takes it as its local port while the broker is down.
fn fixed_port(rng: &mut Rng) -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (lo, hi) = (10_000u16, ephemeral_low.saturating_sub(1).max(10_001));
    for _ in 0..200 {
        let port = rng.between((lo as u64, hi as u64)) as u16;
        if port == 9092 {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {lo}..{hi}");
}

/// How many starts found the port still taken and tried again.
static PORT_RETRIES: AtomicUsize = AtomicUsize::new(0);

/// Starts the broker on `listen`, retrying (bounded) while the port is still
/// held by the previous incarnation; any other start-up failure fails the test.
fn start_binary_on(listen: &str, data: &std::path::Path, extra: &[&str]) -> BrokerProcess {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match BrokerProcess::try_start_on(listen, data, extra) {
            Ok(broker) => return broker,
            Err(e) if e.contains("in use") && Instant::now() < deadline => {
                PORT_RETRIES.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("restarting the broker on {listen}: {e}"),
        }
    }
}

/// Joins a worker thread, failing the test if it is not done by `deadline`.
fn join_by<T>(handle: JoinHandle<T>, deadline: Instant, what: &str) -> T {
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "{what} did not stop within the time allowed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.join().unwrap_or_else(|_| panic!("{what} panicked"))
}

// ---------------------------------------------------------------------------
// Producers

/// What a delivery report needs to know about its record.
#[derive(Debug)]
struct Attempt {
    seq: u64,
    partition: i32,
}

struct ProducerCtx {
    who: Who,
    history: Arc<History>,
}

impl ClientContext for ProducerCtx {
    // Connection errors while the broker is down are expected; keep them quiet.
    fn log(&self, _: RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, _: KafkaError, _: &str) {}
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = Box<Attempt>;

    fn delivery(&self, result: &DeliveryResult<'_>, attempt: Box<Attempt>) {
        let outcome = match result {
            Ok(m) => {
                assert_eq!(m.partition(), attempt.partition, "delivered elsewhere");
                Ok(m.offset())
            }
            Err((e, _)) => Err(e.to_string()),
        };
        self.history.push(Event::Produced {
            producer: self.who,
            seq: attempt.seq,
            partition: attempt.partition,
            outcome,
        });
    }
}

/// Sends ~1000 records/s round-robin over the partitions until `stop`, then
/// flushes. A producer that hits a fatal error is replaced by a new one.
fn run_producer(
    slot: usize,
    bootstrap: String,
    topic: String,
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    history: Arc<History>,
) {
    let mut life = 0;
    loop {
        let who = Who {
            kind: 'p',
            slot,
            life,
        };
        let ctx = ProducerCtx {
            who,
            history: history.clone(),
        };
        let producer: ThreadedProducer<ProducerCtx> = producer_config(&bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Far longer than any outage. When a record times out, librdkafka
            // bumps the producer epoch and renumbers what is still queued,
            // including retries that may already be stored; those are then
            // stored again under the new epoch, which Kafka would do too.
            .set("message.timeout.ms", "30000")
            .create_with_context(ctx)
            .expect("idempotent producer");
        let mut seq = 0u64;
        let fatal = loop {
            if stop.load(Ordering::SeqCst) {
                break None;
            }
            if let Some((code, reason)) = producer.client().fatal_error() {
                break Some(format!("{code:?}: {reason}"));
            }
            for _ in 0..BURST {
                let partition = (seq % PARTITIONS as u64) as i32;
                let value = value_of(who, seq);
                attempts.fetch_add(1, Ordering::SeqCst);
                let record =
                    BaseRecord::with_opaque_to(&topic, Box::new(Attempt { seq, partition }))
                        .partition(partition)
                        .payload(value.as_str());
                if let Err((e, record)) = producer.send::<(), str>(record) {
                    // Not even queued: a definite failure.
                    history.push(Event::Produced {
                        producer: who,
                        seq,
                        partition: record.delivery_opaque.partition,
                        outcome: Err(format!("not queued: {e}")),
                    });
                }
                seq += 1;
            }
            std::thread::sleep(PACE);
        };
        match fatal {
            Some(error) => {
                history.push(Event::ProducerFatal {
                    producer: who,
                    error,
                });
                // Dropping purges what is still queued: those attempts fail.
                drop(producer);
                life += 1;
            }
            None => {
                // Bounded: message.timeout.ms fails whatever is still pending.
                let _ = producer.flush(Duration::from_secs(30));
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Consumers

/// What the consumer knows about its place in the group.
#[derive(Debug, Default)]
struct GroupView {
    /// Bumped on every rebalance callback (assign, revoke, error).
    epoch: u32,
    /// The generation and member id of the last successful JoinGroup, taken
    /// from librdkafka's `cgrp` debug log (the only place it exposes them).
    generation: Option<i32>,
    member: Option<String>,
}

struct ConsumerCtx {
    who: Who,
    topic: String,
    history: Arc<History>,
    view: Mutex<GroupView>,
}

impl ConsumerCtx {
    fn view(&self) -> (u32, Option<i32>) {
        let v = self.view.lock().unwrap_or_else(|e| e.into_inner());
        (v.epoch, v.generation)
    }
}

impl ClientContext for ConsumerCtx {
    fn log(&self, _: RDKafkaLogLevel, fac: &str, line: &str) {
        // "JoinGroup response: GenerationId 3, Protocol range, LeaderId ..., my MemberId X, member metadata count 2: (no error)"
        if fac != "JOINGROUP" || !line.ends_with("(no error)") {
            return;
        }
        let Some(rest) = line
            .find("GenerationId ")
            .map(|i| &line[i + "GenerationId ".len()..])
        else {
            return;
        };
        let generation = rest
            .split(|c: char| !c.is_ascii_digit() && c != '-')
            .next()
            .and_then(|g| g.parse().ok());
        let member = line
            .find("my MemberId ")
            .map(|i| &line[i + "my MemberId ".len()..])
            .and_then(|m| m.split(',').next())
            .map(str::to_string);
        let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner());
        v.generation = generation;
        v.member = member;
    }

    fn error(&self, _: KafkaError, _: &str) {}
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let what = match rebalance {
            Rebalance::Assign(tpl) => format!("assign {:?}", partitions_of(tpl, &self.topic)),
            Rebalance::Revoke(tpl) => format!("revoke {:?}", partitions_of(tpl, &self.topic)),
            Rebalance::Error(e) => format!("error {e}"),
        };
        let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner());
        v.epoch += 1;
        self.history.push(Event::Rebalanced {
            consumer: self.who,
            epoch: v.epoch,
            generation: v.generation,
            member: v.member.clone(),
            what,
        });
    }
}

fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// Positions processed in one assignment epoch and not yet committed.
#[derive(Debug, Default)]
struct Pending {
    epoch: u32,
    next: BTreeMap<i32, i64>,
    records: usize,
    since: Option<Instant>,
}

/// Commits `pending` synchronously and records the outcome; what failed stays
/// pending for the next commit of the same epoch.
fn commit(consumer: &BaseConsumer<ConsumerCtx>, topic: &str, pending: &mut Pending) {
    if pending.next.is_empty() {
        return;
    }
    let ctx = consumer.context();
    let (epoch, generation) = ctx.view();
    if epoch != pending.epoch {
        // A rebalance ran since these were processed: they are not ours to commit.
        *pending = Pending {
            epoch,
            ..Pending::default()
        };
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in &pending.next {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .expect("offset");
    }
    let result = consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| e.to_string());
    ctx.history.push(Event::Committed {
        consumer: ctx.who,
        epoch,
        generation,
        offsets: pending.next.iter().map(|(&p, &o)| (p, o)).collect(),
        result: result.clone(),
    });
    if result.is_ok() {
        *pending = Pending {
            epoch,
            ..Pending::default()
        };
    } else {
        pending.since = Some(Instant::now());
    }
}

/// One consumer slot: subscribes in the group, polls, commits after processing,
/// until `stop`. When `rejoin` is raised it closes its consumer (leaving the
/// group) and starts a new incarnation, which makes the group rebalance.
fn run_consumer(
    slot: usize,
    bootstrap: String,
    topic: String,
    group: String,
    stop: Arc<AtomicBool>,
    rejoin: Arc<AtomicBool>,
    history: Arc<History>,
) {
    let mut life = 0;
    while !stop.load(Ordering::SeqCst) {
        let who = Who {
            kind: 'c',
            slot,
            life,
        };
        let ctx = ConsumerCtx {
            who,
            topic: topic.clone(),
            history: history.clone(),
            view: Mutex::default(),
        };
        let mut config = client_config(&bootstrap);
        config
            .set("group.id", &group)
            // Member ids start with the client id; one for all makes their
            // (random) order, and so who gets which partition, change per rebalance.
            .set("client.id", "history-consumer")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // Shorter than the time between crashes: a restarted broker
            // reloads the group's last stable membership, and members that
            // have left since must expire before a rebalance can complete.
            .set("session.timeout.ms", "2000")
            .set("heartbeat.interval.ms", "300")
            .set("max.poll.interval.ms", "3000")
            .set("fetch.wait.max.ms", "100")
            .set("debug", "cgrp")
            .set_log_level(RDKafkaLogLevel::Debug);
        let consumer: BaseConsumer<ConsumerCtx> =
            config.create_with_context(ctx).expect("group consumer");
        consumer.subscribe(&[&topic]).expect("subscribe");
        let mut pending = Pending::default();
        loop {
            if stop.load(Ordering::SeqCst) || rejoin.swap(false, Ordering::SeqCst) {
                commit(&consumer, &topic, &mut pending);
                break;
            }
            let polled = consumer.poll(Duration::from_millis(100));
            let ctx = consumer.context();
            match polled {
                Some(Ok(m)) => {
                    let (epoch, generation) = ctx.view();
                    if epoch != pending.epoch {
                        pending = Pending {
                            epoch,
                            ..Pending::default()
                        };
                    }
                    let value =
                        String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                    history.push(Event::Polled {
                        consumer: who,
                        epoch,
                        generation,
                        partition: m.partition(),
                        offset: m.offset(),
                        value,
                    });
                    // Processing is recording it; the position to commit is the next offset.
                    pending.next.insert(m.partition(), m.offset() + 1);
                    pending.records += 1;
                    pending.since.get_or_insert_with(Instant::now);
                    if pending.records >= COMMIT_EVERY
                        || pending.since.is_some_and(|t| t.elapsed() >= COMMIT_AFTER)
                    {
                        commit(&consumer, &topic, &mut pending);
                    }
                }
                Some(Err(e)) => history.push(Event::PollError {
                    consumer: who,
                    error: e.to_string(),
                }),
                None => commit(&consumer, &topic, &mut pending),
            }
        }
        // Dropping closes the consumer: it leaves the group (the caller bounds how long).
        drop(consumer);
        life += 1;
    }
}

// ---------------------------------------------------------------------------
// The checks

/// One record of the final log, with the producer id, epoch and sequence
/// number it was stored with (-1 when not from an idempotent producer).
#[derive(Debug, Clone)]
struct Stored {
    offset: i64,
    value: String,
    producer_id: i64,
    producer_epoch: i16,
    sequence: i32,
}

impl fmt::Display for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "offset {} (producer id {}, epoch {}, sequence {})",
            self.offset, self.producer_id, self.producer_epoch, self.sequence
        )
    }
}

/// The final log: per partition, the records in offset order.
type Log = BTreeMap<i32, Vec<Stored>>;

#[derive(Debug, Default)]
struct Findings {
    lost: Vec<String>,
    duplicated: Vec<String>,
    not_dense: Vec<String>,
    reordered: Vec<String>,
    read_mismatch: Vec<String>,
    redelivered_after_commit: Vec<String>,
    nonmonotonic_polls: Vec<String>,
}

impl Findings {
    fn all(&self) -> [(&'static str, &Vec<String>); 7] {
        [
            ("lost", &self.lost),
            ("duplicated", &self.duplicated),
            ("not-dense", &self.not_dense),
            ("reordered", &self.reordered),
            ("read-mismatch", &self.read_mismatch),
            ("redelivered-after-commit", &self.redelivered_after_commit),
            ("nonmonotonic-polls", &self.nonmonotonic_polls),
        ]
    }
}

fn check(history: &[(Duration, Event)], log: &Log) -> Findings {
    let mut f = Findings::default();
    let stored: HashMap<(i32, i64), &str> = log
        .iter()
        .flat_map(|(&p, records)| {
            records
                .iter()
                .map(move |r| ((p, r.offset), r.value.as_str()))
        })
        .collect();

    // Offsets dense from 0; each value once; one producer's values in send order.
    let mut copies: HashMap<&str, Vec<(i32, &Stored)>> = HashMap::new();
    for (&p, records) in log {
        let mut last_seq: HashMap<&str, (u64, i64)> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            let (offset, value) = (&record.offset, &record.value);
            if *offset != i as i64 {
                f.not_dense
                    .push(format!("partition {p}: record {i} has offset {offset}"));
            }
            copies.entry(value).or_default().push((p, record));
            match parse_value(value) {
                Some((producer, seq)) => {
                    if let Some(&(before, at)) = last_seq.get(producer)
                        && before >= seq
                    {
                        f.reordered.push(format!(
                            "partition {p}: {value} at offset {offset} after {producer}-{before} at offset {at}"
                        ));
                    }
                    last_seq.insert(producer, (seq, *offset));
                }
                None => f.read_mismatch.push(format!(
                    "partition {p} offset {offset}: unknown value {value:?}"
                )),
            }
        }
    }
    let mut twice: Vec<_> = copies.iter().filter(|(_, at)| at.len() > 1).collect();
    twice.sort_by_key(|(_, at)| (at[0].0, at[0].1.offset));
    for (value, places) in twice {
        let same_epoch = places.iter().all(|(_, r)| {
            (r.producer_id, r.producer_epoch)
                == (places[0].1.producer_id, places[0].1.producer_epoch)
        });
        let why = if same_epoch {
            "one producer epoch: a retry was appended again"
        } else {
            "different producer epochs: re-sent after an epoch bump"
        };
        let places: Vec<String> = places.iter().map(|(p, r)| format!("{p}/{r}")).collect();
        f.duplicated.push(format!(
            "{value} is stored {} times ({why}): {}",
            places.len(),
            places.join(", ")
        ));
    }

    // Per partition: the highest successfully committed offset so far, and by whom.
    let mut committed: HashMap<i32, (i64, usize, Who)> = HashMap::new();
    // Per consumer, epoch and partition: the last offset polled.
    let mut last_polled: HashMap<(Who, u32, i32), (i64, usize)> = HashMap::new();
    for (i, (at, event)) in history.iter().enumerate() {
        match event {
            Event::Produced {
                producer,
                seq,
                partition,
                outcome: Ok(offset),
            } => {
                let value = value_of(*producer, *seq);
                let there = stored.get(&(*partition, *offset)).copied();
                if there != Some(value.as_str()) {
                    f.lost.push(format!(
                        "#{i} at {at:?}: {value} acknowledged at {partition}/{offset}, the log has {there:?} there (the value is at {:?})",
                        copies.get(value.as_str()).map(|at| at.iter().map(|(p, r)| (*p, r.offset)).collect::<Vec<_>>())
                    ));
                }
            }
            Event::Polled {
                consumer,
                epoch,
                generation,
                partition,
                offset,
                value,
            } => {
                let there = stored.get(&(*partition, *offset)).copied();
                if there != Some(value.as_str()) {
                    f.read_mismatch.push(format!(
                        "#{i} at {at:?}: {consumer} read {value} at {partition}/{offset}, the log has {there:?} there"
                    ));
                }
                if let Some(&(o, ci, by)) = committed.get(partition)
                    && *offset < o
                {
                    f.redelivered_after_commit.push(format!(
                        "#{i} at {at:?}: {consumer} (epoch {epoch}, generation {generation:?}) polled {partition}/{offset} ({value}) after {by} committed {partition}/{o} at #{ci} at {:?}",
                        history[ci].0
                    ));
                }
                let key = (*consumer, *epoch, *partition);
                if let Some(&(before, bi)) = last_polled.get(&key)
                    && *offset <= before
                {
                    f.nonmonotonic_polls.push(format!(
                        "#{i} at {at:?}: {consumer} (epoch {epoch}) polled {partition}/{offset} after {partition}/{before} at #{bi}"
                    ));
                }
                last_polled.insert(key, (*offset, i));
            }
            Event::Committed {
                consumer,
                offsets,
                result: Ok(()),
                ..
            } => {
                for &(p, o) in offsets {
                    let entry = committed.entry(p).or_insert((o, i, *consumer));
                    if o >= entry.0 {
                        *entry = (o, i, *consumer);
                    }
                }
            }
            _ => {}
        }
    }
    f
}

/// Every record of every partition, read from offset 0 to the high watermark
/// with plain Fetch requests, so each record comes with the producer id, epoch
/// and sequence number of its batch.
async fn read_log(bootstrap: &str, topic: &str) -> Log {
    const FETCH_VERSION: i16 = 12;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut raw = Raw::connect(bootstrap).await;
    let mut log = Log::new();
    for p in 0..PARTITIONS {
        let records = log.entry(p).or_default();
        let mut next = 0;
        loop {
            assert!(
                Instant::now() < deadline,
                "reading the log took too long: partition {p} at {next}"
            );
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(0)
                .with_max_bytes(4 << 20)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(next)
                                .with_partition_max_bytes(1 << 20),
                        ]),
                ]);
            let response = raw.call(FETCH_VERSION, &request).await;
            let answer = &response.responses[0].partitions[0];
            assert_eq!(answer.error_code, 0, "Fetch {p}/{next}");
            let before = next;
            if let Some(bytes) = answer.records.as_ref().filter(|b| !b.is_empty()) {
                for r in decode_records(bytes) {
                    // A fetch answers whole batches: skip what was read already.
                    if r.offset < next {
                        continue;
                    }
                    next = r.offset + 1;
                    records.push(Stored {
                        offset: r.offset,
                        value: String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                            .into_owned(),
                        producer_id: r.producer_id,
                        producer_epoch: r.producer_epoch,
                        sequence: r.sequence,
                    });
                }
            }
            if next >= answer.high_watermark {
                break;
            }
            assert!(
                next > before,
                "Fetch {p}/{next} returned nothing below the high watermark {}",
                answer.high_watermark
            );
        }
    }
    log
}

// ---------------------------------------------------------------------------
// The run

#[test]
fn a_history_of_idempotent_producers_and_a_committing_group_survives_repeated_sigkill() {
    let seed = seed();
    eprintln!("history seed {seed} (HISTORY_SEED={seed} replays this schedule)");
    let mut rng = Rng(seed);
    let crashes = CRASHES_MIN + rng.next() % 3;
    let port = fixed_port(&mut rng);
    let listen = format!("127.0.0.1:{port}");

    let (_dir, data) = scratch_dir();
    let config = data.join("sluice.toml");
    // Small segments, so crashes also land around rolls, and a small internal
    // offsets log, so commits roll it too.
    std::fs::write(
        &config,
        "[log]\nsegment_bytes = 262144\n\
         [group]\nmin_session_timeout_ms = 1000\noffsets_segment_bytes = 1048576\noffsets_snapshot_bytes = 1048576\n",
    )
    .expect("config file");
    let config = config.to_str().expect("utf-8 path").to_string();
    let extra = ["--config", config.as_str()];

    let mut broker = start_binary_on(&listen, &data, &extra);
    let bootstrap = broker.bootstrap.clone();
    let topic = unique_topic("history");
    let group = format!("{topic}-group");
    block_on(create_topic(&bootstrap, &topic, PARTITIONS, &[]));

    let history = Arc::new(History::new());
    let stop_producers = Arc::new(AtomicBool::new(false));
    let stop_consumers = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let rejoins: Vec<Arc<AtomicBool>> = (0..CONSUMERS).map(|_| Arc::default()).collect();

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|slot| {
            let (b, t, g) = (bootstrap.clone(), topic.clone(), group.clone());
            let (s, r, h) = (
                stop_consumers.clone(),
                rejoins[slot].clone(),
                history.clone(),
            );
            std::thread::spawn(move || run_consumer(slot, b, t, g, s, r, h))
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|slot| {
            let (b, t) = (bootstrap.clone(), topic.clone());
            let (s, a, h) = (stop_producers.clone(), attempts.clone(), history.clone());
            std::thread::spawn(move || run_producer(slot, b, t, s, a, h))
        })
        .collect();

    // The workload is running once records are acknowledged and read.
    let deadline = Instant::now() + WAIT;
    while history.count(|e| matches!(e, Event::Polled { .. })) == 0
        || history.count(|e| matches!(e, Event::Produced { outcome: Ok(_), .. })) == 0
    {
        assert!(
            Instant::now() < deadline,
            "no record was acknowledged and read within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The nemesis: SIGKILL at pseudo-random moments, restart on the same port;
    // now and then a consumer leaves and rejoins the group in between.
    for n in 0..crashes as usize {
        let up = rng.between(UP_MS);
        if rng.next().is_multiple_of(2) {
            // At any point of the gap, so some rebalances are cut by the crash.
            let at = rng.between((0, up));
            std::thread::sleep(Duration::from_millis(at));
            let slot = (rng.next() % CONSUMERS as u64) as usize;
            rejoins[slot].store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(up - at));
        } else {
            std::thread::sleep(Duration::from_millis(up));
        }
        broker.crash();
        history.push(Event::Crashed { n });
        std::thread::sleep(Duration::from_millis(rng.between(DOWN_MS)));
        broker = start_binary_on(&listen, &data, &extra);
        history.push(Event::Restarted { n });
    }
    std::thread::sleep(SETTLE);

    // Stop producers first (each flushes), then consumers (each commits and leaves).
    stop_producers.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + STOP_WAIT;
    for (i, p) in producers.into_iter().enumerate() {
        join_by(p, deadline, &format!("producer {i}"));
    }
    stop_consumers.store(true, Ordering::SeqCst);
    for (i, c) in consumers.into_iter().enumerate() {
        join_by(c, deadline, &format!("consumer {i}"));
    }

    // A clean stop and start, then the whole log.
    broker.terminate();
    let broker = BrokerProcess::start(&data, &extra);
    let log = block_on(read_log(&broker.bootstrap, &topic));
    broker.terminate();

    let history = history.take();
    let findings = check(&history, &log);

    let count = |pred: &dyn Fn(&Event) -> bool| history.iter().filter(|(_, e)| pred(e)).count();
    let attempts = attempts.load(Ordering::SeqCst);
    let outcomes = count(&|e| matches!(e, Event::Produced { .. }));
    let acked = count(&|e| matches!(e, Event::Produced { outcome: Ok(_), .. }));
    let polls = count(&|e| matches!(e, Event::Polled { .. }));
    let distinct_polls = history
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Polled {
                partition, offset, ..
            } => Some((*partition, *offset)),
            _ => None,
        })
        .collect::<std::collections::HashSet<_>>()
        .len();
    let commits = count(&|e| matches!(e, Event::Committed { .. }));
    let commits_ok = count(&|e| matches!(e, Event::Committed { result: Ok(()), .. }));
    let rebalances = count(&|e| matches!(e, Event::Rebalanced { .. }));
    let fatal = count(&|e| matches!(e, Event::ProducerFatal { .. }));
    let poll_errors = count(&|e| matches!(e, Event::PollError { .. }));
    let crashed = count(&|e| matches!(e, Event::Crashed { .. }));
    let stored: usize = log.values().map(Vec::len).sum();
    let results: Vec<String> = findings
        .all()
        .iter()
        .map(|(name, v)| format!("{name}={}", v.len()))
        .collect();
    eprintln!(
        "history seed={seed}: {attempts} produce attempts, {acked} acked, {} failed (stored or not), {} without outcome; \
         {polls} polls ({} of them re-deliveries), {poll_errors} poll errors; {commits} commits ({commits_ok} ok); \
         {rebalances} rebalance callbacks; {fatal} fatal producer errors; {crashed} crashes ({} port retries); \
         {stored} records stored; checks: {}",
        outcomes - acked,
        attempts as usize - outcomes,
        polls - distinct_polls,
        PORT_RETRIES.load(Ordering::SeqCst),
        results.join(" ")
    );

    let mut report = String::new();
    for (name, v) in findings.all() {
        for line in v.iter().take(10) {
            report.push_str(&format!("\n{name}: {line}"));
        }
        if v.len() > 10 {
            report.push_str(&format!("\n{name}: ... {} more", v.len() - 10));
        }
    }
    if !report.is_empty() || std::env::var_os("HISTORY_DUMP").is_some() {
        let path =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("history-{seed}.txt"));
        let text: String = history
            .iter()
            .enumerate()
            .map(|(i, (at, e))| format!("#{i} {:.3}s {e}\n", at.as_secs_f64()))
            .collect();
        std::fs::write(&path, text).expect("write the history");
        eprintln!("history written to {}", path.display());
    }
    assert!(
        report.is_empty(),
        "history check failed (seed {seed}; the whole history is in {}/history-{seed}.txt):{report}",
        env!("CARGO_TARGET_TMPDIR")
    );
    assert_eq!(crashed as u64, crashes, "every planned crash happened");
    assert!(acked > 0 && polls > 0 && commits_ok > 0, "the workload ran");
    assert_eq!(
        attempts as usize, outcomes,
        "every produce attempt has an outcome"
    );
}

/// The checker itself: a clean history passes, and each kind of violation is found.
#[test]
fn the_history_checker_finds_each_kind_of_violation() {
    let p = Who {
        kind: 'p',
        slot: 0,
        life: 0,
    };
    let c0 = Who {
        kind: 'c',
        slot: 0,
        life: 0,
    };
    let c1 = Who { slot: 1, ..c0 };
    let at = Duration::ZERO;
    let produced = |seq, partition, offset| Event::Produced {
        producer: p,
        seq,
        partition,
        outcome: Ok(offset),
    };
    let polled = |consumer, partition, offset, value: &str| Event::Polled {
        consumer,
        epoch: 1,
        generation: Some(1),
        partition,
        offset,
        value: value.to_string(),
    };
    let committed = |consumer, partition, offset| Event::Committed {
        consumer,
        epoch: 1,
        generation: Some(1),
        offsets: vec![(partition, offset)],
        result: Ok(()),
    };
    let log_of = |records: &[(i32, i64, &str)]| {
        let mut log = Log::new();
        for &(p, offset, v) in records {
            log.entry(p).or_default().push(Stored {
                offset,
                value: v.to_string(),
                producer_id: -1,
                producer_epoch: -1,
                sequence: -1,
            });
        }
        log
    };

    // A clean history: acked, read once, committed, re-read above the commit.
    let log = log_of(&[(0, 0, "p0.0-0"), (0, 1, "p0.0-2"), (1, 0, "p0.0-1")]);
    let clean = [
        produced(0, 0, 0),
        produced(1, 1, 0),
        produced(2, 0, 1),
        polled(c0, 0, 0, "p0.0-0"),
        polled(c0, 0, 1, "p0.0-2"),
        committed(c0, 0, 1),
        polled(c1, 0, 1, "p0.0-2"),
    ];
    let clean: Vec<_> = clean.into_iter().map(|e| (at, e)).collect();
    let f = check(&clean, &log);
    assert!(f.all().iter().all(|(_, v)| v.is_empty()), "{f:?}");

    // Partition 0: reordered and a duplicate; partition 1: a gap.
    let log = log_of(&[
        (0, 0, "p0.0-0"),
        (0, 1, "p0.0-2"),
        (0, 2, "p0.0-1"),
        (0, 3, "p0.0-0"),
        (1, 0, "p0.0-5"),
        (1, 2, "p0.0-7"),
    ]);
    let bad = [
        produced(9, 1, 1),
        polled(c0, 0, 1, "not-stored-0"),
        committed(c0, 0, 3),
        polled(c1, 0, 2, "p0.0-1"),
        polled(c1, 0, 1, "p0.0-2"),
    ];
    let bad: Vec<_> = bad.into_iter().map(|e| (at, e)).collect();
    let f = check(&bad, &log);
    let counts: Vec<(&str, usize)> = f.all().iter().map(|(n, v)| (*n, v.len())).collect();
    assert_eq!(
        counts,
        [
            ("lost", 1),
            ("duplicated", 1),
            ("not-dense", 1),
            // p0.0-1 after p0.0-2, and p0.0-0 after p0.0-1.
            ("reordered", 2),
            ("read-mismatch", 1),
            ("redelivered-after-commit", 2),
            ("nonmonotonic-polls", 1),
        ],
        "{f:#?}"
    );
}
