//! Validators, weights and the parameters of one protocol instance (an era).

use alloy_primitives::{Address, B256, keccak256};
use serde::{Deserialize, Serialize};

/// Position of a validator in the era's validator list.
pub type ValidatorIndex = u32;

/// Milliseconds since the Unix epoch.
pub type Timestamp = u64;

/// The validator set of an era: addresses (secp256k1 keys) and stake weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    keys: Vec<Address>,
    weights: Vec<u64>,
    /// Prefix sums of `weights`, for the stake-weighted leader draw.
    cumulative: Vec<u64>,
    total: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidatorsError {
    #[error("the validator set is empty")]
    Empty,
    #[error("validator {0} has zero weight")]
    ZeroWeight(Address),
    #[error("validator {0} is listed twice")]
    Duplicate(Address),
    #[error("total weight overflows u64")]
    Overflow,
}

impl Validators {
    pub fn new(list: impl IntoIterator<Item = (Address, u64)>) -> Result<Self, ValidatorsError> {
        let mut keys = Vec::new();
        let mut weights = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0u64;
        for (key, weight) in list {
            if weight == 0 {
                return Err(ValidatorsError::ZeroWeight(key));
            }
            if keys.contains(&key) {
                return Err(ValidatorsError::Duplicate(key));
            }
            total = total.checked_add(weight).ok_or(ValidatorsError::Overflow)?;
            keys.push(key);
            weights.push(weight);
            cumulative.push(total);
        }
        if keys.is_empty() {
            return Err(ValidatorsError::Empty);
        }
        Ok(Self {
            keys,
            weights,
            cumulative,
            total,
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn total_weight(&self) -> u64 {
        self.total
    }

    /// Weight of validator `i` (0 for an index out of range).
    pub fn weight(&self, i: ValidatorIndex) -> u64 {
        self.weights.get(i as usize).copied().unwrap_or(0)
    }

    pub fn key(&self, i: ValidatorIndex) -> Option<&Address> {
        self.keys.get(i as usize)
    }

    pub fn index_of(&self, key: &Address) -> Option<ValidatorIndex> {
        self.keys
            .iter()
            .position(|k| k == key)
            .and_then(|i| ValidatorIndex::try_from(i).ok())
    }

    pub fn indices(&self) -> impl Iterator<Item = ValidatorIndex> + '_ {
        (0..self.keys.len()).filter_map(|i| ValidatorIndex::try_from(i).ok())
    }

    /// The stake-weighted pseudo-random leader of the round starting at `round_id`:
    /// a draw in `[0, W)` from `keccak(seed ‖ round_id)`, mapped through the cumulative
    /// weights. Everyone computes the same leader; a validator's chance equals its share.
    pub fn leader(&self, seed: &B256, round_id: Timestamp) -> ValidatorIndex {
        let mut preimage = [0u8; 40];
        preimage[..32].copy_from_slice(seed.as_slice());
        preimage[32..].copy_from_slice(&round_id.to_be_bytes());
        let digest = keccak256(preimage);
        let mut word = [0u8; 16];
        word.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
        // 128 random bits reduced mod W: the bias is below 2^-64.
        let draw = u128::from_be_bytes(word)
            .checked_rem(u128::from(self.total))
            .and_then(|d| u64::try_from(d).ok())
            .unwrap_or(0);
        let idx = self.cumulative.partition_point(|&c| c <= draw);
        ValidatorIndex::try_from(idx.min(self.keys.len().saturating_sub(1))).unwrap_or(0)
    }
}

/// A finality threshold: the fault tolerance `ftt` in weight, as a fraction of the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    /// Numerator and denominator of the fraction of stake (e.g. 1/3).
    pub num: u64,
    pub den: u64,
}

impl Threshold {
    pub const fn new(num: u64, den: u64) -> Self {
        Self { num, den }
    }

    /// The default set: 1 %, 1/3, 1/2 and 2/3 of stake. (At 1/2 and above the quorum
    /// exceeds what honest validators can gather unless nearly all are online; such
    /// thresholds are reachable only when few are faulty or offline.)
    pub fn defaults() -> Vec<Self> {
        vec![
            Self::new(1, 100),
            Self::new(1, 3),
            Self::new(1, 2),
            Self::new(2, 3),
        ]
    }

    /// `floor(W * num / den)` in u128.
    pub fn ftt(&self, total: u64) -> u64 {
        if self.den == 0 {
            return 0;
        }
        let v = u128::from(total)
            .saturating_mul(u128::from(self.num))
            .checked_div(u128::from(self.den))
            .unwrap_or(0);
        u64::try_from(v).unwrap_or(u64::MAX)
    }
}

/// The parameters of one protocol instance.
#[derive(Clone, Debug)]
pub struct Params {
    /// The era number (reported with finalized blocks).
    pub era: u64,
    /// Unique per era; part of every unit, so units never cross eras.
    pub instance_id: B256,
    /// Seed of the leader sequence.
    pub seed: B256,
    /// Shortest round, in ms; a unit's round is `min_round_len << round_exp`.
    pub min_round_len: u64,
    /// Round exponent this node uses for its own units.
    pub round_exp: u8,
    /// Largest round exponent accepted.
    pub max_round_exp: u8,
    /// No unit may be older than the era.
    pub era_start: Timestamp,
    /// Units stamped further in the future than this are dropped; closer ones wait.
    pub max_future: u64,
}

impl Params {
    pub fn round_len(&self, round_exp: u8) -> u64 {
        self.min_round_len
            .checked_shl(u32::from(round_exp))
            .unwrap_or(u64::MAX)
    }
}

/// Start of the round of length `round_len` containing `ts`.
pub fn round_id(ts: Timestamp, round_len: u64) -> Timestamp {
    ts.saturating_sub(ts.checked_rem(round_len).unwrap_or(0))
}

/// The quorum a level-`k` summit needs for fault tolerance `ftt` out of `total`: the
/// least `q` with `(2q - W)(1 - 2^-k) > ftt`, i.e. `floor(((2^k - 1) W + 2^k ftt) /
/// (2 (2^k - 1))) + 1`, in u128 (k is capped at 63).
///
/// The summit lemma says reverting such a summit takes equivocators of weight at least
/// `(2q - W)(1 - 2^-k)`; the strict inequality makes a block final at `ftt` safe with
/// faulty weight up to and including `ftt`. (The ceiling form `q_k = ceil(...)`
/// differs from this only when the division is exact, where it would tolerate one
/// unit of weight less; see docs/adr/0008.)
pub fn quorum(total: u64, ftt: u64, k: u32) -> u64 {
    let k = k.clamp(1, 63);
    let pow = 1u128 << k;
    let num = pow
        .saturating_sub(1)
        .saturating_mul(u128::from(total))
        .saturating_add(pow.saturating_mul(u128::from(ftt)));
    let den = pow.saturating_sub(1).saturating_mul(2);
    let q = num.checked_div(den).unwrap_or(0).saturating_add(1);
    u64::try_from(q).unwrap_or(u64::MAX)
}

/// What a node must store to restart an era: everything that defines the instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EraRecord {
    pub era: u64,
    pub instance_id: B256,
    /// No unit of the era is older.
    pub start: Timestamp,
    /// The value the era's first block extends.
    pub base_value: B256,
    /// The previous era's terminal block (zero for era 0).
    pub key_block: B256,
    /// The era's validators and weights.
    pub validators: Vec<(Address, u64)>,
    /// Addresses banned for equivocating in earlier eras.
    pub banned: Vec<Address>,
    /// Highest threshold (index into [`crate::Eras::thresholds`]) a block of this era may be
    /// reported final at: the weakest switch on the way here.
    pub cap: usize,
    /// Where the validator set came from: `None` for the genesis set, or a set carried
    /// over from the era before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SetSource>,
}

/// Where an era's validator set was read: the staker table's set `set_id` as of L1
/// block `l1_block` (`l1_hash`), the block the previous era's terminal block named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetSource {
    pub l1_block: u64,
    pub l1_hash: B256,
    pub set_id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_matches_the_reference_table() {
        // W = 18, ftt = 6 (1/3): level 1 needs more than 5/6 (15 would let exactly 6
        // faulty revert it), level 2 more than 13/18 (13 would give (26-18)*3/4 = 6).
        assert_eq!(quorum(18, 6, 1), 16);
        assert_eq!(quorum(18, 6, 2), 14);
        // W = 1000, 1/3: level 1 exact (one more than the ceiling form); level 3 not
        // exact (9664 / 14 = 690.3: the same as the ceiling form).
        assert_eq!(quorum(1000, 333, 1), 834);
        assert_eq!(quorum(1000, 333, 3), 691);
        // Large k tends to (W + ftt) / 2 from above: never reaches it.
        assert_eq!(quorum(300, 100, 63), 201);
        // No overflow at the extremes.
        assert!(quorum(u64::MAX, u64::MAX / 3, 1) > u64::MAX / 2);
        // ftt = 1 % gives just over 51 % at level 1.
        assert_eq!(quorum(100, 1, 1), 52);
        assert_eq!(quorum(10_000, 100, 1), 5_101);
        // The defining property, checked exhaustively on small weights.
        for w in 1..60u64 {
            for t in 0..w {
                for k in 1..6u32 {
                    let q = quorum(w, t, k);
                    let holds = |q: u64| {
                        let lhs = (2 * i128::from(q) - i128::from(w)) * ((1i128 << k) - 1);
                        lhs > (1i128 << k) * i128::from(t)
                    };
                    assert!(holds(q) && !holds(q - 1), "w {w} t {t} k {k} q {q}");
                }
            }
        }
    }

    #[test]
    fn leader_draw_follows_stake() {
        let vals =
            Validators::new([(Address::repeat_byte(1), 1), (Address::repeat_byte(2), 3)]).unwrap();
        let seed = B256::repeat_byte(9);
        let heavy = (0..4000u64)
            .filter(|r| vals.leader(&seed, r * 1000) == 1)
            .count();
        assert!((2800..3200).contains(&heavy), "{heavy} of 4000");
        assert_eq!(vals.leader(&seed, 5000), vals.leader(&seed, 5000));
    }

    #[test]
    fn bad_sets_are_refused() {
        assert_eq!(Validators::new([]), Err(ValidatorsError::Empty));
        let a = Address::repeat_byte(1);
        assert_eq!(
            Validators::new([(a, 0)]),
            Err(ValidatorsError::ZeroWeight(a))
        );
        assert_eq!(
            Validators::new([(a, 1), (a, 2)]),
            Err(ValidatorsError::Duplicate(a))
        );
        assert_eq!(
            Validators::new([(a, u64::MAX), (Address::ZERO, 1)]),
            Err(ValidatorsError::Overflow)
        );
    }
}
