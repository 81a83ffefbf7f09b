//! A bare Kafka protocol client over a tokio TcpStream: requests are encoded
//! with kafka-protocol's own types, no client library in between.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a raw read may wait.
pub(crate) const READ_WAIT: Duration = Duration::from_secs(10);

/// One connection to the broker.
#[derive(Debug)]
pub(crate) struct Raw {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Raw {
    pub(crate) async fn connect(bootstrap: &str) -> Raw {
        let stream = TcpStream::connect(bootstrap)
            .await
            .expect("connect to the broker");
        Raw {
            stream,
            next_correlation_id: 1,
        }
    }

    /// The encoded header + body of a request (no size prefix); returns the correlation id too.
    pub(crate) fn encode<R: Request>(&mut self, version: i16, body: &R) -> (i32, BytesMut) {
        let key = ApiKey::try_from(R::KEY).expect("known API key");
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-raw-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .expect("encode header");
        body.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("encode {key:?} v{version}: {e}"));
        (correlation_id, buf)
    }

    /// Writes `payload` with its 4-byte size prefix.
    pub(crate) async fn send_frame(&mut self, payload: &[u8]) {
        let mut frame = Vec::with_capacity(4 + payload.len());
        frame.put_i32(payload.len() as i32);
        frame.extend_from_slice(payload);
        self.send_bytes(&frame).await;
    }

    /// Writes raw bytes (no framing). A write error is ignored: the broker may
    /// already have closed the connection, which the test then observes.
    pub(crate) async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
        let _ = self.stream.flush().await;
    }

    /// Reads one response frame (without the size prefix), failing after `wait`.
    pub(crate) async fn read_frame(&mut self, wait: Duration) -> Bytes {
        tokio::time::timeout(wait, async {
            let size = self.stream.read_i32().await.expect("response size");
            let mut body = vec![0u8; usize::try_from(size).expect("non-negative size")];
            self.stream
                .read_exact(&mut body)
                .await
                .expect("response body");
            Bytes::from(body)
        })
        .await
        .unwrap_or_else(|_| panic!("no response within {wait:?}"))
    }

    /// Reads a response to `R` sent at `version` with `correlation_id`.
    pub(crate) async fn receive<R: Request>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> R::Response {
        let key = ApiKey::try_from(R::KEY).expect("known API key");
        let mut frame = self.read_frame(READ_WAIT).await;
        let header = ResponseHeader::decode(&mut frame, key.response_header_version(version))
            .expect("response header");
        assert_eq!(
            header.correlation_id, correlation_id,
            "{key:?} v{version}: correlation id"
        );
        let response = R::Response::decode(&mut frame, version)
            .unwrap_or_else(|e| panic!("decode {key:?} v{version} response: {e}"));
        assert_eq!(
            frame.remaining(),
            0,
            "{key:?} v{version}: bytes left after the response body"
        );
        response
    }

    /// Sends one request and waits for its response.
    pub(crate) async fn call<R: Request>(&mut self, version: i16, body: &R) -> R::Response {
        let (correlation_id, payload) = self.encode(version, body);
        self.send_frame(&payload).await;
        self.receive::<R>(version, correlation_id).await
    }

    /// True when the broker closes the connection (EOF or reset) within [`READ_WAIT`]
    /// without sending anything; panics if it sends bytes instead.
    pub(crate) async fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(READ_WAIT, self.stream.read(&mut buf)).await {
            Err(_) => false,
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(n)) => panic!(
                "expected the connection to close, got {n} bytes: {:?}",
                &buf[..n]
            ),
        }
    }

    /// True when nothing arrives within `wait` (and the connection stays open).
    pub(crate) async fn is_silent_for(&mut self, wait: Duration) -> bool {
        let mut buf = [0u8; 1];
        tokio::time::timeout(wait, self.stream.peek(&mut buf))
            .await
            .is_err()
    }
}

/// A plain record for [`batch`]. kafka-protocol's encoder starts a new batch
/// whenever `offset - sequence` changes, so the sequence follows the offset
/// (and the first record, at delta 0, carries the "no sequence" -1).
pub(crate) fn record(
    offset_delta: i64,
    timestamp: i64,
    key: Option<&str>,
    value: Option<&str>,
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: offset_delta,
        sequence: (offset_delta - 1) as i32,
        timestamp,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: Default::default(),
    }
}

/// Encodes `records` as one uncompressed v2 record batch.
pub(crate) fn batch(records: &[Record]) -> Bytes {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("encode batch");
    buf.freeze()
}

/// Decodes every record in fetched `records` bytes.
pub(crate) fn decode_records(records: &Bytes) -> Vec<Record> {
    let mut buf = records.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .expect("decode fetched batches")
        .into_iter()
        .flat_map(|set| set.records)
        .collect()
}

/// Produces `batch` to `topic`/`partition` with acks=-1: (error code, base offset).
pub(crate) async fn produce(
    raw: &mut Raw,
    version: i16,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    let p = produce_answer(raw, version, topic, partition, records).await;
    (p.error_code, p.base_offset)
}

/// [`produce`]'s whole answer for the partition.
pub(crate) async fn produce_answer(
    raw: &mut Raw,
    version: i16,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> kafka_protocol::messages::produce_response::PartitionProduceResponse {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ]);
    let mut response = raw.call(version, &request).await;
    response
        .responses
        .swap_remove(0)
        .partition_responses
        .swap_remove(0)
}

/// A Fetch (v12 and earlier: topics by name) of `partitions` of `topic` from
/// `offset`, waiting up to `max_wait_ms` for one byte; 1 MiB limits.
pub(crate) fn fetch_request(
    topic: &str,
    partitions: &[i32],
    offset: i64,
    max_wait_ms: i32,
) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
    let partitions = partitions
        .iter()
        .map(|&p| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions),
        ])
}

/// A ListOffsets of partition 0 of `topic` at `timestamp` (-1 latest, -2
/// earliest): (error code, offset, timestamp).
pub(crate) async fn list_offset(
    raw: &mut Raw,
    version: i16,
    topic: &str,
    timestamp: i64,
) -> (i16, i64, i64) {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let response = raw.call(version, &request).await;
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}
