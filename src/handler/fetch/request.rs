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
use crate::protocol::{Bad, Read, Reader};

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
    let mut r = Reader::new(body, version >= 12);
    read(&mut r, version).map_err(|Bad(what)| {
        Error::Protocol(format!("Fetch v{version}: {what} at byte {}", r.pos()))
    })
}

fn read(r: &mut Reader<'_>, version: i16) -> Read<Fetch> {
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
        let topic = topic(r, version)?;
        let partitions = r.array(16, |r| partition(r, version))?;
        r.tags()?;
        Ok((topic, partitions))
    })?;
    let forgotten = if version >= 7 {
        r.array(3, |r| {
            let topic = topic(r, version)?;
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

/// One partition asked for: its index, and where and how much to read.
fn partition(r: &mut Reader<'_>, version: i16) -> Read<(i32, Asked)> {
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
}

/// A topic: by name up to v12, by id from v13.
fn topic(r: &mut Reader<'_>, version: i16) -> Read<TopicRef> {
    if version >= 13 {
        return Ok(TopicRef::Id(Uuid::from_bytes(r.fixed()?)));
    }
    let n = r.string_len()?;
    let name = StrBytes::from_utf8(r.slice(n)?).map_err(|_| Bad("topic name is not UTF-8"))?;
    Ok(TopicRef::Name(TopicName(name)))
}

#[cfg(test)]
mod tests;
