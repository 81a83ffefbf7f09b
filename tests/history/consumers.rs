//! The workload's consumers: members of one group that commit synchronously
//! after processing, each recording every poll, commit and rebalance in the
//! [`History`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::*;
use crate::events::{Event, History, Who};
use crate::{COMMIT_AFTER, COMMIT_EVERY};

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
pub(crate) fn run_consumer(
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
        let consumer: BaseConsumer<ConsumerCtx> = group_config(&bootstrap, &group)
            .create_with_context(ctx)
            .expect("group consumer");
        consumer.subscribe(&[&topic]).expect("subscribe");
        consume(&consumer, &topic, &stop, &rejoin);
        // Dropping closes the consumer: it leaves the group (the caller bounds how long).
        drop(consumer);
        life += 1;
    }
}

fn group_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", group)
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
    config
}

/// Polls and commits until `stop` or `rejoin` is raised, then commits what is
/// still pending.
fn consume(
    consumer: &BaseConsumer<ConsumerCtx>,
    topic: &str,
    stop: &AtomicBool,
    rejoin: &AtomicBool,
) {
    let mut pending = Pending::default();
    loop {
        if stop.load(Ordering::SeqCst) || rejoin.swap(false, Ordering::SeqCst) {
            commit(consumer, topic, &mut pending);
            return;
        }
        let polled = consumer.poll(Duration::from_millis(100));
        let ctx = consumer.context();
        match polled {
            Some(Ok(m)) => {
                process(ctx, &m, &mut pending);
                if pending.records >= COMMIT_EVERY
                    || pending.since.is_some_and(|t| t.elapsed() >= COMMIT_AFTER)
                {
                    commit(consumer, topic, &mut pending);
                }
            }
            Some(Err(e)) => ctx.history.push(Event::PollError {
                consumer: ctx.who,
                error: e.to_string(),
            }),
            None => commit(consumer, topic, &mut pending),
        }
    }
}

/// Processing a record is recording it; the position to commit is the next
/// offset. Positions from an earlier epoch are dropped.
fn process(ctx: &ConsumerCtx, m: &BorrowedMessage<'_>, pending: &mut Pending) {
    let (epoch, generation) = ctx.view();
    if epoch != pending.epoch {
        *pending = Pending {
            epoch,
            ..Pending::default()
        };
    }
    let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
    ctx.history.push(Event::Polled {
        consumer: ctx.who,
        epoch,
        generation,
        partition: m.partition(),
        offset: m.offset(),
        value,
    });
    pending.next.insert(m.partition(), m.offset() + 1);
    pending.records += 1;
    pending.since.get_or_insert_with(Instant::now);
}
