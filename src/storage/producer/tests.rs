use super::*;
use crate::storage::record::BatchHeader;
use crate::storage::testing::batch_with_producer;

fn header(pid: i64, epoch: i16, seq: i32, n: usize, base_offset: i64) -> BatchHeader {
    let mut h = BatchHeader::parse(&batch_with_producer(pid, epoch, seq, n, 0)).unwrap();
    h.base_offset = base_offset;
    h
}

#[test]
fn sequences_must_follow_on_and_retries_are_duplicates() {
    let mut s = ProducerStates::default();
    let first = header(1, 0, 0, 3, 0);
    assert_eq!(s.check(&[first]).unwrap(), None);
    s.update(&first);
    assert_eq!(s.get(1), Some((0, 2)));
    assert_eq!(s.check(&[header(1, 0, 0, 3, 10)]).unwrap(), Some((0, 2)));
    assert!(matches!(
        s.check(&[header(1, 0, 4, 1, 10)]),
        Err(Error::OutOfOrderSequence {
            expected: 3,
            got: 4,
            ..
        })
    ));
    assert_eq!(s.check(&[header(1, 0, 3, 1, 3)]).unwrap(), None);
}

#[test]
fn epochs_fence_old_producers_and_reset_sequences() {
    let mut s = ProducerStates::default();
    s.update(&header(1, 2, 0, 1, 0));
    assert!(matches!(
        s.check(&[header(1, 1, 1, 1, 1)]),
        Err(Error::InvalidProducerEpoch {
            current: 2,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        s.check(&[header(1, 3, 5, 1, 1)]),
        Err(Error::OutOfOrderSequence { expected: 0, .. })
    ));
    assert_eq!(s.check(&[header(1, 3, 0, 1, 1)]).unwrap(), None);
}

#[test]
fn unknown_producers_start_anywhere_and_batches_in_one_append_chain() {
    let s = ProducerStates::default();
    let ok = [header(9, 0, 100, 2, 0), header(9, 0, 102, 1, 2)];
    assert_eq!(s.check(&ok).unwrap(), None);
    let gap = [header(9, 0, 100, 2, 0), header(9, 0, 103, 1, 2)];
    assert!(s.check(&gap).is_err());
}

#[test]
fn sequence_wraps_to_zero() {
    assert_eq!(add_sequence(i32::MAX, 1), 0);
    assert_eq!(add_sequence(i32::MAX - 1, 3), 1);
    let mut s = ProducerStates::default();
    s.update(&header(1, 0, i32::MAX - 1, 2, 0));
    assert_eq!(s.check(&[header(1, 0, 0, 1, 2)]).unwrap(), None);
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let mut s = ProducerStates::default();
    for i in 0..7 {
        s.update(&header(1, 0, i, 1, i64::from(i)));
    }
    assert_eq!(s.check(&[header(1, 0, 2, 1, 7)]).unwrap(), Some((2, 2)));
    assert!(s.check(&[header(1, 0, 1, 1, 7)]).is_err());
}

#[test]
fn snapshot_round_trips_and_damage_is_detected() {
    let mut s = ProducerStates::default();
    for pid in 0..10 {
        for seq in 0..(pid as i32) {
            s.update(&header(pid, 1, seq, 1, i64::from(seq)));
        }
    }
    let bytes = s.encode();
    assert_eq!(ProducerStates::decode(&bytes), Some(s));
    for cut in 0..bytes.len() {
        assert_eq!(ProducerStates::decode(&bytes[..cut]), None);
    }
    let mut flipped = bytes.clone();
    flipped[7] ^= 1;
    assert_eq!(ProducerStates::decode(&flipped), None);
}
