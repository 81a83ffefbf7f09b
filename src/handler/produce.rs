//! Produce: validate and append each partition's batches, all-or-nothing per
//! partition; with `flush = "always"` the acknowledgement waits for a group-commit fsync.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Context, Reply};
use crate::catalog::Partition;
use crate::config::FlushMode;
use crate::error::{Error, Result};
use crate::protocol::{Request, encode_response};
use crate::storage::AppendInfo;

pub(super) async fn handle(ctx: &Context, req: &Request) -> Result<Reply> {
    let body: ProduceRequest = req.decode()?;
    let version = req.version();
    let acks_valid = matches!(body.acks, -1..=1);
    let mut response = ProduceResponse::default();
    let mut failed = false;
    for topic in body.topic_data {
        let mut out = TopicProduceResponse::default();
        out.name = topic.name.clone();
        for data in topic.partition_data {
            let result = if acks_valid {
                produce_one(ctx, &topic.name, data.index, data.records, body.acks).await
            } else {
                Err(Error::api(
                    ResponseError::InvalidRequiredAcks,
                    "acks must be -1, 0 or 1",
                ))
            };
            failed |= result.is_err();
            out.partition_responses
                .push(partition_response(data.index, result, version));
        }
        response.responses.push(out);
    }
    if body.acks == 0 {
        // Kafka closes the connection after a failed acks=0 produce, so the producer notices.
        return if failed {
            Err(Error::Protocol("acks=0 produce failed".into()))
        } else {
            Ok(Reply::Nothing)
        };
    }
    let frame = encode_response(
        ApiKey::Produce,
        version,
        req.header.correlation_id,
        &response,
    )?;
    Ok(Reply::Frame(vec![frame.freeze()]))
}

async fn produce_one(
    ctx: &Context,
    topic: &str,
    index: i32,
    records: Option<bytes::Bytes>,
    acks: i16,
) -> Result<AppendInfo> {
    let partition = ctx.catalog.partition(topic, index)?;
    let records = records.ok_or_else(|| Error::api(ResponseError::InvalidRecord, "no records"))?;
    let mut batches = records.to_vec();
    stamp_leader_epoch(&mut batches);
    let info = ctx.catalog.append(&partition, &mut batches)?;
    if acks != 0 && ctx.config.flush == FlushMode::Always {
        sync_through(&partition, info.last_offset).await?;
    }
    Ok(info)
}

/// Writes this broker's leader epoch (0) into each batch, as Kafka's leader does.
/// The field lies before the CRC-covered bytes, so the checksum stays valid.
fn stamp_leader_epoch(batches: &mut [u8]) {
    let mut pos = 0usize;
    while let Some(header) = batches.get(pos..pos + 16) {
        let len = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        if let Some(epoch) = batches.get_mut(pos + 12..pos + 16) {
            epoch.copy_from_slice(&0i32.to_be_bytes());
        }
        pos = pos.saturating_add(12).saturating_add(len);
    }
}

/// Group commit: returns once everything up to `offset` is fsynced. Whoever
/// holds the sync lock fsyncs for every append that landed before it started.
pub(crate) async fn sync_through(partition: &Partition, offset: i64) -> Result<()> {
    if partition.log().synced_offset() > offset {
        return Ok(());
    }
    let _turn = partition.sync.lock().await;
    if partition.log().synced_offset() > offset {
        return Ok(());
    }
    let target = partition.log().sync_target();
    let end = target.end_offset;
    let synced = tokio::task::spawn_blocking(move || target.sync()).await;
    match synced {
        Ok(Ok(())) => {
            partition.log().mark_synced(end);
            Ok(())
        }
        failed => {
            // IMPORTANT: after a failed fsync the page cache cannot be trusted; stop.
            tracing::error!(topic = %partition.topic, partition = partition.index, ?failed, "fsync failed; partition is now read-only");
            partition.log().poison();
            Err(Error::api(ResponseError::KafkaStorageError, "fsync failed"))
        }
    }
}

fn partition_response(
    index: i32,
    result: Result<AppendInfo>,
    version: i16,
) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    match result {
        Ok(info) => {
            p.base_offset = info.base_offset;
            p.log_append_time_ms = info.log_append_time;
            if version >= 5 {
                p.log_start_offset = info.log_start_offset;
            }
        }
        Err(e) => {
            tracing::debug!(index, error = %e, "produce refused");
            p.error_code = e.code();
            p.base_offset = -1;
            if version >= 8 {
                p.error_message = Some(StrBytes::from_string(e.message()));
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_epoch_is_stamped_in_every_batch_and_garbage_is_left_alone() {
        let mut two = vec![0xFFu8; 2 * 61];
        for start in [0usize, 61] {
            two[start + 8..start + 12].copy_from_slice(&49i32.to_be_bytes());
        }
        stamp_leader_epoch(&mut two);
        assert_eq!(&two[12..16], &[0; 4]);
        assert_eq!(&two[61 + 12..61 + 16], &[0; 4]);
        let mut short = vec![0xFFu8; 10];
        stamp_leader_epoch(&mut short);
        assert_eq!(short, vec![0xFF; 10]);
    }
}
