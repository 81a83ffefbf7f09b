//! The Fetch request, read by hand straight into what the handler uses: the
//! partitions wanted, topic by topic, as [`Wants`]. kafka-protocol's
//! `FetchRequest` holds each level in structs of their own (with a map of
//! unknown tagged fields apiece), which the handler only read and turned into
//! `Wants`: a fifth of the instructions of an idle long-poll went to
//! building and dropping them. Tagged fields are skipped, as Kafka skips
//! the ones it does not know; a test compares this reader with kafka-protocol's
//! at every version.

use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::session::{Asked, TopicRef, Wants};
use crate::error::{Error, Result};

/// What a Fetch request asks.
#[derive(Debug)]
pub(super) struct Fetch {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub isolation_level: i8,
    /// 0 before v7 (no session).
    pub session_id: i32,
    /// -1 before v7 (no session).
    pub session_epoch: i32,
    /// Topics are named by id (v13 on), not by name.
    pub uses_ids: bool,
    pub topics: Wants,
    /// The partitions a session no longer wants (v7 on).
    pub forgotten: Vec<(TopicRef, Vec<i32>)>,
}

/// Reads a Fetch request body of `version` (4 to 18).
pub(super) fn decode(body: &Bytes, version: i16) -> Result<Fetch> {
    if !(4..=18).contains(&version) {
        return Err(Error::Protocol(format!("Fetch v{version} is not readable")));
    }
    let mut r = Reader {
        buf: body,
        pos: 0,
        flexible: version >= 12,
        version,
    };
    read(&mut r, version)
        .map_err(|Bad(what)| Error::Protocol(format!("Fetch v{version}: {what} at byte {}", r.pos)))
}

/// What is wrong with a request (a small error keeps each read cheap).
struct Bad(&'static str);

fn read(r: &mut Reader<'_>, version: i16) -> std::result::Result<Fetch, Bad> {
    if version <= 14 {
        r.i32()?; // replica id: -1 from a consumer; there are no followers
    }
    let max_wait_ms = r.i32()?;
    let min_bytes = r.i32()?;
    let max_bytes = r.i32()?;
    let isolation_level = r.i8()?;
    let (session_id, session_epoch) = if version >= 7 {
        (r.i32()?, r.i32()?)
    } else {
        (0, -1)
    };
    let topics = r.array(3, |r| {
        let topic = r.topic()?;
        let partitions = r.array(16, |r| {
            let index = r.i32()?;
            let leader_epoch = if version >= 9 { r.i32()? } else { -1 };
            let offset = r.i64()?;
            if version >= 12 {
                r.i32()?; // last fetched epoch: for followers
            }
            if version >= 5 {
                r.i64()?; // log start offset: for followers
            }
            let max_bytes = r.i32()?;
            r.tags()?;
            let asked = Asked {
                offset,
                max_bytes,
                leader_epoch,
            };
            Ok((index, asked))
        })?;
        r.tags()?;
        Ok((topic, partitions))
    })?;
    let forgotten = if version >= 7 {
        r.array(3, |r| {
            let topic = r.topic()?;
            let partitions = r.array(4, Reader::i32)?;
            r.tags()?;
            Ok((topic, partitions))
        })?
    } else {
        Vec::new()
    };
    if version >= 11 {
        // The rack id: for choosing a replica to read from.
        let n = r.string_len()?;
        r.take(n)?;
    }
    r.tags()?;
    Ok(Fetch {
        max_wait_ms,
        min_bytes,
        max_bytes,
        isolation_level,
        session_id,
        session_epoch,
        uses_ids: version >= 13,
        topics,
        forgotten,
    })
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    flexible: bool,
    version: i16,
}

type Read<T> = std::result::Result<T, Bad>;

impl Reader<'_> {
    #[inline]
    fn take(&mut self, n: usize) -> Read<&[u8]> {
        if self.buf.len() - self.pos < n {
            return Err(Bad("request ends early"));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    #[inline]
    fn fixed<const N: usize>(&mut self) -> Read<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    #[inline]
    fn i8(&mut self) -> Read<i8> {
        Ok(i8::from_be_bytes(self.fixed()?))
    }

    #[inline]
    fn i16(&mut self) -> Read<i16> {
        Ok(i16::from_be_bytes(self.fixed()?))
    }

    #[inline]
    fn i32(&mut self) -> Read<i32> {
        Ok(i32::from_be_bytes(self.fixed()?))
    }

    #[inline]
    fn i64(&mut self) -> Read<i64> {
        Ok(i64::from_be_bytes(self.fixed()?))
    }

    #[inline]
    fn uvarint(&mut self) -> Read<u32> {
        let mut n = 0u32;
        for shift in [0, 7, 14, 21, 28] {
            let [b] = self.fixed()?;
            // The fifth byte holds the top four bits, and ends the number.
            if shift == 28 && b > 0x0f {
                break;
            }
            n |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Bad("varint too long"))
    }

    /// The length of a non-null array, string or bytes.
    #[inline]
    fn len(&mut self) -> Read<usize> {
        let n = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        usize::try_from(n).map_err(|_| Bad("null where a value is required"))
    }

    /// An array, each element read by `read`. No element is shorter than
    /// `least` bytes at any version: that bounds what is reserved up front.
    fn array<T>(
        &mut self,
        least: usize,
        mut read: impl FnMut(&mut Self) -> Read<T>,
    ) -> Read<Vec<T>> {
        let n = self.len()?;
        // A count can claim more than the request holds: reserve only what fits.
        let mut out = Vec::with_capacity(n.min((self.buf.len() - self.pos) / least.max(1)));
        for _ in 0..n {
            out.push(read(self)?);
        }
        Ok(out)
    }

    /// The length of a non-null string.
    fn string_len(&mut self) -> Read<usize> {
        if self.flexible {
            self.len()
        } else {
            usize::try_from(self.i16()?).map_err(|_| Bad("null string"))
        }
    }

    fn topic(&mut self) -> Read<TopicRef> {
        if self.version >= 13 {
            return Ok(TopicRef::Id(Uuid::from_bytes(self.fixed()?)));
        }
        let n = self.string_len()?;
        let start = self.pos;
        self.take(n)?;
        let name = StrBytes::from_utf8(self.buf.slice(start..start + n))
            .map_err(|_| Bad("topic name is not UTF-8"))?;
        Ok(TopicRef::Name(TopicName(name)))
    }

    /// Skips a tagged-field section (flexible versions only).
    #[inline]
    fn tags(&mut self) -> Read<()> {
        if !self.flexible {
            return Ok(());
        }
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
