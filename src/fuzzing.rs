//! Fuzz entry points, shared by the cargo-fuzz harness in `fuzz/` and the
//! corpus replay in `tests/fuzz_corpus.rs`. Not part of the broker's API.
//!
//! Each function takes arbitrary bytes and panics only when it finds a bug:
//!
//! - [`request`]: one request frame body through
//!   [`crate::handler::handle`] on a real [`crate::handler::Context`]; any
//!   `Ok` or `Err` is fine, and an `Ok` frame must carry a correct size
//!   prefix and the request's correlation id.
//! - [`record_batch`]: [`crate::storage::RecordBatch::parse`]/`validate`,
//!   then [`crate::storage::Log::append`] on two scratch logs (CreateTime
//!   and LogAppendTime): an append either succeeds and reads back as the
//!   patched bytes, or leaves the log unchanged.
//! - [`recovery`]: the bytes become a partition directory of up to four
//!   segments, any of them damaged, left by a crash;
//!   [`crate::storage::Log::open`] must not panic and the whole log must
//!   read back as whole, CRC-valid batches with increasing offsets (not
//!   dense: compaction leaves gaps).
//!
//! Scratch directories live under `std::env::temp_dir()` (set `TMPDIR` to a
//! tmpfs for speed) and are removed and recreated every few hundred inputs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::storage::{LogConfig, TimestampType};

mod request;
mod storage;

pub use request::request;
pub use storage::{record_batch, recovery};

/// The clock every scratch log is opened and appended with.
const NOW_MS: i64 = 1_700_000_000_000;
/// Inputs served by one scratch context or log before it is thrown away.
const INPUTS_PER_SCRATCH: u32 = 256;
/// The topic every scratch broker starts with (2 partitions, 2 records each).
pub const TOPIC: &str = "t";

/// A directory under the temp dir, unique to this process, removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sluice-fuzz-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Small segments and indexes, so rolls and index entries happen on tiny inputs.
fn log_config(timestamp_type: TimestampType) -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        segment_index_bytes: 1024,
        index_interval_bytes: 128,
        message_timestamp_type: timestamp_type,
        ..LogConfig::default()
    }
}

/// Drops the scratch broker and logs and removes their directories (the
/// fuzzer never does: a process exit skips static destructors).
pub fn cleanup() {
    *request::BROKER.lock().unwrap_or_else(|e| e.into_inner()) = None;
    *storage::LOGS.lock().unwrap_or_else(|e| e.into_inner()) = None;
}
