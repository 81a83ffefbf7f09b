//! A reader of Kafka's wire encoding, for the requests the broker reads by
//! hand (every request's header, Fetch): big-endian integers, unsigned
//! varints, lengths (compact in flexible versions), arrays, and skipped
//! tagged-field sections. Every read checks the bytes are there.

use bytes::Bytes;

/// What is wrong with a request (a small error keeps each read cheap).
#[derive(Debug)]
pub(crate) struct Bad(pub &'static str);

/// Reads fields one after another from a request's bytes.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    flexible: bool,
}

/// A read, or what is wrong with the bytes.
pub(crate) type Read<T> = std::result::Result<T, Bad>;

impl<'a> Reader<'a> {
    /// Reads `buf` from its start; `flexible`: lengths are compact and
    /// tagged-field sections are present.
    pub(crate) fn new(buf: &'a Bytes, flexible: bool) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            flexible,
        }
    }

    /// How many bytes were read.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Read<&[u8]> {
        if self.buf.len() - self.pos < n {
            return Err(Bad("request ends early"));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    #[inline]
    pub(crate) fn fixed<const N: usize>(&mut self) -> Read<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    #[inline]
    pub(crate) fn i8(&mut self) -> Read<i8> {
        Ok(i8::from_be_bytes(self.fixed()?))
    }

    #[inline]
    pub(crate) fn i16(&mut self) -> Read<i16> {
        Ok(i16::from_be_bytes(self.fixed()?))
    }

    #[inline]
    pub(crate) fn i32(&mut self) -> Read<i32> {
        Ok(i32::from_be_bytes(self.fixed()?))
    }

    #[inline]
    pub(crate) fn i64(&mut self) -> Read<i64> {
        Ok(i64::from_be_bytes(self.fixed()?))
    }

    #[inline]
    pub(crate) fn uvarint(&mut self) -> Read<u32> {
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
    pub(crate) fn len(&mut self) -> Read<usize> {
        let n = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        usize::try_from(n).map_err(|_| Bad("null where a value is required"))
    }

    /// An array, each element read by `read`. No element is shorter than
    /// `least` bytes at any version: that bounds what is reserved up front.
    pub(crate) fn array<T>(
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
    pub(crate) fn string_len(&mut self) -> Read<usize> {
        if self.flexible {
            self.len()
        } else {
            usize::try_from(self.i16()?).map_err(|_| Bad("null string"))
        }
    }

    /// The next `n` bytes, sharing the buffer.
    pub(crate) fn slice(&mut self, n: usize) -> Read<Bytes> {
        let start = self.pos;
        self.take(n)?;
        Ok(self.buf.slice(start..start + n))
    }

    /// Skips a tagged-field section (flexible versions only).
    #[inline]
    pub(crate) fn tags(&mut self) -> Read<()> {
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
