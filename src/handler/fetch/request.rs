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
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::FetchRequest;
    use kafka_protocol::messages::fetch_request::{
        FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
    };
    use kafka_protocol::protocol::Encodable;
    use proptest::prelude::*;

    use super::*;

    /// A topic: name, id, and (index, offset, max bytes, leader epoch) per partition.
    type Topic = (String, [u8; 16], Vec<(i32, i64, i32, i32)>);
    /// The request's numbers, its partitions, and those it forgets.
    type Read = (Vec<i64>, Wants, Vec<(TopicRef, Vec<i32>)>);

    fn request(
        topics: &[Topic],
        forgotten: &[(String, Vec<i32>)],
        (wait, min, max, isolation, id, epoch): (i32, i32, i32, i8, i32, i32),
        version: i16,
    ) -> FetchRequest {
        // kafka-protocol refuses to encode a field its version lacks.
        let forgotten = if version >= 7 { forgotten } else { &[] };
        let topics = topics
            .iter()
            .map(|(name, id, partitions)| {
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name.clone())))
                    .with_topic_id(Uuid::from_bytes(*id))
                    .with_unknown_tagged_fields([(7, Bytes::from_static(b"xy"))].into())
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|&(index, offset, max_bytes, epoch)| {
                                FetchPartition::default()
                                    .with_partition(index)
                                    .with_fetch_offset(offset)
                                    .with_partition_max_bytes(max_bytes)
                                    .with_current_leader_epoch(epoch)
                                    .with_log_start_offset(offset / 2)
                                    // Tagged fields (v17, v18): to be skipped.
                                    .with_replica_directory_id(Uuid::from_bytes([3; 16]))
                                    .with_high_watermark(offset)
                                    .with_last_fetched_epoch(if version >= 12 {
                                        epoch.wrapping_sub(1)
                                    } else {
                                        -1
                                    })
                            })
                            .collect(),
                    )
            })
            .collect();
        let forgotten = forgotten
            .iter()
            .map(|(name, partitions)| {
                ForgottenTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name.clone())))
                    .with_topic_id(Uuid::from_bytes([7; 16]))
                    .with_partitions(partitions.clone())
            })
            .collect();
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(wait)
            .with_min_bytes(min)
            .with_max_bytes(max)
            .with_isolation_level(isolation)
            .with_session_id(id)
            .with_session_epoch(epoch)
            .with_topics(topics)
            .with_forgotten_topics_data(forgotten)
            .with_rack_id(StrBytes::from_static_str("rack-1"))
            .with_cluster_id(Some(StrBytes::from_static_str("cluster")))
            .with_replica_state(ReplicaState::default().with_replica_epoch(4))
    }

    fn encoded(req: &FetchRequest, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        req.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    /// What the handler read from kafka-protocol's decoding of the same bytes.
    fn theirs(body: &Bytes, version: i16) -> Read {
        use kafka_protocol::protocol::Decodable;
        let req = FetchRequest::decode(&mut body.clone(), version).unwrap();
        let topic = |name: &TopicName, id: Uuid| {
            if version >= 13 {
                TopicRef::Id(id)
            } else {
                TopicRef::Name(name.clone())
            }
        };
        let scalars = vec![
            req.max_wait_ms.into(),
            req.min_bytes.into(),
            req.max_bytes.into(),
            req.isolation_level.into(),
            req.session_id.into(),
            req.session_epoch.into(),
        ];
        let wants = req
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let asked = Asked {
                            offset: p.fetch_offset,
                            max_bytes: p.partition_max_bytes,
                            leader_epoch: p.current_leader_epoch,
                        };
                        (p.partition, asked)
                    })
                    .collect();
                (topic(&t.topic, t.topic_id), partitions)
            })
            .collect();
        let forgotten = req
            .forgotten_topics_data
            .iter()
            .map(|t| (topic(&t.topic, t.topic_id), t.partitions.clone()))
            .collect();
        (scalars, wants, forgotten)
    }

    fn ours(body: &Bytes, version: i16) -> Read {
        let f = decode(body, version).unwrap();
        assert_eq!(f.uses_ids, version >= 13);
        let scalars = vec![
            f.max_wait_ms.into(),
            f.min_bytes.into(),
            f.max_bytes.into(),
            f.isolation_level.into(),
            f.session_id.into(),
            f.session_epoch.into(),
        ];
        (scalars, f.topics, f.forgotten)
    }

    proptest! {
        #[test]
        fn reads_what_kafka_protocol_reads_at_every_version(
            topics in prop::collection::vec(
                ("[a-z0-9._-]{1,20}", any::<[u8; 16]>(), prop::collection::vec(any::<(i32, i64, i32, i32)>(), 0..4)),
                0..4,
            ),
            forgotten in prop::collection::vec(("[a-z]{1,8}", prop::collection::vec(any::<i32>(), 0..3)), 0..3),
            scalars in any::<(i32, i32, i32, i8, i32, i32)>(),
        ) {
            for version in 4..=18 {
                let req = request(&topics, &forgotten, scalars, version);
                let body = encoded(&req, version);
                prop_assert_eq!(ours(&body, version), theirs(&body, version), "v{}", version);
            }
        }

        #[test]
        fn a_cut_request_is_an_error_not_a_panic(
            topics in prop::collection::vec(
                ("[a-z]{1,5}", any::<[u8; 16]>(), prop::collection::vec(any::<(i32, i64, i32, i32)>(), 0..3)),
                1..3,
            ),
            cut in any::<prop::sample::Index>(),
        ) {
            for version in 4..=18 {
                let req = request(&topics, &[("gone".into(), vec![1])], (500, 1, 1 << 20, 0, 5, 2), version);
                let body = encoded(&req, version);
                let short = body.slice(..cut.index(body.len()));
                prop_assert!(decode(&short, version).is_err(), "v{} cut at {}", version, short.len());
            }
        }
    }

    #[test]
    fn a_count_larger_than_the_request_is_an_error() {
        // v4: replica, wait, min, max, isolation, then 2^31-1 topics and nothing more.
        let mut body = BytesMut::new();
        for field in [-1i32, 500, 1, 1 << 20] {
            body.extend_from_slice(&field.to_be_bytes());
        }
        body.extend_from_slice(&[0]);
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode(&body.freeze(), 4).is_err());
    }

    #[test]
    fn unknown_tagged_fields_are_skipped() {
        let mut req = request(
            &[("t".into(), [1; 16], vec![(0, 5, 100, 3)])],
            &[],
            (500, 1, 9, 0, 0, -1),
            16,
        );
        req.replica_state = ReplicaState::default();
        let body = encoded(&req, 16);
        // The body ends with its tag section: [cluster id]. Add an unknown tag 9 of 3 bytes.
        let mut with = BytesMut::from(&body[..body.len() - 11]);
        let cluster = &body[body.len() - 10..];
        with.extend_from_slice(&[2]);
        with.extend_from_slice(cluster);
        with.extend_from_slice(&[9, 3, 1, 2, 3]);
        let f = decode(&with.freeze(), 16).unwrap();
        assert_eq!(f.topics.len(), 1);
        assert_eq!(
            f.topics[0].1,
            vec![(
                0,
                Asked {
                    offset: 5,
                    max_bytes: 100,
                    leader_epoch: 3
                }
            )]
        );
    }
}
