//! Kafka request headers and response encoding, on top of the `kafka-protocol`
//! crate. Its `anyhow` errors are turned into [`Error::Protocol`] here, once.
//! The request header is read by hand: it comes with every request, and
//! kafka-protocol's `RequestHeader` (with its map of tagged fields) cost an
//! idle long-poll a fortieth of its instructions.

mod reader;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::{Error, Result};
pub(crate) use reader::{Bad, Read, Reader};

/// A decoded request header and the still-encoded body.
#[derive(Debug)]
pub(crate) struct Request {
    pub api_key: ApiKey,
    pub header: Header,
    pub body: Bytes,
}

/// The fields of a request header the broker uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    pub request_api_version: i16,
    pub correlation_id: i32,
    /// `None` in header v0 (and when the client sends null). Kept as sent:
    /// checking it is UTF-8 on every request cost more than reading the rest
    /// of the header; [`Header::client_id`] reads it, as Kafka does, with
    /// anything that is not UTF-8 replaced.
    pub client_id_bytes: Option<Bytes>,
}

impl Header {
    /// The client id, or "" when there is none.
    pub(crate) fn client_id(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.client_id_bytes.as_deref().unwrap_or_default())
    }

    /// Reads a header of `header_version` (1 or 2; 0 has no client id) from the start of
    /// `frame`, leaving the body.
    fn decode(frame: &mut Bytes, header_version: i16) -> Read<Header> {
        let mut r = Reader::new(frame, header_version >= 2);
        r.i16()?; // the API key, already read
        let request_api_version = r.i16()?;
        let correlation_id = r.i32()?;
        let mut client_id_bytes = None;
        if header_version >= 1 {
            // Always a (non-compact) nullable string, even in header v2.
            let len = r.i16()?;
            if len >= 0 {
                client_id_bytes = Some(r.slice(len as usize)?);
            }
        }
        r.tags()?; // (header v2 only)
        let read = r.pos();
        frame.advance(read);
        Ok(Header {
            request_api_version,
            correlation_id,
            client_id_bytes,
        })
    }
}

impl Request {
    /// Decodes the header of `frame`. Unknown API keys and short frames are errors.
    pub(crate) fn parse(mut frame: Bytes) -> Result<Request> {
        if frame.len() < 8 {
            return Err(Error::Protocol(format!(
                "request of {} bytes is too short",
                frame.len()
            )));
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api_key =
            ApiKey::try_from(key).map_err(|_| Error::Protocol(format!("unknown API key {key}")))?;
        let header = Header::decode(&mut frame, api_key.request_header_version(version))
            .map_err(|Bad(e)| Error::Protocol(format!("{api_key:?} header: {e}")))?;
        Ok(Request {
            api_key,
            header,
            body: frame,
        })
    }

    /// The request's API version.
    pub(crate) fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// Decodes the body as `T` at the request's version.
    pub(crate) fn decode<T: Decodable>(&self) -> Result<T> {
        let mut body = self.body.clone();
        T::decode(&mut body, self.version())
            .map_err(|e| Error::Protocol(format!("{:?} v{}: {e}", self.api_key, self.version())))
    }
}

/// Encodes a whole response frame: size prefix, header, body.
pub(crate) fn encode_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<BytesMut> {
    let header_version = api_key.response_header_version(version);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let err = |e: anyhow::Error| Error::Protocol(format!("encoding {api_key:?} v{version}: {e}"));
    let size = header.compute_size(header_version).map_err(err)?
        + body.compute_size(version).map_err(err)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version).map_err(err)?;
    body.encode(&mut buf, version).map_err(err)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn headers_read_as_kafka_protocol_reads_them(
            version in any::<i16>(),
            correlation_id in any::<i32>(),
            client_id in proptest::option::of("[ -~]{0,40}"),
            header_version in 1i16..=2,
            body in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let header = RequestHeader::default()
                .with_request_api_key(ApiKey::Fetch as i16)
                .with_request_api_version(version)
                .with_correlation_id(correlation_id)
                .with_client_id(client_id.clone().map(StrBytes::from_string));
            let mut buf = BytesMut::new();
            header.encode(&mut buf, header_version).unwrap();
            buf.extend_from_slice(&body);
            let frame = buf.freeze();

            let theirs = RequestHeader::decode(&mut frame.clone(), header_version).unwrap();
            let mut rest = frame.clone();
            let ours = Header::decode(&mut rest, header_version).unwrap();
            prop_assert_eq!(ours.request_api_version, theirs.request_api_version);
            prop_assert_eq!(ours.correlation_id, theirs.correlation_id);
            prop_assert_eq!(ours.client_id(), theirs.client_id.as_deref().unwrap_or_default());
            prop_assert_eq!(
                ours.client_id_bytes.map(|b| b.to_vec()),
                theirs.client_id.map(|c| c.as_bytes().to_vec())
            );
            prop_assert_eq!(&rest[..], &body[..], "the body is what follows");

            // Every cut of the header is an error.
            let len = frame.len() - body.len();
            for cut in 0..len {
                prop_assert!(Header::decode(&mut frame.slice(..cut), header_version).is_err());
            }
        }
    }

    #[test]
    fn a_header_with_a_tagged_field_leaves_the_body_after_it() {
        // Fetch v12 (header v2): key, version, correlation id, client id "c",
        // one tagged field (tag 5, 2 bytes), then the body.
        let mut frame =
            Bytes::from_static(&[0, 1, 0, 12, 0, 0, 0, 9, 0, 1, b'c', 1, 5, 2, 0xaa, 0xbb, 42]);
        let header = Header::decode(&mut frame, 2).unwrap();
        assert_eq!(header.correlation_id, 9);
        assert_eq!(header.client_id(), "c");
        assert_eq!(&frame[..], &[42]);
    }
}
