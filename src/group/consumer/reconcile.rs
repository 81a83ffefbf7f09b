//! Incremental reconciliation of one member towards its target assignment
//! (KIP-848): a partition still owned by another member is withheld until
//! that member has revoked it, and a member that must give partitions up
//! keeps its epoch until it says it has.

use uuid::Uuid;

use super::Assignment;

/// Where a member stands in its reconciliation (Kafka's `MemberState`; the
/// numbers are those of the persisted record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// Owns exactly its target at the group's assignment epoch.
    Stable,
    /// Must revoke `revoking` before it gets anything new.
    UnrevokedPartitions,
    /// At the assignment epoch, but waits for partitions others still own.
    UnreleasedPartitions,
}

impl MemberState {
    pub(crate) fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }

    pub(crate) fn from_code(code: i8) -> MemberState {
        match code {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

/// A member's current assignment and epochs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Current {
    pub(crate) state: MemberState,
    pub(crate) epoch: i32,
    pub(crate) previous_epoch: i32,
    /// Partitions the member owns and keeps.
    pub(crate) assigned: Assignment,
    /// Partitions the member owns but must give up.
    pub(crate) revoking: Assignment,
}

/// The member's next step towards `target` (of `target_epoch`), given what it
/// says it owns (`owned`; `None` when the heartbeat did not say) and whether a
/// partition is free of every other member (`free`).
pub(crate) fn advance(
    current: &Current,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&Assignment>,
    free: impl Fn(Uuid, i32) -> bool,
) -> Current {
    match current.state {
        MemberState::Stable if current.epoch == target_epoch => current.clone(),
        MemberState::UnrevokedPartitions if still_owns(owned, &current.revoking) => current.clone(),
        _ => next(current, target_epoch, target, free),
    }
}

/// Whether the member may still own any of `revoking`: it does unless its
/// heartbeat listed what it owns and none of them is there.
fn still_owns(owned: Option<&Assignment>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else { return true };
    revoking.iter().any(|(topic, ps)| {
        owned
            .get(topic)
            .is_some_and(|o| ps.iter().any(|p| o.contains(p)))
    })
}

fn next(
    current: &Current,
    target_epoch: i32,
    target: &Assignment,
    free: impl Fn(Uuid, i32) -> bool,
) -> Current {
    let mut kept = Assignment::new();
    let mut revoke = Assignment::new();
    for (topic, ps) in &current.assigned {
        let wanted = target.get(topic);
        for &p in ps {
            let side = if wanted.is_some_and(|w| w.contains(&p)) {
                &mut kept
            } else {
                &mut revoke
            };
            side.entry(*topic).or_default().insert(p);
        }
    }
    if !revoke.is_empty() {
        return Current {
            state: MemberState::UnrevokedPartitions,
            epoch: current.epoch,
            previous_epoch: current.epoch,
            assigned: kept,
            revoking: revoke,
        };
    }
    let mut assigned = kept;
    let mut unreleased = false;
    for (topic, ps) in target {
        for &p in ps {
            let mine = assigned.get(topic).is_some_and(|a| a.contains(&p));
            if mine {
                continue;
            }
            if free(*topic, p) {
                assigned.entry(*topic).or_default().insert(p);
            } else {
                unreleased = true;
            }
        }
    }
    Current {
        state: if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        },
        epoch: target_epoch,
        previous_epoch: current.epoch,
        assigned,
        revoking: Assignment::new(),
    }
}
