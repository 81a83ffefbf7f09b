use std::io::Write;

use super::*;

const BASE: i64 = 100;
const T: i64 = 1_700_000_000_000;

use crate::storage::compression::{GZIP, LZ4, SNAPPY, XERIAL_MAGIC, ZSTD};
use crate::storage::record::take_varint;
use crate::storage::testing::put_varint;

/// Uncompressed records with these timestamp deltas (offset delta = index).
fn records(deltas: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, delta) in deltas.iter().enumerate() {
        let mut body = vec![0u8];
        put_varint(&mut body, *delta);
        put_varint(&mut body, i as i64);
        put_varint(&mut body, 3);
        body.extend_from_slice(b"key");
        put_varint(&mut body, 5);
        body.extend_from_slice(b"value");
        put_varint(&mut body, 0);
        put_varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
    }
    out
}

/// A RecordBatch v2 of `count` records at `BASE`, base timestamp `T`.
fn batch(attributes: i16, count: i32, max_ts: i64, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&BASE.to_be_bytes());
    b.extend_from_slice(&((49 + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&T.to_be_bytes());
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    assert_eq!(b.len(), 61, "the fixed v2 header");
    b.extend_from_slice(payload);
    b
}

const DELTAS: [i64; 5] = [0, 10, 5, 30, 20];

fn compress(codec: i16, raw: &[u8]) -> Vec<u8> {
    match codec {
        0 => raw.to_vec(),
        GZIP => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        SNAPPY => snap::raw::Encoder::new().compress_vec(raw).unwrap(),
        LZ4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        ZSTD => zstd::encode_all(raw, 3).unwrap(),
        _ => unreachable!(),
    }
}

fn xerial(raw: &[u8], block: usize) -> Vec<u8> {
    let mut out = XERIAL_MAGIC.to_vec();
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    for chunk in raw.chunks(block) {
        let c = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
        out.extend_from_slice(&(c.len() as i32).to_be_bytes());
        out.extend_from_slice(&c);
    }
    out
}

fn check_walks(b: &[u8]) {
    let at_or_after = |t: i64| move |ts: i64| ts >= t;
    assert_eq!(first_record(b, BASE, at_or_after(T)), Some((BASE, T)));
    assert_eq!(
        first_record(b, BASE, at_or_after(T + 1)),
        Some((BASE + 1, T + 10))
    );
    assert_eq!(
        first_record(b, BASE, at_or_after(T + 11)),
        Some((BASE + 3, T + 30))
    );
    assert_eq!(first_record(b, BASE, at_or_after(T + 31)), None);
    assert_eq!(
        first_record(b, BASE + 2, at_or_after(T)),
        Some((BASE + 2, T + 5))
    );
    assert_eq!(
        first_record(b, BASE, |ts| ts == T + 30),
        Some((BASE + 3, T + 30))
    );
}

#[test]
fn finds_the_first_record_at_or_after_a_time_for_every_codec() {
    let raw = records(&DELTAS);
    for codec in [0, GZIP, SNAPPY, LZ4, ZSTD] {
        let b = batch(codec, 5, T + 30, &compress(codec, &raw));
        check_walks(&b);
    }
}

#[test]
fn reads_xerial_framed_snappy() {
    let raw = records(&DELTAS);
    check_walks(&batch(SNAPPY, 5, T + 30, &xerial(&raw, 16)));
}

#[test]
fn log_append_time_gives_every_record_the_batch_max() {
    let b = batch(0x08 | GZIP, 5, T + 999, b"not even compressed");
    assert_eq!(first_record(&b, BASE, |ts| ts > T), Some((BASE, T + 999)));
    assert_eq!(
        first_record(&b, BASE + 3, |ts| ts == T + 999),
        Some((BASE + 3, T + 999))
    );
    assert_eq!(first_record(&b, BASE + 5, |ts| ts >= T), None);
    assert_eq!(first_record(&b, BASE, |ts| ts > T + 999), None);
}

#[test]
fn truncated_or_garbage_batches_give_none() {
    let raw = records(&DELTAS);
    let want = |ts: i64| ts >= T + 11;
    for codec in [0, GZIP, SNAPPY, LZ4, ZSTD] {
        let payload = compress(codec, &raw);
        let cut = batch(codec, 5, T + 30, &payload[..payload.len() / 2]);
        assert_eq!(first_record(&cut, BASE, want), None, "codec {codec}");
        let garbage = batch(codec, 5, T + 30, &[0xff; 40]);
        assert_eq!(first_record(&garbage, BASE, want), None, "codec {codec}");
    }
    let whole = batch(0, 5, T + 30, &raw);
    assert_eq!(first_record(&whole[..whole.len() - 1], BASE, want), None);
    assert_eq!(first_record(&whole[..30], BASE, want), None);
    assert_eq!(first_record(&[], BASE, want), None);
    assert_eq!(first_record(&batch(7, 5, T + 30, &raw), BASE, want), None);
    // More records promised than present.
    assert_eq!(
        first_record(&batch(0, 9, T + 30, &raw), BASE, |ts| ts > T + 30),
        None
    );
}

#[test]
fn decompression_stops_at_the_cap() {
    // A record whose value (zeros, which compress to little) is larger than
    // the cap, then a normal record that only a walk past the cap would reach.
    let value = MAX_DECOMPRESSED_BYTES as i64 + 1024;
    let mut body = vec![0u8];
    put_varint(&mut body, 50);
    put_varint(&mut body, 0);
    put_varint(&mut body, -1);
    put_varint(&mut body, value);
    let mut head = Vec::new();
    put_varint(&mut head, body.len() as i64 + value + 1);
    head.extend_from_slice(&body);
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.write_all(&head).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..value >> 20 {
        e.write_all(&zeros).unwrap();
    }
    e.write_all(&zeros[..(value & ((1 << 20) - 1)) as usize])
        .unwrap();
    e.write_all(&[0]).unwrap(); // no headers
    let mut second = records(&[60, 70]);
    // Keep only the second record (offset delta 1).
    let first_len = second[0] as usize / 2 + 1;
    second.drain(..first_len);
    e.write_all(&second).unwrap();
    let payload = e.finish().unwrap();
    assert!(payload.len() < 1 << 20);
    let b = batch(ZSTD, 2, T + 70, &payload);
    // The first record is found before the cap; the second is past it.
    assert_eq!(first_record(&b, BASE, |ts| ts >= T), Some((BASE, T + 50)));
    assert_eq!(first_record(&b, BASE + 1, |ts| ts >= T), None);
    // Without a cap the second record is there.
    let walk = Walk {
        base_offset: BASE,
        base_ts: T,
        count: 2,
        min_offset: BASE + 1,
    };
    let mut whole = Vec::new();
    zstd::stream::read::Decoder::new(payload.as_slice())
        .unwrap()
        .read_to_end(&mut whole)
        .unwrap();
    assert!(whole.len() as u64 > MAX_DECOMPRESSED_BYTES);
    assert!(walk.run(&whole[..], &|ts| ts >= T).is_err(), "capped");
    assert_eq!(
        walk.run_capped(&whole[..], &|ts| ts >= T, u64::MAX)
            .unwrap(),
        Some((BASE + 1, T + 70))
    );
}

#[test]
fn varints_round_trip() {
    for v in [
        0i64,
        1,
        -1,
        63,
        -64,
        64,
        300,
        i32::MAX as i64,
        i32::MIN as i64,
        i64::MAX,
        i64::MIN,
    ] {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        assert_eq!(read_varint(&mut buf.as_slice(), 10).unwrap(), v);
        buf.push(0xab);
        let mut rest = buf.as_slice();
        assert_eq!(take_varint(&mut rest, 10), Some(v));
        assert_eq!(rest, [0xab], "advanced past the varint only");
    }
    assert!(read_varint(&mut [0x80u8; 6].as_slice(), 5).is_err());
    assert_eq!(
        take_varint(&mut [0x80u8; 6].as_slice(), 5),
        None,
        "too long"
    );
    assert_eq!(
        take_varint(&mut [0x80u8, 0x80].as_slice(), 5),
        None,
        "truncated"
    );
}
