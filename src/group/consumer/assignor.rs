//! Server-side assignors of the consumer group protocol (KIP-848): `uniform`
//! (the default) and `range`. Both are pure functions of the members'
//! subscriptions, the topics' partition counts and (for `uniform`) the
//! previous target assignment.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Assignment;

/// The assignors a member may name in `ServerAssignor`, the default first.
pub(crate) const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// One member as an assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscriber {
    pub(crate) member_id: String,
    /// Ids of the existing topics the member subscribes to.
    pub(crate) topics: BTreeSet<Uuid>,
}

/// Computes the target assignment of every member with the assignor `name`
/// (`uniform` for any name not in [`ASSIGNORS`]). `partitions` gives each
/// topic's partition count; `previous` is the current target assignment.
pub(crate) fn assign(
    name: &str,
    members: &[Subscriber],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, partitions),
        _ => uniform(members, partitions, previous),
    }
}

/// Kafka's `range`: for each topic, its subscribers sorted by member id take
/// contiguous ranges of partitions, the first ones one more when the count does
/// not divide. Members with the same subscriptions get the same partition
/// numbers of co-partitioned topics.
fn range(members: &[Subscriber], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for (&topic, &count) in partitions {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(&topic))
            .map(|m| m.member_id.as_str())
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_unstable();
        let (each, extra) = (
            count / subscribers.len() as i32,
            count % subscribers.len() as i32,
        );
        let mut next = 0;
        for (i, member) in subscribers.into_iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            if take > 0
                && let Some(a) = out.get_mut(member)
            {
                a.entry(topic).or_default().extend(next..next + take);
            }
            next += take;
        }
    }
    out
}

/// Kafka's `uniform`, sticky and balanced: each member keeps the partitions of
/// its previous target that it still subscribes to; the others go to the least
/// loaded subscriber; then partitions move one at a time from the most loaded
/// member to a subscriber holding at least two fewer, until none can. With
/// equal subscriptions the counts differ by at most one.
fn uniform(
    members: &[Subscriber],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let topics_of: BTreeMap<&str, &BTreeSet<Uuid>> = members
        .iter()
        .map(|m| (m.member_id.as_str(), &m.topics))
        .collect();
    let subscribes =
        |member: &str, topic: &Uuid| topics_of.get(member).is_some_and(|t| t.contains(topic));
    let (mut held, taken) = kept(members, partitions, previous);
    for (&topic, &count) in partitions {
        for p in (0..count).filter(|p| !taken.contains(&(topic, *p))) {
            let least = held
                .iter()
                .filter(|(id, _)| subscribes(id, &topic))
                .min_by_key(|(_, h)| h.len())
                .map(|(id, _)| *id);
            if let Some(h) = least.and_then(|id| held.get_mut(id)) {
                h.insert((topic, p));
            }
        }
    }
    while let Some((from, to, tp)) = next_move(&held, subscribes) {
        if let Some(h) = held.get_mut(from) {
            h.remove(&tp);
        }
        if let Some(h) = held.get_mut(to) {
            h.insert(tp);
        }
    }
    held.into_iter()
        .map(|(id, tps)| {
            let mut a = Assignment::new();
            for (topic, p) in tps {
                a.entry(topic).or_default().insert(p);
            }
            (id.to_string(), a)
        })
        .collect()
}

/// Partitions held per member.
type Held<'a> = BTreeMap<&'a str, BTreeSet<(Uuid, i32)>>;

/// What each member keeps of its previous target (partitions that still
/// exist, of topics it still subscribes to, each kept by one member only),
/// and every partition kept.
fn kept<'a>(
    members: &'a [Subscriber],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> (Held<'a>, BTreeSet<(Uuid, i32)>) {
    let mut held: Held<'a> = members
        .iter()
        .map(|m| (m.member_id.as_str(), BTreeSet::new()))
        .collect();
    let mut taken = BTreeSet::new();
    for m in members {
        let Some(prev) = previous.get(&m.member_id) else {
            continue;
        };
        for (topic, ps) in prev {
            let Some(&count) = partitions.get(topic) else {
                continue;
            };
            if !m.topics.contains(topic) {
                continue;
            }
            for &p in ps.iter().filter(|&&p| p < count) {
                if taken.insert((*topic, p))
                    && let Some(h) = held.get_mut(m.member_id.as_str())
                {
                    h.insert((*topic, p));
                }
            }
        }
    }
    (held, taken)
}

/// A partition the most loaded member can give to a member holding at least
/// two fewer that subscribes to its topic. Each move lowers the sum of the
/// squared loads, so repeated moves end.
fn next_move<'a>(
    held: &Held<'a>,
    subscribes: impl Fn(&str, &Uuid) -> bool,
) -> Option<(&'a str, &'a str, (Uuid, i32))> {
    let mut by_load: Vec<(&'a str, usize)> = held.iter().map(|(id, h)| (*id, h.len())).collect();
    by_load.sort_by_key(|&(id, n)| (std::cmp::Reverse(n), id));
    for &(from, from_n) in &by_load {
        for &(to, to_n) in by_load.iter().rev() {
            if to_n + 2 > from_n {
                break;
            }
            let candidate = held
                .get(from)
                .and_then(|h| h.iter().rev().find(|(t, _)| subscribes(to, t)));
            if let Some(&tp) = candidate {
                return Some((from, to, tp));
            }
        }
    }
    None
}
