use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn offset_index(dir: &Path, base: i64, capacity: u64) -> OffsetIndex {
    OffsetIndex::open(&dir.join("x.index"), base, capacity, true)
        .unwrap()
        .0
}

#[test]
fn lookup_returns_the_floor_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = offset_index(dir.path(), 100, 1024);
    assert_eq!(index.lookup(150), None);
    assert!(index.append(110, 40));
    assert!(index.append(120, 80));
    assert!(!index.append(120, 90), "offsets must increase");
    assert!(!index.append(130, 80), "positions must increase");
    assert!(!index.append(99, 100), "below base");
    assert_eq!(index.lookup(109), None);
    assert_eq!(index.lookup(110), Some((110, 40)));
    assert_eq!(index.lookup(119), Some((110, 40)));
    assert_eq!(index.lookup(10_000), Some((120, 80)));
    index.truncate_to(120);
    assert_eq!(index.len(), 1);
}

#[test]
fn preallocated_file_is_trimmed_and_reopened_with_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.index");
    let mut index = OffsetIndex::open(&path, 0, 1000, true).unwrap().0;
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 1000);
    for i in 1..=10 {
        assert!(index.append(i, i as u32 * 10));
    }
    index.trim().unwrap();
    drop(index);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 80);
    let (index, exact) = OffsetIndex::open(&path, 0, 0, false).unwrap();
    assert!(exact);
    assert_eq!(index.len(), 10);
    assert!(index.is_consistent(101));
    assert!(
        !index.is_consistent(100),
        "position 100 is past a 100-byte log"
    );
}

/// Descriptors this process has open on `path`.
fn open_descriptors(path: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
        .count()
}

#[test]
fn entries_reach_the_file_in_blocks_and_survive_truncation_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.index");
    let mut index = OffsetIndex::open(&path, 0, 64 * 1024, true).unwrap().0;
    assert_eq!(open_descriptors(&path), 0, "an index holds no descriptor");
    let per_block = (TAIL_BYTES / OFFSET_ENTRY_BYTES) as i64;
    for i in 1..=per_block + 10 {
        assert!(index.append(i, i as u32 * 10));
    }
    // The first block is in the file; the last ten entries wait in memory.
    let on_disk = std::fs::read(&path).unwrap();
    let last_written = (per_block - 1) as usize * OFFSET_ENTRY_BYTES;
    assert_eq!(
        &on_disk[last_written..last_written + 4],
        &(per_block as u32).to_be_bytes()
    );
    assert_eq!(&on_disk[last_written + 8..last_written + 16], &[0; 8]);
    assert_eq!(
        index.lookup(per_block + 5),
        Some((per_block + 5, (per_block as u32 + 5) * 10))
    );

    // Back into the written block, then new entries over the stale ones.
    index.truncate_to(per_block - 2);
    assert_eq!(index.len(), per_block as usize - 3);
    assert!(index.append(per_block, 7_777_777));
    index.sync().unwrap();
    assert_eq!(open_descriptors(&path), 0);
    index.trim().unwrap();
    drop(index);
    let (index, exact) = OffsetIndex::open(&path, 0, 0, false).unwrap();
    assert!(exact);
    assert_eq!(index.len(), per_block as usize - 2);
    assert_eq!(index.lookup(i64::MAX), Some((per_block, 7_777_777)));
    assert_eq!(
        index.lookup(per_block - 1),
        Some((per_block - 3, (per_block as u32 - 3) * 10))
    );
}

#[test]
fn full_index_refuses_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = offset_index(dir.path(), 0, 20);
    assert!(index.append(1, 1));
    assert!(index.append(2, 2));
    assert!(index.is_full());
    assert!(!index.append(3, 3));
}

#[test]
fn zeroed_or_odd_length_files_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.index");
    std::fs::write(&path, [0u8; 24]).unwrap();
    let (index, exact) = OffsetIndex::open(&path, 0, 0, false).unwrap();
    assert!(exact && !index.is_consistent(1000));
    std::fs::write(&path, [0u8; 13]).unwrap();
    let (_, exact) = OffsetIndex::open(&path, 0, 0, false).unwrap();
    assert!(!exact);
}

#[test]
fn time_index_keeps_only_growing_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.timeindex");
    let mut index = TimeIndex::open(&path, 50, 120, true).unwrap().0;
    assert!(index.maybe_append(1000, 55));
    assert!(!index.maybe_append(1000, 60));
    assert!(!index.maybe_append(999, 60));
    assert!(index.maybe_append(2000, 70));
    assert_eq!(index.lookup_before(1000), None);
    assert_eq!(index.lookup_before(1001), Some((1000, 55)));
    assert_eq!(index.lookup_before(i64::MAX), Some((2000, 70)));
    assert_eq!(index.lookup_before(i64::MIN), None);
    assert!(index.is_consistent(71));
    assert!(!index.is_consistent(70));
    index.truncate_to(70);
    assert_eq!(index.last_entry(), Some((1000, 55)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn offset_index_lookup_matches_btreemap_floor(
        steps in proptest::collection::vec((1u32..1000, 1u32..5000), 0..200),
        probes in proptest::collection::vec(0i64..300_000, 1..50),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let base = 1_000;
        let mut index = offset_index(dir.path(), base, 8 * 256);
        let mut model = BTreeMap::new();
        let (mut offset, mut position) = (base, 0u32);
        for (d_offset, d_position) in steps {
            offset += i64::from(d_offset);
            position += d_position;
            prop_assert!(index.append(offset, position));
            model.insert(offset, position);
        }
        for probe in probes {
            let expected = model.range(..=probe).next_back().map(|(o, p)| (*o, *p));
            prop_assert_eq!(index.lookup(probe), expected);
        }
    }
}
