//! Record-batch codecs: reading a batch's records whatever their codec, and
//! rewriting a batch with another codec for a topic's `compression.type`.
//!
//! Kafka's codecs are the low three bits of the batch attributes: none 0,
//! gzip 1, snappy 2 (xerial-framed from the Java client, raw from
//! librdkafka; written xerial-framed, as Kafka does), lz4 3 (LZ4 frame), zstd 4.
//! Decompression is capped: a stored batch may be a decompression bomb.

use std::borrow::Cow;
use std::io::{self, Read, Write};

use super::record::{ATTRIBUTES_AT, CRC_AT, HEADER_BYTES, LOG_OVERHEAD, RecordBatch};
use super::{Error, Result};

/// Most decompressed bytes of one batch (64 MiB, well above any batch the
/// default `max.message.bytes` admits); past it the batch is not read.
pub(crate) const MAX_DECOMPRESSED_BYTES: u64 = 64 << 20;

pub(crate) const NONE: i16 = 0;
pub(crate) const GZIP: i16 = 1;
pub(crate) const SNAPPY: i16 = 2;
pub(crate) const LZ4: i16 = 3;
pub(crate) const ZSTD: i16 = 4;
const CODEC_MASK: i16 = 0x07;
/// Xerial (snappy-java) stream header: magic, then version and compat i32s.
pub(crate) const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;
/// Uncompressed bytes per xerial block, as snappy-java writes them.
const XERIAL_BLOCK: usize = 32 * 1024;

/// The records of a batch compressed with `codec`, as a reader of their
/// uncompressed bytes. `None` for an unknown codec or damaged snappy data.
pub(crate) fn reader<'a>(codec: i16, records: &'a [u8]) -> Option<Box<dyn Read + 'a>> {
    Some(match codec {
        NONE => Box::new(records),
        GZIP => Box::new(flate2::read::GzDecoder::new(records)),
        SNAPPY => Box::new(io::Cursor::new(snappy(records)?)),
        LZ4 => Box::new(lz4_flex::frame::FrameDecoder::new(records)),
        ZSTD => Box::new(zstd::stream::read::Decoder::with_buffer(records).ok()?),
        _ => return None,
    })
}

/// All uncompressed bytes of `records`, at most [`MAX_DECOMPRESSED_BYTES`].
pub(crate) fn decompress(codec: i16, records: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    reader(codec, records)?
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= MAX_DECOMPRESSED_BYTES).then_some(out)
}

/// `raw` compressed with `codec`.
pub(crate) fn compress(codec: i16, raw: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        GZIP => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(raw)?;
            e.finish()
        }
        SNAPPY => {
            let mut out = XERIAL_MAGIC.to_vec();
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in raw.chunks(XERIAL_BLOCK) {
                let block = encoder.compress_vec(chunk).map_err(io::Error::other)?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        LZ4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(raw)?;
            e.finish().map_err(io::Error::other)
        }
        ZSTD => zstd::encode_all(raw, 3),
        _ => Ok(raw.to_vec()),
    }
}

/// Decompresses snappy, xerial-framed (Kafka's Java client) or raw
/// (librdkafka), refusing to produce more than [`MAX_DECOMPRESSED_BYTES`].
fn snappy(data: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = snap::raw::Decoder::new();
    let cap = usize::try_from(MAX_DECOMPRESSED_BYTES).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut block = |compressed: &[u8], out: &mut Vec<u8>| -> Option<()> {
        let len = snap::raw::decompress_len(compressed).ok()?;
        if out.len().saturating_add(len) > cap {
            return None;
        }
        let start = out.len();
        out.resize(start + len, 0);
        let written = decoder.decompress(compressed, &mut out[start..]).ok()?;
        out.truncate(start + written);
        Some(())
    };
    if !data.starts_with(&XERIAL_MAGIC) {
        block(data, &mut out)?;
        return Some(out);
    }
    let mut rest = data.get(XERIAL_HEADER_BYTES..)?;
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let compressed = rest.get(4..4usize.checked_add(len)?)?;
        block(compressed, &mut out)?;
        rest = &rest[4 + len..];
    }
    Some(out)
}

/// Rewrites every batch of `batches` whose codec is not `codec` (one of
/// the codec constants), as Kafka's broker does for a topic whose
/// `compression.type` names a codec: the records are decompressed and
/// compressed again; offsets, timestamps, producer fields and record count
/// stay; the CRC is recomputed. A batch that does not validate is left as it
/// is (the append refuses it).
pub(crate) fn conform(batches: &[u8], codec: i16) -> Result<Cow<'_, [u8]>> {
    let mut out: Option<Vec<u8>> = None;
    let mut rest = batches;
    while !rest.is_empty() {
        let Ok(batch) = RecordBatch::parse(rest) else {
            return Ok(Cow::Borrowed(batches));
        };
        if batch.validate().is_err() {
            return Ok(Cow::Borrowed(batches));
        }
        if batch.compression() != codec {
            // The batches before the first one rewritten are kept as they came.
            let done = batches.len() - rest.len();
            let out = out.get_or_insert_with(|| batches[..done].to_vec());
            rewrite(&batch, codec, out)?;
        } else if let Some(out) = &mut out {
            out.extend_from_slice(batch.as_bytes());
        }
        rest = &rest[batch.size()..];
    }
    Ok(out.map_or(Cow::Borrowed(batches), Cow::Owned))
}

fn rewrite(batch: &RecordBatch<'_>, codec: i16, out: &mut Vec<u8>) -> Result<()> {
    let corrupt = |what: &str| Error::CorruptMessage(format!("cannot recompress batch: {what}"));
    let raw = decompress(batch.compression(), batch.records())
        .ok_or_else(|| corrupt("records do not decompress within 64 MiB"))?;
    let records = compress(codec, &raw).map_err(|e| corrupt(&e.to_string()))?;
    let start = out.len();
    out.extend_from_slice(&batch.as_bytes()[..HEADER_BYTES]);
    out.extend_from_slice(&records);
    let header = &mut out[start..];
    let length = i32::try_from(header.len() - LOG_OVERHEAD).map_err(|_| corrupt("too large"))?;
    header[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = (batch.attributes() & !CODEC_MASK) | codec;
    header[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crate::storage::crc32c(&header[ATTRIBUTES_AT..]);
    header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::batch;

    #[test]
    fn every_codec_round_trips_and_keeps_the_batch_valid() {
        let values: Vec<Vec<u8>> = (0..50).map(|i| vec![b'a' + (i % 26) as u8; 300]).collect();
        let records: Vec<(&[u8], &[u8])> = values.iter().map(|v| (&b"key"[..], &v[..])).collect();
        let plain = batch(&records, 1_700_000_000_000);
        for from in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
            let source = conform(&plain, from).unwrap().into_owned();
            let parsed = RecordBatch::parse(&source).unwrap();
            parsed.validate().unwrap();
            assert_eq!(parsed.compression(), from);
            for to in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
                let target = conform(&source, to).unwrap();
                let b = RecordBatch::parse(&target).unwrap();
                b.validate().unwrap();
                assert_eq!(
                    (b.compression(), b.record_count()),
                    (to, 50),
                    "{from} -> {to}"
                );
                let raw = decompress(to, b.records()).unwrap();
                assert_eq!(raw, &plain[HEADER_BYTES..], "{from} -> {to}");
            }
        }
    }

    #[test]
    fn damaged_batches_are_left_for_the_append_to_refuse() {
        let mut b = batch(&[(b"k", b"v")], 1);
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(conform(&b, GZIP).unwrap(), Cow::Borrowed(kept) if kept == b));
    }

    #[test]
    fn only_batches_of_another_codec_are_rewritten_and_order_is_kept() {
        let first = conform(&batch(&[(b"k", b"first")], 1), GZIP)
            .unwrap()
            .into_owned();
        let second = batch(&[(b"k", b"second")], 2);
        assert!(matches!(conform(&first, GZIP).unwrap(), Cow::Borrowed(_)));
        let both = [first.clone(), second.clone()].concat();
        let out = conform(&both, GZIP).unwrap();
        assert_eq!(&out[..first.len()], &first[..], "kept as it came");
        let rewritten = RecordBatch::parse(&out[first.len()..]).unwrap();
        rewritten.validate().unwrap();
        assert_eq!(rewritten.compression(), GZIP);
        let raw = decompress(GZIP, rewritten.records()).unwrap();
        assert_eq!(raw, &second[HEADER_BYTES..]);
    }
}
