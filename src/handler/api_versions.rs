//! ApiVersions: the table in [`super::SUPPORTED`], as the client's version
//! needs it, and (v3+) the features: `group.version` 1 says the consumer
//! group protocol of KIP-848 is on.

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::{Context, SUPPORTED, str_bytes};
use crate::error::Result;
use crate::protocol::encode_response;

/// Feature levels this broker supports and has finalized: (name, level).
const FEATURES: &[(&str, i16)] = &[("group.version", 1)];
/// The epoch of the finalized features; they never change at run time.
const FEATURES_EPOCH: i64 = 1;

pub(super) async fn handle(
    _ctx: &Context,
    _req: ApiVersionsRequest,
    version: i16,
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
    if version >= 3 {
        for &(name, level) in FEATURES {
            let mut supported = SupportedFeatureKey::default();
            supported.name = str_bytes(name);
            supported.min_version = 0;
            supported.max_version = level;
            response.supported_features.push(supported);
            let mut finalized = FinalizedFeatureKey::default();
            finalized.name = str_bytes(name);
            finalized.min_version_level = level;
            finalized.max_version_level = level;
            response.finalized_features.push(finalized);
        }
        response.finalized_features_epoch = FEATURES_EPOCH;
    }
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
