//! Groups of the consumer group protocol (KIP-848): the broker computes the
//! target assignment, and each member moves towards its share one heartbeat
//! at a time.
//!
//! Three epochs order everything. The **group epoch** goes up whenever the
//! membership or what the members' subscriptions resolve to changes. The
//! **assignment epoch** is the group epoch the target assignment was computed
//! at; it catches up on the next heartbeat. A **member epoch** is the
//! assignment epoch the member has reconciled to; it is bumped only once the
//! member has revoked what it must give up ([`reconcile`]), so no partition
//! is ever owned by two members at once.
//!
//! A group is stored as the records of [`records`] (Kafka's schemas) in the
//! internal offsets log: the group epoch, each member's subscription, the
//! target assignment and each member's current assignment. Members restored
//! at start-up get a fresh session.

mod assignor;
mod heartbeat;
mod membership;
pub(crate) mod reconcile;
pub(crate) mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use uuid::Uuid;

pub(crate) use assignor::ASSIGNORS;
pub(crate) use heartbeat::{HeartbeatRequest, HeartbeatResponse, Refusal};
use reconcile::{Current, MemberState};
use records::{CurrentValue, MemberValue, Record};

/// Partitions by topic id.
pub(crate) type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The member epoch a member leaves with.
pub(crate) const LEAVE_EPOCH: i32 = -1;
/// The member epoch a static member leaves with, to come back.
pub(crate) const STATIC_LEAVE_EPOCH: i32 = -2;

/// One member of a consumer group.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerMember {
    pub(crate) id: String,
    pub(crate) subscription: MemberValue,
    /// The compiled `subscription.topic_regex`, matched against whole names.
    pub(crate) regex: Option<regex::Regex>,
    pub(crate) current: Current,
    /// The member is removed if no heartbeat arrives before this.
    pub(crate) deadline: Instant,
    /// While revoking: the member is removed if it has not revoked by then.
    pub(crate) revoke_deadline: Option<Instant>,
}

impl ConsumerMember {
    /// Whether the member subscribes to `topic`.
    pub(crate) fn subscribes(&self, topic: &str) -> bool {
        self.subscription.topic_names.iter().any(|t| t == topic)
            || self.regex.as_ref().is_some_and(|r| r.is_match(topic))
    }
}

/// The group's state as ConsumerGroupDescribe and ListGroups name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsumerState {
    Empty,
    /// The target assignment is behind the group epoch.
    Assigning,
    /// Some member has not reached its target yet.
    Reconciling,
    Stable,
}

impl ConsumerState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ConsumerState::Empty => "Empty",
            ConsumerState::Assigning => "Assigning",
            ConsumerState::Reconciling => "Reconciling",
            ConsumerState::Stable => "Stable",
        }
    }
}

/// A consumer group of the KIP-848 protocol.
#[derive(Debug, Default)]
pub(crate) struct ConsumerGroup {
    pub(crate) epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    /// The target assignment of each member, at `assignment_epoch`.
    pub(crate) target: BTreeMap<String, Assignment>,
    /// Who owns each partition (assigned or still revoking).
    owners: HashMap<(Uuid, i32), String>,
    /// group.instance.id → member id.
    pub(crate) static_members: HashMap<String, String>,
    /// What the subscriptions resolve to: topic name → (id, partitions).
    /// Persisted, so a restart alone does not bump the group epoch.
    pub(crate) resolved: BTreeMap<String, (Uuid, i32)>,
    /// The catalog generation `resolved` was computed at.
    resolved_at: Option<u64>,
    /// Records to write: the group's epochs, and members whose records changed.
    dirty_epochs: bool,
    dirty_members: BTreeSet<String>,
    /// When the group epoch last went up without the group being stable since.
    pub(crate) rebalance_started: Option<Instant>,
}

impl ConsumerGroup {
    pub(crate) fn state(&self) -> ConsumerState {
        if self.members.is_empty() {
            ConsumerState::Empty
        } else if self.assignment_epoch < self.epoch {
            ConsumerState::Assigning
        } else if self.members.values().any(|m| {
            m.current.state != MemberState::Stable || m.current.epoch != self.assignment_epoch
        }) {
            ConsumerState::Reconciling
        } else {
            ConsumerState::Stable
        }
    }

    /// The assignor most members ask for (`uniform` if none does).
    pub(crate) fn assignor(&self) -> &str {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.subscription.assignor {
                *votes.entry(a).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|&(name, n)| (n, std::cmp::Reverse(name)))
            .map_or(ASSIGNORS[0], |(name, _)| name)
    }

    /// Every topic name some member subscribes to (by name or by pattern).
    pub(crate) fn subscribed_topics(&self) -> BTreeSet<String> {
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(m.subscription.topic_names.iter().cloned());
            topics.extend(self.resolved.keys().filter(|t| m.subscribes(t)).cloned());
        }
        topics
    }

    /// The member's current assignment changes: record it and who owns what.
    fn set_current(&mut self, id: &str, next: Current) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        for (topic, ps) in member
            .current
            .assigned
            .iter()
            .chain(&member.current.revoking)
        {
            for p in ps {
                if self.owners.get(&(*topic, *p)).is_some_and(|o| o == id) {
                    self.owners.remove(&(*topic, *p));
                }
            }
        }
        for (topic, ps) in next.assigned.iter().chain(&next.revoking) {
            for p in ps {
                self.owners.insert((*topic, *p), id.to_string());
            }
        }
        if member.current != next {
            self.dirty_members.insert(id.to_string());
        }
        member.current = next;
    }

    /// Removes a member: its partitions become free and the group epoch goes up.
    pub(crate) fn remove_member(&mut self, id: &str, now: Instant, reason: &str) {
        self.set_current(
            id,
            Current {
                state: MemberState::Stable,
                epoch: 0,
                previous_epoch: 0,
                assigned: Assignment::new(),
                revoking: Assignment::new(),
            },
        );
        self.owners.retain(|_, owner| owner != id);
        let Some(member) = self.members.remove(id) else {
            return;
        };
        if let Some(instance) = &member.subscription.instance_id
            && self.static_members.get(instance).is_some_and(|m| m == id)
        {
            self.static_members.remove(instance);
        }
        self.target.remove(id);
        self.dirty_members.insert(id.to_string());
        self.bump_epoch(now);
        tracing::info!(
            member = id,
            reason,
            epoch = self.epoch,
            "consumer group member removed"
        );
    }

    fn bump_epoch(&mut self, now: Instant) {
        self.epoch += 1;
        self.dirty_epochs = true;
        self.rebalance_started.get_or_insert(now);
    }

    /// Removes members whose session or revocation time ran out.
    pub(crate) fn tick(&mut self, now: Instant) {
        let expired: Vec<(String, &'static str)> = self
            .members
            .values()
            .filter_map(|m| {
                if now >= m.deadline {
                    Some((m.id.clone(), "session timeout"))
                } else if m.revoke_deadline.is_some_and(|d| now >= d) {
                    Some((m.id.clone(), "did not revoke within the rebalance timeout"))
                } else {
                    None
                }
            })
            .collect();
        for (id, reason) in expired {
            self.remove_member(&id, now, reason);
        }
    }

    /// The records to write since the last call (tombstones for removed members).
    pub(crate) fn take_records(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        if std::mem::take(&mut self.dirty_epochs) {
            out.push(Record::Topics(Some(self.resolved.clone())));
            out.push(Record::GroupEpoch(Some(self.epoch)));
            out.push(Record::TargetEpoch(Some(self.assignment_epoch)));
        }
        for id in std::mem::take(&mut self.dirty_members) {
            match self.members.get(&id) {
                Some(m) => {
                    out.push(Record::Member(id.clone(), Some(m.subscription.clone())));
                    let target = self.target.get(&id).cloned().unwrap_or_default();
                    out.push(Record::Target(id.clone(), Some(target)));
                    let c = &m.current;
                    out.push(Record::Current(
                        id,
                        Some(CurrentValue {
                            epoch: c.epoch,
                            previous_epoch: c.previous_epoch,
                            state: c.state.code(),
                            assigned: c.assigned.clone(),
                            revoking: c.revoking.clone(),
                        }),
                    ));
                }
                None => {
                    // Kafka's replay wants the member's record gone last.
                    out.push(Record::Current(id.clone(), None));
                    out.push(Record::Target(id.clone(), None));
                    out.push(Record::Member(id, None));
                }
            }
        }
        out
    }

    /// Tombstones for every record of the group (it is deleted or converted).
    pub(crate) fn tombstones(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for id in self.members.keys() {
            out.push(Record::Current(id.clone(), None));
            out.push(Record::Target(id.clone(), None));
            out.push(Record::Member(id.clone(), None));
        }
        // The group's own record goes last: replay forgets the group there.
        out.push(Record::TargetEpoch(None));
        out.push(Record::Topics(None));
        out.push(Record::GroupEpoch(None));
        out
    }

    /// Applies one record read back at start-up.
    pub(crate) fn restore(&mut self, record: Record, now: Instant) {
        let blank = |id: &str| ConsumerMember {
            id: id.to_string(),
            subscription: MemberValue::default(),
            regex: None,
            current: Current {
                state: MemberState::Stable,
                epoch: 0,
                previous_epoch: 0,
                assigned: Assignment::new(),
                revoking: Assignment::new(),
            },
            deadline: now,
            revoke_deadline: None,
        };
        match record {
            Record::GroupEpoch(v) => self.epoch = v.unwrap_or(0),
            Record::TargetEpoch(v) => self.assignment_epoch = v.unwrap_or(0),
            Record::Topics(v) => self.resolved = v.unwrap_or_default(),
            Record::Member(id, Some(v)) => {
                let member = self.members.entry(id.clone()).or_insert_with(|| blank(&id));
                member.regex = v.topic_regex.as_deref().and_then(|r| compile(r).ok());
                member.subscription = v;
            }
            Record::Member(id, None) => {
                self.members.remove(&id);
                self.target.remove(&id);
            }
            Record::Target(id, v) => match v {
                Some(a) => {
                    self.target.insert(id, a);
                }
                None => {
                    self.target.remove(&id);
                }
            },
            Record::Current(id, Some(v)) => {
                let member = self.members.entry(id.clone()).or_insert_with(|| blank(&id));
                member.current = Current {
                    state: MemberState::from_code(v.state),
                    epoch: v.epoch,
                    previous_epoch: v.previous_epoch,
                    assigned: v.assigned,
                    revoking: v.revoking,
                };
            }
            Record::Current(_, None) => {}
        }
    }

    /// After restoring: index owners and static members, start sessions.
    pub(crate) fn finish_restore(&mut self, now: Instant, session: Duration) {
        self.owners.clear();
        self.static_members.clear();
        for m in self.members.values_mut() {
            m.deadline = now + session;
            for (topic, ps) in m.current.assigned.iter().chain(&m.current.revoking) {
                for p in ps {
                    self.owners.insert((*topic, *p), m.id.clone());
                }
            }
            if let Some(instance) = &m.subscription.instance_id {
                self.static_members.insert(instance.clone(), m.id.clone());
            }
        }
    }
}

/// Compiles a subscription pattern (RE2 syntax, matched against the whole
/// name). The pattern must be valid alone: `a)|(b` is refused, not anchored
/// into something else.
pub(crate) fn compile(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(pattern)?;
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

#[cfg(test)]
mod tests;
