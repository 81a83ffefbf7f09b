use super::*;
use crate::storage::RecordBatch;
use crate::storage::real_unbounded;
use crate::storage::testing::batch;

fn config() -> SegmentConfig {
    SegmentConfig {
        index_interval_bytes: 150,
        index_capacity_bytes: 1024,
    }
}

fn append(segment: &mut Segment, offset: i64, n: usize, ts: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 40]).collect();
    let records: Vec<(&[u8], &[u8])> = values.iter().map(|v| (&b"k"[..], v.as_slice())).collect();
    let mut b = batch(&records, ts);
    RecordBatch::set_base_offset(&mut b, offset);
    let mut header = BatchHeader::parse(&b).unwrap();
    header.base_offset = offset;
    segment
        .append(&[std::io::IoSlice::new(&b)], &[header])
        .unwrap();
    b
}

#[test]
fn file_names_are_twenty_digits_and_parse_back() {
    assert_eq!(file_name(42, "log"), "00000000000000000042.log");
    assert_eq!(
        parse_file_name("00000000000000000042.timeindex"),
        Some((42, "timeindex"))
    );
    assert_eq!(parse_file_name("42.log"), None);
    assert_eq!(parse_file_name(".clean-shutdown"), None);
    assert_eq!(parse_file_name("0000000000000000004x.log"), None);
}

#[test]
fn appends_add_sparse_index_entries_and_reads_find_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut segment = Segment::create(dir.path(), 100, config(), 0, real_unbounded()).unwrap();
    let mut offset = 100;
    for i in 0..20 {
        append(&mut segment, offset, 2, i);
        offset += 2;
    }
    assert_eq!(segment.next_offset(), 140);
    let indexes = segment.indexes().unwrap();
    assert!(indexes.offset.len() >= 5 && indexes.time.len() >= 5);
    for o in 100..140 {
        let (_, header) = segment.find_batch(o).unwrap().unwrap();
        assert!(header.base_offset <= o && o <= header.last_offset());
    }
    assert_eq!(segment.find_batch(140).unwrap(), None);
    assert_eq!(segment.offset_for_timestamp(7).unwrap(), Some((114, 7)));
}

#[test]
fn recovery_cuts_at_the_first_bad_batch_and_rebuilds_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut segment = Segment::create(dir.path(), 0, config(), 0, real_unbounded()).unwrap();
    let mut ends = vec![0];
    for i in 0..10 {
        append(&mut segment, i * 3, 3, i);
        ends.push(segment.size());
    }
    let entries = segment.indexes().unwrap().offset.len();
    let path = segment.log_path().to_path_buf();
    drop(segment);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[0xAB], ends[6] + 70).unwrap();
    let mut segment = Segment::open(dir.path(), 0, config(), 0, real_unbounded()).unwrap();
    assert_eq!(segment.recover().unwrap(), ends[10] - ends[6]);
    assert_eq!((segment.size(), segment.next_offset()), (ends[6], 18));
    assert!(segment.indexes().unwrap().offset.len() < entries);
    assert!(
        segment
            .indexes()
            .unwrap()
            .offset
            .is_consistent(segment.size())
    );
}

#[test]
fn sealing_trims_the_indexes_and_adds_the_final_time_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut segment = Segment::create(dir.path(), 0, config(), 0, real_unbounded()).unwrap();
    append(&mut segment, 0, 1, 50);
    append(&mut segment, 1, 1, 70);
    segment.seal().unwrap();
    let time = std::fs::metadata(dir.path().join(file_name(0, "timeindex")))
        .unwrap()
        .len();
    assert_eq!(time, 12);
    assert_eq!(
        std::fs::metadata(dir.path().join(file_name(0, "index")))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(segment.largest_timestamp().unwrap(), Some((70, 1)));
}
