//! `<data_dir>/recovery-point-offset-checkpoint`, in Kafka's format: a
//! version line (`0`), a count line, then one `topic partition offset` line
//! per partition. Below a partition's offset everything was fsynced, so after
//! an unclean stop only the segments past it are scanned.
//!
//! The file is replaced atomically and only ever holds offsets whose fsync
//! has completed. A missing or damaged file means "scan everything": slower,
//! never wrong.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use kafka_protocol::ResponseError;

use super::Catalog;
use crate::error::Result;
use crate::util::write_atomically;

/// Kafka's file name.
pub(super) const FILE: &str = "recovery-point-offset-checkpoint";
const VERSION: &str = "0";

/// Recovery points by (topic, partition).
pub(super) type RecoveryPoints = HashMap<(String, i32), i64>;

/// Reads the checkpoint in `data_dir`; empty when missing or unreadable.
pub(super) fn read(data_dir: &Path) -> RecoveryPoints {
    read_checkpoint(&data_dir.join(FILE))
}

/// Reads an offset checkpoint file in Kafka's format (this one or the
/// cleaner's); empty when missing or unreadable.
pub(super) fn read_checkpoint(path: &Path) -> RecoveryPoints {
    let Ok(text) = std::fs::read_to_string(path) else {
        return RecoveryPoints::new();
    };
    parse(&text).unwrap_or_else(|| {
        tracing::warn!(path = %path.display(), "ignoring a damaged offset checkpoint");
        RecoveryPoints::new()
    })
}

fn parse(text: &str) -> Option<RecoveryPoints> {
    let mut lines = text.lines();
    if lines.next()? != VERSION {
        return None;
    }
    let count: usize = lines.next()?.parse().ok()?;
    let mut points = RecoveryPoints::with_capacity(count);
    for line in lines.by_ref().take(count) {
        let mut fields = line.split(' ');
        let (topic, partition, offset) = (fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() {
            return None;
        }
        points.insert(
            (topic.to_string(), partition.parse().ok()?),
            offset.parse().ok()?,
        );
    }
    (points.len() == count && lines.next().is_none()).then_some(points)
}

/// Replaces the checkpoint in `data_dir` with `points`.
pub(super) fn write(data_dir: &Path, points: &[(&str, i32, i64)]) -> Result<()> {
    // DURABILITY: written (fsync, rename, directory fsync) only after the fsyncs it names.
    write_checkpoint(&data_dir.join(FILE), points)
}

/// Replaces the offset checkpoint file at `path` with `points`.
pub(super) fn write_checkpoint(path: &Path, points: &[(&str, i32, i64)]) -> Result<()> {
    let mut text = format!("{VERSION}\n{}\n", points.len());
    for (topic, partition, offset) in points {
        let _ = writeln!(text, "{topic} {partition} {offset}");
    }
    write_atomically(path, text.as_bytes())?
}

impl Catalog {
    /// Waits until some partition rolled and left a sealed segment to fsync.
    pub(crate) async fn rolled(&self) {
        self.flush_wanted.notified().await;
    }

    /// fsyncs the sealed segments that rolls left unsynced, then records the
    /// new recovery points. Runs off the produce path (a background task).
    /// False if a sync or the checkpoint failed: the caller tries again later.
    pub(crate) async fn flush_rolled(&self) -> bool {
        let mut all_done = true;
        for topic in self.topics() {
            for partition in topic.partitions() {
                match partition.flush_rolled().await {
                    Ok(()) => {}
                    // Deleted while this pass went round: nothing to sync.
                    Err(e) if e.is(ResponseError::UnknownTopicOrPartition) => {}
                    Err(e) => {
                        tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "sync of a rolled segment failed");
                        all_done = false;
                    }
                }
            }
        }
        if let Err(e) = self.write_recovery_points() {
            tracing::warn!(error = %e, "cannot write the recovery point checkpoint");
            all_done = false;
        }
        all_done
    }

    /// Writes every partition's recovery point (everything below it is fsynced).
    pub(crate) fn write_recovery_points(&self) -> Result<()> {
        let _checkpoint = self.checkpoint.lock().unwrap_or_else(|e| e.into_inner());
        let topics = self.topics();
        let points: Vec<(&str, i32, i64)> = topics
            .iter()
            .flat_map(|t| {
                t.partitions()
                    .into_iter()
                    .map(|p| (t.name.as_str(), p.index, p.recovery_point()))
            })
            .collect();
        write(&self.data_dir, &points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafkas_format_and_damage_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[("orders", 0, 42), ("orders", 1, 0), ("a.b-c", 7, 9)],
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert_eq!(text, "0\n3\norders 0 42\norders 1 0\na.b-c 7 9\n");
        let points = read(dir.path());
        assert_eq!(points.len(), 3);
        assert_eq!(points[&("orders".to_string(), 0)], 42);
        for damaged in [
            "",
            "1\n0\n",
            "0\n2\nt 0 1\n",
            "0\n1\nt 0\n",
            "0\n1\nt x 1\n",
        ] {
            assert_eq!(parse(damaged), None, "{damaged:?}");
        }
        assert!(read(&dir.path().join("missing")).is_empty());
    }
}
