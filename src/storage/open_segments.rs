//! The bound on sealed segment files held open.
//!
//! A sealed segment's `.log` is opened when first read and then kept open
//! for the next read, up to a number of such files shared by every log of
//! the broker. Past it, one not read since the clock hand last passed it is
//! closed (the CLOCK approximation of least recently used), to be opened
//! again when read again. A reader that already holds the file keeps its
//! descriptor until it is done with it, and a read of the segment meanwhile
//! takes that descriptor back rather than opening another. Active
//! segments are not counted: each partition holds its own open until the
//! segment is sealed.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::disk::{Disk, DiskFile, RealDisk};

/// Where a log's files live: the disk they are on, and the bound on sealed
/// segment files held open that the logs of a broker share.
pub type LogFiles = (Arc<dyn Disk>, Arc<OpenSegments>);

/// The real disk, with no bound on open files: a log or catalog opened on
/// its own (tools, tests).
pub fn real_unbounded() -> LogFiles {
    (Arc::new(RealDisk), OpenSegments::unbounded())
}

/// The sealed segment files held open, at most `max` of them.
#[derive(Debug)]
pub struct OpenSegments {
    max: usize,
    /// Every slot holding a file, oldest first; the hand is the front.
    clock: Mutex<VecDeque<Weak<Slot>>>,
}

/// A segment's open file, if it has one.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    file: Mutex<Option<DiskFile>>,
    /// Read since the hand last passed.
    used: AtomicBool,
    /// The segment is sealed: its file counts toward the bound.
    counted: AtomicBool,
    /// In the clock (changed under its lock only): a slot is counted once.
    in_clock: AtomicBool,
    /// The file last closed past the bound, open while a reader holds it
    /// (a store's path names one file for the store's life, so it is still
    /// this segment's).
    released: Mutex<Weak<File>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slot {
    /// A slot holding `file` (an active segment's, not counted).
    pub(crate) fn holding(file: DiskFile) -> Slot {
        Slot {
            file: Mutex::new(Some(file)),
            ..Slot::default()
        }
    }
    /// A sealed segment's slot, its file opened when first read.
    pub(crate) fn sealed() -> Slot {
        Slot {
            counted: AtomicBool::new(true),
            ..Slot::default()
        }
    }
    /// Whether the segment is sealed, and its file counts toward the bound.
    pub(crate) fn is_counted(&self) -> bool {
        self.counted.load(Ordering::Relaxed)
    }
    pub(crate) fn set_counted(&self, counted: bool) {
        self.counted.store(counted, Ordering::Relaxed);
    }
    /// The open file, marked as read.
    pub(crate) fn get(&self) -> Option<DiskFile> {
        let file = lock(&self.file).clone();
        if file.is_some() {
            self.used.store(true, Ordering::Relaxed);
        }
        file
    }
    /// Keeps `file` (just opened, so marked as read), unless another reader
    /// got there first; returns the one kept.
    pub(crate) fn keep(&self, file: DiskFile) -> DiskFile {
        self.used.store(true, Ordering::Relaxed);
        lock(&self.file).get_or_insert(file).clone()
    }
    /// The file, if open, without marking it read.
    pub(crate) fn peek(&self) -> Option<DiskFile> {
        lock(&self.file).clone()
    }
    /// The file closed past the bound, if a reader still holds it open.
    pub(crate) fn still_open(&self) -> Option<Arc<File>> {
        lock(&self.released).upgrade()
    }
}

impl OpenSegments {
    /// At most `max` sealed segment files open at once (at least one).
    pub fn new(max: usize) -> Arc<OpenSegments> {
        Arc::new(OpenSegments {
            max: max.max(1),
            clock: Mutex::new(VecDeque::new()),
        })
    }

    /// No bound: for a log opened on its own (tools, tests).
    pub fn unbounded() -> Arc<OpenSegments> {
        OpenSegments::new(usize::MAX)
    }

    /// Counts `slot`, a sealed segment's that now holds a file, and closes
    /// others' files while more than the bound are open.
    pub(crate) fn admit(&self, slot: &Arc<Slot>) {
        let mut clock = lock(&self.clock);
        // Segments deleted (retention, compaction) or active again leave no place taken.
        clock.retain(|hand| match hand.upgrade() {
            Some(held) if held.is_counted() => true,
            Some(held) => {
                held.in_clock.store(false, Ordering::Relaxed);
                false
            }
            None => false,
        });
        if !slot.in_clock.swap(true, Ordering::Relaxed) {
            clock.push_back(Arc::downgrade(slot));
        }
        // Each slot is passed at most twice: once to clear its mark, once to close it.
        let mut passes = 2 * clock.len();
        while clock.len() > self.max && passes > 0 {
            passes -= 1;
            let Some(hand) = clock.pop_front() else { break };
            let Some(held) = hand.upgrade() else { continue };
            if !held.is_counted() {
                // Active again since the sweep above: it stays open, uncounted.
                held.in_clock.store(false, Ordering::Relaxed);
            } else if held.used.swap(false, Ordering::Relaxed) {
                clock.push_back(hand);
            } else {
                held.in_clock.store(false, Ordering::Relaxed);
                // Under the file's lock, so a read that finds no file
                // finds it released.
                let mut file = lock(&held.file);
                if let Some(taken) = file.take() {
                    *lock(&held.released) = Arc::downgrade(&taken.file);
                }
            }
        }
    }

    /// How many sealed segment files are counted as open now.
    pub fn open_now(&self) -> usize {
        lock(&self.clock)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|slot| lock(&slot.file).is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealDisk;

    fn opened(dir: &std::path::Path, name: &str) -> Arc<Slot> {
        let file = DiskFile::open(&dir.join(name), Arc::new(RealDisk)).unwrap();
        let slot = Arc::new(Slot::sealed());
        slot.keep(file);
        slot
    }

    #[test]
    fn past_the_bound_the_file_not_read_since_the_hand_passed_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let open = OpenSegments::new(2);
        let (a, b, c) = (
            opened(dir.path(), "a"),
            opened(dir.path(), "b"),
            opened(dir.path(), "c"),
        );
        open.admit(&a);
        open.admit(&b);
        open.admit(&b);
        assert_eq!(open.open_now(), 2, "a slot admitted twice is counted once");
        // The hand passed both (as it does when the bound is reached), then a is read.
        for slot in [&a, &b] {
            slot.used.store(false, Ordering::Relaxed);
        }
        assert!(a.get().is_some(), "a is read again");
        let reader = b.peek().unwrap();
        open.admit(&c);
        assert_eq!(open.open_now(), 2);
        assert!(b.peek().is_none(), "b, not read since, is closed");
        assert!(a.peek().is_some() && c.peek().is_some());
        // A reader keeps the closed file until it is done, and b's next
        // read can take that descriptor back.
        let mut buf = [0u8; 0];
        reader.read_at(&mut buf, 0).unwrap();
        let held = b.still_open().expect("still held by the reader");
        assert!(Arc::ptr_eq(&held, &reader.file));
        drop((held, reader));
        assert!(b.still_open().is_none(), "closed once the reader is done");

        drop(a);
        let d = opened(dir.path(), "d");
        open.admit(&d);
        assert_eq!(open.open_now(), 2, "a dropped segment frees its place");
        assert!(c.peek().is_some() && d.peek().is_some());

        // A segment active again stays open, and leaves the count.
        c.set_counted(false);
        let e = opened(dir.path(), "e");
        open.admit(&e);
        assert!(
            c.peek().is_some(),
            "an active segment's file is never closed"
        );
        assert_eq!(open.open_now(), 2);
    }
}
