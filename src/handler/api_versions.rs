//! ApiVersions: the table in [`super::SUPPORTED`], as the client's version needs it.

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::{Context, SUPPORTED};
use crate::error::Result;
use crate::protocol::encode_response;

pub(super) async fn handle(
    _ctx: &Context,
    _req: ApiVersionsRequest,
    _version: i16,
) -> Result<ApiVersionsResponse> {
    let mut response = ApiVersionsResponse::default();
    response.api_keys = SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = key as i16;
            v.min_version = min;
            v.max_version = max;
            v
        })
        .collect();
    Ok(response)
}

/// KIP-511: an ApiVersions version we do not know gets a v0 answer with
/// UNSUPPORTED_VERSION and our own ApiVersions range, so the client retries lower.
pub(super) fn unsupported(correlation_id: i32) -> Result<BytesMut> {
    let mut response = ApiVersionsResponse::default();
    response.error_code = ResponseError::UnsupportedVersion.code();
    let (min, max) = super::supported_range(ApiKey::ApiVersions).unwrap_or((0, 0));
    let mut v = ApiVersion::default();
    v.api_key = ApiKey::ApiVersions as i16;
    v.min_version = min;
    v.max_version = max;
    response.api_keys = vec![v];
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &response)
}
