//! Raw Kafka protocol over TCP (kafka-protocol's encoders, no client library):
//! ApiVersions, framing errors, pipelining, and every advertised API at every
//! advertised version.

mod common;

use bytes::BufMut;
use common::raw::*;
use common::*;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice::handler::SUPPORTED;

#[path = "protocol/apis.rs"]
mod apis;
#[path = "protocol/sweep.rs"]
mod sweep;
#[path = "protocol/sweep_admin.rs"]
mod sweep_admin;
#[path = "protocol/sweep_groups.rs"]
mod sweep_groups;
#[path = "protocol/sweep_txn.rs"]
mod sweep_txn;

fn advertised(response: &ApiVersionsResponse) -> Vec<(i16, i16, i16)> {
    let mut keys: Vec<_> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    keys.sort_unstable();
    keys
}

fn supported() -> Vec<(i16, i16, i16)> {
    let mut keys: Vec<_> = SUPPORTED
        .iter()
        .map(|&(k, min, max)| (k as i16, min, max))
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn api_versions_at_every_version_lists_the_supported_table() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    for version in 0..=4 {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-tests"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let response = raw.call(version, &request).await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(advertised(&response), supported(), "v{version}");
    }
    // The table is a subset of what the protocol defines, and the core APIs are there.
    for &(key, min, max) in SUPPORTED {
        let known = key.valid_versions();
        assert!(
            known.min <= min && max <= known.max,
            "{key:?} {min}..={max} is outside {known:?}"
        );
    }
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
    ] {
        assert!(
            SUPPORTED.iter().any(|&(k, ..)| k == key),
            "{key:?} must be served"
        );
    }
}

#[tokio::test]
async fn api_versions_with_an_unknown_version_answers_v0_with_unsupported_version() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    // A future client: ApiVersions v99 with a flexible (v2) header and a body we cannot know.
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(99)
        .with_correlation_id(4242)
        .with_client_id(Some(StrBytes::from_static_str("future-client")));
    let mut payload = bytes::BytesMut::new();
    header.encode(&mut payload, 2).expect("header");
    ApiVersionsRequest::default()
        .encode(&mut payload, 3)
        .expect("body");
    raw.send_frame(&payload).await;

    let mut frame = raw.read_frame(READ_WAIT).await;
    let header = ResponseHeader::decode(&mut frame, 0).expect("v0 response header");
    assert_eq!(header.correlation_id, 4242);
    let response = ApiVersionsResponse::decode(&mut frame, 0).expect("v0 response body");
    assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
    let own: Vec<_> = advertised(&response)
        .into_iter()
        .filter(|k| k.0 == ApiKey::ApiVersions as i16)
        .collect();
    assert_eq!(
        own,
        vec![(18, 0, 4)],
        "the answer must give ApiVersions' own range"
    );
    // The connection stays usable: the client retries at a version we know.
    let retry = raw.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!((retry.error_code, advertised(&retry)), (0, supported()));
}

/// A v1 request header for any key/version, as raw bytes.
fn header_bytes(key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut buf = Vec::new();
    buf.put_i16(key);
    buf.put_i16(version);
    buf.put_i32(correlation_id);
    buf.put_i16(-1); // null client id
    buf
}

async fn assert_still_serving(bootstrap: &str) {
    let mut fresh = Raw::connect(bootstrap).await;
    let response = fresh.call(0, &ApiVersionsRequest::default()).await;
    assert_eq!(
        response.error_code, 0,
        "a new connection must still be served"
    );
}

#[tokio::test]
async fn an_unknown_api_key_closes_the_connection() {
    let broker = start_broker().await;
    for key in [1000, i16::MAX, -1] {
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        raw.send_frame(&header_bytes(key, 0, 7)).await;
        assert!(
            raw.is_closed().await,
            "API key {key} must close the connection"
        );
    }
    assert_still_serving(&broker.bootstrap()).await;
}

#[tokio::test]
async fn an_unsupported_version_of_a_served_api_closes_the_connection() {
    let broker = start_broker().await;
    for (key, version) in [
        (ApiKey::Produce, 2),
        (ApiKey::ListOffsets, 0),
        (ApiKey::Metadata, 13),
    ] {
        let (min, max) = sluice::handler::supported_range(key).expect("served");
        assert!(
            !(min..=max).contains(&version),
            "pick a version outside {min}..={max}"
        );
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        let mut payload = header_bytes(key as i16, version, 9);
        payload.extend_from_slice(&[0; 16]);
        raw.send_frame(&payload).await;
        assert!(
            raw.is_closed().await,
            "{key:?} v{version} must close the connection"
        );
    }
    // An API the broker does not serve yet (consumer groups are not implemented).
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    raw.send_frame(&header_bytes(ApiKey::FindCoordinator as i16, 0, 9))
        .await;
    assert!(
        raw.is_closed().await,
        "FindCoordinator must close the connection"
    );
    assert_still_serving(&broker.bootstrap()).await;
}

#[tokio::test]
async fn bad_frame_sizes_close_the_connection_and_the_broker_keeps_serving() {
    let broker = start_broker_with(|c| c.socket_request_max_bytes = 1024 * 1024).await;
    let sizes: [i32; 5] = [i32::MAX, -1, i32::MIN, 1024 * 1024 + 1, 0];
    for size in sizes {
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        raw.send_bytes(&size.to_be_bytes()).await;
        assert!(
            raw.is_closed().await,
            "a frame of size {size} must close the connection"
        );
        assert_still_serving(&broker.bootstrap()).await;
    }
}

#[tokio::test]
async fn garbage_closes_the_connection_and_the_broker_keeps_serving() {
    let broker = start_broker().await;
    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        // A plausible size, then bytes that are no request header.
        [
            &12i32.to_be_bytes()[..],
            &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7],
        ]
        .concat(),
        // A short frame: fewer bytes than any header.
        [&3i32.to_be_bytes()[..], &[0, 18, 0]].concat(),
    ];
    for bytes in garbage {
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        raw.send_bytes(&bytes).await;
        assert!(raw.is_closed().await, "{bytes:?} must close the connection");
    }
    // A valid Metadata v12 header whose body is cut short.
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (_, payload) = raw.encode(12, &MetadataRequest::default().with_topics(None));
    raw.send_frame(&payload[..payload.len() - 2]).await;
    assert!(
        raw.is_closed().await,
        "a truncated body must close the connection"
    );
    // A half-sent frame followed by a hang-up disturbs nobody.
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    raw.send_bytes(&[0, 0, 0, 100, 1, 2, 3]).await;
    drop(raw);
    assert_still_serving(&broker.bootstrap()).await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let broker = start_broker().await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut sent = Vec::new();
    for i in 0..20 {
        let (id, payload) = if i % 2 == 0 {
            raw.encode(3, &ApiVersionsRequest::default())
        } else {
            raw.encode(12, &MetadataRequest::default().with_topics(None))
        };
        raw.send_frame(&payload).await;
        sent.push((i, id));
    }
    for (i, id) in sent {
        if i % 2 == 0 {
            let response = raw.receive::<ApiVersionsRequest>(3, id).await;
            assert_eq!(response.error_code, 0);
        } else {
            let response = raw.receive::<MetadataRequest>(12, id).await;
            assert_eq!(response.brokers.len(), 1);
        }
    }
}
