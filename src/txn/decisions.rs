//! `<data_dir>/transaction-decisions`: what the transaction coordinator must
//! not forget in a crash, one line per fact, each fsynced before it is acted on:
//!
//! - `init <producer id> <epoch> <transactional id>`: the id's producer;
//! - `begin <producer id> <epoch> <transactional id>`: a transaction began
//!   (its first partition or offsets were added);
//! - `<commit|abort> <producer id> <first offset> <topic> <partition>`: a
//!   decision, per partition, written before the markers;
//! - `end <commit|abort> <producer id> <epoch> <transactional id>`: the
//!   transaction ended so, answered again if the client retries EndTxn.
//!
//! At start-up the transactions still open in partitions are finished as
//! decided (else aborted), and the file is rewritten with only the latest
//! `init` and `end` of each transactional id; it is rewritten so too when
//! it grows past 1 MiB.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, io_err};
use crate::util::write_atomically;

const FILE: &str = "transaction-decisions";
/// Past this size, the file is rewritten before the next decision.
const MAX_BYTES: u64 = 1 << 20;

/// One partition's part of a decided transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
}

/// What is known of one transactional id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdState {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    /// How its last transaction ended (`Some(true)`: committed).
    pub(crate) ended: Option<bool>,
}

/// Everything the file holds.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub(crate) decided: HashMap<Key, bool>,
    pub(crate) ids: HashMap<String, IdState>,
    /// Ids whose last transaction began and has no `end` line.
    open: std::collections::HashSet<String>,
    /// Per producer id: whether a commit was decided since its last `begin`.
    committed_since_begin: HashMap<i64, bool>,
}

/// The decisions file of a data directory.
#[derive(Debug)]
pub(crate) struct Decisions {
    path: PathBuf,
}

fn word(commit: bool) -> &'static str {
    if commit { "commit" } else { "abort" }
}

fn parse_word(w: &str) -> Option<bool> {
    match w {
        "commit" => Some(true),
        "abort" => Some(false),
        _ => None,
    }
}

/// Adds the fact on `line` to `out`; `None` if the line is damaged.
fn parse_line(line: &str, out: &mut Read) -> Option<()> {
    let (kind, rest) = line.split_once(' ')?;
    match kind {
        "init" | "begin" => {
            let mut f = rest.splitn(3, ' ');
            let producer_id = f.next()?.parse().ok()?;
            let epoch = f.next()?.parse().ok()?;
            let id = f.next()?.to_string();
            let state = IdState {
                producer_id,
                epoch,
                ended: None,
            };
            if kind == "begin" {
                out.open.insert(id.clone());
                out.committed_since_begin.insert(producer_id, false);
            } else {
                out.open.remove(&id);
            }
            out.ids.insert(id, state);
        }
        "end" => {
            let mut f = rest.splitn(4, ' ');
            let ended = Some(parse_word(f.next()?)?);
            let producer_id = f.next()?.parse().ok()?;
            let epoch = f.next()?.parse().ok()?;
            let id = f.next()?.to_string();
            out.open.remove(&id);
            out.ids.insert(
                id,
                IdState {
                    producer_id,
                    epoch,
                    ended,
                },
            );
        }
        other => {
            let commit = parse_word(other)?;
            let mut f = rest.split(' ');
            let producer_id = f.next()?.parse().ok()?;
            let first_offset = f.next()?.parse().ok()?;
            let topic = f.next()?.to_string();
            let partition = f.next()?.parse().ok()?;
            let key = Key {
                topic,
                partition,
                producer_id,
                first_offset,
            };
            if commit {
                out.committed_since_begin.insert(producer_id, true);
            }
            out.decided.insert(key, commit);
        }
    }
    Some(())
}

impl Decisions {
    pub(crate) fn new(data_dir: &Path) -> Decisions {
        Decisions {
            path: data_dir.join(FILE),
        }
    }

    /// Every fact recorded; damaged lines are skipped.
    pub(crate) fn read(&self) -> Read {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let mut out = Read::default();
        for line in text.lines() {
            if parse_line(line, &mut out).is_none() {
                tracing::warn!(path = %self.path.display(), line, "ignoring a damaged line");
            }
        }
        // A transaction that began and has no end is finished at start-up:
        // committed where a commit was decided for its producer, else aborted.
        for id in std::mem::take(&mut out.open) {
            if let Some(state) = out.ids.get_mut(&id) {
                let committed = out.committed_since_begin.get(&state.producer_id);
                state.ended = Some(committed.copied().unwrap_or(false));
            }
        }
        out
    }

    fn append(&self, text: &str) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        file.write_all(text.as_bytes())
            .map_err(io_err(&self.path))?;
        // DURABILITY: each fact survives a crash before it is acted on.
        file.sync_data().map_err(io_err(&self.path))
    }

    /// Whether the file should be rewritten before the next append.
    pub(crate) fn is_large(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() > MAX_BYTES)
    }

    /// Records that `id` now has producer `producer_id` at `epoch`.
    pub(crate) fn record_init(&self, id: &str, producer_id: i64, epoch: i16) -> Result<()> {
        self.append(&format!("init {producer_id} {epoch} {id}\n"))
    }

    /// Records that `id`'s producer began a transaction.
    pub(crate) fn record_begin(&self, id: &str, producer_id: i64, epoch: i16) -> Result<()> {
        self.append(&format!("begin {producer_id} {epoch} {id}\n"))
    }

    /// Records `commit` for `keys`, before any marker is written.
    pub(crate) fn record(&self, keys: &[Key], commit: bool) -> Result<()> {
        let mut text = String::new();
        for k in keys {
            text.push_str(&format!(
                "{} {} {} {} {}\n",
                word(commit),
                k.producer_id,
                k.first_offset,
                k.topic,
                k.partition
            ));
        }
        self.append(&text)
    }

    /// Records how `id`'s transaction ended (after its markers).
    pub(crate) fn record_end(&self, id: &str, state: IdState) -> Result<()> {
        let commit = state.ended.unwrap_or(false);
        self.append(&format!(
            "end {} {} {} {id}\n",
            word(commit),
            state.producer_id,
            state.epoch
        ))
    }

    /// Replaces the file with the latest state of every transactional id.
    pub(crate) fn rewrite(&self, ids: &HashMap<String, IdState>) -> Result<()> {
        let mut text = String::new();
        for (id, s) in ids {
            text.push_str(&format!("init {} {} {id}\n", s.producer_id, s.epoch));
            if let Some(commit) = s.ended {
                text.push_str(&format!(
                    "end {} {} {} {id}\n",
                    word(commit),
                    s.producer_id,
                    s.epoch
                ));
            }
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_and_a_rewrite_keeps_the_latest_per_id() {
        let dir = tempfile::tempdir().unwrap();
        let d = Decisions::new(dir.path());
        d.record_init("app one", 7, 0).unwrap();
        let key = Key {
            topic: "t".into(),
            partition: 2,
            producer_id: 7,
            first_offset: 40,
        };
        d.record(std::slice::from_ref(&key), true).unwrap();
        let ended = IdState {
            producer_id: 7,
            epoch: 0,
            ended: Some(true),
        };
        d.record_end("app one", ended).unwrap();
        let read = d.read();
        assert_eq!(read.decided.get(&key), Some(&true));
        assert_eq!(read.ids.get("app one"), Some(&ended));
        d.rewrite(&read.ids).unwrap();
        let again = d.read();
        assert!(again.decided.is_empty());
        assert_eq!(again.ids.get("app one"), Some(&ended));
    }
}
