//! The server-side assignors: every partition once, balanced, sticky.

use super::*;

fn subscriber(id: &str, topics: &[u8]) -> Subscriber {
    Subscriber {
        member_id: id.to_string(),
        topics: topics.iter().map(|t| topic(*t)).collect(),
    }
}

fn counts(a: &BTreeMap<String, Assignment>) -> Vec<usize> {
    a.values()
        .map(|x| x.values().map(BTreeSet::len).sum())
        .collect()
}

/// Every partition of `partitions` is assigned exactly once.
fn covers_once(a: &BTreeMap<String, Assignment>, partitions: &BTreeMap<Uuid, i32>) {
    let mut seen = BTreeSet::new();
    for x in a.values() {
        for (t, ps) in x {
            for p in ps {
                assert!(seen.insert((*t, *p)), "{t}/{p} assigned twice");
            }
        }
    }
    let all: BTreeSet<(Uuid, i32)> = partitions
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| (*t, p)))
        .collect();
    assert_eq!(seen, all);
}

#[test]
fn uniform_balances_and_keeps_what_it_can_when_members_come_and_go() {
    let partitions = BTreeMap::from([(topic(1), 7), (topic(2), 5)]);
    let two = [subscriber("a", &[1, 2]), subscriber("b", &[1, 2])];
    let first = assign("uniform", &two, &partitions, &BTreeMap::new());
    covers_once(&first, &partitions);
    assert_eq!(counts(&first), vec![6, 6]);

    let three = [
        subscriber("a", &[1, 2]),
        subscriber("b", &[1, 2]),
        subscriber("c", &[1, 2]),
    ];
    let second = assign("uniform", &three, &partitions, &first);
    covers_once(&second, &partitions);
    assert_eq!(counts(&second), vec![4, 4, 4]);
    // Stickiness: a and b only gave partitions up; nothing moved between them.
    for id in ["a", "b"] {
        for (t, ps) in &second[id] {
            assert!(
                ps.is_subset(&first[id][t]),
                "{id} got a partition it did not have"
            );
        }
    }

    let back = assign("uniform", &three[..2], &partitions, &second);
    covers_once(&back, &partitions);
    assert_eq!(counts(&back), vec![6, 6]);
    for id in ["a", "b"] {
        for (t, ps) in &second[id] {
            assert!(ps.is_subset(&back[id][t]), "{id} lost a partition it had");
        }
    }
}

#[test]
fn uniform_gives_each_topic_only_to_its_subscribers() {
    let partitions = BTreeMap::from([(topic(1), 4), (topic(2), 2)]);
    let members = [subscriber("a", &[1]), subscriber("b", &[1, 2])];
    let out = assign("uniform", &members, &partitions, &BTreeMap::new());
    covers_once(&out, &partitions);
    assert!(!out["a"].contains_key(&topic(2)));
    assert_eq!(counts(&out), vec![3, 3]);
}

#[test]
fn range_gives_contiguous_ranges_in_member_order() {
    let partitions = BTreeMap::from([(topic(1), 5), (topic(2), 5)]);
    let members = [subscriber("b", &[1, 2]), subscriber("a", &[1, 2])];
    let out = assign("range", &members, &partitions, &BTreeMap::new());
    covers_once(&out, &partitions);
    for t in [topic(1), topic(2)] {
        assert_eq!(out["a"][&t], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&t], BTreeSet::from([3, 4]));
    }
}

proptest! {
    #[test]
    fn uniform_is_balanced_for_equal_subscriptions(
        members in 1usize..8,
        sizes in proptest::collection::vec(1i32..12, 1..4),
        previous_members in 0usize..8,
    ) {
        let partitions: BTreeMap<Uuid, i32> =
            sizes.iter().enumerate().map(|(i, n)| (topic(i as u8 + 1), *n)).collect();
        let all: Vec<u8> = (1..=sizes.len() as u8).collect();
        let subs = |n: usize| -> Vec<Subscriber> {
            (0..n).map(|i| subscriber(&format!("m{i}"), &all)).collect()
        };
        let previous = assign("uniform", &subs(previous_members.max(1)), &partitions, &BTreeMap::new());
        let out = assign("uniform", &subs(members), &partitions, &previous);
        covers_once(&out, &partitions);
        let c = counts(&out);
        let (min, max) = (c.iter().min().copied().unwrap_or(0), c.iter().max().copied().unwrap_or(0));
        prop_assert!(max - min <= 1, "{c:?}");
    }
}
