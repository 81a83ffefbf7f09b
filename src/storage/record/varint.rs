//! Kafka's zigzag varints, as record fields and record lengths use them.

use std::io::{self, Read};

use super::{Error, Result};

/// Appends `value` as a zigzag varint (Kafka's record field encoding).
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A zigzag varint of Kafka's record fields, of at most `max_bytes` bytes
/// (5 for a varint, 10 for a varlong), read from `r`.
pub(crate) fn read_varint(r: &mut impl Read, max_bytes: u32) -> io::Result<i64> {
    decode_varint(max_bytes, || {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).map(|()| b[0])
    })?
    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "varint too long"))
}

/// [`read_varint`] from the front of a slice, which it advances; `None` if
/// the slice ends first or the varint is too long.
pub(crate) fn take_varint(buf: &mut &[u8], max_bytes: u32) -> Option<i64> {
    decode_varint(max_bytes, || {
        let (&first, rest) = buf.split_first().ok_or(())?;
        *buf = rest;
        Ok::<u8, ()>(first)
    })
    .ok()?
}

/// The length of the record that `buf` starts with, and the bytes its prefix
/// (a zigzag varint of at most 5 bytes) took. Every produced record's length
/// is read here: records up to 8 KiB take the two short paths, without the
/// general decoder's loop.
#[inline(always)]
pub(super) fn record_length(buf: &[u8]) -> Result<(usize, usize)> {
    let (raw, prefix) = match *buf {
        [b0, ..] if b0 < 0x80 => (u64::from(b0), 1),
        [b0, b1, ..] if b1 < 0x80 => (u64::from(b0 & 0x7f) | u64::from(b1) << 7, 2),
        _ => {
            let mut rest = buf;
            let len = take_varint(&mut rest, 5)
                .ok_or_else(|| Error::InvalidRecord("bad record length".into()))?;
            return usize::try_from(len)
                .map(|len| (len, buf.len() - rest.len()))
                .map_err(|_| Error::InvalidRecord(format!("negative record length {len}")));
        }
    };
    if raw & 1 == 1 {
        let len = -((raw >> 1) as i64) - 1;
        return Err(Error::InvalidRecord(format!(
            "negative record length {len}"
        )));
    }
    Ok(((raw >> 1) as usize, prefix))
}

/// Decodes a zigzag varint from the bytes `next` yields: `Ok(None)` if it
/// is longer than `max_bytes`.
#[inline(always)]
fn decode_varint<E>(
    max_bytes: u32,
    mut next: impl FnMut() -> std::result::Result<u8, E>,
) -> std::result::Result<Option<i64>, E> {
    let mut raw = 0u64;
    for i in 0..max_bytes {
        let b = next()?;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((raw >> 1) as i64 ^ -((raw & 1) as i64)));
        }
    }
    Ok(None)
}
