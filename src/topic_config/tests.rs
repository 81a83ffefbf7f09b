//! The settings table: parsing, validation, defaults and documentation.

use super::*;
use crate::storage::CleanupPolicy;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn overrides_apply_and_bad_ones_are_refused() {
    let d = LogConfig::default();
    let cfg = apply(
        &d,
        &map(&[("retention.ms", "1000"), ("segment.bytes", "4096")]),
    )
    .unwrap();
    assert_eq!((cfg.retention_ms, cfg.segment_bytes), (1000, 4096));
    assert!(apply(&d, &map(&[("no.such.config", "2")])).is_err());
    assert_eq!(
        apply(&d, &map(&[("min.insync.replicas", "2")]))
            .unwrap()
            .min_insync_replicas,
        2
    );
    assert!(apply(&d, &map(&[("retention.ms", "soon")])).is_err());
    assert!(apply(&d, &map(&[("cleanup.policy", "shred")])).is_err());
}

#[test]
fn cleanup_policy_is_a_real_setting() {
    let d = LogConfig::default();
    for (text, policy) in [
        ("delete", CleanupPolicy::Delete),
        ("compact", CleanupPolicy::Compact),
        ("compact,delete", CleanupPolicy::CompactDelete),
        ("delete, compact", CleanupPolicy::CompactDelete),
    ] {
        let cfg = apply(&d, &map(&[("cleanup.policy", text)])).unwrap();
        assert_eq!(cfg.cleanup_policy, policy, "{text}");
    }
    let set = map(&[("cleanup.policy", "compact"), ("retention.ms", "1000")]);
    let described = describe(&d, &set);
    assert!(described.contains(&("cleanup.policy", "compact".to_string())));
    assert!(described.contains(&("retention.ms", "1000".to_string())));
    assert!(describe(&d, &BTreeMap::new()).contains(&("cleanup.policy", "delete".into())));
}

#[test]
fn every_setting_accepts_its_default_and_refuses_garbage_naming_itself() {
    let d = LogConfig::default();
    for row in SETTINGS {
        let default = map(&[(row.name, &row.value(&d))]);
        assert_eq!(apply(&d, &default).as_ref(), Ok(&d), "{}", row.name);
        let err = apply(&d, &map(&[(row.name, "x-y-z")])).unwrap_err();
        assert!(err.contains(row.name), "{}: {err}", row.name);
    }
    for (name, bad) in [
        ("compression.type", "brotli"),
        ("compression.gzip.level", "0"),
        ("compression.zstd.level", "23"),
        ("min.cleanable.dirty.ratio", "1.5"),
        ("preallocate", "yes"),
        ("remote.storage.enable", "true"),
        ("leader.replication.throttled.replicas", "0:1,x"),
        ("local.retention.ms", "-3"),
    ] {
        assert!(apply(&d, &map(&[(name, bad)])).is_err(), "{name} = {bad}");
    }
    for (name, good) in [
        ("compression.type", "zstd"),
        ("compression.gzip.level", "-1"),
        ("min.cleanable.dirty.ratio", "0.1"),
        ("preallocate", "TRUE"),
        ("leader.replication.throttled.replicas", "0:1,1:1"),
        ("follower.replication.throttled.replicas", "*"),
    ] {
        assert!(apply(&d, &map(&[(name, good)])).is_ok(), "{name} = {good}");
    }
}

#[test]
fn every_row_round_trips_its_default_and_is_documented() {
    let d = LogConfig::default();
    let toml = include_str!("../../config/sluice.toml");
    let readme = include_str!("../../README.md");
    for row in SETTINGS {
        let mut cfg = d.clone();
        (row.set)(&mut cfg, &row.value(&d)).unwrap();
        assert_eq!(cfg, d, "{} does not parse its own rendering", row.name);
        if let Some(key) = row.toml_key {
            assert!(
                toml.contains(&format!("\n{key} = ")),
                "config/sluice.toml lacks [log] {key}"
            );
        }
        assert!(
            readme.contains(&format!("`{}`", row.name)),
            "README lacks {}",
            row.name
        );
    }
}
