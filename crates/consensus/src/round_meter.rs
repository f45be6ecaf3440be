//! Adaptive round lengths (paper §4.1; casper-node's round success meter).
//!
//! Each validator picks its own round exponent. A round *succeeds* if its leader's
//! proposal gathers a level-1 summit with the 1 % threshold's quorum (just over half
//! of the stake) by the time the validator's next round starts. Over a window of
//! [`WINDOW`] rounds:
//! - more than [`MAX_FAILURES`] failures double the round length (up to the maximum);
//! - at a window boundary with fewer than [`SPEEDUP_FAILURES`] failures, the round
//!   length halves (down to the minimum).
//!
//! Because success only needs half of the stake, validators holding less than half
//! cannot make everyone else slow down (PR #734 in casper-node). A change takes effect
//! only at a boundary of the longer of the two round lengths (validity rule 6).

use crate::types::Timestamp;
use std::collections::VecDeque;

/// Rounds in the window the meter judges.
pub const WINDOW: usize = 40;
/// More failures than this in the window slow the validator down.
pub const MAX_FAILURES: usize = 29;
/// Fewer failures than this over a full window speed it up.
pub const SPEEDUP_FAILURES: usize = 8;

/// One validator's round exponent and its recent round outcomes.
#[derive(Debug, Clone)]
pub struct RoundMeter {
    exp: u8,
    min_exp: u8,
    max_exp: u8,
    /// Outcomes of the last rounds, oldest first (`true`: success).
    outcomes: VecDeque<bool>,
    /// An exponent decided on but waiting for a common round boundary.
    pending: Option<u8>,
}

impl RoundMeter {
    pub fn new(exp: u8, min_exp: u8, max_exp: u8) -> Self {
        Self {
            exp: exp.clamp(min_exp, max_exp.max(min_exp)),
            min_exp,
            max_exp: max_exp.max(min_exp),
            outcomes: VecDeque::with_capacity(WINDOW),
            pending: None,
        }
    }

    pub fn exp(&self) -> u8 {
        self.exp
    }

    pub fn failures(&self) -> usize {
        self.outcomes.iter().filter(|ok| !**ok).count()
    }

    /// Records the outcome of the round before the one starting at `round_start`
    /// (a round of `2^exp` units of `min_round_len`), and returns the exponent to use
    /// from `round_start` on.
    pub fn record(&mut self, success: bool, round_start: Timestamp, min_round_len: u64) -> u8 {
        if self.outcomes.len() >= WINDOW {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back(success);
        let len = |e: u8| min_round_len.checked_shl(u32::from(e)).unwrap_or(u64::MAX);
        let index = round_start.checked_div(len(self.exp)).unwrap_or(0);
        if self.pending.is_none() {
            if self.failures() > MAX_FAILURES && self.exp < self.max_exp {
                self.pending = Some(self.exp.saturating_add(1));
            } else if self.outcomes.len() >= WINDOW
                && index.is_multiple_of(WINDOW as u64)
                && self.failures() < SPEEDUP_FAILURES
                && self.exp > self.min_exp
            {
                self.pending = Some(self.exp.saturating_sub(1));
            }
        }
        if let Some(next) = self.pending {
            let boundary = len(self.exp.max(next));
            if round_start.checked_rem(boundary) == Some(0) {
                self.exp = next;
                self.pending = None;
                self.outcomes.clear();
            }
        }
        self.exp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slows_down_on_failures_and_speeds_up_on_successes() {
        let mut m = RoundMeter::new(0, 0, 3);
        let r = 100u64;
        let mut t = 0u64;
        // 29 failures are tolerated, the 30th slows down (at an even round boundary).
        for _ in 0..29 {
            t += r;
            assert_eq!(m.record(false, t, r), 0);
        }
        t += r;
        let e = m.record(false, t, r);
        if t.is_multiple_of(2 * r) {
            assert_eq!(e, 1);
        } else {
            assert_eq!(e, 0);
            t += r;
            assert_eq!(m.record(false, t, r), 1);
        }
        // Successes: back down only at a window boundary after a full window.
        let mut exps = Vec::new();
        for _ in 0..120 {
            t += 2 * r;
            exps.push(m.record(true, t, r));
        }
        assert_eq!(exps.last(), Some(&0), "{exps:?}");
        assert!(
            exps.iter().take(39).all(|e| *e == 1),
            "no speed-up before a full window"
        );
    }

    #[test]
    fn a_minority_of_failures_changes_nothing() {
        let mut m = RoundMeter::new(2, 0, 6);
        let r = 512u64;
        let mut t = 0u64;
        for i in 0..400u64 {
            t += r << 2;
            // 25 % failures (a leader of four down): neither slower nor faster.
            assert_eq!(m.record(i % 4 != 0, t, r), 2);
        }
    }

    #[test]
    fn bounds_hold() {
        let mut m = RoundMeter::new(5, 1, 3);
        assert_eq!(m.exp(), 3);
        let mut t = 0;
        for _ in 0..1000 {
            t += 8 << 3;
            let e = m.record(false, t, 8);
            assert!((1..=3).contains(&e));
        }
        assert_eq!(m.exp(), 3);
    }
}
