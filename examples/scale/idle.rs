//! Idle consumers: connections that long-poll empty partitions with Fetch v16
//! by topic id, as librdkafka's consumers at the end of a topic do.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, FetchRequest, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use uuid::Uuid;

/// A request frame (size, header, body) of `body` at `version`.
fn frame<R: Encodable + Request>(body: &R, version: i16) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("scale-idle")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.to_vec()
}

/// Fetch v16 of partition 0 of topic `id`, as librdkafka 2.12 sends it:
/// by topic id, without a fetch session.
fn fetch_frame(id: Uuid) -> Vec<u8> {
    let partition = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(0)
        .with_partition_max_bytes(1 << 20);
    let body = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic_id(id)
                .with_partitions(vec![partition]),
        ]);
    frame(&body, 16)
}

async fn answer(socket: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut size = [0u8; 4];
    socket.read_exact(&mut size).await?;
    let mut answer = vec![0; i32::from_be_bytes(size).max(0) as usize];
    socket.read_exact(&mut answer).await?;
    Ok(answer)
}

/// The id of `topic`, from a Metadata request on `socket`.
async fn topic_id(socket: &mut tokio::net::TcpStream, topic: &str) -> Option<Uuid> {
    use tokio::io::AsyncWriteExt;
    let version = 12;
    let body = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]));
    socket.write_all(&frame(&body, version)).await.ok()?;
    let mut answer = bytes::Bytes::from(answer(socket).await.ok()?);
    ResponseHeader::decode(
        &mut answer,
        ApiKey::Metadata.response_header_version(version),
    )
    .ok()?;
    let response = MetadataResponse::decode(&mut answer, version).ok()?;
    // A missing topic would be answered at once, every time: no consumer for it.
    response
        .topics
        .first()
        .filter(|t| t.error_code == 0 && !t.topic_id.is_nil())
        .map(|t| t.topic_id)
}

/// Fetch answers the idle consumers have had.
pub(super) static ANSWERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A connection that long-polls one empty partition until the process ends.
pub(super) async fn idle_consumer(address: String, topic: String) {
    use tokio::io::AsyncWriteExt;
    let Ok(mut socket) = tokio::net::TcpStream::connect(&address).await else {
        return;
    };
    let Some(id) = topic_id(&mut socket, &topic).await else {
        return;
    };
    let frame = fetch_frame(id);
    loop {
        if socket.write_all(&frame).await.is_err() || answer(&mut socket).await.is_err() {
            return;
        }
        ANSWERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
