//! The protocol state: every valid unit seen, the blocks (proposals) they form, each
//! validator's latest unit or proof of its equivocation, and fork choice.
//!
//! Nothing here trusts its input: every index and lookup on data from the network is
//! checked, arithmetic saturates, and DAG walks are iterative.

use crate::types::{Params, Timestamp, ValidatorIndex, Validators, round_id};
use crate::unit::{Evidence, Observation, SignedUnit, UnitVerifier};
use alloy_primitives::B256;
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
    /// Not invalid: its dependencies are not here yet.
    #[error("{} dependencies missing", .0.len())]
    MissingDependencies(Vec<B256>),
    /// Not invalid: it claims an equivocation we have no evidence of yet.
    #[error("evidence against validator {0} missing")]
    MissingEvidence(ValidatorIndex),
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
    #[error("already known")]
    Duplicate,
}

impl UnitError {
    /// Whether the unit may become valid once more data arrives.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            Self::MissingDependencies(_) | Self::MissingEvidence(_)
        )
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

#[derive(Debug)]
pub struct State {
    pub validators: Validators,
    pub params: Params,
    units: HashMap<B256, StoredUnit>,
    blocks: HashMap<B256, Block>,
    /// The latest unit of each validator, or `Faulty`.
    latest: Vec<Observation>,
    evidence: BTreeMap<ValidatorIndex, Evidence>,
    /// The first unit seen per (creator, seq): where equivocations show.
    by_seq: HashMap<(ValidatorIndex, u64), B256>,
}

impl State {
    pub fn new(validators: Validators, params: Params) -> Self {
        let n = validators.len();
        Self {
            validators,
            params,
            units: HashMap::new(),
            blocks: HashMap::new(),
            latest: vec![Observation::None; n],
            evidence: BTreeMap::new(),
            by_seq: HashMap::new(),
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

    pub fn is_faulty(&self, v: ValidatorIndex) -> bool {
        self.evidence.contains_key(&v)
    }

    pub fn evidence(&self) -> impl Iterator<Item = &Evidence> {
        self.evidence.values()
    }

    pub fn faulty_weight(&self) -> u64 {
        self.evidence
            .keys()
            .map(|v| self.validators.weight(*v))
            .fold(0u64, u64::saturating_add)
    }

    /// The unit of `unit`'s swimlane with sequence number `seq` (itself included).
    pub fn swimlane_at(&self, unit: &B256, seq: u64) -> Option<&StoredUnit> {
        let mut cur = self.units.get(unit)?;
        while cur.seq > seq {
            let diff = cur.seq - seq;
            // Largest jump not overshooting.
            let i = (63 - diff.leading_zeros()) as usize;
            let next = cur.skip.get(i.min(cur.skip.len().saturating_sub(1)))?;
            cur = self.units.get(next)?;
        }
        (cur.seq == seq).then_some(cur)
    }

    /// The ancestor of `block` at `height` (itself included).
    pub fn ancestor(&self, block: &B256, height: u64) -> Option<B256> {
        let mut cur = self.blocks.get(block)?;
        while cur.height > height {
            let diff = cur.height - height;
            let i = (63 - diff.leading_zeros()) as usize;
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
    /// iff y is x or in x's swimlane.
    fn panorama_geq(&self, a: &[Observation], b: &[Observation]) -> bool {
        a.iter().zip(b).all(|(x, y)| match (x, y) {
            (_, Observation::None) | (Observation::Faulty, _) => true,
            (Observation::None, _) | (Observation::Correct(_), Observation::Faulty) => false,
            (Observation::Correct(x), Observation::Correct(y)) => {
                x == y
                    || self
                        .units
                        .get(y)
                        .and_then(|yu| self.swimlane_at(x, yu.seq))
                        .is_some_and(|found| found.hash == *y)
            }
        })
    }

    /// Checks everything that needs no other unit.
    fn pre_validate(
        &self,
        su: &SignedUnit,
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
        let hash = u.hash();
        if self.units.contains_key(&hash) {
            return Err(UnitError::Duplicate);
        }
        if !verifier.verify(key, &hash, &su.signature) {
            return Err(UnitError::BadSignature);
        }
        Ok(hash)
    }

    /// Validates `su` and adds it. Pending errors (missing dependencies or evidence)
    /// mean "try again later", any other error that the unit is invalid.
    pub fn add_unit(
        &mut self,
        su: SignedUnit,
        verifier: &dyn UnitVerifier,
    ) -> Result<Added, UnitError> {
        let hash = self.pre_validate(&su, verifier)?;
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
        for (i, obs) in u.panorama.iter().enumerate() {
            let index = ValidatorIndex::try_from(i).unwrap_or(ValidatorIndex::MAX);
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
                    if !self.panorama_geq(&u.panorama, cited.panorama()) {
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
        if u.value.is_some() {
            let leader = self.validators.leader(&self.params.seed, r);
            let first_in_round = prev.is_none_or(|p| round_id(p.timestamp, r_len) != r);
            if u.timestamp != r || leader != u.creator || !first_in_round {
                return Err(UnitError::BadProposal);
            }
        }
        Ok(self.insert(hash, su))
    }

    fn insert(&mut self, hash: B256, su: SignedUnit) -> Added {
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
                i += 1;
            }
        }
        let fork_choice = self.fork_choice(&u.panorama);
        let vote = if let Some(value) = u.value {
            let parent = fork_choice.and_then(|h| self.blocks.get(&h));
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
                    i += 1;
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
            Some(hash)
        } else {
            fork_choice
        };
        let stored = StoredUnit {
            hash,
            creator,
            seq: u.seq,
            timestamp: u.timestamp,
            round_exp: u.round_exp,
            vote,
            skip,
            signed: su,
        };
        let prev = stored.prev();
        self.units.insert(hash, stored);

        // Equivocation: another unit with a sequence number of this swimlane.
        let mut added = Added::default();
        let mut cursor = Some(hash);
        while let Some(h) = cursor {
            let Some(x) = self.units.get(&h) else { break };
            match self.by_seq.get(&(creator, x.seq)) {
                Some(first) if *first == h => break, // the rest was checked before
                Some(first) => {
                    if !self.is_faulty(creator)
                        && let (Some(a), Some(b)) = (self.units.get(first), self.units.get(&h))
                    {
                        added.evidence = Some(Evidence {
                            a: a.signed.clone(),
                            b: b.signed.clone(),
                        });
                    }
                    break;
                }
                None => {
                    self.by_seq.insert((creator, x.seq), h);
                }
            }
            cursor = x.prev();
        }
        if let Some(ev) = &added.evidence {
            self.evidence.insert(creator, ev.clone());
            self.latest[creator as usize] = Observation::Faulty;
        } else if let Some(slot) = self.latest.get_mut(creator as usize) {
            match slot {
                Observation::Faulty => {}
                _ if slot.correct() == prev => *slot = Observation::Correct(hash),
                Observation::Correct(current) => {
                    // A unit below our latest one (an old unit arriving late): keep
                    // the latest if it is ahead in the same swimlane.
                    let ahead = self
                        .units
                        .get(current)
                        .is_some_and(|c| c.seq >= self.units.get(&hash).map_or(0, |n| n.seq));
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
        self.evidence.insert(creator, evidence);
        if let Some(slot) = self.latest.get_mut(creator as usize) {
            *slot = Observation::Faulty;
        }
        true
    }

    /// GHOST by stake over the votes of a panorama's honest entries: from the root,
    /// repeatedly take the child with the most weight voting at or below it (ties to the
    /// higher hash). Where one block already carries more than half of the remaining
    /// votes, the walk jumps straight to it.
    pub fn fork_choice(&self, panorama: &[Observation]) -> Option<B256> {
        let mut votes: Vec<(B256, u64)> = panorama
            .iter()
            .enumerate()
            .filter_map(|(i, obs)| {
                let h = obs.correct()?;
                let vote = self.units.get(&h)?.vote?;
                let i = ValidatorIndex::try_from(i).ok()?;
                if self.is_faulty(i) {
                    return None;
                }
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
            let mut tally: HashMap<B256, u64> = HashMap::new();
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
                        .entry(height - 1)
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
