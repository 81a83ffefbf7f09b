//! `<data_dir>/transaction-decisions`: a commit or abort decision is written
//! (and fsynced) here before any of its markers, one line per partition:
//! `commit|abort <producer id> <first offset> <topic> <partition>`. A broker
//! that stops between the decision and the last marker finds, at start-up,
//! the transactions still open in its partitions; each one with a decision
//! is finished as decided, every other one is aborted. The file is emptied
//! once nothing can depend on it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, io_err};
use crate::util::write_atomically;

const FILE: &str = "transaction-decisions";
/// Past this size, the file is emptied before the next decision.
const MAX_BYTES: u64 = 1 << 20;

/// One partition's part of a decided transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
}

/// The decisions file of a data directory.
#[derive(Debug)]
pub(crate) struct Decisions {
    path: PathBuf,
}

impl Decisions {
    pub(crate) fn new(data_dir: &Path) -> Decisions {
        Decisions {
            path: data_dir.join(FILE),
        }
    }

    /// Every decision recorded: key -> commit.
    pub(crate) fn read(&self) -> HashMap<Key, bool> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut f = line.split(' ');
                let commit = match f.next()? {
                    "commit" => true,
                    "abort" => false,
                    _ => return None,
                };
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
                Some((key, commit))
            })
            .collect()
    }

    /// Records `commit` for `keys`, durably, before any marker is written.
    /// Only one transaction is decided at a time (the caller serialises).
    pub(crate) fn record(&self, keys: &[Key], commit: bool) -> Result<()> {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() > MAX_BYTES) {
            // Every earlier transaction has all its markers written.
            self.clear()?;
        }
        let word = if commit { "commit" } else { "abort" };
        let mut text = String::new();
        for k in keys {
            text.push_str(&format!(
                "{word} {} {} {} {}\n",
                k.producer_id, k.first_offset, k.topic, k.partition
            ));
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        file.write_all(text.as_bytes())
            .map_err(io_err(&self.path))?;
        // DURABILITY: the decision must survive a crash before its markers exist.
        file.sync_data().map_err(io_err(&self.path))
    }

    /// Empties the file (every decided transaction is finished).
    pub(crate) fn clear(&self) -> Result<()> {
        write_atomically(&self.path, b"")
    }
}
