use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use uuid::Uuid;

use super::assignor::{Subscriber, assign};
use super::records::{CurrentValue, MemberValue, Record};
use super::*;
use crate::catalog::TopicImage;

fn topic(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

mod assignor;

/// A group driven by random heartbeats, joins, leaves and topic changes.
struct Model {
    group: ConsumerGroup,
    image: TopicImage,
    now: Instant,
    /// What each live client believes it owns (it revokes at once when told to).
    clients: BTreeMap<String, (i32, Assignment)>,
}

#[derive(Debug, Clone)]
enum Step {
    Join(u8),
    Heartbeat(u8),
    Leave(u8),
    GrowTopic(u8),
    Expire,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0u8..5).prop_map(Step::Join),
        8 => (0u8..5).prop_map(Step::Heartbeat),
        1 => (0u8..5).prop_map(Step::Leave),
        1 => (1u8..3).prop_map(Step::GrowTopic),
        1 => Just(Step::Expire),
    ]
}

impl Model {
    fn new() -> Model {
        let topics = BTreeMap::from([
            ("t1".to_string(), (topic(1), 3)),
            ("t2".to_string(), (topic(2), 2)),
        ]);
        Model {
            group: ConsumerGroup::default(),
            image: TopicImage {
                generation: 0,
                topics,
            },
            now: Instant::now(),
            clients: BTreeMap::new(),
        }
    }

    fn request(&self, id: &str, epoch: i32) -> HeartbeatRequest {
        HeartbeatRequest {
            group_id: "g".into(),
            member_id: id.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: 1000,
            topic_names: Some(vec!["t1".into(), "t2".into()]),
            owned: Some(
                self.clients
                    .get(id)
                    .map(|c| c.1.clone())
                    .unwrap_or_default(),
            ),
            ..HeartbeatRequest::default()
        }
    }

    fn apply(&mut self, step: Step) {
        let session = Duration::from_secs(10);
        match step {
            Step::Join(n) | Step::Heartbeat(n) => {
                let id = format!("m{n}");
                let epoch = match (&step, self.clients.get(&id)) {
                    (Step::Heartbeat(_), Some(c)) => c.0,
                    (Step::Heartbeat(_), None) => return,
                    _ => 0,
                };
                let req = self.request(&id, epoch);
                if epoch == 0 {
                    self.clients.insert(id.clone(), (0, Assignment::new()));
                }
                match self.group.heartbeat(req, &self.image, session, self.now) {
                    Ok(r) => {
                        let client = self.clients.entry(id).or_default();
                        client.0 = r.member_epoch;
                        if let Some(a) = r.assignment {
                            client.1 = a;
                        }
                    }
                    Err(_) => {
                        self.clients.remove(&id);
                    }
                }
            }
            Step::Leave(n) => {
                let id = format!("m{n}");
                if self.clients.remove(&id).is_some() {
                    let req = HeartbeatRequest {
                        member_epoch: LEAVE_EPOCH,
                        ..self.request(&id, LEAVE_EPOCH)
                    };
                    let _ = self.group.heartbeat(req, &self.image, session, self.now);
                }
            }
            Step::GrowTopic(t) => {
                if let Some(entry) = self.image.topics.get_mut(&format!("t{t}")) {
                    entry.1 += 1;
                }
                self.image.generation += 1;
            }
            Step::Expire => {
                self.now += session * 2;
                self.group.tick(self.now);
                self.clients.clear();
            }
        }
    }

    /// No partition is owned by two members, as the broker sees it and as the clients do.
    fn check(&self) {
        let mut broker = BTreeMap::new();
        for m in self.group.members.values() {
            for (t, ps) in m.current.assigned.iter().chain(&m.current.revoking) {
                for p in ps {
                    let other = broker.insert((*t, *p), m.id.clone());
                    assert!(other.is_none(), "{t}/{p}: {other:?} and {}", m.id);
                }
            }
        }
        let mut clients = BTreeMap::new();
        for (id, (_, owned)) in &self.clients {
            for (t, ps) in owned {
                for p in ps {
                    let other = clients.insert((*t, *p), id.clone());
                    assert!(
                        other.is_none(),
                        "clients {other:?} and {id} both own {t}/{p}"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn no_partition_is_ever_owned_twice(steps in proptest::collection::vec(step(), 1..80)) {
        let mut model = Model::new();
        for s in steps {
            model.apply(s);
            model.check();
        }
        // Heartbeating everyone a few rounds settles the group on its target.
        for _ in 0..4 {
            for n in 0..5 {
                model.apply(Step::Heartbeat(n));
                model.check();
            }
        }
        if !model.group.members.is_empty() {
            prop_assert_eq!(model.group.state(), ConsumerState::Stable);
            let owned: usize = model.clients.values().map(|c| c.1.values().map(BTreeSet::len).sum::<usize>()).sum();
            let total: i32 = model.image.topics.values().map(|t| t.1).sum();
            prop_assert_eq!(owned, total as usize);
        }
    }
}

#[test]
fn records_round_trip_in_kafkas_schemas() {
    let assignment = Assignment::from([
        (topic(1), BTreeSet::from([0, 2])),
        (topic(2), BTreeSet::from([1])),
    ]);
    let member = MemberValue {
        instance_id: Some("i-1".into()),
        rack_id: None,
        client_id: "rdkafka".into(),
        client_host: "/127.0.0.1".into(),
        topic_names: vec!["a".into(), "b".into()],
        topic_regex: Some("^c.*".into()),
        rebalance_timeout_ms: 30_000,
        assignor: Some("range".into()),
    };
    let current = CurrentValue {
        epoch: 7,
        previous_epoch: 6,
        state: 1,
        assigned: assignment.clone(),
        revoking: Assignment::from([(topic(3), BTreeSet::from([4]))]),
    };
    let records = [
        Record::GroupEpoch(Some(7)),
        Record::Topics(Some(BTreeMap::from([
            ("t".into(), (topic(1), 3)),
            ("u".into(), (topic(2), 1)),
        ]))),
        Record::TargetEpoch(Some(7)),
        Record::Member("m".into(), Some(member)),
        Record::Target("m".into(), Some(assignment)),
        Record::Current("m".into(), Some(current)),
        Record::Member("m".into(), None),
        Record::GroupEpoch(None),
    ];
    for record in records {
        let (key, value) = record.encode("group");
        let mut k = key.as_slice();
        let version = crate::internal_log::get_i16(&mut k).expect("version");
        let group = k.get(2..7).map(|g| g.to_vec());
        assert_eq!(group.as_deref(), Some(&b"group"[..]));
        let mut rest = &k[7..];
        assert_eq!(
            Record::decode(version, &mut rest, value.as_deref()),
            Some(record)
        );
    }
    // ConsumerGroupMetadataValue v0, epoch 7: version, i32, no tagged fields.
    let (_, value) = Record::GroupEpoch(Some(7)).encode("g");
    assert_eq!(value, Some(vec![0, 0, 0, 0, 0, 7, 0]));
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_removed() {
    let mut model = Model::new();
    model.apply(Step::Join(0));
    model.apply(Step::Join(1));
    let holder = model.group.members.get("m0").map(|m| m.current.state);
    assert_eq!(holder, Some(reconcile::MemberState::Stable));
    // m0 heartbeats without saying it let anything go: it is told to revoke.
    let mut req = model.request("m0", model.clients["m0"].0);
    req.owned = None;
    let session = Duration::from_secs(10);
    model
        .group
        .heartbeat(req, &model.image, session, model.now)
        .expect("heartbeat");
    let m0 = &model.group.members["m0"];
    assert_eq!(
        m0.current.state,
        reconcile::MemberState::UnrevokedPartitions
    );
    // The rebalance timeout is 1 s; the session is still alive after 2 s.
    model.group.tick(model.now + Duration::from_secs(2));
    assert!(!model.group.members.contains_key("m0"), "m0 was removed");
    assert!(model.group.members.contains_key("m1"));
}

#[test]
fn a_pattern_must_be_valid_before_it_is_anchored() {
    assert!(compile("a)|(b").is_err());
    let re = compile("orders-.*").expect("valid");
    assert!(re.is_match("orders-eu") && !re.is_match("old-orders-eu"));
}

/// One heartbeat of `id` at `epoch` with what it owns; the group's answer.
fn beat(model: &mut Model, id: &str, epoch: i32, instance: Option<&str>) -> HeartbeatResponse {
    let req = HeartbeatRequest {
        instance_id: instance.map(str::to_string),
        member_epoch: epoch,
        ..model.request(id, epoch)
    };
    let out = model
        .group
        .heartbeat(req, &model.image, Duration::from_secs(10), model.now)
        .expect("heartbeat");
    let client = model.clients.entry(id.to_string()).or_default();
    client.0 = out.member_epoch;
    if let Some(a) = &out.assignment {
        client.1 = a.clone();
    }
    out
}

#[test]
fn a_static_leave_releases_what_was_being_revoked() {
    let mut model = Model::new();
    let a = beat(&mut model, "a", 0, Some("A"));
    model.clients.get_mut("a").expect("a").1 = a.assignment.clone().expect("everything");
    beat(&mut model, "b", 0, None);
    // a is told to revoke half, and leaves (-2) without answering.
    let mut req = model.request("a", a.member_epoch);
    req.owned = None;
    model
        .group
        .heartbeat(req, &model.image, Duration::from_secs(10), model.now)
        .expect("heartbeat");
    assert_eq!(
        model.group.members["a"].current.state,
        reconcile::MemberState::UnrevokedPartitions
    );
    let leave = HeartbeatRequest {
        instance_id: Some("A".into()),
        ..model.request("a", STATIC_LEAVE_EPOCH)
    };
    model
        .group
        .heartbeat(leave, &model.image, Duration::from_secs(10), model.now)
        .expect("leave");
    // The client closed: it owns nothing any more.
    model.clients.remove("a");
    // b gets its share at its next heartbeat, without waiting for a's session.
    let epoch = model.clients["b"].0;
    let b = beat(&mut model, "b", epoch, None);
    let owned: usize = b
        .assignment
        .map_or(0, |a| a.values().map(BTreeSet::len).sum());
    assert!(owned > 0, "b was given a's revoked partitions");
    model.check();
}

#[test]
fn a_member_taking_over_a_static_instance_leaves_nothing_behind() {
    let mut model = Model::new();
    beat(&mut model, "x", 0, None);
    let a = beat(&mut model, "a", 0, Some("A"));
    let leave = HeartbeatRequest {
        instance_id: Some("A".into()),
        ..model.request("a", STATIC_LEAVE_EPOCH)
    };
    let _ = a;
    model
        .group
        .heartbeat(leave, &model.image, Duration::from_secs(10), model.now)
        .expect("leave");
    // The dynamic member x rejoins as instance A.
    model.clients.remove("x");
    beat(&mut model, "x", 0, Some("A"));
    let x = &model.group.members["x"];
    let owned_by_x: usize = model.group.owners.values().filter(|o| *o == "x").count();
    let held: usize = x
        .current
        .assigned
        .values()
        .chain(x.current.revoking.values())
        .map(BTreeSet::len)
        .sum();
    assert_eq!(owned_by_x, held, "the owners index matches x's assignment");
    assert_eq!(
        model.group.static_members.get("A").map(String::as_str),
        Some("x")
    );
    model.check();
}

#[test]
fn an_existing_member_rejoining_with_an_instance_id_is_indexed() {
    let mut model = Model::new();
    let first = beat(&mut model, "m", 0, None);
    let again = beat(&mut model, "m", 0, Some("I"));
    assert_eq!(
        model.group.static_members.get("I").map(String::as_str),
        Some("m")
    );
    let next = beat(&mut model, "m", again.member_epoch, Some("I"));
    assert!(next.member_epoch >= first.member_epoch);
}
