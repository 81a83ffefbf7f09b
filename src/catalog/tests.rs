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
