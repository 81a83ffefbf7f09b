//! The history: who did what (producers, consumers, the nemesis), and the
//! seed the crash schedule is drawn from.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A producer or consumer: its slot and which incarnation in that slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Who {
    pub(crate) kind: char,
    pub(crate) slot: usize,
    pub(crate) life: u32,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}.{}", self.kind, self.slot, self.life)
    }
}

/// The value a producer sends as its `seq`-th record: unique over the run.
pub(crate) fn value_of(producer: Who, seq: u64) -> String {
    format!("{producer}-{seq}")
}

/// `(producer, seq)` back from a value.
pub(crate) fn parse_value(value: &str) -> Option<(&str, u64)> {
    let (who, seq) = value.rsplit_once('-')?;
    Some((who, seq.parse().ok()?))
}

#[derive(Debug, Clone)]
pub(crate) enum Event {
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
pub(crate) struct History {
    start: Instant,
    events: Mutex<Vec<(Duration, Event)>>,
}

impl History {
    pub(crate) fn new() -> History {
        History {
            start: Instant::now(),
            events: Mutex::new(Vec::with_capacity(1 << 17)),
        }
    }

    pub(crate) fn push(&self, event: Event) {
        let at = self.start.elapsed();
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((at, event));
    }

    pub(crate) fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().filter(|(_, e)| pred(e)).count()
    }

    pub(crate) fn take(&self) -> Vec<(Duration, Event)> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub(crate) use crate::common::rng::Rng;

pub(crate) fn seed() -> u64 {
    crate::common::rng::seed("HISTORY_SEED")
}
