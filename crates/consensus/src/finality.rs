//! The summit-based finality detector (paper §3.3-3.4), one instance per threshold.
//!
//! A block is final at fault tolerance `ftt` once a level-`k` summit with quorum
//! `q_k` (see [`crate::quorum`]) exists for it: no unit by an honest validator can
//! then vote against it unless more than `ftt` of the weight equivocates. Blocks are
//! finalized one height at a time along the fork choice of the latest units.
//!
//! Cost: a summit step prunes the committee to a fixed point (`O(n^2)` per pass) and
//! finds each member's earliest unit that sees a quorum by binary search over its
//! swimlane (a later unit of a swimlane sees everything an earlier one does). The
//! level-0 streaks are kept between runs and only extended by the units added since.

use crate::state::State;
use crate::types::{Threshold, ValidatorIndex, quorum};
use alloy_primitives::B256;

/// Finalizes blocks at one threshold.
#[derive(Debug, Clone)]
pub struct FinalityDetector {
    pub threshold: Threshold,
    ftt: u64,
    /// Beyond this level the quorum no longer falls: higher summits prove nothing more.
    max_level: u32,
    last_finalized: Option<B256>,
    halted: bool,
    streaks: Streaks,
}

/// Level-0 streaks for one candidate, kept between runs: per validator, the unit the
/// streak was last extended to and the streak's oldest sequence number.
#[derive(Debug, Clone, Default)]
struct Streaks {
    candidate: Option<B256>,
    per_validator: Vec<Option<(B256, u64)>>,
}

/// Why a detector stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorStatus {
    Running,
    /// Known faulty weight exceeded the threshold: nothing more can be final at it.
    FttExceeded,
}

impl FinalityDetector {
    pub fn new(threshold: Threshold, total_weight: u64) -> Self {
        let ftt = threshold.ftt(total_weight);
        let floor = quorum(total_weight, ftt, 63);
        let max_level = (1..=63)
            .find(|k| quorum(total_weight, ftt, *k) <= floor)
            .unwrap_or(63);
        Self {
            threshold,
            ftt,
            max_level,
            last_finalized: None,
            halted: false,
            streaks: Streaks::default(),
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

    /// Whether known faults already exceed what this threshold tolerates.
    pub fn exceeded(&self, state: &State) -> bool {
        let faulty = state.faulty_weight();
        faulty > self.ftt || faulty > state.validators.total_weight().saturating_sub(1) / 2
    }

    /// Newly final blocks, oldest first. `tip` is the fork choice of the latest units;
    /// nothing above height `ceiling` is considered (a block not final at a lower
    /// threshold cannot be final at this one).
    pub fn run(&mut self, state: &State, tip: Option<B256>, ceiling: Option<u64>) -> Vec<B256> {
        if self.halted || self.exceeded(state) {
            self.halted = true;
            return Vec::new();
        }
        let mut out = Vec::new();
        while let Some(candidate) = self.next_candidate(state, tip) {
            let height = state.block(&candidate).map_or(0, |b| b.height);
            if ceiling.is_some_and(|c| height > c) || !self.is_final(state, &candidate) {
                break;
            }
            self.last_finalized = Some(candidate);
            out.push(candidate);
        }
        out
    }

    /// The block after the last final one on the fork choice `tip`.
    fn next_candidate(&self, state: &State, tip: Option<B256>) -> Option<B256> {
        let tip = tip?;
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

    fn is_final(&mut self, state: &State, candidate: &B256) -> bool {
        let total = state.validators.total_weight();
        let Some(horizon) = self.streaks.level0(state, candidate) else {
            return false;
        };
        let mut target = self.max_level;
        while target > 0 {
            let q = quorum(total, self.ftt, target);
            let level = summit_level(state, horizon.clone(), q, target);
            if level >= target {
                return true;
            }
            target = level;
        }
        false
    }
}

impl Streaks {
    /// The level-0 horizon for `candidate`: for each honest validator whose latest
    /// unit votes for it (or a descendant), the oldest unit of that unbroken streak.
    fn level0(&mut self, state: &State, candidate: &B256) -> Option<Horizon> {
        let cand_height = state.block(candidate)?.height;
        if self.candidate != Some(*candidate) {
            self.candidate = Some(*candidate);
            self.per_validator = vec![None; state.validators.len()];
        }
        let votes_for = |h: &B256| {
            state
                .unit(h)
                .and_then(|u| u.vote)
                .is_some_and(|v| state.ancestor(&v, cand_height) == Some(*candidate))
        };
        let mut horizon = Horizon::new(state.validators.len());
        for v in state.validators.indices() {
            let Some(slot) = self.per_validator.get_mut(v as usize) else {
                continue;
            };
            let Some(top) = state.latest_unit(v) else {
                *slot = None;
                continue;
            };
            if !votes_for(&top.hash) {
                *slot = None;
                continue;
            }
            // Walk back to the oldest unit of the streak, or to where the last run
            // stopped (everything below it was checked then).
            let mut oldest = top.seq;
            let mut cursor = top.prev();
            let mut known = false;
            if let Some((checked, start)) = *slot
                && checked == top.hash
            {
                oldest = start;
                cursor = None;
                known = true;
            }
            while let Some(h) = cursor {
                let Some(u) = state.unit(&h) else { break };
                if let Some((checked, start)) = *slot
                    && checked == h
                {
                    oldest = start;
                    break;
                }
                if !votes_for(&h) {
                    break;
                }
                oldest = u.seq;
                cursor = u.prev();
            }
            if !known {
                *slot = Some((top.hash, oldest));
            }
            horizon.set(v, oldest);
        }
        Some(horizon)
    }
}

/// Per validator: the sequence number of its unit in the current summit level.
#[derive(Debug, Clone)]
struct Horizon {
    seqs: Vec<Option<u64>>,
}

impl Horizon {
    fn new(n: usize) -> Self {
        Self {
            seqs: vec![None; n],
        }
    }

    fn set(&mut self, v: ValidatorIndex, seq: u64) {
        if let Some(slot) = self.seqs.get_mut(v as usize) {
            *slot = Some(seq);
        }
    }

    fn get(&self, v: ValidatorIndex) -> Option<u64> {
        self.seqs.get(v as usize).copied().flatten()
    }

    fn members(&self) -> Vec<ValidatorIndex> {
        (0..self.seqs.len())
            .filter(|i| self.seqs.get(*i).is_some_and(Option::is_some))
            .filter_map(|i| ValidatorIndex::try_from(i).ok())
            .collect()
    }
}

/// How many levels of summit with quorum `q` exist for `candidate` (at most `max`),
/// computed from scratch.
pub fn summit_level_of(state: &State, candidate: &B256, q: u64, max: u32) -> u32 {
    Streaks::default()
        .level0(state, candidate)
        .map_or(0, |h| summit_level(state, h, q, max))
}

/// How many levels of summit with quorum `q` exist above the level-0 `horizon` (at
/// most `max`).
fn summit_level(state: &State, mut horizon: Horizon, q: u64, max: u32) -> u32 {
    for level in 1..=max {
        match next_horizon(state, &horizon, q) {
            Some(next) => horizon = next,
            None => return level.saturating_sub(1),
        }
    }
    max
}

/// Weight of committee members whose horizon unit `unit` sees.
fn seen_weight(
    unit: &crate::state::StoredUnit,
    horizon: &Horizon,
    committee: &[(ValidatorIndex, u64)],
) -> u64 {
    committee
        .iter()
        .filter(|(m, _)| horizon.get(*m).is_some_and(|h| unit.sees_seq(*m, h)))
        .map(|(_, w)| *w)
        .fold(0u64, u64::saturating_add)
}

/// One summit step: prune the committee to those whose latest unit sees a quorum of
/// the committee's horizon, then move each member's horizon to its earliest unit
/// that still does. `None` if nobody is left.
fn next_horizon(state: &State, horizon: &Horizon, q: u64) -> Option<Horizon> {
    // (member, weight, latest unit)
    let mut committee: Vec<(ValidatorIndex, u64, &crate::state::StoredUnit)> = horizon
        .members()
        .into_iter()
        .filter_map(|m| Some((m, state.validators.weight(m), state.latest_unit(m)?)))
        .collect();
    loop {
        let members: Vec<(ValidatorIndex, u64)> =
            committee.iter().map(|(m, w, _)| (*m, *w)).collect();
        let before = committee.len();
        committee.retain(|(_, _, top)| seen_weight(top, horizon, &members) >= q);
        if committee.is_empty() {
            return None;
        }
        if committee.len() == before {
            break;
        }
    }
    let members: Vec<(ValidatorIndex, u64)> = committee.iter().map(|(m, w, _)| (*m, *w)).collect();
    let mut next = Horizon::new(state.validators.len());
    for (m, _, top) in &committee {
        let Some(floor) = horizon.get(*m) else {
            continue;
        };
        // Seen weight only grows along a swimlane: binary search for the earliest
        // unit in [floor, top] that sees a quorum (the top does, after pruning).
        let (mut lo, mut hi) = (floor, top.seq);
        while lo < hi {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            let sees = state
                .swimlane_at(&top.hash, mid)
                .is_some_and(|u| seen_weight(u, horizon, &members) >= q);
            if sees {
                hi = mid;
            } else {
                lo = mid.saturating_add(1);
            }
        }
        next.set(*m, lo);
    }
    Some(next)
}
