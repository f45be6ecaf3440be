//! The sans-I/O protocol driver: units and evidence in, effects out; time is an input.
//!
//! [`Highway`] validates incoming units (holding those whose dependencies are missing
//! or whose timestamp is still in the future), runs the finality detectors and, for
//! an active validator, creates its units on schedule:
//!
//! - round `r` of length `R`: at `r` the leader proposes (a unit carrying the value
//!   the node offers, [`Highway::set_candidate`]);
//! - on the leader's proposal for the current round, every other validator confirms
//!   it at once (a unit citing it);
//! - at `r + 2R/3` everyone sends a witness unit citing everything it has.
//!
//! Every unit this node creates is first returned as [`Effect::Persist`], then as
//! [`Effect::Broadcast`]: the caller must store it durably before sending it. After a
//! restart the node passes its own stored units back through [`Highway::restore_own`]
//! before it signs anything again.

use crate::finality::FinalityDetector;
use crate::state::{State, UnitError};
use crate::types::{Params, Threshold, Timestamp, ValidatorIndex, Validators, round_id};
use crate::unit::{Evidence, Observation, SignedUnit, Unit, UnitSigner, UnitVerifier};
use alloy_primitives::B256;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most units held while waiting for dependencies.
const MAX_PENDING: usize = 10_000;

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Store this own unit durably (before broadcasting it).
    Persist(SignedUnit),
    /// Send this unit to all peers.
    Broadcast(SignedUnit),
    /// Send this evidence to all peers.
    Evidence(Evidence),
    /// Ask peers for this unit.
    Request(B256),
    /// Call [`Highway::handle_timer`] at this time.
    Timer(Timestamp),
    /// A block became final at threshold number `threshold` (index into the configured
    /// thresholds).
    Finalized {
        threshold: usize,
        block: B256,
        value: B256,
        height: u64,
        proposer: ValidatorIndex,
        timestamp: Timestamp,
    },
    /// A unit from a peer was invalid (not merely early or incomplete).
    Invalid { unit: B256, error: UnitError },
}

/// An active validator's own schedule state.
#[derive(Debug)]
struct Active {
    index: ValidatorIndex,
    signer: Box<dyn UnitSigner>,
    /// False until the node's own last unit is known again after a restart.
    can_sign: bool,
    /// Rounds in which this node already proposed / confirmed / witnessed.
    proposed: HashSet<Timestamp>,
    confirmed: HashSet<Timestamp>,
    witnessed: HashSet<Timestamp>,
    next_timer: Option<Timestamp>,
}

impl std::fmt::Debug for dyn UnitSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UnitSigner({})", self.address())
    }
}

pub struct Highway {
    state: State,
    verifier: Box<dyn UnitVerifier>,
    detectors: Vec<FinalityDetector>,
    active: Option<Active>,
    candidate: Option<B256>,
    /// Units waiting for dependencies, by the hash they wait for.
    waiting: HashMap<B256, Vec<SignedUnit>>,
    waiting_len: usize,
    /// Units stamped in the future, by timestamp.
    future: BTreeMap<Timestamp, Vec<SignedUnit>>,
    /// When the finality detectors last ran, and whether units arrived since.
    last_detection: Option<Timestamp>,
    dirty: bool,
}

impl std::fmt::Debug for Highway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Highway")
            .field("units", &self.state.units_len())
            .field("active", &self.active.as_ref().map(|a| a.index))
            .finish()
    }
}

impl Highway {
    /// A new instance. With `signer` (whose address must be a validator) the node
    /// takes part; without it, it only follows. `fresh` says the signer has never
    /// signed in this instance; otherwise it must not sign until
    /// [`Highway::restore_own`] has brought back its last unit.
    pub fn new(
        validators: Validators,
        params: Params,
        thresholds: &[Threshold],
        signer: Option<Box<dyn UnitSigner>>,
        verifier: Box<dyn UnitVerifier>,
        fresh: bool,
    ) -> Self {
        let total = validators.total_weight();
        let active = signer.and_then(|signer| {
            let index = validators.index_of(&signer.address())?;
            Some(Active {
                index,
                signer,
                can_sign: fresh,
                proposed: HashSet::new(),
                confirmed: HashSet::new(),
                witnessed: HashSet::new(),
                next_timer: None,
            })
        });
        Self {
            state: State::new(validators, params),
            verifier,
            detectors: thresholds
                .iter()
                .map(|t| FinalityDetector::new(*t, total))
                .collect(),
            active,
            candidate: None,
            waiting: HashMap::new(),
            waiting_len: 0,
            future: BTreeMap::new(),
            last_detection: None,
            dirty: false,
        }
    }

    /// The finality detectors are the expensive part (quadratic in validators per
    /// summit level); they run at most once per this interval, plus on every timer.
    fn detection_interval(&self) -> u64 {
        (self.state.params.min_round_len / 16).max(1)
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn detectors(&self) -> &[FinalityDetector] {
        &self.detectors
    }

    /// The index of this node's validator, if it is one.
    pub fn our_index(&self) -> Option<ValidatorIndex> {
        self.active.as_ref().map(|a| a.index)
    }

    /// The value this node proposes when it leads a round (the highest L2 block it
    /// imported, for KOMA). `None`: nothing to propose (the round has no proposal).
    pub fn set_candidate(&mut self, value: Option<B256>) {
        self.candidate = value;
    }

    /// Re-adds this node's own units from storage after a restart; once the latest is
    /// back, the node may sign again.
    pub fn restore_own(&mut self, units: Vec<SignedUnit>, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        for u in units {
            self.add(u, now, &mut effects, false);
        }
        if let Some(a) = self.active.as_mut() {
            a.can_sign = true;
        }
        effects
    }

    /// A unit from a peer.
    pub fn handle_unit(&mut self, unit: SignedUnit, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.add(unit, now, &mut effects, true);
        self.after_change(now, &mut effects);
        effects
    }

    /// Evidence from a peer.
    pub fn handle_evidence(&mut self, evidence: Evidence, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        let creator = evidence.creator();
        let valid = self.state.validators.key(creator).is_some_and(|key| {
            evidence.verify(key, &self.state.params.instance_id, self.verifier.as_ref())
        });
        if valid && self.state.add_evidence(evidence.clone()) {
            effects.push(Effect::Evidence(evidence));
            // Units that waited for this evidence can be retried.
            let retry: Vec<SignedUnit> = self
                .waiting
                .remove(&evidence_key(creator))
                .unwrap_or_default();
            self.waiting_len = self.waiting_len.saturating_sub(retry.len());
            for u in retry {
                self.add(u, now, &mut effects, true);
            }
            self.after_change(now, &mut effects);
        }
        effects
    }

    /// Time passed: release due units, create scheduled units.
    pub fn handle_timer(&mut self, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        let due: Vec<Timestamp> = self.future.range(..=now).map(|(t, _)| *t).collect();
        for t in due {
            for u in self.future.remove(&t).unwrap_or_default() {
                self.add(u, now, &mut effects, true);
            }
        }
        if let Some(a) = self.active.as_mut()
            && a.next_timer.is_some_and(|t| t <= now)
        {
            a.next_timer = None;
        }
        self.act(now, &mut effects);
        self.dirty = true;
        self.detect(now, &mut effects);
        self.schedule(now, &mut effects);
        effects
    }

    /// A unit by hash (to answer a peer's request).
    pub fn unit(&self, hash: &B256) -> Option<&SignedUnit> {
        self.state.unit(hash).map(|u| &u.signed)
    }

    fn add(&mut self, unit: SignedUnit, now: Timestamp, effects: &mut Vec<Effect>, remote: bool) {
        let params = &self.state.params;
        if unit.unit.timestamp > now {
            if unit.unit.timestamp > now.saturating_add(params.max_future) {
                return;
            }
            if remote && self.future.values().map(Vec::len).sum::<usize>() < MAX_PENDING {
                self.future
                    .entry(unit.unit.timestamp)
                    .or_default()
                    .push(unit);
                effects.push(Effect::Timer(
                    self.future.keys().next().copied().unwrap_or(now),
                ));
            }
            return;
        }
        // Add this unit, then everything that was waiting for it, iteratively.
        let mut queue = vec![unit];
        while let Some(u) = queue.pop() {
            let hash = u.hash();
            let creator = u.unit.creator;
            match self.state.add_unit(u.clone(), self.verifier.as_ref()) {
                Ok(added) => {
                    if let Some(ev) = added.evidence {
                        effects.push(Effect::Evidence(ev));
                        if let Some(more) = self.waiting.remove(&evidence_key(creator)) {
                            self.waiting_len = self.waiting_len.saturating_sub(more.len());
                            queue.extend(more);
                        }
                    }
                    if let Some(more) = self.waiting.remove(&hash) {
                        self.waiting_len = self.waiting_len.saturating_sub(more.len());
                        queue.extend(more);
                    }
                    self.maybe_confirm(&hash, now, effects);
                }
                Err(UnitError::Duplicate) => {}
                Err(UnitError::MissingDependencies(missing)) => {
                    if self.waiting_len < MAX_PENDING {
                        // Wait for the first missing one; on its arrival the unit is
                        // retried and waits for the next if needed.
                        if let Some(first) = missing.first() {
                            let list = self.waiting.entry(*first).or_default();
                            if !list.iter().any(|x| x.hash() == hash) {
                                list.push(u);
                                self.waiting_len += 1;
                            }
                        }
                        for m in missing {
                            effects.push(Effect::Request(m));
                        }
                    }
                }
                Err(UnitError::MissingEvidence(v)) => {
                    if self.waiting_len < MAX_PENDING {
                        self.waiting.entry(evidence_key(v)).or_default().push(u);
                        self.waiting_len += 1;
                    }
                }
                Err(error) => effects.push(Effect::Invalid { unit: hash, error }),
            }
        }
    }

    fn after_change(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        self.dirty = true;
        let due = self
            .last_detection
            .is_none_or(|t| now >= t.saturating_add(self.detection_interval()));
        if due {
            self.detect(now, effects);
        } else {
            // Make sure a timer comes soon enough to run them.
            effects.push(Effect::Timer(
                self.last_detection
                    .unwrap_or(now)
                    .saturating_add(self.detection_interval()),
            ));
        }
        self.schedule(now, effects);
    }

    fn detect(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.last_detection = Some(now);
        for (i, det) in self.detectors.iter_mut().enumerate() {
            for block in det.run(&self.state) {
                if let Some(b) = self.state.block(&block) {
                    effects.push(Effect::Finalized {
                        threshold: i,
                        block,
                        value: b.value,
                        height: b.height,
                        proposer: b.proposer,
                        timestamp: b.timestamp,
                    });
                }
            }
        }
    }

    fn round_len(&self) -> u64 {
        self.state.params.round_len(self.state.params.round_exp)
    }

    fn schedule(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        let r_len = self.round_len();
        let Some(a) = self.active.as_mut() else {
            return;
        };
        let r = round_id(now, r_len);
        let witness_at = r.saturating_add(r_len / 3 * 2);
        let next = if now < witness_at && !a.witnessed.contains(&r) {
            witness_at
        } else {
            r.saturating_add(r_len)
        };
        if a.next_timer != Some(next) {
            a.next_timer = Some(next);
            effects.push(Effect::Timer(next));
        }
    }

    /// Creates the units the schedule calls for at `now`.
    fn act(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        let r_len = self.round_len();
        let Some(a) = self.active.as_ref() else {
            return;
        };
        if !a.can_sign || self.state.is_faulty(a.index) {
            return;
        }
        let me = a.index;
        let r = round_id(now, r_len);
        let leader = self.state.validators.leader(&self.state.params.seed, r);
        // A timer fires at or a little after the round start; the proposal is stamped
        // with the round start either way (and cites nothing newer).
        if now >= r
            && now < r.saturating_add(r_len / 3)
            && leader == me
            && !a.proposed.contains(&r)
            && self.own_units_in_round(r) == 0
            && let Some(value) = self.candidate
        {
            self.create(r, Some(value), effects);
            if let Some(a) = self.active.as_mut() {
                a.proposed.insert(r);
            }
        }
        let witness_at = r.saturating_add(r_len / 3 * 2);
        let witnessed = self
            .active
            .as_ref()
            .is_some_and(|a| a.witnessed.contains(&r));
        if now >= witness_at && !witnessed && self.own_units_in_round(r) < 2 {
            self.create(now, None, effects);
            if let Some(a) = self.active.as_mut() {
                a.witnessed.insert(r);
            }
        }
    }

    /// A confirmation of the current round's proposal, once.
    fn maybe_confirm(&mut self, hash: &B256, now: Timestamp, effects: &mut Vec<Effect>) {
        let r_len = self.round_len();
        let Some(a) = self.active.as_ref() else {
            return;
        };
        if !a.can_sign || self.state.is_faulty(a.index) {
            return;
        }
        let Some(u) = self.state.unit(hash) else {
            return;
        };
        let r = round_id(now, r_len);
        if u.value().is_none() || u.creator == a.index || u.timestamp != r {
            return;
        }
        if a.confirmed.contains(&r) || a.witnessed.contains(&r) || self.own_units_in_round(r) >= 1 {
            return;
        }
        if let Some(a) = self.active.as_mut() {
            a.confirmed.insert(r);
        }
        self.create(now, None, effects);
    }

    fn own_units_in_round(&self, r: Timestamp) -> usize {
        let r_len = self.round_len();
        let Some(a) = self.active.as_ref() else {
            return 0;
        };
        let mut count = 0;
        let mut cursor = self
            .state
            .latest()
            .get(a.index as usize)
            .and_then(Observation::correct);
        while let Some(h) = cursor {
            let Some(u) = self.state.unit(&h) else { break };
            if round_id(u.timestamp, r_len) != r {
                break;
            }
            count += 1;
            cursor = u.prev();
        }
        count
    }

    fn create(&mut self, timestamp: Timestamp, value: Option<B256>, effects: &mut Vec<Effect>) {
        let Some(a) = self.active.as_ref() else {
            return;
        };
        let me = a.index;
        let params = &self.state.params;
        let panorama = self.panorama_at(timestamp);
        let seq = panorama
            .get(me as usize)
            .and_then(Observation::correct)
            .and_then(|h| self.state.unit(&h))
            .map_or(0, |p| p.seq.saturating_add(1));
        // Never cite units newer than our own timestamp.
        let max_cited = panorama
            .iter()
            .filter_map(Observation::correct)
            .filter_map(|h| self.state.unit(&h))
            .map(|u| u.timestamp)
            .max()
            .unwrap_or(0);
        if value.is_none() && !panorama.iter().any(|o| o.correct().is_some()) {
            return;
        }
        let unit = Unit {
            instance_id: params.instance_id,
            creator: me,
            seq,
            timestamp: timestamp.max(max_cited),
            round_exp: params.round_exp,
            panorama,
            value,
        };
        let hash = unit.hash();
        let signed = SignedUnit {
            signature: a.signer.sign(&hash),
            unit,
        };
        match self.state.add_unit(signed.clone(), self.verifier.as_ref()) {
            Ok(_) => {
                effects.push(Effect::Persist(signed.clone()));
                effects.push(Effect::Broadcast(signed));
            }
            Err(error) => effects.push(Effect::Invalid { unit: hash, error }),
        }
    }
}

impl Highway {
    /// Our latest panorama cut off at `ts`: for each validator the newest unit of its
    /// swimlane stamped at or before `ts` (units may arrive stamped a little later).
    fn panorama_at(&self, ts: Timestamp) -> Vec<Observation> {
        self.state
            .latest()
            .iter()
            .map(|obs| match obs {
                Observation::Correct(h) => {
                    let mut cursor = Some(*h);
                    while let Some(c) = cursor {
                        match self.state.unit(&c) {
                            Some(u) if u.timestamp <= ts => return Observation::Correct(c),
                            Some(u) => cursor = u.prev(),
                            None => break,
                        }
                    }
                    Observation::None
                }
                other => *other,
            })
            .collect()
    }
}

/// The waiting-list key of units that wait for evidence against `v`.
fn evidence_key(v: ValidatorIndex) -> B256 {
    let mut key = [0xffu8; 32];
    key[28..].copy_from_slice(&v.to_be_bytes());
    B256::from(key)
}
