//! Fuzz entry points, shared by the cargo-fuzz harness in `fuzz/` and the
//! corpus replay in `tests/fuzz_corpus.rs`. Not part of the broker's API.
//!
//! Each function takes arbitrary bytes and panics only when it finds a bug:
//!
//! - [`request`]: one request frame body through [`handler::handle`] on a real
//!   [`Context`]; any `Ok` or `Err` is fine, and an `Ok` frame must carry a
//!   correct size prefix and the request's correlation id.
//! - [`record_batch`]: [`RecordBatch::parse`]/`validate`, then [`Log::append`]
//!   on two scratch logs (CreateTime and LogAppendTime): an append either
//!   succeeds and reads back as the patched bytes, or leaves the log unchanged.
//! - [`recovery`]: the bytes become a partition directory of up to four
//!   segments, any of them damaged, left by a crash; [`Log::open`] must not
//!   panic and the whole log must read back as whole, CRC-valid batches with
//!   increasing offsets (not dense: compaction leaves gaps).
//!
//! Scratch directories live under `std::env::temp_dir()` (set `TMPDIR` to a
//! tmpfs for speed) and are removed and recreated every few hundred inputs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::group::Coordinator;
use crate::handler::{self, Context, Reply};
use crate::storage::testing::as_stored;
use crate::storage::{Log, LogConfig, RecordBatch, TimestampType};

/// The clock every scratch log is opened and appended with.
const NOW_MS: i64 = 1_700_000_000_000;
/// Inputs served by one scratch context or log before it is thrown away.
const INPUTS_PER_SCRATCH: u32 = 256;
/// A request still waiting after this long (a JoinGroup waiting for its
/// rebalance, say) counts as handled.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(20);
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

static BROKER: Mutex<Option<Broker>> = Mutex::new(None);
static LOGS: Mutex<Option<Logs>> = Mutex::new(None);

/// Drops the scratch broker and logs and removes their directories (the
/// fuzzer never does: a process exit skips static destructors).
pub fn cleanup() {
    *BROKER.lock().unwrap_or_else(|e| e.into_inner()) = None;
    *LOGS.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

// ---------------------------------------------------------------- request

struct Broker {
    ctx: Context,
    inputs: u32,
    // Dropped last: the logs above still have files open in it.
    _dir: Scratch,
}

fn new_broker() -> Broker {
    let dir = Scratch::new("broker");
    let config = Config {
        data_dir: dir.0.clone(),
        ..Config::default()
    };
    let catalog = Catalog::open(&dir.0, log_config(TimestampType::CreateTime)).expect("catalog");
    let groups = Coordinator::open(&dir.0, config.group.clone(), false).expect("coordinator");
    // A topic to produce to and fetch from, with a few records.
    let topic = catalog
        .create_topic(TOPIC, 2, Default::default(), false)
        .expect("topic");
    for partition in topic.partitions() {
        let batch = crate::storage::testing::batch(&[(b"k", b"v"), (b"k2", b"v2")], NOW_MS);
        partition.append(&batch).expect("append");
    }
    let groups = Arc::new(groups);
    let txns = crate::txn::TxnCoordinator::recover(
        &catalog,
        groups.clone(),
        (false, config.transaction_max_timeout_ms),
    )
    .expect("transactions");
    let catalog = Arc::new(catalog);
    let clients = Arc::new(crate::session::Clients::default());
    let metrics = crate::observe::Metrics::new(catalog.clone(), groups.clone(), clients.clone());
    let ctx = Context {
        txns: Arc::new(txns),
        catalog,
        node: config.node_id,
        nodes: Arc::new(crate::cluster::Nodes::single(config.node_id)),
        faults: Arc::default(),
        config: Arc::new(config),
        advertised: ("127.0.0.1".to_string(), 9092),
        listener: crate::security::SecurityProtocol::Plaintext,
        groups,
        metrics: Arc::new(metrics),
        clients,
        quotas: Arc::new(crate::quotas::ClientQuotas::open(&dir.0).expect("quotas")),
        acls: Arc::new(crate::acl::Acls::open(&dir.0).expect("acls")),
        dynamic: Arc::new(
            crate::dynamic_config::DynamicConfigs::open(
                &dir.0,
                log_config(TimestampType::CreateTime),
            )
            .expect("dynamic configs"),
        ),
        credentials: Arc::new(
            crate::security::credentials::Credentials::open(
                &dir.0,
                &[("fuzz".into(), "fuzz-secret".into())],
            )
            .expect("credentials"),
        ),
        fetch_sessions: Arc::new(crate::handler::FetchSessions::new(8)),
    };
    Broker {
        ctx,
        inputs: 0,
        _dir: dir,
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// Handles `data` as one request frame body (no size prefix). Panics if the
/// handler panics or answers with a malformed frame.
pub fn request(data: &[u8]) {
    let mut slot = BROKER.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_none_or(|b| b.inputs >= INPUTS_PER_SCRATCH) {
        *slot = None;
        *slot = Some(new_broker());
    }
    let Some(broker) = slot.as_mut() else { return };
    broker.inputs += 1;
    let frame = Bytes::copy_from_slice(data);
    if creates_many_partitions(&frame) {
        return;
    }
    let handled = runtime().block_on(async {
        // An odd correlation id makes this a connection of a SASL listener,
        // so the SASL exchanges (and their refusals) are fuzzed too.
        let sasl = data.get(7).is_some_and(|b| b & 1 == 1);
        let mut session = broker.ctx.clients.open(([127, 0, 0, 1], 9).into(), sasl);
        // A stopping broker's fetch answers at once instead of long-polling.
        session.stop.set();
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            handler::handle(&broker.ctx, frame, &mut session),
        )
        .await
    });
    if let Ok(Ok(Reply::Frame(parts))) = handled {
        let response: Vec<u8> = parts
            .iter()
            .map(|part| part.to_bytes().expect("read a fetched file range"))
            .collect::<Vec<_>>()
            .concat();
        assert!(response.len() >= 8, "response of {} bytes", response.len());
        let size = i32::from_be_bytes([response[0], response[1], response[2], response[3]]);
        assert_eq!(size as usize, response.len() - 4, "size prefix");
        assert_eq!(response[4..8], data[4..8], "correlation id");
    }
}

/// Partitions one input may create. Each costs a directory, three files and
/// fsyncs, done synchronously by the handler: a request for the allowed
/// 100,000 takes minutes on a real disk and would dominate the fuzzer's time
/// while exercising nothing new.
const MAX_NEW_PARTITIONS: i64 = 64;

/// True for a CreateTopics or CreatePartitions request asking for more than
/// [`MAX_NEW_PARTITIONS`]; such inputs are skipped.
fn creates_many_partitions(frame: &Bytes) -> bool {
    use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreateTopicsRequest};
    let Ok(req) = crate::protocol::Request::parse(frame.clone()) else {
        return false;
    };
    let wanted: i64 = match req.api_key {
        ApiKey::CreateTopics => req.decode::<CreateTopicsRequest>().map_or(0, |r| {
            r.topics
                .iter()
                .map(|t| i64::from(t.num_partitions).max(t.assignments.len() as i64))
                .sum()
        }),
        ApiKey::CreatePartitions => req
            .decode::<CreatePartitionsRequest>()
            .map_or(0, |r| r.topics.iter().map(|t| i64::from(t.count)).sum()),
        _ => 0,
    };
    wanted > MAX_NEW_PARTITIONS
}

// ---------------------------------------------------------------- record_batch

struct Logs {
    logs: Vec<Log>,
    inputs: u32,
    _dir: Scratch,
}

fn new_logs() -> Logs {
    let dir = Scratch::new("logs");
    let logs = [TimestampType::CreateTime, TimestampType::LogAppendTime]
        .into_iter()
        .enumerate()
        .map(|(i, t)| Log::open(&dir.0.join(format!("t-{i}")), log_config(t), NOW_MS).expect("log"))
        .collect();
    Logs {
        logs,
        inputs: 0,
        _dir: dir,
    }
}

/// Parses `data` as a record batch, then appends it to two scratch logs.
/// Panics if a view disagrees with its bytes or an append breaks the log.
pub fn record_batch(data: &[u8]) {
    if let Ok(batch) = RecordBatch::parse(data) {
        assert_eq!(batch.as_bytes().len(), batch.size());
        assert!(batch.size() <= data.len());
        if batch.validate().is_ok() {
            assert!(batch.record_count() > 0);
            assert_eq!(
                batch.last_offset(),
                batch
                    .base_offset()
                    .saturating_add(i64::from(batch.last_offset_delta()))
            );
        }
    }
    let mut slot = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    if slot.as_ref().is_none_or(|l| l.inputs >= INPUTS_PER_SCRATCH) {
        *slot = None;
        *slot = Some(new_logs());
    }
    let Some(logs) = slot.as_mut() else { return };
    logs.inputs += 1;
    for log in &mut logs.logs {
        append_checked(log, data);
    }
}

/// Appends `data`: either it reads back exactly as the log stores it (see
/// [`as_stored`]), after everything that was there, or nothing changes.
fn append_checked(log: &mut Log, data: &[u8]) {
    let end = log.end_offset();
    let before = read_all(log, log.start_offset());
    match log.append(data, NOW_MS) {
        Ok(info) if !info.duplicate => {
            assert_eq!(info.base_offset, end, "first offset assigned");
            assert_eq!(log.end_offset(), info.last_offset + 1, "end offset");
            let after = read_all(log, log.start_offset());
            let append_time = (info.log_append_time >= 0).then_some(info.log_append_time);
            let stored = as_stored(data, info.base_offset, append_time);
            assert_eq!(after.len(), before.len() + data.len(), "bytes appended");
            assert!(after[..before.len()] == before[..], "old bytes changed");
            assert!(after[before.len()..] == stored[..], "new bytes differ");
        }
        _ => {
            assert_eq!(log.end_offset(), end, "end offset moved");
            assert!(read_all(log, log.start_offset()) == before, "log changed");
        }
    }
}

/// Every byte from the batch holding `from` to the end offset. Panics unless
/// the reads return whole, CRC-valid batches with increasing offsets ending
/// there (gaps are allowed: a compacted log has them, and in a compacted log
/// the offsets up to the end may hold no batch at all).
fn read_all(log: &Log, from: i64) -> Vec<u8> {
    let end = log.end_offset();
    let compacted = log.config().cleanup_policy.compacts();
    let mut out = Vec::new();
    let mut offset = from;
    while offset < end {
        let bytes = log
            .read(offset, 64 * 1024)
            .and_then(|s| {
                s.read()
                    .map_err(|e| crate::storage::Error::io(log.dir(), e))
            })
            .unwrap_or_else(|e| panic!("read at {offset} (end {end}): {e}"));
        if bytes.is_empty() && compacted {
            return out;
        }
        assert!(!bytes.is_empty(), "nothing at {offset} below end {end}");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let batch = RecordBatch::parse(rest).expect("whole batch");
            batch.validate().expect("valid batch");
            if out.is_empty() {
                assert!(
                    batch.last_offset() >= offset,
                    "a read returns what holds {offset}"
                );
            } else {
                assert!(batch.base_offset() >= offset, "offsets increase");
            }
            out.extend_from_slice(batch.as_bytes());
            offset = batch.last_offset() + 1;
            rest = &rest[batch.size()..];
        }
    }
    assert_eq!(offset.max(from), end, "reads end at the end offset");
    out
}

// ---------------------------------------------------------------- recovery

/// Splits the input into length-prefixed (u16 BE) parts; the last part may be short.
fn take<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return std::mem::take(data);
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (part, rest) = rest.split_at(len);
    *data = rest;
    part
}

/// Writes the partition directory described by `data` and opens it as a log
/// after a crash. Layout: a flags byte (bits 0-1: how many segments follow
/// the first, up to three; bit 2: the log is compacted, so its segments
/// may end before the next begins), then for each following segment a u32 BE gap
/// from the previous base offset (at least 1), then `.log`, `.index`,
/// `.timeindex` of each segment as u16-length-prefixed parts. Any of them
/// may be damaged.
pub fn recovery(data: &[u8]) {
    let mut data = data;
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    data = rest;
    let mut bases = vec![0i64];
    for _ in 0..(flags & 3) {
        let Some((gap, rest)) = data.split_first_chunk::<4>() else {
            return;
        };
        data = rest;
        let previous = bases.last().copied().unwrap_or(0);
        bases.push(previous + i64::from(u32::from_be_bytes(*gap)).max(1));
    }
    let dir = Scratch::new("recovery");
    let partition = dir.0.join("t-0");
    std::fs::create_dir_all(&partition).expect("partition dir");
    for base in &bases {
        for ext in ["log", "index", "timeindex"] {
            let path = partition.join(format!("{base:020}.{ext}"));
            std::fs::write(&path, take(&mut data)).expect("write segment file");
        }
    }
    let mut config = log_config(TimestampType::CreateTime);
    if flags & 4 != 0 {
        config.cleanup_policy = crate::storage::CleanupPolicy::Compact;
    }
    let Ok(mut log) = Log::open(&partition, config, NOW_MS) else {
        return;
    };
    // With no recovery point every segment was scanned: the whole log must
    // read back as whole, valid batches with increasing offsets.
    let start = log.start_offset();
    read_all(&log, start);
    let valid = crate::storage::testing::batch(&[(b"k", b"v")], NOW_MS);
    append_checked_from(&mut log, &valid, start);
}

/// [`append_checked`] with the strict reads starting at `from`.
fn append_checked_from(log: &mut Log, data: &[u8], from: i64) {
    let end = log.end_offset();
    let info = log.append(data, NOW_MS).expect("append after recovery");
    assert_eq!(info.base_offset, end);
    let after = read_all(log, from);
    let append_time = (info.log_append_time >= 0).then_some(info.log_append_time);
    let stored = as_stored(data, info.base_offset, append_time);
    assert!(after.ends_with(&stored), "appended batch reads back");
}
