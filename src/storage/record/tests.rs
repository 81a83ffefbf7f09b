use super::*;
use crate::storage::testing::{batch, batch_with_producer};

#[test]
fn built_batch_parses_and_validates() {
    let bytes = batch(&[(b"k", b"v"), (b"", b"value")], 1234);
    let b = RecordBatch::parse(&bytes).expect("parse");
    b.validate().expect("valid");
    assert_eq!(b.size(), bytes.len());
    assert_eq!(b.record_count(), 2);
    assert_eq!(b.last_offset_delta(), 1);
    assert_eq!(b.max_timestamp(), 1234);
    assert_eq!(b.producer_id(), -1);
    assert!(!b.is_transactional() && !b.is_control() && !b.is_log_append_time());
}

#[test]
fn set_base_offset_keeps_the_crc_valid_and_round_trips() {
    let mut bytes = batch_with_producer(7, 1, 5, 3, 99);
    RecordBatch::set_base_offset(&mut bytes, 1 << 40);
    let b = RecordBatch::parse(&bytes).expect("parse");
    b.validate().expect("still valid");
    assert_eq!(b.base_offset(), 1 << 40);
    assert_eq!(b.last_offset(), (1 << 40) + 2);
    assert_eq!(
        (b.producer_id(), b.producer_epoch(), b.base_sequence()),
        (7, 1, 5)
    );
}

#[test]
fn the_stored_header_sets_offset_and_epoch_and_log_append_time_with_its_crc() {
    let bytes = batch(&[(b"k", b"v"), (b"k2", b"v2")], 5);
    let stored = |append_time| {
        let head = RecordBatch::stored_header(&bytes, 40, 3, append_time).expect("header");
        [&head[..], &bytes[HEADER_BYTES..]].concat()
    };
    let create_time = stored(None);
    let b = RecordBatch::parse(&create_time).expect("parse");
    b.validate()
        .expect("valid: offset and epoch are outside the CRC");
    assert_eq!(
        (b.base_offset(), b.last_offset(), b.max_timestamp()),
        (40, 41, 5)
    );
    assert_eq!(i32::from_be_bytes(be(&create_time, LEADER_EPOCH_AT)), 3);
    assert!(!b.is_log_append_time());

    let append_time = stored(Some(777));
    let b = RecordBatch::parse(&append_time).expect("parse");
    b.validate().expect("valid after CRC recompute");
    assert_eq!((b.base_offset(), b.max_timestamp()), (40, 777));
    assert!(b.is_log_append_time());
    assert!(RecordBatch::stored_header(&bytes[..bytes.len() - 1], 0, 0, None).is_err());
}

#[test]
fn corrupt_inputs_are_rejected_without_panicking() {
    let good = batch(&[(b"k", b"v")], 5);
    assert!(matches!(
        RecordBatch::parse(&good[..60]),
        Err(Error::CorruptMessage(_))
    ));
    assert!(matches!(
        RecordBatch::parse(&good[..good.len() - 1]),
        Err(Error::CorruptMessage(_))
    ));
    let mut bad_magic = good.clone();
    bad_magic[16] = 1;
    assert!(matches!(
        RecordBatch::parse(&bad_magic),
        Err(Error::CorruptMessage(_))
    ));
    let mut bad_len = good.clone();
    bad_len[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        RecordBatch::parse(&bad_len),
        Err(Error::CorruptMessage(_))
    ));
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let parsed = RecordBatch::parse(&bad_crc).expect("header is fine");
    assert!(matches!(parsed.validate(), Err(Error::CorruptMessage(_))));
    for len in 0..good.len() {
        let _ = RecordBatch::parse(&good[..len]).map(|b| b.validate());
    }
}

#[test]
fn record_count_must_match_last_offset_delta() {
    let mut bytes = batch(&[(b"k", b"v"), (b"k", b"w")], 5);
    bytes[57..61].copy_from_slice(&3i32.to_be_bytes());
    let crc = crate::storage::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let b = RecordBatch::parse(&bytes).expect("parse");
    assert!(matches!(b.validate(), Err(Error::InvalidRecord(_))));
}

#[test]
fn an_uncompressed_batch_must_hold_the_records_it_claims() {
    // Two records, but the header claims 2^31 - 1 (with a matching last offset delta).
    let mut bytes = batch(&[(b"k", b"a"), (b"k", b"b")], 1);
    bytes[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    bytes[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = crate::storage::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let b = RecordBatch::parse(&bytes).expect("parse");
    assert!(matches!(b.validate(), Err(Error::InvalidRecord(_))));
    // Trailing bytes that are not a whole record are refused too.
    let mut bytes = batch(&[(b"k", b"a")], 1);
    bytes.push(0x7f);
    let len = (bytes.len() - 12) as i32;
    bytes[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crate::storage::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let b = RecordBatch::parse(&bytes).expect("parse");
    assert!(matches!(b.validate(), Err(Error::InvalidRecord(_))));
}

proptest::proptest! {
    /// The short paths read a record's length exactly as the general decoder does.
    #[test]
    fn record_length_agrees_with_the_general_decoder(
        buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
        len in 0u32..20_000,
    ) {
        let mut encoded = Vec::new();
        crate::storage::testing::put_varint(&mut encoded, i64::from(len));
        for buf in [buf, encoded] {
            let mut rest = buf.as_slice();
            let general = match take_varint(&mut rest, 5) {
                None => Err(Error::InvalidRecord("bad record length".into())),
                Some(v) if v < 0 => Err(Error::InvalidRecord(format!("negative record length {v}"))),
                Some(v) => Ok((v as usize, buf.len() - rest.len())),
            };
            proptest::prop_assert_eq!(
                record_length(&buf).map_err(|e| e.to_string()),
                general.map_err(|e| e.to_string())
            );
        }
    }
}

#[test]
fn a_negative_or_overrunning_record_length_is_refused() {
    // One record of a 1-byte value: length prefix, then 7 bytes of record.
    let good = batch(&[(b"", b"v")], 1);
    for (prefix, why) in [
        (vec![0x01], "negative"),
        (vec![0x81, 0x01], "negative"),
        (vec![0xfe, 0x01], "overruns"),
    ] {
        let mut bytes = good[..HEADER_BYTES].to_vec();
        bytes.extend(&prefix);
        bytes.extend(&good[HEADER_BYTES + 1..]);
        let size = (bytes.len() - 12) as i32;
        bytes[8..12].copy_from_slice(&size.to_be_bytes());
        let crc = crate::storage::crc32c(&bytes[ATTRIBUTES_AT..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        let err = RecordBatch::parse(&bytes).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains(why), "{prefix:?}: {err}");
    }
}
