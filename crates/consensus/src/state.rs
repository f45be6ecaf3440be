//! The protocol state of one era: every valid unit seen, the blocks (proposals) they
//! form, each validator's latest unit or proof of its equivocation, and fork choice.
//!
//! Nothing here trusts its input: every index and lookup on data from the network is
//! checked, arithmetic saturates, and DAG walks are iterative.
//!
//! Two indexes keep the hot paths (validation, fork choice, the finality detector)
//! free of DAG walks:
//! - `lanes[v][s]` is the first unit seen from validator `v` with sequence number `s`.
//!   For a validator not known to be faulty that is its whole swimlane, so "the unit of
//!   this swimlane with seq s" is one lookup; forks of equivocators fall back to the
//!   skip lists.
//! - every stored unit keeps `seen[v]`: one more than the sequence number of the unit it
//!   cites from `v` (0: none or faulty), so "does this unit see that one" is an index.

use crate::types::{Params, Timestamp, ValidatorIndex, Validators, round_id};
use crate::unit::{Evidence, Observation, SignedUnit, UnitVerifier};
use alloy_primitives::B256;
use alloy_primitives::map::B256Map;
use std::collections::{BTreeMap, HashMap};

/// Why a unit is not (yet) accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("creator {0} is not a validator")]
    UnknownCreator(ValidatorIndex),
    #[error("unit of another protocol instance")]
    WrongInstance,
    #[error("invalid signature")]
    BadSignature,
    #[error("round exponent {0} above the maximum")]
    RoundTooLong(u8),
    #[error("panorama has {got} entries, expected {expected}")]
    PanoramaLength { got: usize, expected: usize },
    #[error("the creator's own panorama entry is faulty")]
    SelfFaulty,
    #[error("a unit without a value must cite at least one unit")]
    Empty,
    #[error("validator {0} is banned in this era")]
    Banned(ValidatorIndex),
    /// Not invalid: its dependencies are not here yet.
    #[error("{} dependencies missing", .0.len())]
    MissingDependencies(Vec<B256>),
    /// Not invalid: it claims an equivocation we have no evidence of yet.
    #[error("evidence against validator {0} missing")]
    MissingEvidence(ValidatorIndex),
    /// Not invalid: the proposed value cannot be checked yet (e.g. the block it names
    /// has not arrived).
    #[error("proposed value {0} not known yet")]
    ValueUnknown(B256),
    #[error("panorama entry {index} cites a unit by {creator}")]
    WrongCreator {
        index: ValidatorIndex,
        creator: ValidatorIndex,
    },
    #[error("panorama does not include what its citations saw")]
    PanoramaInconsistent,
    #[error("timestamp before a cited unit or the era start")]
    TimestampTooEarly,
    #[error("sequence number {got}, expected {expected}")]
    BadSeq { got: u64, expected: u64 },
    #[error("more than two units in one round")]
    TooManyInRound,
    #[error("round length changed off a round boundary")]
    RoundChange,
    #[error("a value may only be proposed by the round leader, first in the round, at its start")]
    BadProposal,
    #[error("proposal after the era's last block")]
    AfterTerminal,
    #[error("proposed value {value} does not extend its parent's value")]
    BadValue { value: B256 },
    #[error("already known")]
    Duplicate,
}

impl UnitError {
    /// Whether the unit may become valid once more data arrives.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            Self::MissingDependencies(_) | Self::MissingEvidence(_) | Self::ValueUnknown(_)
        )
    }
}

/// Whether a proposed value may follow its parent's value (for KOMA: the named L2
/// block is known, valid, and descends from the parent milestone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid,
    Invalid,
    /// Cannot tell yet; the proposal waits until [`crate::Highway::recheck_values`].
    Unknown,
}

/// Decides whether a value may extend another. Must be deterministic across honest
/// nodes once they hold the same data.
pub trait ValueCheck: Send + Sync {
    fn check(&self, value: &B256, parent: &B256) -> Validity;
}

/// Accepts every value (for instances whose values are opaque).
#[derive(Debug, Default, Clone, Copy)]
pub struct AnyValue;

impl ValueCheck for AnyValue {
    fn check(&self, _: &B256, _: &B256) -> Validity {
        Validity::Valid
    }
}

/// A validated unit and what follows from it.
#[derive(Clone, Debug)]
pub struct StoredUnit {
    pub signed: SignedUnit,
    pub hash: B256,
    pub creator: ValidatorIndex,
    pub seq: u64,
    pub timestamp: Timestamp,
    pub round_exp: u8,
    /// The block this unit votes for: itself if it is a proposal, else the fork choice
    /// of its panorama (`None` before any block exists).
    pub vote: Option<B256>,
    /// Swimlane skip list: entry `i` is the creator's unit with `seq - 2^i`.
    pub skip: Vec<B256>,
    /// Per validator: 1 + the sequence number of the unit cited from it (0: none,
    /// `u64::MAX`: faulty).
    seen: Vec<u64>,
}

impl StoredUnit {
    pub fn panorama(&self) -> &[Observation] {
        &self.signed.unit.panorama
    }
    pub fn value(&self) -> Option<B256> {
        self.signed.unit.value
    }
    pub fn prev(&self) -> Option<B256> {
        self.skip.first().copied()
    }
    /// Whether this unit cites validator `v`'s unit with sequence number `seq` or a
    /// later one (in the swimlane this unit sees).
    pub fn sees_seq(&self, v: ValidatorIndex, seq: u64) -> bool {
        if v == self.creator {
            return self.seq >= seq;
        }
        self.seen
            .get(v as usize)
            .is_some_and(|s| *s > seq && *s != u64::MAX)
    }
}

/// A proposal: a block of the DAG's own tree of values.
#[derive(Clone, Debug)]
pub struct Block {
    pub hash: B256,
    pub value: B256,
    pub height: u64,
    /// Ancestor skip list: entry `i` is the ancestor at `height - 2^i`.
    pub skip: Vec<B256>,
    pub proposer: ValidatorIndex,
    pub timestamp: Timestamp,
}

impl Block {
    pub fn parent(&self) -> Option<B256> {
        self.skip.first().copied()
    }
}

/// What adding a unit led to.
#[derive(Debug, Default)]
pub struct Added {
    /// Evidence that this unit revealed (its creator equivocated).
    pub evidence: Option<Evidence>,
}

/// Where a new era's tree of blocks starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EraBase {
    /// The value the era's first proposal must extend (the previous era's last).
    pub value: B256,
    /// Blocks per era: the block at height `blocks - 1` is the era's last (terminal);
    /// no proposal may build on it. `u64::MAX`: the era never ends.
    pub blocks: u64,
}

impl Default for EraBase {
    fn default() -> Self {
        Self {
            value: B256::ZERO,
            blocks: u64::MAX,
        }
    }
}

#[derive(Debug)]
pub struct State {
    pub validators: Validators,
    pub params: Params,
    pub base: EraBase,
    units: B256Map<StoredUnit>,
    blocks: B256Map<Block>,
    /// The latest unit of each validator, or `Faulty`.
    latest: Vec<Observation>,
    evidence: BTreeMap<ValidatorIndex, Evidence>,
    /// Validators that may not take part in this era (proven faulty in an earlier one).
    banned: Vec<bool>,
    /// Banned, or proven to have equivocated in this era (the hot-path form of
    /// `banned` and `evidence`), as flags and as a list.
    faulty: Vec<bool>,
    faulty_list: Vec<ValidatorIndex>,
    /// `lanes[v][s]`: the first unit seen from `v` with sequence number `s`.
    lanes: Vec<Vec<B256>>,
    /// The first proposal seen per round start (for the round meter).
    proposals: BTreeMap<Timestamp, B256>,
}

impl State {
    pub fn new(validators: Validators, params: Params) -> Self {
        Self::with_base(validators, params, EraBase::default(), &[])
    }

    /// A state for an era that starts from `base`, with `banned` validators (their
    /// units are refused; their weight counts as faulty).
    pub fn with_base(
        validators: Validators,
        params: Params,
        base: EraBase,
        banned: &[ValidatorIndex],
    ) -> Self {
        let n = validators.len();
        let mut ban = vec![false; n];
        let mut latest = vec![Observation::None; n];
        for b in banned {
            if let (Some(slot), Some(l)) = (ban.get_mut(*b as usize), latest.get_mut(*b as usize)) {
                *slot = true;
                *l = Observation::Faulty;
            }
        }
        Self {
            validators,
            params,
            base,
            units: B256Map::default(),
            blocks: B256Map::default(),
            latest,
            evidence: BTreeMap::new(),
            faulty: ban.clone(),
            faulty_list: banned.to_vec(),
            banned: ban,
            lanes: vec![Vec::new(); n],
            proposals: BTreeMap::new(),
        }
    }

    pub fn unit(&self, hash: &B256) -> Option<&StoredUnit> {
        self.units.get(hash)
    }

    pub fn block(&self, hash: &B256) -> Option<&Block> {
        self.blocks.get(hash)
    }

    pub fn units_len(&self) -> usize {
        self.units.len()
    }

    pub fn latest(&self) -> &[Observation] {
        &self.latest
    }

    /// The latest unit of `v`, if it is not known to be faulty.
    pub fn latest_unit(&self, v: ValidatorIndex) -> Option<&StoredUnit> {
        self.latest
            .get(v as usize)
            .and_then(Observation::correct)
            .and_then(|h| self.units.get(&h))
    }

    pub fn is_banned(&self, v: ValidatorIndex) -> bool {
        self.banned.get(v as usize).copied().unwrap_or(false)
    }

    /// Known faulty: equivocated in this era, or banned for an earlier one.
    pub fn is_faulty(&self, v: ValidatorIndex) -> bool {
        self.faulty.get(v as usize).copied().unwrap_or(false)
    }

    fn mark_faulty(&mut self, v: ValidatorIndex, evidence: Evidence) {
        self.evidence.insert(v, evidence);
        if let Some(f) = self.faulty.get_mut(v as usize) {
            *f = true;
        }
        if !self.faulty_list.contains(&v) {
            self.faulty_list.push(v);
        }
        if let Some(slot) = self.latest.get_mut(v as usize) {
            *slot = Observation::Faulty;
        }
    }

    pub fn evidence(&self) -> impl Iterator<Item = &Evidence> {
        self.evidence.values()
    }

    pub fn evidence_against(&self, v: ValidatorIndex) -> Option<&Evidence> {
        self.evidence.get(&v)
    }

    pub fn faulty_weight(&self) -> u64 {
        self.validators
            .indices()
            .filter(|v| self.is_faulty(*v))
            .map(|v| self.validators.weight(v))
            .fold(0u64, u64::saturating_add)
    }

    /// The first proposal seen for the round starting at `round_id`.
    pub fn proposal_at(&self, round_id: Timestamp) -> Option<&Block> {
        self.proposals
            .get(&round_id)
            .and_then(|h| self.blocks.get(h))
    }

    /// Whether `block` is the era's last: nothing may be proposed on top of it.
    pub fn is_terminal(&self, block: &Block) -> bool {
        block.height.saturating_add(1) >= self.base.blocks
    }

    /// The value a proposal on top of `parent` must extend.
    pub fn parent_value(&self, parent: Option<&B256>) -> B256 {
        parent
            .and_then(|p| self.blocks.get(p))
            .map_or(self.base.value, |b| b.value)
    }

    /// The unit of `unit`'s swimlane with sequence number `seq` (itself included).
    pub fn swimlane_at(&self, unit: &B256, seq: u64) -> Option<&StoredUnit> {
        let top = self.units.get(unit)?;
        if top.seq < seq {
            return None;
        }
        if !self.is_faulty(top.creator) {
            // One swimlane: the lane index is exact.
            let h = self
                .lanes
                .get(top.creator as usize)
                .and_then(|lane| lane.get(usize::try_from(seq).ok()?))?;
            return self.units.get(h);
        }
        let mut cur = top;
        while cur.seq > seq {
            let diff = cur.seq.saturating_sub(seq);
            // Largest jump not overshooting.
            let i = (63u32.saturating_sub(diff.leading_zeros())) as usize;
            let next = cur.skip.get(i.min(cur.skip.len().saturating_sub(1)))?;
            cur = self.units.get(next)?;
        }
        (cur.seq == seq).then_some(cur)
    }

    /// The ancestor of `block` at `height` (itself included).
    pub fn ancestor(&self, block: &B256, height: u64) -> Option<B256> {
        let mut cur = self.blocks.get(block)?;
        while cur.height > height {
            let diff = cur.height.saturating_sub(height);
            let i = (63u32.saturating_sub(diff.leading_zeros())) as usize;
            let next = cur.skip.get(i.min(cur.skip.len().saturating_sub(1)))?;
            cur = self.blocks.get(next)?;
        }
        (cur.height == height).then_some(cur.hash)
    }

    /// Whether `descendant` is `ancestor` or below it.
    pub fn extends(&self, descendant: &B256, ancestor: &B256) -> bool {
        self.blocks
            .get(ancestor)
            .is_some_and(|a| self.ancestor(descendant, a.height) == Some(*ancestor))
    }

    /// `a >= b` entry by entry: Faulty >= anything >= None; Correct(x) >= Correct(y)
    /// iff y is x or in x's swimlane. `a_seen` is `a` in the [`seen_of`] form.
    ///
    /// For a validator with no known fork, every unit of it in the state lies on its
    /// one swimlane (a second one would have been detected on insert), so "y is in
    /// x's swimlane" is `seq(y) <= seq(x)` and the whole entry check is one integer
    /// comparison of the `seen` forms. Only known equivocators need the swimlane walk.
    ///
    /// [`seen_of`]: State::seen_of
    fn panorama_geq(
        &self,
        a: &[Observation],
        a_seen: &[u64],
        b: &StoredUnit,
        memo: &mut Vec<(B256, B256, bool)>,
    ) -> bool {
        // Every validator without a known fork: one integer comparison each.
        let plain = a_seen
            .iter()
            .zip(&b.seen)
            .zip(&self.faulty)
            .all(|((ax, by), faulty)| by <= ax || *faulty);
        if !plain {
            return false;
        }
        // Known equivocators: compare the observations themselves (the few distinct
        // pairs are remembered across the cited units of one new unit).
        self.faulty_list.iter().all(|v| {
            let (Some(x), Some(y)) = (a.get(*v as usize), b.panorama().get(*v as usize)) else {
                return false;
            };
            match (x, y) {
                (_, Observation::None) | (Observation::Faulty, _) => true,
                (Observation::None, _) | (Observation::Correct(_), Observation::Faulty) => false,
                (Observation::Correct(x), Observation::Correct(y)) => {
                    if x == y {
                        return true;
                    }
                    if let Some((_, _, known)) = memo.iter().find(|(mx, my, _)| mx == x && my == y)
                    {
                        return *known;
                    }
                    let below = self
                        .units
                        .get(y)
                        .and_then(|yu| self.swimlane_at(x, yu.seq))
                        .is_some_and(|found| found.hash == *y);
                    memo.push((*x, *y, below));
                    below
                }
            }
        })
    }

    /// A panorama as integers: 0 for none, 1 + the sequence number of the cited unit,
    /// `u64::MAX` for faulty. Entry by entry, `a >= b` in this form is the panorama
    /// order for every validator with a single swimlane.
    fn seen_of(&self, panorama: &[Observation]) -> Vec<u64> {
        panorama
            .iter()
            .map(|o| match o {
                Observation::None => 0,
                Observation::Faulty => u64::MAX,
                Observation::Correct(h) => self
                    .units
                    .get(h)
                    .map_or(0, |c| c.seq.saturating_add(1).min(u64::MAX - 1)),
            })
            .collect()
    }

    /// Checks everything that needs no other unit. `hash` is `su`'s hash.
    fn pre_validate(
        &self,
        su: &SignedUnit,
        hash: B256,
        verifier: &dyn UnitVerifier,
    ) -> Result<B256, UnitError> {
        let u = &su.unit;
        let key = self
            .validators
            .key(u.creator)
            .ok_or(UnitError::UnknownCreator(u.creator))?;
        if u.instance_id != self.params.instance_id {
            return Err(UnitError::WrongInstance);
        }
        if self.is_banned(u.creator) {
            return Err(UnitError::Banned(u.creator));
        }
        if u.round_exp > self.params.max_round_exp {
            return Err(UnitError::RoundTooLong(u.round_exp));
        }
        if u.panorama.len() != self.validators.len() {
            return Err(UnitError::PanoramaLength {
                got: u.panorama.len(),
                expected: self.validators.len(),
            });
        }
        if u.panorama.get(u.creator as usize) == Some(&Observation::Faulty) {
            return Err(UnitError::SelfFaulty);
        }
        if u.value.is_none() && !u.panorama.iter().any(|o| o.correct().is_some()) {
            return Err(UnitError::Empty);
        }
        if self.units.contains_key(&hash) {
            return Err(UnitError::Duplicate);
        }
        if !verifier.verify(key, &hash, &su.signature) {
            return Err(UnitError::BadSignature);
        }
        Ok(hash)
    }

    /// Validates `su` (whose hash is `hash`) and adds it. Pending errors (missing
    /// dependencies, evidence or value) mean "try again later", any other error that
    /// the unit is invalid.
    pub fn add_unit(
        &mut self,
        su: SignedUnit,
        hash: B256,
        verifier: &dyn UnitVerifier,
        values: &dyn ValueCheck,
    ) -> Result<Added, UnitError> {
        let hash = self.pre_validate(&su, hash, verifier)?;
        let u = &su.unit;
        let missing: Vec<B256> = u
            .panorama
            .iter()
            .filter_map(Observation::correct)
            .filter(|h| !self.units.contains_key(h))
            .collect();
        if !missing.is_empty() {
            return Err(UnitError::MissingDependencies(missing));
        }
        let seen = self.seen_of(&u.panorama);
        let mut memo = Vec::new();
        for (index, obs) in self.validators.indices().zip(&u.panorama) {
            match obs {
                Observation::Faulty if !self.is_faulty(index) => {
                    return Err(UnitError::MissingEvidence(index));
                }
                Observation::Correct(h) => {
                    let cited = self
                        .units
                        .get(h)
                        .ok_or(UnitError::MissingDependencies(vec![*h]))?;
                    if cited.creator != index {
                        return Err(UnitError::WrongCreator {
                            index,
                            creator: cited.creator,
                        });
                    }
                    if !self.panorama_geq(&u.panorama, &seen, cited, &mut memo) {
                        return Err(UnitError::PanoramaInconsistent);
                    }
                    if u.timestamp < cited.timestamp {
                        return Err(UnitError::TimestampTooEarly);
                    }
                }
                _ => {}
            }
        }
        if u.timestamp < self.params.era_start {
            return Err(UnitError::TimestampTooEarly);
        }
        let prev = u
            .panorama
            .get(u.creator as usize)
            .and_then(Observation::correct)
            .and_then(|h| self.units.get(&h));
        let expected = prev.map_or(0, |p| p.seq.saturating_add(1));
        if u.seq != expected {
            return Err(UnitError::BadSeq {
                got: u.seq,
                expected,
            });
        }
        let r_len = self.params.round_len(u.round_exp);
        let r = round_id(u.timestamp, r_len);
        if let Some(p) = prev {
            let p_len = self.params.round_len(p.round_exp);
            if p_len != r_len {
                let big = p_len.max(r_len);
                if round_id(p.timestamp, big) == round_id(u.timestamp, big) {
                    return Err(UnitError::RoundChange);
                }
            }
            // At most two units per creator and round.
            if let Some(pp) = p.prev().and_then(|h| self.units.get(&h))
                && round_id(pp.timestamp, r_len) == r
                && round_id(p.timestamp, r_len) == r
            {
                return Err(UnitError::TooManyInRound);
            }
        }
        let mut parent = None;
        if let Some(value) = u.value {
            let leader = self.validators.leader(&self.params.seed, r);
            let first_in_round = prev.is_none_or(|p| round_id(p.timestamp, r_len) != r);
            if u.timestamp != r || leader != u.creator || !first_in_round {
                return Err(UnitError::BadProposal);
            }
            parent = self.fork_choice(&u.panorama);
            if parent
                .and_then(|p| self.blocks.get(&p))
                .is_some_and(|b| self.is_terminal(b))
            {
                return Err(UnitError::AfterTerminal);
            }
            let parent_value = self.parent_value(parent.as_ref());
            match values.check(&value, &parent_value) {
                Validity::Valid => {}
                Validity::Invalid => return Err(UnitError::BadValue { value }),
                Validity::Unknown => return Err(UnitError::ValueUnknown(value)),
            }
        }
        Ok(self.insert(hash, su, parent, seen))
    }

    /// Adds a validated unit. `parent` is the fork choice of its panorama, computed
    /// during validation for proposals.
    fn insert(
        &mut self,
        hash: B256,
        su: SignedUnit,
        parent: Option<B256>,
        seen: Vec<u64>,
    ) -> Added {
        let u = &su.unit;
        let creator = u.creator;
        // Swimlane skip list.
        let mut skip = Vec::new();
        if let Some(prev) = u
            .panorama
            .get(creator as usize)
            .and_then(Observation::correct)
        {
            skip.push(prev);
            let mut i = 0;
            while let Some(next) = skip
                .get(i)
                .and_then(|h| self.units.get(h))
                .and_then(|x| x.skip.get(i))
                .copied()
            {
                skip.push(next);
                i = i.saturating_add(1);
            }
        }
        let vote = if let Some(value) = u.value {
            let parent = parent.and_then(|h| self.blocks.get(&h));
            let height = parent.map_or(0, |p| p.height.saturating_add(1));
            let mut bskip = Vec::new();
            if let Some(p) = parent {
                bskip.push(p.hash);
                let mut i = 0;
                while let Some(next) = bskip
                    .get(i)
                    .and_then(|h| self.blocks.get(h))
                    .and_then(|b| b.skip.get(i))
                    .copied()
                {
                    bskip.push(next);
                    i = i.saturating_add(1);
                }
            }
            self.blocks.insert(
                hash,
                Block {
                    hash,
                    value,
                    height,
                    skip: bskip,
                    proposer: creator,
                    timestamp: u.timestamp,
                },
            );
            self.proposals.entry(u.timestamp).or_insert(hash);
            Some(hash)
        } else {
            self.fork_choice(&u.panorama)
        };
        let stored = StoredUnit {
            hash,
            creator,
            seq: u.seq,
            timestamp: u.timestamp,
            round_exp: u.round_exp,
            vote,
            skip,
            seen,
            signed: su,
        };
        let prev = stored.prev();
        let seq = stored.seq;
        self.units.insert(hash, stored);

        // Equivocation: another unit with a sequence number of this swimlane. Walk back
        // until the lane agrees (everything below was checked when it arrived).
        let mut added = Added::default();
        let mut cursor = Some(hash);
        let mut fresh = Vec::new();
        while let Some(h) = cursor {
            let Some(x) = self.units.get(&h) else { break };
            let Some(lane) = self.lanes.get(creator as usize) else {
                break;
            };
            let Ok(s) = usize::try_from(x.seq) else { break };
            match lane.get(s) {
                Some(first) if *first == h => break,
                Some(first) => {
                    if !self.is_faulty(creator)
                        && let Some(a) = self.units.get(first)
                    {
                        added.evidence = Some(Evidence {
                            a: a.signed.clone(),
                            b: x.signed.clone(),
                        });
                    }
                    break;
                }
                None => fresh.push(h),
            }
            cursor = x.prev();
        }
        // `fresh` is newest first; the lane grows oldest first. Only a unit that
        // extends the lane's end is appended (a fork's extra units are not).
        if let Some(lane) = self.lanes.get_mut(creator as usize) {
            for h in fresh.into_iter().rev() {
                if let Some(x) = self.units.get(&h)
                    && usize::try_from(x.seq).is_ok_and(|s| s == lane.len())
                {
                    lane.push(h);
                }
            }
        }
        if let Some(ev) = &added.evidence {
            self.mark_faulty(creator, ev.clone());
        } else if let Some(slot) = self.latest.get_mut(creator as usize) {
            match slot {
                Observation::Faulty => {}
                _ if slot.correct() == prev => *slot = Observation::Correct(hash),
                Observation::Correct(current) => {
                    // A unit below our latest one (an old unit arriving late): keep
                    // the latest if it is ahead in the same swimlane.
                    let ahead = self.units.get(current).is_some_and(|c| c.seq >= seq);
                    if !ahead {
                        *slot = Observation::Correct(hash);
                    }
                }
                Observation::None => *slot = Observation::Correct(hash),
            }
        }
        added
    }

    /// Records evidence received from a peer (already verified by the caller).
    pub fn add_evidence(&mut self, evidence: Evidence) -> bool {
        let creator = evidence.creator();
        if self.is_faulty(creator) || self.validators.key(creator).is_none() {
            return false;
        }
        self.mark_faulty(creator, evidence);
        true
    }

    /// GHOST by stake over the votes of a panorama's correct entries: from the root,
    /// repeatedly take the child with the most weight voting at or below it (ties to the
    /// higher hash). Where one block already carries more than half of the remaining
    /// votes, the walk jumps straight to it.
    ///
    /// The result depends on the panorama alone (its `Faulty` entries are left out),
    /// never on what this node knows besides: a unit's vote is the fork choice of its
    /// panorama, and every node must derive the same vote for the same unit. (Leaving
    /// out validators this node happens to know as faulty made two nodes disagree on
    /// a unit's vote, and so on finality.) For this node's own fork choice the latest
    /// panorama already marks the known equivocators `Faulty`.
    pub fn fork_choice(&self, panorama: &[Observation]) -> Option<B256> {
        let mut votes: Vec<(B256, u64)> = self
            .validators
            .indices()
            .zip(panorama)
            .filter_map(|(i, obs)| {
                let vote = self.units.get(&obs.correct()?)?.vote?;
                Some((vote, self.validators.weight(i)))
            })
            .collect();
        let mut current: Option<B256> = None;
        loop {
            let current_height = current.and_then(|c| self.blocks.get(&c)).map(|b| b.height);
            // Votes strictly below `current`.
            votes.retain(|(v, _)| Some(*v) != current);
            if votes.is_empty() {
                return current;
            }
            if let Some(decided) = self.majority_block(&votes, current_height) {
                votes.retain(|(v, _)| self.extends(v, &decided));
                current = Some(decided);
                continue;
            }
            // No majority: pick the heaviest child of `current`.
            let child_height = current_height.map_or(0, |h| h.saturating_add(1));
            let mut tally: B256Map<u64> = B256Map::default();
            for (v, w) in &votes {
                if let Some(child) = self.ancestor(v, child_height) {
                    let e = tally.entry(child).or_default();
                    *e = e.saturating_add(*w);
                }
            }
            let best = tally
                .into_iter()
                .max_by(|(ha, wa), (hb, wb)| wa.cmp(wb).then(ha.cmp(hb)))
                .map(|(h, _)| h)?;
            votes.retain(|(v, _)| self.extends(v, &best));
            current = Some(best);
        }
    }

    /// The highest block above `floor` that more than half of the votes' weight votes
    /// for or below, if any.
    fn majority_block(&self, votes: &[(B256, u64)], floor: Option<u64>) -> Option<B256> {
        let total: u64 = votes.iter().map(|(_, w)| *w).fold(0, u64::saturating_add);
        let mut by_height: BTreeMap<u64, HashMap<B256, u64>> = BTreeMap::new();
        for (v, w) in votes {
            if let Some(b) = self.blocks.get(v) {
                let e = by_height
                    .entry(b.height)
                    .or_default()
                    .entry(*v)
                    .or_default();
                *e = e.saturating_add(*w);
            }
        }
        let lowest = floor.map_or(0, |f| f.saturating_add(1));
        while let Some((height, tallies)) = by_height.pop_last() {
            if height < lowest {
                break;
            }
            if let Some((h, _)) = tallies
                .iter()
                .filter(|(_, w)| u128::from(**w) * 2 > u128::from(total))
                .max_by(|(ha, wa), (hb, wb)| wa.cmp(wb).then(ha.cmp(hb)))
            {
                return Some(*h);
            }
            if height == lowest {
                break;
            }
            for (h, w) in tallies {
                if let Some(parent) = self.blocks.get(&h).and_then(Block::parent) {
                    let e = by_height
                        .entry(height.saturating_sub(1))
                        .or_default()
                        .entry(parent)
                        .or_default();
                    *e = e.saturating_add(w);
                }
            }
        }
        None
    }
}
