//! Round trips of the offsets-log keys and values, and damaged input.

use super::*;

fn sample() -> Vec<Entry> {
    let member = MemberValue {
        member_id: "m-1".into(),
        instance_id: Some("i".into()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout_ms: 300_000,
        session_timeout_ms: 6000,
        subscription: Bytes::from_static(b"sub"),
        assignment: Bytes::new(),
    };
    let group = GroupValue {
        protocol_type: "consumer".into(),
        generation: 7,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        state_timestamp: 42,
        members: vec![member],
    };
    let offset = OffsetValue {
        offset: 10,
        leader_epoch: -1,
        metadata: "meta".into(),
        commit_timestamp: 5,
        record: -1,
    };
    vec![
        Entry::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(offset),
        },
        Entry::Group {
            group: "g".into(),
            value: Some(group),
        },
        Entry::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 4,
            value: None,
        },
        Entry::Group {
            group: "h".into(),
            value: None,
        },
    ]
}

#[test]
fn entries_round_trip_through_a_batch() {
    let entries = sample();
    let mut bytes = batch(&entries, 99);
    bytes[0..8].copy_from_slice(&100i64.to_be_bytes());
    let mut seen = Vec::new();
    let next = replay(&bytes, 101, |offset, e| seen.push((offset, e)));
    assert_eq!(next, Some(104));
    let expected: Vec<_> = entries
        .into_iter()
        .enumerate()
        .skip(1)
        .map(|(i, e)| (100 + i as i64, e))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_torn_batch_is_not_replayed() {
    let bytes = batch(&sample(), 1);
    let mut seen = 0;
    assert_eq!(replay(&bytes[..bytes.len() - 1], 0, |_, _| seen += 1), None);
    assert_eq!(seen, 0);
}
