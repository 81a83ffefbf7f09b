//! Catalog tests: topics persist across reopen, deletion, producer ids.

use super::*;

#[test]
fn topics_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
    let id = catalog
        .create_topic("t", 3, configs.clone(), false)
        .unwrap()
        .id;
    assert!(
        catalog
            .create_topic("t", 1, BTreeMap::new(), false)
            .is_err()
    );
    catalog.close().unwrap();

    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    let topic = catalog.topic("t").unwrap();
    assert_eq!(
        (topic.id, topic.partitions().len(), topic.overrides()),
        (id, 3, configs)
    );
    catalog.delete_topic("t").unwrap();
    assert!(!dir.path().join("t-0").exists());
}

#[test]
fn producer_ids_are_not_reused_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    let first = catalog.next_producer_id().unwrap();
    drop(catalog);
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    assert!(catalog.next_producer_id().unwrap() > first);
}

#[test]
fn producer_ids_are_refused_rather_than_reused_when_their_file_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    let first = catalog.next_producer_id().unwrap();
    drop(catalog);
    // Unreadable as text (a read error that is not NotFound, and one
    // root gets too).
    let file = dir.path().join(PRODUCER_IDS_FILE);
    std::fs::write(&file, [0xff, 0xfe]).unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    assert!(catalog.next_producer_id().is_err());
    std::fs::write(&file, format!("{}\n", first + 1000)).unwrap();
    assert_eq!(catalog.next_producer_id().unwrap(), first + 1000);
}

#[test]
fn a_start_and_retention_read_no_partition_and_leftover_transactions_abort_as_logs_open() {
    use crate::storage::testing::transactional_batch;
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    catalog
        .create_topic("t", 2, BTreeMap::new(), false)
        .unwrap();
    for (index, producer_id) in [(0, 7), (1, 8)] {
        let partition = catalog.partition("t", index).unwrap();
        let open = transactional_batch(producer_id, 0, 0, 1, 1);
        partition.append_transactional(&open).unwrap();
        assert_eq!(partition.offsets().unwrap().last_stable, 0);
    }
    catalog.close().unwrap();

    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    let marker = |index: i32| dir.path().join(format!("t-{index}/.clean-shutdown"));
    assert!(
        marker(0).exists() && marker(1).exists(),
        "nothing was opened"
    );
    catalog.apply_retention();
    assert!(
        marker(0).exists() && marker(1).exists(),
        "retention has nothing to do in a single segment"
    );
    // One log opens before the coordinator's recovery ends, one after.
    // (Their offsets open them: each stopped inside a transaction.)
    let first = catalog.partition("t", 0).unwrap();
    assert_eq!(first.offsets().unwrap().last_stable, 0);
    catalog.abort_leftover_transactions().unwrap();
    assert!(!marker(0).exists() && marker(1).exists());
    let swept = Offsets {
        log_start: 0,
        high_watermark: 2,
        last_stable: 2,
    };
    assert_eq!(
        first.offsets().unwrap(),
        swept,
        "aborted at once: it was open"
    );
    let second = catalog.partition("t", 1).unwrap();
    assert_eq!(second.offsets().unwrap(), swept, "aborted as it opened");
    catalog.close().unwrap();
}

#[test]
fn a_create_whose_metadata_cannot_be_written_is_refused_whole() {
    // A directory where each file's temporary copy would go makes its write fail.
    for blocked in ["recovery-point-offset-checkpoint.tmp", "topics.tmp"] {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
        std::fs::create_dir(dir.path().join(blocked)).unwrap();
        assert!(
            catalog
                .create_topic("t", 2, BTreeMap::new(), false)
                .is_err(),
            "{blocked}"
        );
        assert!(catalog.topic("t").is_none() && !dir.path().join("t-0").exists());
        std::fs::remove_dir(dir.path().join(blocked)).unwrap();
        catalog.close().unwrap();
        let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
        assert!(
            catalog.topic("t").is_none(),
            "{blocked}: back after a restart"
        );
    }
}

#[test]
fn a_topic_created_again_never_takes_over_a_directory_its_delete_left() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    let old = catalog
        .create_topic("t", 1, BTreeMap::new(), false)
        .unwrap();
    old.partition(0)
        .unwrap()
        .append(&crate::storage::testing::batch(&[(b"k", b"old")], 1))
        .unwrap();
    // A delete whose directory removal failed (or a crash right after its
    // metadata was written) leaves the directory, records and all.
    let kept = dir.path().join("kept");
    copy_dir(&dir.path().join("t-0"), &kept);
    catalog.delete_topic("t").unwrap();
    std::fs::rename(&kept, dir.path().join("t-0")).unwrap();
    let new = catalog
        .create_topic("t", 1, BTreeMap::new(), false)
        .unwrap();
    assert_eq!(
        new.partition(0).unwrap().offsets().unwrap().high_watermark,
        0
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_config_change_that_cannot_be_written_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    let topic = catalog
        .create_topic("t", 1, BTreeMap::new(), false)
        .unwrap();
    let partition = topic.partition(0).unwrap();
    assert_eq!(partition.min_insync_replicas(), 1);
    std::fs::create_dir(dir.path().join("topics.tmp")).unwrap();
    let set = |o: &mut BTreeMap<String, String>| {
        o.insert("min.insync.replicas".into(), "2".into());
        Ok(())
    };
    assert!(catalog.alter_configs("t", set, false).is_err());
    assert!(topic.overrides().is_empty());
    assert_eq!(
        partition.min_insync_replicas(),
        1,
        "the log kept its config"
    );
    std::fs::remove_dir(dir.path().join("topics.tmp")).unwrap();
    catalog.alter_configs("t", set, false).unwrap();
    assert_eq!(topic.overrides()["min.insync.replicas"], "2");
    assert_eq!(partition.min_insync_replicas(), 2);
}

#[test]
fn a_delete_that_cannot_be_written_leaves_the_topic_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    catalog
        .create_topic("t", 1, BTreeMap::new(), false)
        .unwrap();
    std::fs::create_dir(dir.path().join("topics.tmp")).unwrap();
    assert!(catalog.delete_topic("t").is_err());
    assert!(catalog.topic("t").is_some() && catalog.partition("t", 0).is_ok());
    assert!(dir.path().join("t-0").exists());
    std::fs::remove_dir(dir.path().join("topics.tmp")).unwrap();
    catalog.delete_topic("t").unwrap();
    assert!(catalog.topic("t").is_none() && !dir.path().join("t-0").exists());
}

#[test]
fn a_topics_partitions_share_one_copy_of_its_settings_as_it_grows_and_changes() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    catalog
        .create_topic("t", 2, BTreeMap::new(), false)
        .unwrap();
    catalog.create_partitions("t", 4, false).unwrap();
    let shared = |catalog: &Catalog| {
        let partitions = catalog.topic("t").unwrap().partitions();
        let first = partitions[0].shared_config();
        partitions
            .iter()
            .all(|p| Arc::ptr_eq(&p.shared_config(), &first))
    };
    assert!(shared(&catalog));

    let retention = |o: &mut BTreeMap<String, String>| {
        o.insert("retention.ms".into(), "1000".into());
        Ok(())
    };
    catalog.alter_configs("t", retention, false).unwrap();
    catalog.create_partitions("t", 5, false).unwrap();
    assert!(shared(&catalog));
    let partitions = catalog.topic("t").unwrap().partitions();
    assert_eq!(partitions[4].shared_config().retention_ms, 1000);
    catalog.close().unwrap();

    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    assert!(shared(&catalog));
    // Grown while its partitions are still unopened after the start, then
    // given new broker defaults.
    catalog.create_partitions("t", 6, false).unwrap();
    assert!(shared(&catalog));
    let defaults = LogConfig {
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    };
    catalog.set_defaults((1, defaults));
    assert!(shared(&catalog));
    let partitions = catalog.topic("t").unwrap().partitions();
    let config = partitions[5].shared_config();
    assert_eq!((config.segment_bytes, config.retention_ms), (1 << 20, 1000));
}

#[test]
fn an_operation_that_takes_the_log_after_a_delete_began_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    catalog
        .create_topic("t", 1, BTreeMap::new(), false)
        .unwrap();
    let partition = catalog.partition("t", 0).unwrap();
    partition.active_producers().unwrap();
    // As a fetch or produce that passed its check just before the delete
    // and takes the log just after it: refused, the directory untouched.
    partition.mark_deleted();
    let refused = partition.active_producers().unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Api {
                code: ResponseError::UnknownTopicOrPartition,
                ..
            }
        ),
        "{refused}"
    );
    // A produce's group-commit fsync too (flush = "always").
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let refused = runtime.block_on(partition.sync_through(0)).unwrap_err();
    assert_eq!(
        refused.code(),
        ResponseError::UnknownTopicOrPartition.code(),
        "{refused}"
    );
}

/// A catalog in `dir` holding compacted topic "c" (one empty partition),
/// reopened on a cleaner checkpoint of `first_dirty` for it; the
/// checkpoint's path.
fn compacted_with_checkpoint(dir: &Path, first_dirty: i64) -> (Catalog, PathBuf) {
    let catalog = Catalog::open(dir, LogConfig::default()).unwrap();
    let compact = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
    catalog.create_topic("c", 1, compact, false).unwrap();
    catalog.close().unwrap();
    let checkpoint = dir.join("cleaner-offset-checkpoint");
    std::fs::write(&checkpoint, format!("0\n1\nc 0 {first_dirty}\n")).unwrap();
    let catalog = Catalog::open(dir, LogConfig::default()).unwrap();
    (catalog, checkpoint)
}

/// A cleaner checkpoint past a log's end (a tail a crash took) is reset to
/// the log start and written so at once, even by a pass that cleans
/// nothing: records written there again are mapped when they are cleaned.
#[test]
fn a_cleaner_checkpoint_past_the_end_is_reset_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, checkpoint) = compacted_with_checkpoint(dir.path(), 1000);
    catalog.clean_pass((0, 1), 1 << 20, &|| false);
    assert_eq!(
        std::fs::read_to_string(&checkpoint).unwrap(),
        "0\n1\nc 0 0\n"
    );
}

/// A deleted topic's cleaner checkpoint leaves the file at once: after a
/// restart, a topic created again under its name starts clean.
#[test]
fn a_deleted_topic_leaves_the_cleaner_checkpoint_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, checkpoint) = compacted_with_checkpoint(dir.path(), 0);
    catalog.delete_topic("c").unwrap();
    assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), "0\n0\n");
}

/// Two dynamic config changes at once may reach the catalog in either
/// order: the defaults of the later change stay in force. Those of the
/// earlier one, applied last, replaced them.
#[test]
fn defaults_of_an_older_change_applied_last_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), LogConfig::default()).unwrap();
    catalog
        .create_topic("t", 1, BTreeMap::new(), false)
        .unwrap();
    let segment = |segment_bytes| LogConfig {
        segment_bytes,
        ..LogConfig::default()
    };
    catalog.set_defaults((2, segment(2 << 20)));
    catalog.set_defaults((1, segment(1 << 20)));
    let in_force = catalog.topic("t").unwrap().partitions()[0]
        .shared_config()
        .segment_bytes;
    assert_eq!(
        (in_force, catalog.defaults().segment_bytes),
        (2 << 20, 2 << 20)
    );
}
