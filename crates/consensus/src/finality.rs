//! The summit-based finality detector (paper §3.3-3.4), one instance per threshold.
//!
//! A block is final at fault tolerance `ftt` once a level-`k` summit with quorum
//! `q_k` (see [`crate::quorum`]) exists for it: no unit by an honest validator can
//! then vote against it unless more than `ftt` of the weight equivocates. Blocks are
//! finalized one height at a time along the fork choice of the latest units.

use crate::state::State;
use crate::types::{Threshold, ValidatorIndex, quorum};
use crate::unit::Observation;
use alloy_primitives::B256;
use std::collections::BTreeMap;

/// The highest summit level searched.
const MAX_LEVEL: u32 = 63;

/// Finalizes blocks at one threshold.
#[derive(Debug, Clone)]
pub struct FinalityDetector {
    pub threshold: Threshold,
    ftt: u64,
    last_finalized: Option<B256>,
    halted: bool,
}

/// Why a detector stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorStatus {
    Running,
    /// Known faulty weight reached the threshold: nothing more can be final at it.
    FttExceeded,
}

impl FinalityDetector {
    pub fn new(threshold: Threshold, total_weight: u64) -> Self {
        Self {
            threshold,
            ftt: threshold.ftt(total_weight),
            last_finalized: None,
            halted: false,
        }
    }

    pub fn ftt(&self) -> u64 {
        self.ftt
    }

    pub fn last_finalized(&self) -> Option<B256> {
        self.last_finalized
    }

    pub fn status(&self) -> DetectorStatus {
        if self.halted {
            DetectorStatus::FttExceeded
        } else {
            DetectorStatus::Running
        }
    }

    /// Newly final blocks, oldest first.
    pub fn run(&mut self, state: &State) -> Vec<B256> {
        let total = state.validators.total_weight();
        let faulty = state.faulty_weight();
        if self.halted || faulty >= self.ftt.max(1) || faulty > total.saturating_sub(1) / 2 {
            self.halted = true;
            return Vec::new();
        }
        let mut out = Vec::new();
        while let Some(candidate) = self.next_candidate(state) {
            if !self.is_final(state, &candidate) {
                break;
            }
            self.last_finalized = Some(candidate);
            out.push(candidate);
        }
        out
    }

    /// The block after the last final one on the fork choice of the latest units.
    fn next_candidate(&self, state: &State) -> Option<B256> {
        let tip = state.fork_choice(state.latest())?;
        let height = match self.last_finalized {
            None => 0,
            Some(last) => {
                let last_block = state.block(&last)?;
                // Fork choice never leaves a finalized block while faults stay below ftt.
                if !state.extends(&tip, &last) {
                    return None;
                }
                last_block.height.saturating_add(1)
            }
        };
        state.ancestor(&tip, height)
    }

    fn is_final(&self, state: &State, candidate: &B256) -> bool {
        let total = state.validators.total_weight();
        let mut target = MAX_LEVEL;
        while target > 0 {
            let q = quorum(total, self.ftt, target);
            let level = summit_level(state, candidate, q, target);
            if level >= target {
                return true;
            }
            target = level;
        }
        false
    }
}

/// How many levels of summit with quorum `q` exist for `candidate` (at most `max`).
pub fn summit_level(state: &State, candidate: &B256, q: u64, max: u32) -> u32 {
    let Some(cand) = state.block(candidate) else {
        return 0;
    };
    let cand_height = cand.height;
    // Latest units of validators not known to be faulty.
    let latest: BTreeMap<ValidatorIndex, B256> = state
        .latest()
        .iter()
        .enumerate()
        .filter_map(|(i, o)| Some((ValidatorIndex::try_from(i).ok()?, o.correct()?)))
        .collect();
    let votes_for = |h: &B256| {
        state
            .unit(h)
            .and_then(|u| u.vote)
            .is_some_and(|v| state.ancestor(&v, cand_height) == Some(*candidate))
    };
    // Level 0: each validator's oldest unit of the unbroken streak voting for it.
    let mut horizon: BTreeMap<ValidatorIndex, u64> = BTreeMap::new();
    for (v, top) in &latest {
        let mut oldest = None;
        let mut cursor = Some(*top);
        while let Some(h) = cursor {
            if !votes_for(&h) {
                break;
            }
            let Some(u) = state.unit(&h) else { break };
            oldest = Some(u.seq);
            cursor = u.prev();
        }
        if let Some(seq) = oldest {
            horizon.insert(*v, seq);
        }
    }
    for level in 1..=max {
        match next_horizon(state, &latest, &horizon, q) {
            Some(next) => horizon = next,
            None => return level - 1,
        }
    }
    max
}

/// Weight of committee members whose horizon unit `unit` sees (its own creator's
/// counts if `unit` is at or above its horizon).
fn seen_weight(
    state: &State,
    unit: &B256,
    horizon: &BTreeMap<ValidatorIndex, u64>,
    committee: &[ValidatorIndex],
) -> u64 {
    let Some(u) = state.unit(unit) else { return 0 };
    committee
        .iter()
        .filter(|m| {
            let Some(&h_seq) = horizon.get(m) else {
                return false;
            };
            if **m == u.creator {
                return u.seq >= h_seq;
            }
            u.panorama()
                .get(**m as usize)
                .and_then(Observation::correct)
                .and_then(|h| state.unit(&h))
                .is_some_and(|seen| seen.seq >= h_seq)
        })
        .map(|m| state.validators.weight(*m))
        .fold(0u64, u64::saturating_add)
}

/// One summit step: prune the committee to those whose latest unit sees a quorum of
/// the committee's horizon, then move each member's horizon to its earliest unit
/// that still does. `None` if nobody is left.
fn next_horizon(
    state: &State,
    latest: &BTreeMap<ValidatorIndex, B256>,
    horizon: &BTreeMap<ValidatorIndex, u64>,
    q: u64,
) -> Option<BTreeMap<ValidatorIndex, u64>> {
    let mut committee: Vec<ValidatorIndex> = horizon.keys().copied().collect();
    loop {
        let before = committee.len();
        let snapshot = committee.clone();
        committee.retain(|m| {
            latest
                .get(m)
                .is_some_and(|top| seen_weight(state, top, horizon, &snapshot) >= q)
        });
        if committee.is_empty() {
            return None;
        }
        if committee.len() == before {
            break;
        }
    }
    let mut next = BTreeMap::new();
    for m in &committee {
        let (Some(top), Some(&floor)) = (latest.get(m), horizon.get(m)) else {
            continue;
        };
        let mut earliest = None;
        let mut cursor = Some(*top);
        while let Some(h) = cursor {
            let Some(u) = state.unit(&h) else { break };
            if u.seq < floor || seen_weight(state, &h, horizon, &committee) < q {
                break;
            }
            earliest = Some(u.seq);
            cursor = u.prev();
        }
        if let Some(seq) = earliest {
            next.insert(*m, seq);
        }
    }
    (!next.is_empty()).then_some(next)
}
