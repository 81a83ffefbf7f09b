//! The group coordinator: Kafka's classic consumer-group protocol and the
//! consumer group protocol of KIP-848 ([`consumer`]), with committed offsets
//! and group metadata kept in an internal partition log.
//!
//! Every group lives in memory under one `std::sync::Mutex` (never held across
//! an `.await`). A JoinGroup or SyncGroup that must wait for the rest of the
//! group parks a oneshot in its member and the handler awaits it; a timer task
//! ([`Coordinator::spawn_timer`]) runs session, join and sync deadlines every
//! [`TICK`], so a consumer that vanishes is removed without anyone's help.
//!
//! ## The internal log `<data_dir>/__consumer_offsets-0`
//!
//! A [`crate::storage::Log`] like any partition (16 MiB segments by default),
//! not listed in the catalog, so Metadata never shows it. Each record is an
//! uncompressed RecordBatch v2 record whose key and value follow Kafka's own
//! `__consumer_offsets` schemas (big-endian, strings as i16 length + UTF-8,
//! bytes as i32 length), so Kafka's offsets decoder can read it:
//!
//! | key (i16 version first) | value (i16 version first) |
//! |---|---|
//! | 1: OffsetCommitKey `group, topic, partition i32` | 3: `offset i64, leader_epoch i32, metadata, commit_timestamp i64` |
//! | 2: GroupMetadataKey `group` | 3: `protocol_type, generation i32, protocol?, leader?, state_timestamp i64, [member_id, instance_id?, client_id, client_host, rebalance_timeout i32, session_timeout i32, subscription bytes, assignment bytes]` |
//!
//! Groups of the consumer group protocol (KIP-848, [`consumer`]) add Kafka's
//! flexible records of key versions 3 and 5–8 (group epoch, member
//! subscription, target assignment, current assignment); see
//! [`consumer::records`].
//!
//! A null value is a tombstone (offset deleted, group deleted). Start-up
//! replays the log from its start; the last value of each key wins.
//! Offsets of a transaction (TxnOffsetCommit) are in transactional batches
//! of its producer and count at its COMMIT marker, each only if its record
//! is the later one ([`staged`]).
//!
//! Durability: an OffsetCommit is appended before it is acknowledged, and with
//! `flush = "always"` fsynced too (commits share fsyncs). Group records ride
//! along with the next fsync.
//!
//! The log is compacted: the log cleaner's threads call
//! [`Coordinator::clean`], which keeps the latest entry of each key (a
//! deleted group's or offset's tombstone goes after `delete.retention.ms`).

pub(crate) mod admin;
mod codec;
mod config;
pub(crate) mod consumer;
mod join;
mod membership;
mod modern;
mod offsets;
mod persist;
mod rebalance;
mod staged;
mod state;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::GroupConfig;
pub(crate) use join::JoinRequest;
pub(crate) use membership::{Leaving, SyncRequest};
pub(crate) use modern::DescribedMember;
pub(crate) use offsets::{Commit, FetchedOffset, TopicResults};
pub(crate) use state::{JoinResult, SyncResult};
pub(crate) use store::OFFSETS_DIR;

use crate::internal_log::InternalLog;
use crate::storage::LogFiles;
use state::{Group, Pending};

/// How often the timer task runs the groups' deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// The group coordinator of this broker. Thread-safe; share it in an `Arc`.
#[derive(Debug)]
pub(crate) struct Coordinator {
    inner: Mutex<Inner>,
    config: GroupConfig,
    flush_always: bool,
    /// Held by the one task fsyncing the offsets log for everyone.
    sync_turn: crate::flush::FlushTurn,
}

#[derive(Debug)]
struct Inner {
    groups: HashMap<String, Group>,
    store: InternalLog,
    /// Group metadata records whose write failed, written before the next.
    unwritten: Vec<crate::internal_log::KeyValue>,
    /// Offsets of transactions not yet ended.
    staged: store::Staged,
    /// The offset of each producer's last marker in the offsets log not
    /// yet seen fsynced, which a retried EndTxn must wait for.
    markers: HashMap<i64, i64>,
    stopping: bool,
    last_expiry: Instant,
}

impl Coordinator {
    /// Opens the internal log under `data_dir` on `files` (the partition
    /// logs' disk and open-file bound) and restores groups and offsets from it.
    pub(crate) fn open(
        at: (&Path, LogFiles),
        config: GroupConfig,
        flush_always: bool,
    ) -> crate::Result<Coordinator> {
        let (store, restored) = store::open(at, config.offsets_segment_bytes)?;
        let now = Instant::now();
        let mut groups = HashMap::new();
        for (id, value) in restored.groups {
            groups.insert(id.clone(), Group::from_value(&id, value, now));
        }
        for (id, offsets) in restored.offsets {
            if offsets.is_empty() {
                continue;
            }
            let group = group_entry(&mut groups, &id);
            group.offsets = offsets;
        }
        let session = Duration::from_millis(config.consumer_session_timeout_ms.max(0) as u64);
        for (id, records) in restored.consumer {
            let mut c = consumer::ConsumerGroup::default();
            for record in records {
                c.restore(record, now);
            }
            c.finish_restore(now, session);
            let group = group_entry(&mut groups, &id);
            group.consumer = Some(c);
        }
        tracing::debug!(groups = groups.len(), "group coordinator restored");
        let inner = Inner {
            groups,
            store,
            unwritten: Vec::new(),
            staged: restored.staged,
            markers: HashMap::new(),
            stopping: false,
            last_expiry: now,
        };
        Ok(Coordinator {
            inner: Mutex::new(inner),
            config,
            flush_always,
            sync_turn: Default::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock leaves at worst one group half-updated; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// JoinGroup; waits until the group's join phase completes.
    pub(crate) async fn join(&self, req: JoinRequest) -> JoinResult {
        let member_id = req.member_id.clone();
        let pending = {
            let mut inner = self.lock();
            let pending = inner.join(req, &self.config);
            inner.persist();
            pending
        };
        match pending {
            Pending::Ready(result) => result,
            Pending::Wait(rx) => rx.await.unwrap_or_else(|_| {
                JoinResult::error(ResponseError::CoordinatorNotAvailable, &member_id)
            }),
        }
    }

    /// SyncGroup; a follower waits for the leader's assignment.
    pub(crate) async fn sync(&self, req: SyncRequest) -> SyncResult {
        let pending = {
            let mut inner = self.lock();
            let now = Instant::now();
            let stopping = inner.stopping;
            let pending = match inner.groups.get_mut(&req.group_id) {
                _ if stopping => {
                    Pending::Ready(SyncResult::error(ResponseError::CoordinatorNotAvailable))
                }
                Some(group) => group.sync(req, now),
                None => Pending::Ready(SyncResult::error(ResponseError::UnknownMemberId)),
            };
            inner.persist();
            pending
        };
        match pending {
            Pending::Ready(result) => result,
            Pending::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| SyncResult::error(ResponseError::CoordinatorNotAvailable)),
        }
    }

    /// Heartbeat: keeps the member's session alive and tells it when to rejoin.
    pub(crate) fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let mut inner = self.lock();
        match inner.groups.get_mut(group_id) {
            Some(group) => group.heartbeat(member_id, instance, generation, Instant::now()),
            None => Err(ResponseError::UnknownMemberId),
        }
    }

    /// LeaveGroup for one or more members; the outer error is group-wide.
    pub(crate) fn leave(
        &self,
        group_id: &str,
        leaving: &[Leaving],
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut inner = self.lock();
        let now = Instant::now();
        let results = match inner.groups.get_mut(group_id) {
            Some(group) => group.leave(leaving, now),
            None => leaving
                .iter()
                .map(|_| Err(ResponseError::UnknownMemberId))
                .collect(),
        };
        inner.persist();
        Ok(results)
    }

    /// Runs every group's deadlines and, now and then, offset expiry.
    pub(crate) fn tick(&self) {
        let mut inner = self.lock();
        let now = Instant::now();
        let delay = self.config.initial_rebalance_delay_ms;
        for group in inner.groups.values_mut() {
            group.tick(now, delay);
            if let Some(c) = &mut group.consumer {
                c.tick(now);
            }
        }
        let every = Duration::from_millis(self.config.offsets_retention_check_interval_ms);
        if now.duration_since(inner.last_expiry) >= every {
            inner.last_expiry = now;
            inner.expire_offsets(self.config.offsets_retention_ms);
        }
        inner.persist();
    }

    /// Starts the timer task; when `stop` turns true it fails every parked
    /// JoinGroup and SyncGroup (so the server can drain) and ends.
    pub(crate) fn spawn_timer(
        self: &std::sync::Arc<Self>,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let coordinator = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => coordinator.tick(),
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            coordinator.stop();
        })
    }

    /// Refuses new joins and fails every waiting JoinGroup and SyncGroup with
    /// COORDINATOR_NOT_AVAILABLE, so clients look for the coordinator again.
    pub(crate) fn stop(&self) {
        let mut inner = self.lock();
        inner.stopping = true;
        for group in inner.groups.values_mut() {
            for member in group.members.values_mut() {
                member.fail_waiters(ResponseError::CoordinatorNotAvailable);
            }
        }
    }
}

impl Inner {
    fn join(&mut self, req: JoinRequest, cfg: &GroupConfig) -> Pending<JoinResult> {
        let fail = |e| Pending::Ready(JoinResult::error(e, &req.member_id));
        if self.stopping {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        if req.group_id.is_empty() {
            return fail(ResponseError::InvalidGroupId);
        }
        if !(cfg.min_session_timeout_ms..=cfg.max_session_timeout_ms)
            .contains(&req.session_timeout_ms)
        {
            return fail(ResponseError::InvalidSessionTimeout);
        }
        if let Err(e) = self.classic_join_allowed(&req.group_id) {
            return fail(e);
        }
        if !self.groups.contains_key(&req.group_id) {
            if !req.member_id.is_empty() {
                return fail(ResponseError::UnknownMemberId);
            }
            let group = Group::new(&req.group_id, crate::util::now_ms());
            self.groups.insert(req.group_id.clone(), group);
        }
        match self.groups.get_mut(&req.group_id) {
            Some(group) => group.join(req, Instant::now(), cfg),
            None => fail(ResponseError::CoordinatorNotAvailable),
        }
    }
}

/// A crate error as the Kafka error a client sees.
pub(crate) fn response_error(e: &crate::Error) -> ResponseError {
    ResponseError::try_from_code(e.code()).unwrap_or(ResponseError::UnknownServerError)
}

/// Group `id`, created empty if it is not there yet.
fn group_entry<'a>(groups: &'a mut HashMap<String, Group>, id: &str) -> &'a mut Group {
    groups
        .entry(id.to_string())
        .or_insert_with(|| Group::new(id, crate::util::now_ms()))
}

/// A failed write of commits (OffsetCommit, TxnOffsetCommit) as the Kafka
/// error a client sees: too large for one batch of the offsets log is
/// INVALID_COMMIT_OFFSET_SIZE, as in Kafka.
fn commit_error(e: &crate::Error) -> ResponseError {
    match response_error(e) {
        ResponseError::MessageTooLarge => ResponseError::InvalidCommitOffsetSize,
        code => code,
    }
}

/// Turns each success in `results` into `code`: what they said was written
/// was not (or not durably).
fn fail_successes<T>(results: &mut [Result<T, ResponseError>], code: ResponseError) {
    results
        .iter_mut()
        .filter(|r| r.is_ok())
        .for_each(|r| *r = Err(code));
}

#[cfg(test)]
mod tests;
