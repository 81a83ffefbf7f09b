//! Transactions in the log against a model: interleaved transactional
//! producers, plain appends, COMMIT and ABORT markers, rolls, and clean or
//! unclean reopens. After every step the last stable offset is the first
//! offset of the earliest open transaction (else the log end) and the
//! aborted transactions are exactly the model's, with their first offsets
//! and marker offsets; the `.txnindex` files rebuild them after a crash.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sluice::storage::testing::{batch, transactional_batch};
use sluice::storage::{AbortedTxn, Log, LogConfig};

#[derive(Debug, Clone)]
enum Op {
    /// Producer `p` appends `n` records inside its transaction.
    Data {
        p: i64,
        n: usize,
    },
    /// A plain, non-transactional append.
    Plain,
    Commit {
        p: i64,
    },
    Abort {
        p: i64,
    },
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0i64..3, 1usize..4).prop_map(|(p, n)| Op::Data { p, n }),
        2 => Just(Op::Plain),
        2 => (0i64..3).prop_map(|p| Op::Commit { p }),
        2 => (0i64..3).prop_map(|p| Op::Abort { p }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        segment_index_bytes: 1200,
        ..LogConfig::default()
    }
}

#[derive(Debug, Default)]
struct Model {
    /// Open transaction of each producer: its first offset.
    open: BTreeMap<i64, i64>,
    /// (producer, first offset, marker offset) of every aborted transaction.
    aborted: Vec<(i64, i64, i64)>,
    next_sequence: BTreeMap<i64, i32>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn last_stable_offset_and_aborted_transactions_follow_the_model(
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Some(Log::open(dir.path(), config(), 0).unwrap());
        let mut model = Model::default();
        for op in ops {
            let l = log.as_mut().unwrap();
            match op {
                Op::Data { p, n } => {
                    let seq = model.next_sequence.entry(p).or_insert(0);
                    let b = transactional_batch(1000 + p, 0, *seq, n, 0);
                    *seq += n as i32;
                    let info = l.append_transactional(&b, 0).unwrap();
                    model.open.entry(p).or_insert(info.base_offset);
                }
                Op::Plain => {
                    l.append(&batch(&[(b"k", b"plain")], 0), 0).unwrap();
                }
                Op::Commit { p } | Op::Abort { p } => {
                    let commit = matches!(op, Op::Commit { .. });
                    let info = l.append_marker((1000 + p, 0), commit, 0, 0).unwrap();
                    if let Some(first) = model.open.remove(&p) && !commit {
                        model.aborted.push((1000 + p, first, info.base_offset));
                    }
                }
                Op::Reopen { clean } => {
                    let old = log.take().unwrap();
                    if clean {
                        old.close().unwrap();
                    } else {
                        drop(old);
                    }
                    log = Some(Log::open(dir.path(), config(), 0).unwrap());
                }
            }
            let l = log.as_ref().unwrap();
            let lso = model.open.values().min().copied().unwrap_or_else(|| l.end_offset());
            prop_assert_eq!(l.last_stable_offset(), lso);
            let got: Vec<(i64, i64, i64)> = l
                .aborted_transactions(0, i64::MAX)
                .iter()
                .map(|t: &AbortedTxn| (t.producer_id, t.first_offset, t.last_offset))
                .collect();
            prop_assert_eq!(&got, &model.aborted);
        }
        // A read from the middle sees only the aborted transactions it overlaps.
        let l = log.as_ref().unwrap();
        let mid = l.end_offset() / 2;
        let overlapping: Vec<(i64, i64, i64)> = model
            .aborted
            .iter()
            .copied()
            .filter(|(_, first, last)| *last >= mid && *first < mid + 5)
            .collect();
        let got: Vec<(i64, i64, i64)> = l
            .aborted_transactions(mid, mid + 5)
            .iter()
            .map(|t| (t.producer_id, t.first_offset, t.last_offset))
            .collect();
        prop_assert_eq!(got, overlapping);
    }
}
