//! Fetch sessions (KIP-227, incremental fetch). A consumer of many
//! partitions opens a session with a full fetch (epoch 0); each later fetch
//! (epoch 1, 2, ...) names only the partitions whose position changed (and
//! those to forget), and its answer carries only the partitions with
//! something new: records, an error, or a moved high watermark, last stable
//! offset or log start. A partition that returned records moves to the end
//! of its session's order, so a response's byte budget goes round the
//! partitions instead of always to the first. Sessions live in a cache of
//! `max_incremental_fetch_session_cache_slots`; when it is full, a session
//! idle for [`EVICTABLE_AFTER`] makes room, or the client gets no session
//! (session id 0) and goes on with full fetches, as Kafka allows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::request::Fetch;

/// A session unused this long may be evicted for a new one.
const EVICTABLE_AFTER: Duration = Duration::from_secs(120);

/// How a request names a topic: by name (up to v12) or by id (v13 on).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TopicRef {
    Name(TopicName),
    Id(Uuid),
}

impl TopicRef {
    /// The same topic, its name copied: a request's names are slices of its
    /// frame, which a session keeping them would keep whole.
    fn kept(&self) -> TopicRef {
        match self {
            TopicRef::Name(name) => {
                TopicRef::Name(TopicName(StrBytes::from_string(name.0.to_string())))
            }
            TopicRef::Id(id) => TopicRef::Id(*id),
        }
    }
}

/// What the client asks of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Asked {
    pub offset: i64,
    pub max_bytes: i32,
    pub leader_epoch: i32,
}

/// The partitions a fetch reads, topic by topic: the request's, or its session's.
pub(super) type Wants = Vec<(TopicRef, Vec<(i32, Asked)>)>;

/// What the last answer told the client of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Told {
    pub high_watermark: i64,
    pub last_stable: i64,
    pub log_start: i64,
}

/// One partition of an answer, for [`Sessions::answer`].
#[derive(Debug)]
pub(super) struct Answered {
    pub key: (TopicRef, i32),
    /// The offsets it tells.
    pub now: Told,
    pub records: bool,
    pub error: bool,
}

#[derive(Debug)]
struct Entry {
    asked: Asked,
    /// `None` until an answer included the partition.
    told: Option<Told>,
    /// Its place in the session's order (lowest first).
    turn: u64,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    partitions: BTreeMap<(TopicRef, i32), Entry>,
    /// Opened at v13 or later: topics are named by id, never by name.
    uses_ids: bool,
    /// The turn the next partition to move to the end gets.
    next_turn: u64,
    /// When its last answer went out; while a request of it waits, when
    /// that one may end at the latest (never evicted from under it).
    last_used: Instant,
}

impl Session {
    /// An incremental request's changes: partitions `asked` for (new ones
    /// at the end of the order) and `forgotten`.
    fn update(&mut self, asked: Wants, forgotten: Vec<(TopicRef, Vec<i32>)>, busy_until: Instant) {
        self.last_used = busy_until;
        for (topic, partitions) in asked {
            for (index, asked) in partitions {
                match self.partitions.get_mut(&(topic.clone(), index)) {
                    Some(entry) => entry.asked = asked,
                    None => {
                        let turn = self.next_turn;
                        self.next_turn += 1;
                        let entry = Entry {
                            asked,
                            told: None,
                            turn,
                        };
                        self.partitions.insert((topic.kept(), index), entry);
                    }
                }
            }
        }
        for (topic, partitions) in forgotten {
            for index in partitions {
                self.partitions.remove(&(topic.clone(), index));
            }
        }
    }
}

/// What a fetch request does with sessions.
#[derive(Debug)]
pub(super) enum Plan {
    /// A full fetch; `session_id` is the session it opened (0: none).
    Full { session_id: i32, wants: Wants },
    /// An incremental fetch of session `session_id`: every partition of the
    /// session, but only the changed ones answered.
    Incremental { session_id: i32, wants: Wants },
    /// The whole answer is this error.
    Refused(ResponseError),
}

/// The fetch sessions of a broker.
#[derive(Debug)]
pub(crate) struct Sessions {
    slots: usize,
    sessions: Mutex<HashMap<i32, Session>>,
}

impl Sessions {
    /// A cache of at most `slots` sessions (0: sessions are never created).
    pub(crate) fn new(slots: usize) -> Sessions {
        Sessions {
            slots,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `req` to the sessions and says what to fetch (taking its
    /// partitions, and those it forgets).
    pub(super) fn begin(&self, req: &mut Fetch) -> Plan {
        self.begin_at(req, Instant::now())
    }

    /// [`Sessions::begin`] at `now`.
    fn begin_at(&self, req: &mut Fetch, now: Instant) -> Plan {
        let asked = std::mem::take(&mut req.topics);
        // No session (id 0 is never given out; before v7 a request has none):
        // nothing to look up.
        if (req.session_id, req.session_epoch) == (0, -1) {
            return Plan::Full {
                session_id: 0,
                wants: asked,
            };
        }
        let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
        let busy_until = now + wait.min(super::MAX_WAIT);
        let mut sessions = self.lock();
        match (req.session_id, req.session_epoch) {
            // No session, or closing one: a full fetch without a session.
            (id, -1) => {
                sessions.remove(&id);
                Plan::Full {
                    session_id: 0,
                    wants: asked,
                }
            }
            // (Re)starting a session.
            (id, 0) => {
                sessions.remove(&id);
                let session_id =
                    self.create(&mut sessions, &asked, (req.uses_ids, now, busy_until));
                Plan::Full {
                    session_id,
                    wants: asked,
                }
            }
            (id, epoch) => {
                let Some(session) = sessions.get_mut(&id) else {
                    return Plan::Refused(ResponseError::FetchSessionIdNotFound);
                };
                if session.next_epoch != epoch {
                    return Plan::Refused(ResponseError::InvalidFetchSessionEpoch);
                }
                if session.uses_ids != req.uses_ids {
                    return Plan::Refused(ResponseError::FetchSessionTopicIdError);
                }
                session.next_epoch = next_epoch(epoch);
                session.update(asked, std::mem::take(&mut req.forgotten), busy_until);
                // Forgotten down to nothing: closed, as Kafka does; the
                // answer is a full one without a session.
                if session.partitions.is_empty() {
                    sessions.remove(&id);
                    return Plan::Full {
                        session_id: 0,
                        wants: Vec::new(),
                    };
                }
                Plan::Incremental {
                    session_id: id,
                    wants: wants_of(session),
                }
            }
        }
    }

    /// A new session of `asked`; its id, or 0 when the cache has no room.
    fn create(
        &self,
        sessions: &mut HashMap<i32, Session>,
        asked: &Wants,
        (uses_ids, now, busy_until): (bool, Instant, Instant),
    ) -> i32 {
        if sessions.len() >= self.slots {
            let stale = sessions
                .iter()
                .filter(|(_, s)| now.saturating_duration_since(s.last_used) >= EVICTABLE_AFTER)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            match stale {
                Some(id) => sessions.remove(&id),
                None => return 0,
            };
        }
        let id = loop {
            let id = (rand_u32() & 0x7fff_ffff) as i32;
            if id != 0 && !sessions.contains_key(&id) {
                break id;
            }
        };
        let partitions: BTreeMap<_, _> = asked
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions
                    .iter()
                    .map(|(index, asked)| ((topic.kept(), *index), *asked))
            })
            .zip(0..)
            .map(|((key, asked), turn)| {
                let entry = Entry {
                    asked,
                    told: None,
                    turn,
                };
                (key, entry)
            })
            .collect();
        sessions.insert(
            id,
            Session {
                next_epoch: 1,
                next_turn: partitions.len() as u64,
                partitions,
                uses_ids,
                last_used: busy_until,
            },
        );
        id
    }

    /// Which of the partitions of an answer of session `session_id` it
    /// includes: all of a full answer; of an incremental one, those with
    /// records, an error, or offsets the client was not told. Records what
    /// the included ones tell; those that returned records move to the end.
    pub(super) fn answer(
        &self,
        session_id: i32,
        incremental: bool,
        answered: &[Answered],
    ) -> Vec<bool> {
        let mut sessions = self.lock();
        let Some(session) = sessions.get_mut(&session_id) else {
            return vec![true; answered.len()];
        };
        // A long-poll may park longer than a session may idle.
        session.last_used = Instant::now();
        let mut included = Vec::with_capacity(answered.len());
        for a in answered {
            let entry = session.partitions.get_mut(&a.key);
            let told = entry.as_ref().and_then(|e| e.told);
            let include = !incremental || a.records || a.error || told != Some(a.now);
            if include && let Some(entry) = entry {
                entry.told = Some(a.now);
                if a.records {
                    entry.turn = session.next_turn;
                    session.next_turn += 1;
                }
            }
            included.push(include);
        }
        included
    }
}

/// The epoch after `epoch`; after `i32::MAX` comes 1 (0 would restart the session).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

/// Every partition of `session`, in its order; consecutive partitions of a
/// topic are grouped (a topic may come back later, as in Kafka's answers).
fn wants_of(session: &Session) -> Wants {
    let mut ordered: Vec<_> = session.partitions.iter().collect();
    ordered.sort_by_key(|(_, entry)| entry.turn);
    let mut wants: Wants = Vec::new();
    for ((topic, index), entry) in ordered {
        match wants.last_mut() {
            Some((last, partitions)) if last == topic => partitions.push((*index, entry.asked)),
            _ => wants.push((topic.clone(), vec![(*index, entry.asked)])),
        }
    }
    wants
}

/// A random session id source (ids need not be secret, only unlikely to repeat).
fn rand_u32() -> u32 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos());
        return nanos;
    }
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests;
