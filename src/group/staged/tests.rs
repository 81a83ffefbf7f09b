//! Transactional offsets through the offsets log: counted at their
//! COMMIT marker, the same live, replayed and after cleaning; kept through
//! expiry, removed with their group, refused when too large.

use kafka_protocol::ResponseError;

use crate::group::tests::commit;
use crate::group::{Commit, Coordinator, GroupConfig, OFFSETS_DIR};
use crate::storage::real_unbounded;

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
