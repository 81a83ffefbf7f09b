//! The workload's producers: idempotent and acks=all, each recording every
//! produce attempt and its outcome in the [`History`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::common::*;
use crate::events::{Event, History, Who, value_of};
use crate::{BURST, PACE, PARTITIONS};

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
pub(crate) fn run_producer(
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
        let producer = new_producer(who, &bootstrap, &history);
        match send_until_stopped(&producer, &topic, &stop, &attempts) {
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

fn new_producer(
    who: Who,
    bootstrap: &str,
    history: &Arc<History>,
) -> ThreadedProducer<ProducerCtx> {
    let ctx = ProducerCtx {
        who,
        history: history.clone(),
    };
    producer_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // Far longer than any outage. When a record times out, librdkafka
        // bumps the producer epoch and renumbers what is still queued,
        // including retries that may already be stored; those are then
        // stored again under the new epoch, which Kafka would do too.
        .set("message.timeout.ms", "30000")
        .create_with_context(ctx)
        .expect("idempotent producer")
}

/// Sends BURST records every PACE until `stop` (then `None`) or until
/// librdkafka reports a fatal error (then that error).
fn send_until_stopped(
    producer: &ThreadedProducer<ProducerCtx>,
    topic: &str,
    stop: &AtomicBool,
    attempts: &AtomicU64,
) -> Option<String> {
    let mut seq = 0u64;
    loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        if let Some((code, reason)) = producer.client().fatal_error() {
            return Some(format!("{code:?}: {reason}"));
        }
        for _ in 0..BURST {
            send(producer, topic, seq, attempts);
            seq += 1;
        }
        std::thread::sleep(PACE);
    }
}

/// Queues the producer's `seq`-th record; one that is not even queued is
/// recorded as a definite failure.
fn send(producer: &ThreadedProducer<ProducerCtx>, topic: &str, seq: u64, attempts: &AtomicU64) {
    let ctx = producer.context();
    let partition = (seq % PARTITIONS as u64) as i32;
    let value = value_of(ctx.who, seq);
    attempts.fetch_add(1, Ordering::SeqCst);
    let record = BaseRecord::with_opaque_to(topic, Box::new(Attempt { seq, partition }))
        .partition(partition)
        .payload(value.as_str());
    if let Err((e, record)) = producer.send::<(), str>(record) {
        ctx.history.push(Event::Produced {
            producer: ctx.who,
            seq,
            partition: record.delivery_opaque.partition,
            outcome: Err(format!("not queued: {e}")),
        });
    }
}
