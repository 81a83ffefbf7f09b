//! Coordinator tests without sockets: timers driven by synthetic instants, and
//! the offsets log replayed after reopen and after snapshots.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::state::{Group, GroupState, Pending};
use super::*;
use crate::storage::real_unbounded;

fn request(group: &str, member: &str) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        member_id: member.into(),
        instance_id: None,
        client_id: "c".into(),
        client_host: String::new(),
        session_timeout_ms: 6000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"m"))],
        require_known_member_id: false,
        supports_skip_assignment: false,
    }
}

fn joined(pending: Pending<JoinResult>) -> JoinResult {
    match pending {
        Pending::Ready(r) => r,
        Pending::Wait(mut rx) => rx.try_recv().expect("the join completed"),
    }
}

#[test]
fn a_silent_member_expires_and_a_missing_rejoin_is_dropped() {
    let (cfg, t0) = (GroupConfig::default(), Instant::now());
    let mut group = Group::new("g", 0);
    let a = joined(group.join(request("g", ""), t0, &cfg));
    assert_eq!((a.error, a.generation, a.members.len()), (None, 1, 1));
    let sync = |member: &str| SyncRequest {
        group_id: "g".into(),
        generation: 1,
        member_id: member.into(),
        instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: HashMap::from([(member.to_string(), Bytes::from_static(b"p0"))]),
    };
    assert!(matches!(
        group.sync(sync(&a.member_id), t0),
        Pending::Wait(_)
    ));
    assert_eq!(group.state, GroupState::Stable);

    // B joins: A must rejoin within the rebalance timeout or be dropped.
    let b = group.join(request("g", ""), t0, &cfg);
    assert_eq!(
        group.heartbeat(&a.member_id, None, 1, t0),
        Err(ResponseError::RebalanceInProgress)
    );
    group.tick(t0 + Duration::from_secs(11), 0);
    let b = joined(b);
    assert_eq!(
        (b.generation, b.leader.clone(), group.members.len()),
        (2, b.member_id.clone(), 1)
    );
    assert_eq!(
        group.heartbeat(&a.member_id, None, 2, t0),
        Err(ResponseError::UnknownMemberId)
    );

    // B never syncs nor heartbeats: after the sync deadline it is removed and the group empties.
    group.tick(t0 + Duration::from_secs(22), 0);
    assert_eq!(
        (group.state, group.generation, group.members.len()),
        (GroupState::Empty, 3, 0)
    );
}

fn commit(topic: &str, partition: i32, offset: i64) -> Commit {
    Commit {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: -1,
        metadata: Some(format!("at {offset}")),
    }
}

#[tokio::test]
async fn offsets_survive_reopen_and_the_cleaner_keeps_the_log_small() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = GroupConfig {
        offsets_segment_bytes: 16 * 1024,
        ..GroupConfig::default()
    };
    let coordinator =
        Coordinator::open((dir.path(), real_unbounded()), cfg.clone(), false).expect("open");
    for round in 0..2000 {
        let results = coordinator
            .commit("g", -1, "", None, &[commit("t", round % 4, round.into())])
            .await;
        assert_eq!(results, vec![Ok(())]);
    }
    let _ = coordinator
        .commit("gone", -1, "", None, &[commit("t", 0, 1)])
        .await;
    assert_eq!(
        coordinator.delete_groups(&["gone".into()]).await,
        vec![Ok(())]
    );
    let mut first_dirty = 0;
    let mut passes = 0;
    while let Some(next) = coordinator.clean(1 << 20, first_dirty).expect("clean") {
        first_dirty = next;
        passes += 1;
    }
    assert_eq!(passes, 1, "one pass cleans everything sealed");
    coordinator.close().expect("close");
    let size: u64 = std::fs::read_dir(dir.path().join(OFFSETS_DIR))
        .expect("offsets dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(
        size < 3 * 16 * 1024,
        "the offsets log holds {size} bytes after 2000 commits"
    );

    let coordinator =
        Coordinator::open((dir.path(), real_unbounded()), cfg, false).expect("reopen");
    let fetched = coordinator
        .fetch_offsets("g", None, (None, -1))
        .expect("fetch");
    let offsets: Vec<(i32, i64, String)> = fetched[0]
        .1
        .iter()
        .map(|(p, f)| {
            let f = f.clone().expect("committed");
            (*p, f.offset, f.metadata)
        })
        .collect();
    let want: Vec<(i32, i64, String)> = (0..4)
        .map(|p| (p, 1996 + i64::from(p), format!("at {}", 1996 + p)))
        .collect();
    assert_eq!(offsets, want);
    assert_eq!(
        coordinator.describe("gone").expect("describe").state,
        "Dead"
    );
    assert_eq!(
        coordinator
            .fetch_offsets("gone", None, (None, -1))
            .expect("fetch"),
        vec![]
    );
}

#[test]
fn a_consumer_group_comes_back_from_its_records_without_a_rebalance() {
    use crate::catalog::TopicImage;
    use consumer::HeartbeatRequest;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = GroupConfig::default();
    let topic = uuid::Uuid::new_v4();
    let image = TopicImage {
        generation: 1,
        topics: [("t".to_string(), (topic, 4))].into(),
    };
    let join = |member: &str| HeartbeatRequest {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 10_000,
        topic_names: Some(vec!["t".into()]),
        owned: Some(Default::default()),
        ..HeartbeatRequest::default()
    };
    let beat = |member: &str, epoch: i32| HeartbeatRequest {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        ..HeartbeatRequest::default()
    };
    let coordinator =
        Coordinator::open((dir.path(), real_unbounded()), cfg.clone(), false).expect("open");
    let a = coordinator
        .consumer_heartbeat(join("a"), &image, None)
        .expect("a joins");
    let owned = a.assignment.clone().expect("a's assignment");
    let group = coordinator.consumer_describe("g").expect("describe");
    coordinator.close().expect("close");

    let coordinator =
        Coordinator::open((dir.path(), real_unbounded()), cfg, false).expect("reopen");
    let again = coordinator
        .consumer_heartbeat(beat("a", a.member_epoch), &image, None)
        .expect("the member's epoch is still good");
    assert_eq!(again.member_epoch, a.member_epoch);
    assert_eq!(again.assignment, None, "nothing changed");
    let after = coordinator.consumer_describe("g").expect("describe");
    assert_eq!(
        (after.epoch, after.assignment_epoch, after.state),
        (group.epoch, group.assignment_epoch, "Stable")
    );
    assert_eq!(after.members[0].assigned, owned);

    // The group still moves on: a second member splits the topic.
    let b = coordinator
        .consumer_heartbeat(join("b"), &image, None)
        .expect("b joins");
    assert!(b.member_epoch > a.member_epoch);
    assert_eq!(
        coordinator
            .consumer_describe("g")
            .expect("describe")
            .members
            .len(),
        2
    );
}

#[test]
fn group_records_whose_write_failed_are_written_by_the_next_tick() {
    use crate::catalog::TopicImage;
    use crate::storage::testing::{DiskOp, FaultyDisk};
    use consumer::HeartbeatRequest;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = GroupConfig::default();
    let image = TopicImage {
        generation: 1,
        topics: [("t".to_string(), (uuid::Uuid::new_v4(), 4))].into(),
    };
    let disk = FaultyDisk::new();
    let coordinator =
        Coordinator::open((dir.path(), disk.unbounded()), cfg.clone(), false).expect("open");
    disk.fail(DiskOp::Write, OFFSETS_DIR, libc::EIO);
    let join = HeartbeatRequest {
        group_id: "g".into(),
        member_id: "a".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 10_000,
        topic_names: Some(vec!["t".into()]),
        owned: Some(Default::default()),
        ..HeartbeatRequest::default()
    };
    let a = coordinator
        .consumer_heartbeat(join, &image, None)
        .expect("a joins");
    assert!(
        disk.injected() > 0,
        "the group's records met the failing disk"
    );

    disk.clear();
    coordinator.tick();
    // A crash: no clean close, which would write anything left itself.
    drop(coordinator);

    let coordinator =
        Coordinator::open((dir.path(), real_unbounded()), cfg, false).expect("reopen");
    let beat = HeartbeatRequest {
        group_id: "g".into(),
        member_id: "a".into(),
        member_epoch: a.member_epoch,
        rebalance_timeout_ms: -1,
        ..HeartbeatRequest::default()
    };
    let again = coordinator
        .consumer_heartbeat(beat, &image, None)
        .expect("the member's epoch was written once the disk recovered");
    assert_eq!(again.member_epoch, a.member_epoch);
}

#[tokio::test]
async fn transactional_offsets_count_at_their_commit_marker_through_cleaning_and_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = GroupConfig {
        offsets_segment_bytes: 16 * 1024,
        ..GroupConfig::default()
    };
    let at = (dir.path(), real_unbounded());
    let coordinator = Coordinator::open(at.clone(), cfg.clone(), false).expect("open");
    let offset_of = |c: &Coordinator, partition: i32| {
        let fetched = c
            .fetch_offsets("g", Some(&[("t".into(), vec![partition])]), (None, -1))
            .expect("fetch");
        fetched[0].1[0].1.as_ref().map(|f| f.offset)
    };
    // Producer 7 commits every even round and aborts every odd one.
    for round in 0..1000i64 {
        let staged = coordinator
            .stage("g", (7, 0), &[commit("t", 0, round)])
            .await;
        assert_eq!(staged, vec![Ok(())]);
        assert_eq!(
            offset_of(&coordinator, 0),
            (round > 0).then(|| (round - 1) / 2 * 2),
            "not counted before its marker"
        );
        let commit = round % 2 == 0;
        coordinator
            .end_transaction((7, 0), commit)
            .await
            .expect("end");
    }
    assert_eq!(offset_of(&coordinator, 0), Some(998));
    let mut first_dirty = 0;
    while let Some(next) = coordinator.clean(1 << 20, first_dirty).expect("clean") {
        first_dirty = next;
    }
    // Left open by a crash: producer 8's offsets, and producer 9's.
    for (producer, offset) in [(8, 80), (9, 90)] {
        let staged = coordinator
            .stage("g", (producer, 0), &[commit("t", 1, offset)])
            .await;
        assert_eq!(staged, vec![Ok(())]);
    }
    drop(coordinator);

    let coordinator = Coordinator::open(at, cfg, false).expect("reopen");
    assert_eq!(offset_of(&coordinator, 0), Some(998));
    assert_eq!(offset_of(&coordinator, 1), None, "still open");
    // Producer 8's transaction was decided to commit; 9 is unknown.
    coordinator
        .end_transactions_left(|producer| (producer == 8).then_some((0, true)))
        .expect("end what was left");
    assert_eq!(offset_of(&coordinator, 1), Some(80));
}

/// Stages the offset of `partition` of "t" for group "g" in `producer`'s transaction.
async fn stage(c: &Coordinator, producer: i64, partition: i32, offset: i64) {
    let staged = c
        .stage("g", (producer, 0), &[commit("t", partition, offset)])
        .await;
    assert_eq!(staged, vec![Ok(())]);
}

/// Commits the offset of `partition` of "t" for group "g", outside any transaction.
async fn plain(c: &Coordinator, partition: i32, offset: i64) {
    let results = c
        .commit("g", -1, "", None, &[commit("t", partition, offset)])
        .await;
    assert_eq!(results, vec![Ok(())]);
}

/// Group "g"'s committed offsets of "t": (partition, offset).
fn committed(c: &Coordinator) -> Vec<(i32, i64)> {
    let fetched = c.fetch_offsets("g", None, (None, -1)).expect("fetch");
    fetched
        .iter()
        .flat_map(|(_, ps)| ps.iter().map(|(p, f)| (*p, f.as_ref().unwrap().offset)))
        .collect()
}

/// Live and after a reopen (with the log cleaned, or not), a committed
/// transaction's offset counts only where its record is the later one, and
/// a tombstone drops the staged commits before it, as compaction keeps.
#[tokio::test]
async fn staged_offsets_resolve_as_compaction_keeps_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = GroupConfig {
        offsets_segment_bytes: 16 * 1024,
        ..GroupConfig::default()
    };
    let at = (dir.path(), real_unbounded());
    let c = Coordinator::open(at.clone(), cfg.clone(), false).expect("open");
    // 0: a plain commit after the staged one wins.
    stage(&c, 7, 0, 10).await;
    plain(&c, 0, 11).await;
    c.end_transaction((7, 0), true).await.expect("end 7");
    // 1: of two transactions, the later record wins, whichever commits last.
    stage(&c, 8, 1, 20).await;
    stage(&c, 9, 1, 21).await;
    c.end_transaction((9, 0), true).await.expect("end 9");
    c.end_transaction((8, 0), true).await.expect("end 8");
    // 2: a tombstone drops what was staged before it.
    plain(&c, 2, 30).await;
    stage(&c, 10, 2, 31).await;
    let deleted = c
        .delete_offsets("g", &[("t".into(), vec![2])])
        .await
        .expect("delete");
    assert_eq!(deleted[0].1, vec![(2, Ok(()))]);
    c.end_transaction((10, 0), true).await.expect("end 10");
    // 3: a transaction's commit after a plain one wins.
    plain(&c, 3, 40).await;
    stage(&c, 11, 3, 41).await;
    c.end_transaction((11, 0), true).await.expect("end 11");

    let want = vec![(0, 11), (1, 21), (3, 41)];
    assert_eq!(committed(&c), want, "live");
    drop(c);
    let c = Coordinator::open(at.clone(), cfg.clone(), false).expect("reopen");
    assert_eq!(committed(&c), want, "replayed");

    // Seal what holds them, clean it, and read it back once more.
    for round in 0..500 {
        let commits = [commit("t", 0, round)];
        let results = c.commit("filler", -1, "", None, &commits).await;
        assert_eq!(results, vec![Ok(())]);
    }
    let mut first_dirty = 0;
    while let Some(next) = c.clean(1 << 20, first_dirty).expect("clean") {
        first_dirty = next;
    }
    assert!(first_dirty > 0, "the cleaner ran");
    c.close().expect("close");
    let c = Coordinator::open(at, cfg, false).expect("reopen");
    assert_eq!(committed(&c), want, "cleaned and replayed");
}

/// Under `flush = "always"`, an end retried after its marker's fsync failed
/// fails too: the marker may not be on disk.
#[tokio::test]
async fn a_retried_end_waits_for_the_marker_a_failed_try_wrote() {
    use crate::storage::testing::{DiskOp, FaultyDisk};
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = FaultyDisk::new();
    let c = Coordinator::open((dir.path(), disk.unbounded()), GroupConfig::default(), true)
        .expect("open");
    let staged = c.stage("g", (7, 0), &[commit("t", 0, 5)]).await;
    assert_eq!(staged, vec![Ok(())]);
    disk.fail_times(DiskOp::Sync, OFFSETS_DIR, libc::EIO, Some(1));
    assert!(c.end_transaction((7, 0), true).await.is_err());
    assert!(
        c.end_transaction((7, 0), true).await.is_err(),
        "the marker's fsync failed: the retry cannot succeed"
    );
}

/// Offset expiry leaves a partition whose commit waits in a transaction:
/// its tombstone would drop that commit, and the transaction would commit
/// its output without its input offset (Kafka skips them too).
#[tokio::test]
async fn expiry_keeps_a_partition_with_a_commit_waiting_in_a_transaction() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = GroupConfig {
        offsets_retention_ms: 0,
        offsets_retention_check_interval_ms: 0,
        ..GroupConfig::default()
    };
    let c = Coordinator::open((dir.path(), real_unbounded()), cfg, false).expect("open");
    plain(&c, 0, 5).await;
    plain(&c, 1, 6).await;
    stage(&c, 7, 0, 8).await;
    assert_eq!(c.pending_offsets("g"), [("t".to_string(), 0)].into());
    c.tick();
    assert_eq!(committed(&c), vec![(0, 5)], "partition 1 expired, 0 waits");
    c.end_transaction((7, 0), true).await.expect("end");
    assert_eq!(committed(&c), vec![(0, 8)]);
    assert!(c.pending_offsets("g").is_empty());
}

/// Deleting a group deletes the commits waiting in a transaction too (as
/// in Kafka): its COMMIT does not bring the group back, live or replayed.
#[tokio::test]
async fn a_deleted_group_stays_deleted_when_a_transaction_commits_its_offsets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let at = (dir.path(), real_unbounded());
    let c = Coordinator::open(at.clone(), GroupConfig::default(), false).expect("open");
    plain(&c, 0, 5).await;
    stage(&c, 7, 1, 6).await;
    assert_eq!(c.delete_groups(&["g".into()]).await, vec![Ok(())]);
    c.end_transaction((7, 0), true).await.expect("end");
    let gone = |c: &Coordinator| c.fetch_offsets("g", None, (None, -1)).expect("fetch");
    assert_eq!(gone(&c), vec![], "live");
    drop(c);
    let c = Coordinator::open(at, GroupConfig::default(), false).expect("reopen");
    assert_eq!(gone(&c), vec![], "replayed");

    // No group has an empty id.
    let refused = c.stage("", (8, 0), &[commit("t", 0, 1)]).await;
    assert_eq!(refused, vec![Err(ResponseError::InvalidGroupId)]);

    // A group that only a transaction's commit made can be deleted too.
    let staged = c.stage("h", (8, 0), &[commit("t", 0, 1)]).await;
    assert_eq!(staged, vec![Ok(())]);
    assert_eq!(c.delete_groups(&["h".into()]).await, vec![Ok(())]);
    c.end_transaction((8, 0), true).await.expect("end");
    let fetched = c.fetch_offsets("h", None, (None, -1)).expect("fetch");
    assert_eq!(fetched, vec![]);
}

/// Commits too large for one batch of the offsets log answer
/// INVALID_COMMIT_OFFSET_SIZE, as in Kafka, and change nothing.
#[tokio::test]
async fn commits_too_large_for_the_offsets_log_answer_invalid_commit_offset_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let c = Coordinator::open(
        (dir.path(), real_unbounded()),
        GroupConfig::default(),
        false,
    )
    .expect("open");
    // 5,000 partitions with 4 KiB of metadata each: 20 MB, past 16 MiB.
    let commits: Vec<Commit> = (0..5000)
        .map(|p| Commit {
            metadata: Some("m".repeat(4096)),
            ..commit("t", p, 1)
        })
        .collect();
    let results = c.commit("g", -1, "", None, &commits).await;
    assert!(
        results
            .iter()
            .all(|r| *r == Err(ResponseError::InvalidCommitOffsetSize)),
        "{:?}",
        &results[..1]
    );
    let staged = c.stage("g", (7, 0), &commits).await;
    assert!(
        staged
            .iter()
            .all(|r| *r == Err(ResponseError::InvalidCommitOffsetSize))
    );
    assert_eq!(committed(&c), vec![]);
}
