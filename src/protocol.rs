//! Kafka request headers and response encoding, on top of the `kafka-protocol`
//! crate. Its `anyhow` errors are turned into [`Error::Protocol`] here, once.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::{Error, Result};

/// A decoded request header and the still-encoded body.
#[derive(Debug)]
pub(crate) struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
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
        let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
            .map_err(|e| Error::Protocol(format!("{api_key:?} header: {e}")))?;
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
