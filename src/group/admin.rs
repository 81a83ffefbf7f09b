//! ListGroups, DescribeGroups and DeleteGroups.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::codec::Entry;
use super::state::GroupState;
use super::{Coordinator, response_error};

/// ListGroups' view of one group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListedGroup {
    pub id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer".
    pub group_type: &'static str,
}

/// DescribeGroups' view of one group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupSummary {
    /// Kafka's state name; "Dead" for a group that does not exist.
    pub state: &'static str,
    pub protocol_type: String,
    /// The chosen protocol, only while Stable.
    pub protocol: String,
    pub members: Vec<MemberSummary>,
}

/// DescribeGroups' view of one member; metadata and assignment only while Stable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MemberSummary {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

impl Coordinator {
    /// Every group, filtered by state names and group types (case-insensitive;
    /// no filter when empty).
    pub(crate) fn list_groups(&self, states: &[String], types: &[String]) -> Vec<ListedGroup> {
        let wanted = |filter: &[String], value: &str| {
            filter.is_empty() || filter.iter().any(|s| s.eq_ignore_ascii_case(value))
        };
        let inner = self.lock();
        let mut groups: Vec<_> = inner
            .groups
            .values()
            .filter(|g| wanted(states, g.state_name()) && wanted(types, g.group_type()))
            .map(|g| ListedGroup {
                id: g.id.clone(),
                protocol_type: match g.consumer {
                    Some(_) => "consumer".to_string(),
                    None => g.protocol_type.clone().unwrap_or_default(),
                },
                state: g.state_name(),
                group_type: g.group_type(),
            })
            .collect();
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        groups
    }

    /// DescribeGroups for one group.
    pub(crate) fn describe(&self, group_id: &str) -> Result<GroupSummary, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let inner = self.lock();
        let Some(group) = inner.groups.get(group_id) else {
            return Ok(GroupSummary {
                state: "Dead",
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            });
        };
        if let Some(c) = &group.consumer {
            return Ok(super::modern::summary(c));
        }
        let stable = group.state == GroupState::Stable;
        let protocol = if stable {
            group.protocol.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let members = group
            .members
            .values()
            .map(|m| MemberSummary {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        Ok(GroupSummary {
            state: group.state.name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        })
    }

    /// DeleteGroups: removes empty groups and their offsets (those waiting
    /// in a transaction too); NON_EMPTY_GROUP otherwise.
    pub(crate) async fn delete_groups(&self, ids: &[String]) -> Vec<Result<(), ResponseError>> {
        let mut last = None;
        let mut results = Vec::with_capacity(ids.len());
        {
            let mut inner = self.lock();
            for id in ids {
                let result = inner.delete_group(id);
                if let Ok(offset) = result {
                    last = Some(offset);
                }
                results.push(result.map(|_| ()));
            }
            inner.persist();
        }
        self.settle(last, &mut results).await;
        results
    }
}

impl super::Inner {
    fn delete_group(&mut self, id: &str) -> Result<i64, ResponseError> {
        if id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let group = self.groups.get(id).ok_or(ResponseError::GroupIdNotFound)?;
        if !group.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        // Commits waiting in a transaction go too (as in Kafka), or its
        // COMMIT would bring the group back.
        let mut partitions = self.staged.partitions_of(id);
        partitions.extend(group.offsets.keys().cloned());
        let offsets: Vec<Entry> = partitions
            .into_iter()
            .map(|(topic, partition)| Entry::Offset {
                group: id.to_string(),
                topic,
                partition,
                value: None,
            })
            .collect();
        let mut entries = vec![Entry::Group {
            group: id.to_string(),
            value: None,
        }];
        if let Some(c) = &group.consumer {
            entries.extend(c.tombstones().into_iter().map(|record| Entry::Consumer {
                group: id.to_string(),
                record,
            }));
        }
        // The offsets' tombstones, however many, go first, in batches apart
        // from the group's: a crash that keeps only some leaves the group
        // with fewer offsets, and its record's tombstone after them all.
        let last = self
            .append_parts(&offsets, &entries)
            .map_err(|e| response_error(&e))?;
        self.drop_staged_under(&offsets);
        self.groups.remove(id);
        tracing::info!(group = id, "group deleted");
        Ok(last)
    }
}
