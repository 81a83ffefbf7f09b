//! OffsetCommit, OffsetFetch, OffsetDelete and offset expiry.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use super::codec::{Entry, OffsetValue};
use super::state::{Group, GroupState};
use super::{Coordinator, Inner, commit_error, fail_successes, response_error};
use crate::util::now_ms;

/// One partition's offset in an OffsetCommit.
#[derive(Debug, Clone)]
pub(crate) struct Commit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// A committed offset as OffsetFetch reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FetchedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// Per partition: the outcome for each requested partition of a topic.
pub(crate) type TopicResults<T> = Vec<(String, Vec<(i32, T)>)>;

impl Coordinator {
    /// OffsetCommit: appended to the offsets log (and fsynced with `flush =
    /// "always"`) before this returns. A simple consumer commits with
    /// generation -1 and no member id. Results follow the order of `commits`.
    pub(crate) async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        commits: &[Commit],
    ) -> Vec<Result<(), ResponseError>> {
        let (mut results, last) = {
            let mut inner = self.lock();
            let checked = inner.check_commit(group_id, generation, member_id, instance);
            let results = match checked {
                Ok(()) => {
                    inner.write_commits(group_id, commits, self.config.offset_metadata_max_bytes)
                }
                Err(e) => (commits.iter().map(|_| Err(e)).collect(), None),
            };
            inner.persist();
            results
        };
        self.settle(last, &mut results).await;
        results
    }

    /// OffsetFetch for `topics` (all committed partitions when `None`);
    /// partitions without a commit report `None`.
    /// `member` (OffsetFetch v9: member id and epoch) is checked against a
    /// consumer group's members.
    pub(crate) fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
        member: (Option<&str>, i32),
    ) -> Result<TopicResults<Option<FetchedOffset>>, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let inner = self.lock();
        let group = inner.groups.get(group_id);
        if let Some(c) = group.and_then(|g| g.consumer.as_ref()) {
            super::modern::check_fetch(c, member.0, member.1)?;
        }
        let offsets = group.map(|g| &g.offsets);
        let fetched = |v: &OffsetValue| FetchedOffset {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
        };
        let Some(topics) = topics else {
            let mut all: BTreeMap<String, Vec<(i32, Option<FetchedOffset>)>> = BTreeMap::new();
            for ((topic, partition), v) in offsets.into_iter().flatten() {
                all.entry(topic.clone())
                    .or_default()
                    .push((*partition, Some(fetched(v))));
            }
            return Ok(all.into_iter().collect());
        };
        Ok(topics
            .iter()
            .map(|(topic, partitions)| {
                let found = partitions
                    .iter()
                    .map(|p| {
                        (
                            *p,
                            offsets
                                .and_then(|o| o.get(&(topic.clone(), *p)))
                                .map(fetched),
                        )
                    })
                    .collect();
                (topic.clone(), found)
            })
            .collect())
    }

    /// OffsetDelete: refused for topics the group's members are subscribed to.
    pub(crate) async fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<TopicResults<Result<(), ResponseError>>, ResponseError> {
        let (mut results, last) = {
            let mut inner = self.lock();
            let out = inner.delete_offsets(group_id, topics)?;
            inner.persist();
            out
        };
        if let Some(last) = last
            && let Err(e) = self.sync_through(last).await
        {
            let code = response_error(&e);
            for (_, partitions) in &mut results {
                partitions
                    .iter_mut()
                    .filter(|(_, r)| r.is_ok())
                    .for_each(|(_, r)| *r = Err(code));
            }
        }
        Ok(results)
    }
}

type Written<T> = (T, Option<i64>);

impl Inner {
    fn check_commit(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if self.stopping {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            if generation >= 0 {
                return Err(ResponseError::IllegalGeneration);
            }
            self.groups
                .insert(group_id.to_string(), Group::new(group_id, now_ms()));
            return Ok(());
        };
        if let Some(c) = &group.consumer {
            return super::modern::check_commit(c, member_id, generation);
        }
        if group.is_fenced(instance, member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if generation < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        // A commit is no heartbeat (as in Kafka 4's coordinator): a closed
        // static member's last commit does not stretch its session.
        if !group.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    fn write_commits(
        &mut self,
        group_id: &str,
        commits: &[Commit],
        max_metadata: usize,
    ) -> Written<Vec<Result<(), ResponseError>>> {
        let (entries, mut results) = offset_entries(group_id, commits, max_metadata);
        // IMPORTANT: the log is written before memory changes, and under the same lock, so both keep one order.
        let last = match self.append(&entries) {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(group = group_id, error = %e, "offset commit could not be written");
                fail_successes(&mut results, commit_error(&e));
                return (results, None);
            }
        };
        if let Some(group) = self.groups.get_mut(group_id) {
            // The entries are the batch's last records.
            let first = last + 1 - entries.len() as i64;
            for (record, entry) in (first..).zip(entries) {
                if let Entry::Offset {
                    topic,
                    partition,
                    value: Some(mut v),
                    ..
                } = entry
                {
                    v.record = record;
                    group.offsets.insert((topic, partition), v);
                }
            }
        }
        (results, (last >= 0).then_some(last))
    }

    fn delete_offsets(
        &mut self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<Written<TopicResults<Result<(), ResponseError>>>, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let group = self
            .groups
            .get(group_id)
            .ok_or(ResponseError::GroupIdNotFound)?;
        let subscribed = match group.state {
            _ if group.consumer.is_some() => group.consumer.as_ref().map(|c| c.subscribed_topics()),
            GroupState::Empty => Some(BTreeSet::new()),
            _ if group.protocol_type.as_deref() == Some("consumer") => subscribed_topics(group),
            _ => return Err(ResponseError::NonEmptyGroup),
        };
        // Commits waiting in a transaction are deleted too, as in Kafka.
        let waiting = self.staged.partitions_of(group_id);
        let mut results = Vec::new();
        let mut entries = Vec::new();
        for (topic, partitions) in topics {
            let refused = subscribed.as_ref().is_none_or(|s| s.contains(topic));
            let mut out = Vec::new();
            for &p in partitions {
                if refused {
                    out.push((p, Err(ResponseError::GroupSubscribedToTopic)));
                    continue;
                }
                let key = (topic.clone(), p);
                if group.offsets.contains_key(&key) || waiting.contains(&key) {
                    entries.push(Entry::Offset {
                        group: group_id.to_string(),
                        topic: topic.clone(),
                        partition: p,
                        value: None,
                    });
                }
                out.push((p, Ok(())));
            }
            results.push((topic.clone(), out));
        }
        // Tombstones only: however many, a crash may keep any prefix.
        let last = self
            .append_parts(&entries, &[])
            .map_err(|e| response_error(&e))?;
        self.drop_staged_under(&entries);
        if let Some(group) = self.groups.get_mut(group_id) {
            for entry in &entries {
                if let Entry::Offset {
                    topic, partition, ..
                } = entry
                {
                    group.offsets.remove(&(topic.clone(), *partition));
                }
            }
        }
        Ok((results, (!entries.is_empty()).then_some(last)))
    }

    /// Drops offsets of empty groups `retention_ms` after the later of their
    /// commit and the group emptying; then drops empty groups with no offsets.
    /// A partition with a commit waiting in a transaction keeps its offset,
    /// and the group stays (as in Kafka): the tombstone would drop the
    /// waiting commit.
    pub(super) fn expire_offsets(&mut self, retention_ms: i64) {
        let now = now_ms();
        let mut entries = Vec::new();
        let mut gone = Vec::new();
        let staged = &self.staged;
        for group in self.groups.values_mut().filter(|g| g.is_empty()) {
            let since = group.state_since_ms;
            let waiting = staged.partitions_of(&group.id);
            let expired: Vec<(String, i32)> = group
                .offsets
                .iter()
                .filter(|(_, v)| now - v.commit_timestamp.max(since) >= retention_ms)
                .map(|(k, _)| k.clone())
                .filter(|k| !waiting.contains(k))
                .collect();
            for (topic, partition) in expired {
                group.offsets.remove(&(topic.clone(), partition));
                entries.push(Entry::Offset {
                    group: group.id.clone(),
                    topic,
                    partition,
                    value: None,
                });
            }
            if group.offsets.is_empty() && group.pending.is_empty() && waiting.is_empty() {
                gone.push(group.id.clone());
            }
        }
        for id in gone {
            let Some(group) = self.groups.remove(&id) else {
                continue;
            };
            match &group.consumer {
                Some(c) => {
                    entries.extend(c.tombstones().into_iter().map(|record| Entry::Consumer {
                        group: id.clone(),
                        record,
                    }))
                }
                None => entries.push(Entry::Group {
                    group: id,
                    value: None,
                }),
            }
        }
        if !entries.is_empty() {
            tracing::info!(records = entries.len(), "expired offsets and empty groups");
        }
        self.drop_staged_under(&entries);
        self.append_or_keep(entries.iter().map(Entry::encode).collect());
    }
}

/// The records of `commits` to `group_id`, and per commit `Ok` or why it
/// is refused (metadata longer than `max_metadata`).
pub(super) fn offset_entries(
    group_id: &str,
    commits: &[Commit],
    max_metadata: usize,
) -> (Vec<Entry>, Vec<Result<(), ResponseError>>) {
    let now = now_ms();
    let mut results = Vec::with_capacity(commits.len());
    let mut entries = Vec::new();
    for c in commits {
        if c.metadata.as_ref().is_some_and(|m| m.len() > max_metadata) {
            results.push(Err(ResponseError::OffsetMetadataTooLarge));
            continue;
        }
        let value = OffsetValue {
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata: c.metadata.clone().unwrap_or_default(),
            commit_timestamp: now,
            record: -1,
        };
        entries.push(Entry::Offset {
            group: group_id.to_string(),
            topic: c.topic.clone(),
            partition: c.partition,
            value: Some(value),
        });
        results.push(Ok(()));
    }
    (entries, results)
}

/// The topics the members subscribe to with the group's protocol; `None` if unknown.
fn subscribed_topics(group: &Group) -> Option<BTreeSet<String>> {
    let protocol = group.protocol.as_deref()?;
    let mut topics = BTreeSet::new();
    for member in group.members.values() {
        let mut buf = member.metadata(protocol);
        if buf.len() < 2 {
            return None;
        }
        let version = buf.get_i16().clamp(0, 3);
        let sub = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
        topics.extend(sub.topics.iter().map(|t| t.to_string()));
    }
    Some(topics)
}
