//! Fetch sessions: what they keep, and when the cache evicts them.

use super::*;
use bytes::Bytes;

/// A request's topic name, as the decoder gives it: a slice of `frame`.
fn name_in(frame: &Bytes) -> TopicRef {
    let name = StrBytes::from_utf8(frame.slice(0..5)).unwrap();
    TopicRef::Name(TopicName(name))
}

fn asked(topic: TopicRef) -> Wants {
    let one = Asked {
        offset: 0,
        max_bytes: 1024,
        leader_epoch: -1,
    };
    vec![(topic, vec![(0, one)])]
}

fn fetch(session_id: i32, session_epoch: i32, topics: Wants) -> Fetch {
    Fetch {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        isolation_level: 0,
        session_id,
        session_epoch,
        uses_ids: false,
        topics,
        forgotten: Vec::new(),
    }
}

fn kept_names(sessions: &Sessions) -> Vec<*const u8> {
    let sessions = sessions.lock();
    let keys = sessions.values().flat_map(|s| s.partitions.keys());
    keys.filter_map(|(topic, _)| match topic {
        TopicRef::Name(name) => Some(name.0.as_ptr()),
        TopicRef::Id(_) => None,
    })
    .collect()
}

#[test]
fn a_session_keeps_copies_of_topic_names_not_the_frames_they_came_in() {
    let frame = Bytes::from(format!("topic{}", " ".repeat(1 << 20)));
    let sessions = Sessions::new(10);
    let mut request = fetch(0, 0, asked(name_in(&frame)));
    let Plan::Full { session_id, .. } = sessions.begin(&mut request) else {
        panic!("a full fetch");
    };
    // An incremental fetch adds a partition of another frame's topic.
    let other = Bytes::from(format!("other{}", " ".repeat(1 << 20)));
    let mut request = fetch(session_id, 1, asked(name_in(&other)));
    assert!(matches!(
        sessions.begin(&mut request),
        Plan::Incremental { .. }
    ));
    let within = |p: *const u8, f: &Bytes| f.as_ptr_range().contains(&p);
    let names = kept_names(&sessions);
    assert_eq!(names.len(), 2);
    for p in names {
        assert!(
            !within(p, &frame) && !within(p, &other),
            "a name kept in its frame"
        );
    }
}

/// Opens a session of one topic that waits up to `max_wait_ms`.
fn opened(sessions: &Sessions, max_wait_ms: i32) {
    let frame = Bytes::from_static(b"topic");
    let mut request = fetch(0, 0, asked(name_in(&frame)));
    request.max_wait_ms = max_wait_ms;
    assert!(
        matches!(sessions.begin(&mut request), Plan::Full { session_id, .. } if session_id != 0)
    );
}

/// Whether a new session can be opened `later`.
fn opens_a_session(sessions: &Sessions, later: Duration) -> bool {
    let frame = Bytes::from_static(b"other");
    let mut request = fetch(0, 0, asked(name_in(&frame)));
    let plan = sessions.begin_at(&mut request, Instant::now() + later);
    matches!(plan, Plan::Full { session_id, .. } if session_id != 0)
}

#[test]
fn a_full_cache_evicts_a_session_idle_long_enough_but_not_one_still_long_polling() {
    let later = EVICTABLE_AFTER + Duration::from_secs(1);
    // Its answer went out that long before: it makes room.
    let sessions = Sessions::new(1);
    opened(&sessions, 500);
    assert!(
        !opens_a_session(&sessions, Duration::ZERO),
        "the cache is full"
    );
    assert!(opens_a_session(&sessions, later));
    // Its request may still wait 200 s, and has waited only that long.
    let sessions = Sessions::new(1);
    opened(&sessions, 200_000);
    assert!(
        !opens_a_session(&sessions, later),
        "evicted while it long-polls"
    );
}
