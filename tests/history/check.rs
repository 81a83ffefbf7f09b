//! The checks: the final log is read back with plain Fetch requests, and the
//! log and the history are checked against each other.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::PARTITIONS;
use crate::common::raw::{Raw, decode_records};
use crate::events::{Event, Who, parse_value, value_of};

/// One record of the final log, with the producer id, epoch and sequence
/// number it was stored with (-1 when not from an idempotent producer).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
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
pub(crate) type Log = BTreeMap<i32, Vec<Stored>>;

/// Where each value is stored: `(partition, record)` for every copy.
type Copies<'a> = HashMap<&'a str, Vec<(i32, &'a Stored)>>;

#[derive(Debug, Default)]
pub(crate) struct Findings {
    lost: Vec<String>,
    duplicated: Vec<String>,
    not_dense: Vec<String>,
    reordered: Vec<String>,
    read_mismatch: Vec<String>,
    redelivered_after_commit: Vec<String>,
    nonmonotonic_polls: Vec<String>,
}

impl Findings {
    pub(crate) fn all(&self) -> [(&'static str, &Vec<String>); 7] {
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

pub(crate) fn check(history: &[(Duration, Event)], log: &Log) -> Findings {
    let mut f = Findings::default();
    let copies = check_log(log, &mut f);
    check_duplicates(&copies, &mut f);
    let mut replay = Replay {
        history,
        stored: stored_values(log),
        copies: &copies,
        committed: HashMap::new(),
        last_polled: HashMap::new(),
        f,
    };
    for (i, (at, event)) in history.iter().enumerate() {
        replay.event(i, *at, event);
    }
    replay.f
}

/// The value at each `(partition, offset)` of the log.
fn stored_values(log: &Log) -> HashMap<(i32, i64), &str> {
    log.iter()
        .flat_map(|(&p, records)| {
            records
                .iter()
                .map(move |r| ((p, r.offset), r.value.as_str()))
        })
        .collect()
}

/// Offsets dense from 0; one producer's values in send order. Returns where
/// each value is stored.
fn check_log<'a>(log: &'a Log, f: &mut Findings) -> Copies<'a> {
    let mut copies = Copies::new();
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
    copies
}

/// Each value once.
fn check_duplicates(copies: &Copies<'_>, f: &mut Findings) {
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
}

/// The history checked event by event, in order, against the log.
struct Replay<'a> {
    history: &'a [(Duration, Event)],
    stored: HashMap<(i32, i64), &'a str>,
    copies: &'a Copies<'a>,
    /// Per partition: the highest successfully committed offset so far, and by whom.
    committed: HashMap<i32, (i64, usize, Who)>,
    /// Per consumer, epoch and partition: the last offset polled.
    last_polled: HashMap<(Who, u32, i32), (i64, usize)>,
    f: Findings,
}

impl Replay<'_> {
    fn event(&mut self, i: usize, at: Duration, event: &Event) {
        match event {
            Event::Produced {
                producer,
                seq,
                partition,
                outcome: Ok(offset),
            } => self.acked(i, at, value_of(*producer, *seq), *partition, *offset),
            Event::Polled { .. } => self.polled(i, at, event),
            Event::Committed {
                consumer,
                offsets,
                result: Ok(()),
                ..
            } => {
                for &(p, o) in offsets {
                    let entry = self.committed.entry(p).or_insert((o, i, *consumer));
                    if o >= entry.0 {
                        *entry = (o, i, *consumer);
                    }
                }
            }
            _ => {}
        }
    }

    /// An acknowledged record is in the log at the offset it was acknowledged with.
    fn acked(&mut self, i: usize, at: Duration, value: String, partition: i32, offset: i64) {
        let there = self.stored.get(&(partition, offset)).copied();
        if there != Some(value.as_str()) {
            self.f.lost.push(format!(
                "#{i} at {at:?}: {value} acknowledged at {partition}/{offset}, the log has {there:?} there (the value is at {:?})",
                self.copies.get(value.as_str()).map(|at| at.iter().map(|(p, r)| (*p, r.offset)).collect::<Vec<_>>())
            ));
        }
    }

    /// A polled record is in the log where it was read, is not below its
    /// partition's last successful commit, and is above the consumer's
    /// previous poll of that partition in the same epoch.
    fn polled(&mut self, i: usize, at: Duration, event: &Event) {
        let Event::Polled {
            consumer,
            epoch,
            generation,
            partition,
            offset,
            value,
        } = event
        else {
            return;
        };
        let there = self.stored.get(&(*partition, *offset)).copied();
        if there != Some(value.as_str()) {
            self.f.read_mismatch.push(format!(
                "#{i} at {at:?}: {consumer} read {value} at {partition}/{offset}, the log has {there:?} there"
            ));
        }
        if let Some(&(o, ci, by)) = self.committed.get(partition)
            && *offset < o
        {
            self.f.redelivered_after_commit.push(format!(
                "#{i} at {at:?}: {consumer} (epoch {epoch}, generation {generation:?}) polled {partition}/{offset} ({value}) after {by} committed {partition}/{o} at #{ci} at {:?}",
                self.history[ci].0
            ));
        }
        let key = (*consumer, *epoch, *partition);
        if let Some(&(before, bi)) = self.last_polled.get(&key)
            && *offset <= before
        {
            self.f.nonmonotonic_polls.push(format!(
                "#{i} at {at:?}: {consumer} (epoch {epoch}) polled {partition}/{offset} after {partition}/{before} at #{bi}"
            ));
        }
        self.last_polled.insert(key, (*offset, i));
    }
}

// ---------------------------------------------------------------------------
// Reading the log back

const FETCH_VERSION: i16 = 12;

/// Every record of every partition, read from offset 0 to the high watermark
/// with plain Fetch requests, so each record comes with the producer id, epoch
/// and sequence number of its batch.
pub(crate) async fn read_log(bootstrap: &str, topic: &str) -> Log {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut raw = Raw::connect(bootstrap).await;
    let mut log = Log::new();
    for p in 0..PARTITIONS {
        let records = log.entry(p).or_default();
        read_partition(&mut raw, topic, p, deadline, records).await;
    }
    log
}

/// Appends partition `p`'s records, from offset 0 to the high watermark, to `records`.
async fn read_partition(
    raw: &mut Raw,
    topic: &str,
    p: i32,
    deadline: Instant,
    records: &mut Vec<Stored>,
) {
    let mut next = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "reading the log took too long: partition {p} at {next}"
        );
        let response = raw
            .call(FETCH_VERSION, &fetch_request(topic, p, next))
            .await;
        let answer = &response.responses[0].partitions[0];
        assert_eq!(answer.error_code, 0, "Fetch {p}/{next}");
        let before = next;
        if let Some(bytes) = answer.records.as_ref().filter(|b| !b.is_empty()) {
            next = append_new(bytes, next, records);
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

/// Appends the records of a Fetch answer from offset `next` on to `records`
/// and returns the offset after the last one (`next` when there is none).
fn append_new(bytes: &Bytes, mut next: i64, records: &mut Vec<Stored>) -> i64 {
    for r in decode_records(bytes) {
        // A fetch answers whole batches: skip what was read already.
        if r.offset < next {
            continue;
        }
        next = r.offset + 1;
        records.push(Stored {
            offset: r.offset,
            value: String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
            producer_id: r.producer_id,
            producer_epoch: r.producer_epoch,
            sequence: r.sequence,
        });
    }
    next
}

/// A Fetch of partition `p` from offset `next` that does not wait.
fn fetch_request(topic: &str, p: i32, next: i64) -> FetchRequest {
    FetchRequest::default()
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
        ])
}

// ---------------------------------------------------------------------------
// Building histories and logs for the checker's own test

/// The producer of every fixture record: its values are `p0.0-<seq>`.
const FIXTURE_PRODUCER: Who = Who {
    kind: 'p',
    slot: 0,
    life: 0,
};

/// The fixture producer's `seq`-th record, acknowledged at `partition/offset`.
pub(crate) fn produced(seq: u64, partition: i32, offset: i64) -> Event {
    Event::Produced {
        producer: FIXTURE_PRODUCER,
        seq,
        partition,
        outcome: Ok(offset),
    }
}

/// `consumer` polled `value` at `partition/offset` in epoch 1, generation 1.
pub(crate) fn polled(consumer: Who, partition: i32, offset: i64, value: &str) -> Event {
    Event::Polled {
        consumer,
        epoch: 1,
        generation: Some(1),
        partition,
        offset,
        value: value.to_string(),
    }
}

/// `consumer` committed `partition/offset` in epoch 1, generation 1.
pub(crate) fn committed(consumer: Who, partition: i32, offset: i64) -> Event {
    Event::Committed {
        consumer,
        epoch: 1,
        generation: Some(1),
        offsets: vec![(partition, offset)],
        result: Ok(()),
    }
}

/// Events that all happened at time zero.
pub(crate) fn at_zero(events: impl IntoIterator<Item = Event>) -> Vec<(Duration, Event)> {
    events.into_iter().map(|e| (Duration::ZERO, e)).collect()
}

/// A log of `(partition, offset, value)` records, not from an idempotent producer.
pub(crate) fn log_of(records: &[(i32, i64, &str)]) -> Log {
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
}
