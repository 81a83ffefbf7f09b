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

pub(super) fn commit(topic: &str, partition: i32, offset: i64) -> Commit {
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

/// A group whose offsets' tombstones take more than one batch of the offsets
/// log (16 MiB) is deleted, and stays deleted after a reopen; so are those
/// offsets by OffsetDelete. Both answered MESSAGE_TOO_LARGE and changed
/// nothing, so such a group could not be deleted at all.
#[tokio::test]
async fn deleting_more_offsets_than_one_batch_holds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let open = || {
        Coordinator::open(
            (dir.path(), real_unbounded()),
            GroupConfig::default(),
            false,
        )
        .expect("open")
    };
    let coordinator = open();
    // Tombstones of about 270 bytes each: 70,000 of them are 18 MiB.
    let topic = "t".repeat(249);
    for group in ["g", "h"] {
        for chunk in 0..7 {
            let commits: Vec<Commit> = (chunk * 10_000..(chunk + 1) * 10_000)
                .map(|p| commit(&topic, p, 1))
                .collect();
            let results = coordinator.commit(group, -1, "", None, &commits).await;
            assert!(results.iter().all(Result::is_ok), "{:?}", &results[..1]);
        }
    }
    assert_eq!(coordinator.delete_groups(&["g".into()]).await, vec![Ok(())]);
    let partitions: Vec<i32> = (0..70_000).collect();
    let deleted = coordinator
        .delete_offsets("h", &[(topic.clone(), partitions)])
        .await
        .expect("delete offsets");
    assert!(deleted[0].1.iter().all(|(_, r)| r.is_ok()));
    coordinator.close().expect("close");

    let coordinator = open();
    assert_eq!(coordinator.describe("g").expect("describe").state, "Dead");
    for group in ["g", "h"] {
        let fetched = coordinator
            .fetch_offsets(group, None, (None, -1))
            .expect("fetch");
        assert!(
            fetched.iter().all(|(_, ps)| ps.is_empty()),
            "{group} keeps offsets"
        );
    }
}
