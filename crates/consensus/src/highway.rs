//! The sans-I/O protocol driver of one era: units and evidence in, effects out; time
//! is an input.
//!
//! [`Highway`] validates incoming units (holding those whose dependencies, evidence or
//! proposed value are missing, or whose timestamp is still in the future), runs the
//! finality detectors and, for an active validator, creates its units on schedule:
//!
//! - round `r` of length `R` (the validator's own, see [`crate::RoundMeter`]): at `r`
//!   the leader proposes (a unit carrying the value the node offers,
//!   [`Highway::set_candidate`], if it extends the parent's value);
//! - on the leader's proposal for the current round, every other validator confirms
//!   it at once (a unit citing it);
//! - at `r + 2R/3` everyone sends a witness unit citing everything it has.
//!
//! Every unit this node creates is first returned as [`Effect::Persist`], then as
//! [`Effect::Broadcast`]: the caller must store it durably before sending it. After a
//! restart the node passes its own stored units back through [`Highway::restore_own`]
//! before it signs anything again.

use crate::finality::FinalityDetector;
use crate::round_meter::RoundMeter;
use crate::state::{AnyValue, EraBase, State, UnitError, ValueCheck};
use crate::types::{Params, Threshold, Timestamp, ValidatorIndex, Validators, quorum, round_id};
use crate::unit::{Evidence, Observation, SignedUnit, Unit, UnitSigner, UnitVerifier};
use alloy_primitives::B256;
use alloy_primitives::map::B256Map;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most units held while waiting for dependencies, evidence or values.
const MAX_PENDING: usize = 10_000;
/// Most units held because they are stamped in the future.
const MAX_FUTURE: usize = 10_000;
/// A missing unit is requested again only after this long (ms): a unit that many
/// others cite is asked for once, not once per citing unit.
const REQUEST_RETRY: u64 = 2_000;

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Store this own unit durably (before broadcasting it).
    Persist(SignedUnit),
    /// Send this unit to all peers.
    Broadcast(SignedUnit),
    /// A unit from a peer was accepted (when it arrived, or later, once what it waited
    /// for came): store it, to reload it after a restart and to serve it to peers.
    Store(SignedUnit),
    /// Send this evidence to all peers.
    Evidence(Evidence),
    /// Ask peers for this unit.
    Request(B256),
    /// A proposal names a value this node cannot check yet (for KOMA: an L2 block it
    /// has not imported, e.g. one of a branch its fork choice left): fetch it, then
    /// call [`Highway::recheck_values`]. Asked again while proposals still wait.
    RequestValue(B256),
    /// Call [`Highway::handle_timer`] at this time.
    Timer(Timestamp),
    /// A block became final at threshold number `threshold` (index into the
    /// thresholds watched, ascending: [`crate::Eras::thresholds`]).
    Finalized {
        threshold: usize,
        era: u64,
        block: B256,
        value: B256,
        height: u64,
        proposer: ValidatorIndex,
        timestamp: Timestamp,
    },
    /// A unit from a peer was invalid (not merely early or incomplete).
    Invalid { unit: B256, error: UnitError },
    /// This validator's round exponent changed (the round meter's verdict).
    RoundExp(u8),
    /// An era started (or its record changed): store the record, to restart it.
    EraStarted(crate::types::EraRecord),
    /// An era closed: its units may be dropped from memory. `tips` are its
    /// validators' latest units: keep them to answer peers that fall behind.
    EraClosed {
        era: u64,
        instance_id: B256,
        tips: Vec<B256>,
    },
    /// Ask peers for the latest unit of every validator in this instance (this node
    /// fell behind: it received units of an era it has not reached).
    RequestLatest(B256),
}

/// An active validator's own schedule state.
struct Active {
    index: ValidatorIndex,
    signer: Arc<dyn UnitSigner>,
    /// False until the node's own last unit is known again after a restart.
    can_sign: bool,
    meter: RoundMeter,
    /// The last round (start) in which this node proposed / confirmed / witnessed.
    proposed: Option<Timestamp>,
    confirmed: Option<Timestamp>,
    witnessed: Option<Timestamp>,
    /// The round whose start the meter last judged.
    metered: Option<Timestamp>,
    /// After a restart: the newest own unit, which must be back in the state before
    /// the node signs again.
    restore_target: Option<B256>,
    next_timer: Option<Timestamp>,
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Active")
            .field("index", &self.index)
            .field("signer", &self.signer.address())
            .field("round_exp", &self.meter.exp())
            .finish_non_exhaustive()
    }
}

/// How a [`Highway`] instance is set up.
pub struct Config {
    pub validators: Validators,
    pub params: Params,
    /// Finality thresholds to watch (sorted and deduplicated by the instance).
    pub thresholds: Vec<Threshold>,
    /// The node's signer; `None` follows without voting.
    pub signer: Option<Arc<dyn UnitSigner>>,
    pub verifier: Arc<dyn UnitVerifier>,
    /// Checks proposed values (for KOMA: the L2 block extends the parent milestone).
    pub values: Arc<dyn ValueCheck>,
    /// The value the era's first block extends, and the era's length in blocks.
    pub base: EraBase,
    /// Validators banned from this era (proven faulty in an earlier one).
    pub banned: Vec<ValidatorIndex>,
    /// The signer has never signed in this instance. Otherwise it must not sign
    /// until [`Highway::restore_own`] has brought back its last unit.
    pub fresh: bool,
    /// The round exponent to start with (the previous era's, so a slow network does
    /// not have to slow down again after every switch); `params.round_exp` is the
    /// minimum either way.
    pub initial_round_exp: Option<u8>,
}

impl Config {
    /// A configuration with every value accepted, no era end and nobody banned.
    pub fn new(
        validators: Validators,
        params: Params,
        thresholds: &[Threshold],
        signer: Option<Arc<dyn UnitSigner>>,
        verifier: Arc<dyn UnitVerifier>,
    ) -> Self {
        Self {
            validators,
            params,
            thresholds: thresholds.to_vec(),
            signer,
            verifier,
            values: Arc::new(AnyValue),
            base: EraBase::default(),
            banned: Vec::new(),
            fresh: true,
            initial_round_exp: None,
        }
    }
}

pub struct Highway {
    state: State,
    verifier: Arc<dyn UnitVerifier>,
    values: Arc<dyn ValueCheck>,
    detectors: Vec<FinalityDetector>,
    active: Option<Active>,
    candidate: Option<B256>,
    /// Units waiting for dependencies, evidence or a value, by hash, with the number
    /// of things they still wait for.
    pending: B256Map<(SignedUnit, usize)>,
    /// What is waited for (a unit hash, or an evidence or value key) -> the pending
    /// units waiting for it. A unit waits for all its missing dependencies at once and
    /// is retried once, when the last arrives.
    waiting: B256Map<Vec<B256>>,
    /// Missing units asked for, and when.
    requested: B256Map<Timestamp>,
    /// The keys in `waiting` of proposals waiting for their value.
    value_waits: std::collections::BTreeSet<B256>,
    /// Values asked for (proposals wait for them), and when.
    values_requested: BTreeMap<B256, Timestamp>,
    /// Units stamped in the future, by timestamp.
    future: BTreeMap<Timestamp, Vec<SignedUnit>>,
    future_len: usize,
    /// When the finality detectors last ran, and whether units arrived since.
    last_detection: Option<Timestamp>,
    dirty: bool,
    retired: bool,
    signing_stopped: bool,
}

impl std::fmt::Debug for Highway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Highway")
            .field("units", &self.state.units_len())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Highway {
    /// A new instance. With a signer (whose address must be a validator) the node
    /// takes part; without it, it only follows.
    pub fn new(config: Config) -> Self {
        let Config {
            validators,
            params,
            mut thresholds,
            signer,
            verifier,
            values,
            base,
            banned,
            fresh,
            initial_round_exp,
        } = config;
        let total = validators.total_weight();
        thresholds.sort_by_key(|t| t.ftt(total));
        thresholds.dedup_by_key(|t| t.ftt(total));
        let active = signer.and_then(|signer| {
            let index = validators.index_of(&signer.address())?;
            if banned.contains(&index) {
                return None;
            }
            Some(Active {
                index,
                signer,
                can_sign: fresh,
                meter: RoundMeter::new(
                    initial_round_exp.unwrap_or(params.round_exp),
                    params.round_exp,
                    params.max_round_exp,
                ),
                proposed: None,
                confirmed: None,
                witnessed: None,
                metered: None,
                restore_target: None,
                next_timer: None,
            })
        });
        Self {
            state: State::with_base(validators, params, base, &banned),
            verifier,
            values,
            detectors: thresholds
                .iter()
                .map(|t| FinalityDetector::new(*t, total))
                .collect(),
            active,
            candidate: None,
            pending: B256Map::default(),
            waiting: B256Map::default(),
            requested: B256Map::default(),
            value_waits: std::collections::BTreeSet::new(),
            values_requested: BTreeMap::new(),
            future: BTreeMap::new(),
            future_len: 0,
            last_detection: None,
            dirty: false,
            retired: false,
            signing_stopped: false,
        }
    }

    /// The finality detectors are the expensive part; they run at most once per this
    /// interval, plus on every timer.
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

    /// This validator's current round exponent.
    pub fn round_exp(&self) -> Option<u8> {
        self.active.as_ref().map(|a| a.meter.exp())
    }

    /// Stops creating units for good (an era that has ended and finished its tail);
    /// units from peers are still accepted, so late evidence is not lost.
    pub fn retire(&mut self) {
        if let Some(a) = self.active.as_mut() {
            a.can_sign = false;
        }
        self.retired = true;
    }

    /// Stops signing for good in this instance (the host could not store an own unit
    /// durably: signing on could equivocate after a restart). Units from peers are
    /// still accepted, so the node keeps following finality.
    pub fn stop_signing(&mut self) {
        if let Some(a) = self.active.as_mut() {
            a.can_sign = false;
            a.restore_target = None;
        }
        self.signing_stopped = true;
    }

    /// Whether [`Highway::stop_signing`] was called.
    pub fn signing_stopped(&self) -> bool {
        self.signing_stopped
    }

    pub fn is_retired(&self) -> bool {
        self.retired
    }

    /// The last block final at threshold number `i`.
    pub fn last_finalized(&self, i: usize) -> Option<&crate::state::Block> {
        self.detectors
            .get(i)
            .and_then(FinalityDetector::last_finalized)
            .and_then(|h| self.state.block(&h))
    }

    /// The value the validators' fork choice currently builds on: the value of the
    /// block GHOST picks over this node's latest panorama (the era's base value before
    /// the first proposal). The next proposal must extend it, so the host's own fork
    /// choice (the L2 head, for KOMA) should contain it: otherwise this node's leader
    /// rounds have nothing to propose and its view of the chain flips when finality
    /// catches up.
    pub fn fork_choice_value(&self) -> B256 {
        let parent = self.state.fork_choice(self.state.latest());
        self.state.parent_value(parent.as_ref())
    }

    /// Units waiting for something (dependencies, evidence, a value, their time).
    pub fn pending_len(&self) -> usize {
        self.pending.len().saturating_add(self.future_len)
    }

    /// The value this node proposes when it leads a round (the highest L2 block it
    /// imported, for KOMA). `None`: nothing to propose (the round has no proposal).
    pub fn set_candidate(&mut self, value: Option<B256>) {
        self.candidate = value;
    }

    /// Re-adds this node's own units from storage after a restart; once the latest is
    /// back, the node may sign again.
    ///
    /// `units` may hold any stored units; those of this node's validator decide when
    /// it may sign: only once the newest of them is in the state (if its dependencies
    /// are missing, once they have been fetched and it was re-added).
    pub fn restore_own(&mut self, units: Vec<SignedUnit>, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        let me = self.our_index();
        let target = units
            .iter()
            .filter(|u| Some(u.unit.creator) == me)
            .max_by_key(|u| u.unit.seq)
            .map(SignedUnit::hash);
        for u in units {
            self.add(u, now, &mut effects);
        }
        let back = target.is_none_or(|t| self.state.unit(&t).is_some());
        let retired = self.retired || self.signing_stopped;
        if let Some(a) = self.active.as_mut() {
            if back {
                a.can_sign = !retired;
            } else {
                a.restore_target = target;
            }
        }
        effects
    }

    /// A unit from a peer.
    pub fn handle_unit(&mut self, unit: SignedUnit, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.add(unit, now, &mut effects);
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
            for (_, u) in self.resolve(&evidence_key(creator)) {
                self.add(u, now, &mut effects);
            }
            self.after_change(now, &mut effects);
        }
        effects
    }

    /// The host learned of new values (for KOMA: imported L2 blocks): proposals that
    /// waited for theirs are checked again.
    pub fn recheck_values(&mut self, now: Timestamp) -> Vec<Effect> {
        let keys = std::mem::take(&mut self.value_waits);
        let mut effects = Vec::new();
        for k in keys {
            for (_, u) in self.resolve(&k) {
                self.add(u, now, &mut effects);
            }
        }
        if !effects.is_empty() {
            self.after_change(now, &mut effects);
        }
        effects
    }

    /// Time passed: release due units, create scheduled units.
    pub fn handle_timer(&mut self, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        let due: Vec<Timestamp> = self.future.range(..=now).map(|(t, _)| *t).collect();
        for t in due {
            let units = self.future.remove(&t).unwrap_or_default();
            self.future_len = self.future_len.saturating_sub(units.len());
            for u in units {
                self.add(u, now, &mut effects);
            }
        }
        if let Some(a) = self.active.as_mut()
            && a.next_timer.is_some_and(|t| t <= now)
        {
            a.next_timer = None;
        }
        self.retry_requests(now, &mut effects);
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

    /// `key` is here: the pending units that waited for nothing else are returned.
    fn resolve(&mut self, key: &B256) -> Vec<(B256, SignedUnit)> {
        let mut ready = Vec::new();
        for h in self.waiting.remove(key).unwrap_or_default() {
            let done = match self.pending.get_mut(&h) {
                Some((_, count)) => {
                    *count = count.saturating_sub(1);
                    *count == 0
                }
                None => false,
            };
            if done && let Some((u, _)) = self.pending.remove(&h) {
                ready.push((h, u));
            }
        }
        ready
    }

    /// Holds `unit` until every one of `keys` is resolved.
    fn wait_for(&mut self, keys: Vec<B256>, unit: SignedUnit, hash: B256) {
        if self.pending.len() >= MAX_PENDING || self.pending.contains_key(&hash) || keys.is_empty()
        {
            return;
        }
        self.pending.insert(hash, (unit, keys.len()));
        for k in keys {
            self.waiting.entry(k).or_default().push(hash);
        }
    }

    fn add(&mut self, unit: SignedUnit, now: Timestamp, effects: &mut Vec<Effect>) {
        let params = &self.state.params;
        if unit.unit.timestamp > now {
            if unit.unit.timestamp > now.saturating_add(params.max_future) {
                return;
            }
            if self.future_len < MAX_FUTURE {
                self.future
                    .entry(unit.unit.timestamp)
                    .or_default()
                    .push(unit);
                self.future_len = self.future_len.saturating_add(1);
                effects.push(Effect::Timer(
                    self.future.keys().next().copied().unwrap_or(now),
                ));
            }
            return;
        }
        // Add this unit, then everything that was waiting for it, iteratively.
        let mut queue = vec![(unit.hash(), unit)];
        while let Some((hash, u)) = queue.pop() {
            let creator = u.unit.creator;
            let result = self.state.add_unit(
                u.clone(),
                hash,
                self.verifier.as_ref(),
                self.values.as_ref(),
            );
            match result {
                Ok(added) => {
                    effects.push(Effect::Store(u));
                    if let Some(ev) = added.evidence {
                        effects.push(Effect::Evidence(ev));
                        queue.extend(self.resolve(&evidence_key(creator)));
                    }
                    queue.extend(self.resolve(&hash));
                    self.requested.remove(&hash);
                    let retired = self.retired || self.signing_stopped;
                    if let Some(a) = self.active.as_mut()
                        && a.restore_target == Some(hash)
                    {
                        a.restore_target = None;
                        a.can_sign = !retired;
                    }
                    self.maybe_confirm(&hash, now, effects);
                }
                Err(UnitError::Duplicate) => {}
                Err(UnitError::MissingDependencies(missing)) => {
                    if self.pending.len() < MAX_PENDING {
                        for m in &missing {
                            self.request(*m, now, effects);
                        }
                        self.wait_for(missing, u, hash);
                    }
                }
                Err(UnitError::MissingEvidence(v)) => {
                    self.wait_for(vec![evidence_key(v)], u, hash);
                }
                Err(UnitError::ValueUnknown(v)) => {
                    let key = value_key(&v);
                    self.wait_for(vec![key], u, hash);
                    self.value_waits.insert(key);
                    if !self.values_requested.contains_key(&v)
                        && self.values_requested.len() < MAX_PENDING
                    {
                        self.values_requested.insert(v, now);
                        effects.push(Effect::RequestValue(v));
                    }
                }
                Err(error) => effects.push(Effect::Invalid { unit: hash, error }),
            }
        }
    }

    /// Asks again for units still missing whose request got no answer in time (the
    /// peer asked may not have had them, or may be gone).
    fn retry_requests(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        let waiting = &self.waiting;
        self.requested.retain(|h, _| waiting.contains_key(h));
        // Sorted: the effects must not depend on hash map order (replayable runs).
        let mut due: Vec<B256> = self
            .requested
            .iter()
            .filter(|(_, at)| now >= at.saturating_add(REQUEST_RETRY))
            .map(|(h, _)| *h)
            .collect();
        due.sort_unstable();
        for hash in due {
            self.requested.insert(hash, now);
            effects.push(Effect::Request(hash));
        }
        // Values: asked again while some proposal still waits for them.
        let waiting = &self.waiting;
        self.values_requested
            .retain(|v, _| waiting.contains_key(&value_key(v)));
        for (value, at) in self.values_requested.iter_mut() {
            if now >= at.saturating_add(REQUEST_RETRY) {
                *at = now;
                effects.push(Effect::RequestValue(*value));
            }
        }
    }

    /// Asks for a missing unit unless it was asked for recently.
    fn request(&mut self, hash: B256, now: Timestamp, effects: &mut Vec<Effect>) {
        if self
            .requested
            .get(&hash)
            .is_some_and(|at| now < at.saturating_add(REQUEST_RETRY))
        {
            return;
        }
        if self.requested.len() >= MAX_PENDING {
            self.requested
                .retain(|_, at| now < at.saturating_add(REQUEST_RETRY));
        }
        if self.requested.len() < MAX_PENDING {
            self.requested.insert(hash, now);
            effects.push(Effect::Request(hash));
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

    /// Runs every detector, lowest threshold first: a block not final at a lower
    /// threshold cannot be final at a higher one, so each detector stops at the
    /// height the one below it reached.
    fn detect(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.last_detection = Some(now);
        let tip = self.state.fork_choice(self.state.latest());
        let mut ceiling: Option<u64> = None;
        for (i, det) in self.detectors.iter_mut().enumerate() {
            for block in det.run(&self.state, tip, ceiling) {
                if let Some(b) = self.state.block(&block) {
                    effects.push(Effect::Finalized {
                        threshold: i,
                        era: self.state.params.era,
                        block,
                        value: b.value,
                        height: b.height,
                        proposer: b.proposer,
                        timestamp: b.timestamp,
                    });
                }
            }
            // A stopped detector (faults beyond its threshold) bounds nothing.
            if det.status() != crate::finality::DetectorStatus::Running {
                continue;
            }
            // Nothing final here: nothing can be final at the higher thresholds.
            let reached = det
                .last_finalized()
                .and_then(|h| self.state.block(&h))
                .map(|b| b.height);
            match reached {
                Some(h) => ceiling = Some(h),
                None => break,
            }
        }
    }

    fn round_len(&self) -> u64 {
        let exp = self
            .active
            .as_ref()
            .map_or(self.state.params.round_exp, |a| a.meter.exp());
        self.state.params.round_len(exp)
    }

    fn schedule(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        let r_len = self.round_len();
        if self.retired {
            return;
        }
        let Some(a) = self.active.as_mut() else {
            return;
        };
        let r = round_id(now, r_len);
        let witness_at = r.saturating_add(witness_offset(r_len));
        let next = if now < witness_at && a.witnessed != Some(r) {
            witness_at
        } else {
            r.saturating_add(r_len)
        };
        if a.next_timer != Some(next) {
            a.next_timer = Some(next);
            effects.push(Effect::Timer(next));
        }
    }

    /// Judges the previous round for the round meter when a new own round starts.
    fn meter(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        let r_len = self.round_len();
        let r = round_id(now, r_len);
        let Some(a) = self.active.as_ref() else {
            return;
        };
        if a.metered.is_some_and(|m| m >= r) {
            return;
        }
        let first = a.metered.is_none();
        let previous = r.checked_sub(r_len);
        // The previous round succeeded if its proposal has a level-1 summit with the
        // quorum of the 1 % threshold.
        let success = previous
            .and_then(|p| self.state.proposal_at(p))
            .is_some_and(|b| {
                let total = self.state.validators.total_weight();
                let q = quorum(total, Threshold::new(1, 100).ftt(total), 1);
                crate::finality::summit_level_of(&self.state, &b.hash, q, 1) >= 1
            });
        let min_round_len = self.state.params.min_round_len;
        let Some(a) = self.active.as_mut() else {
            return;
        };
        a.metered = Some(r);
        if first || r < self.state.params.era_start.saturating_add(r_len) {
            return;
        }
        let before = a.meter.exp();
        let after = a.meter.record(success, r, min_round_len);
        if after != before {
            effects.push(Effect::RoundExp(after));
        }
    }

    /// Creates the units the schedule calls for at `now`.
    fn act(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        let can_act = self
            .active
            .as_ref()
            .is_some_and(|a| a.can_sign && !self.state.is_faulty(a.index));
        if !can_act {
            return;
        }
        self.meter(now, effects);
        let r_len = self.round_len();
        let Some(a) = self.active.as_ref() else {
            return;
        };
        let me = a.index;
        let r = round_id(now, r_len);
        let leader = self.state.validators.leader(&self.state.params.seed, r);
        // A timer fires at or a little after the round start; the proposal is stamped
        // with the round start either way (and cites nothing newer).
        if now < r.saturating_add(r_len / 3)
            && leader == me
            && a.proposed != Some(r)
            && self.own_units_in_round(r) == 0
        {
            if let Some(value) = self.proposal_value(r) {
                self.create(r, Some(value), effects);
            }
            if let Some(a) = self.active.as_mut() {
                a.proposed = Some(r);
            }
        }
        let witness_at = r.saturating_add(witness_offset(r_len));
        let witnessed = self.active.as_ref().is_some_and(|a| a.witnessed == Some(r));
        if now >= witness_at && !witnessed && self.own_units_in_round(r) < 2 {
            self.create(now, None, effects);
            if let Some(a) = self.active.as_mut() {
                a.witnessed = Some(r);
            }
        }
    }

    /// What to propose in round `r`: the candidate, if it may extend the parent the
    /// proposal would have, and the parent is not the era's last block.
    ///
    /// When the node's L2 fork choice and the validators' fork choice went different
    /// ways (after a partition healed, say), the candidate does not extend the parent
    /// and the round has no proposal; the proposals both already vote for still become
    /// final, and the host then makes its L2 fork choice contain the final block (the
    /// L2-modelled simulations check that finality resumes this way).
    fn proposal_value(&self, r: Timestamp) -> Option<B256> {
        let value = self.candidate?;
        let panorama = self.panorama_at(r);
        let parent = self.state.fork_choice(&panorama);
        if parent
            .and_then(|p| self.state.block(&p))
            .is_some_and(|b| self.state.is_terminal(b))
        {
            return None;
        }
        let parent_value = self.state.parent_value(parent.as_ref());
        (self.values.check(&value, &parent_value) == crate::state::Validity::Valid).then_some(value)
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
        if a.confirmed == Some(r) || a.witnessed == Some(r) || self.own_units_in_round(r) >= 1 {
            return;
        }
        if let Some(a) = self.active.as_mut() {
            a.confirmed = Some(r);
        }
        self.create(now, None, effects);
    }

    fn own_units_in_round(&self, r: Timestamp) -> usize {
        let r_len = self.round_len();
        let Some(a) = self.active.as_ref() else {
            return 0;
        };
        let mut count = 0usize;
        let mut cursor = self.state.latest_unit(a.index).map(|u| u.hash);
        while let Some(h) = cursor {
            let Some(u) = self.state.unit(&h) else { break };
            if round_id(u.timestamp, r_len) != r {
                break;
            }
            count = count.saturating_add(1);
            cursor = u.prev();
        }
        count
    }

    fn create(&mut self, timestamp: Timestamp, value: Option<B256>, effects: &mut Vec<Effect>) {
        let round_exp = self.active.as_ref().map_or(0, |a| a.meter.exp());
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
            timestamp: timestamp.max(max_cited).max(params.era_start),
            round_exp,
            panorama,
            value,
        };
        let hash = unit.hash();
        let signed = SignedUnit {
            signature: a.signer.sign(&hash),
            unit,
        };
        match self.state.add_unit(
            signed.clone(),
            hash,
            self.verifier.as_ref(),
            self.values.as_ref(),
        ) {
            Ok(_) => {
                effects.push(Effect::Persist(signed.clone()));
                effects.push(Effect::Broadcast(signed));
            }
            Err(error) => effects.push(Effect::Invalid { unit: hash, error }),
        }
    }

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

/// When in a round of length `r_len` the witness units are due: at two thirds.
fn witness_offset(r_len: u64) -> u64 {
    (r_len / 3).saturating_mul(2)
}

/// The waiting-list key of units that wait for evidence against `v`.
fn evidence_key(v: ValidatorIndex) -> B256 {
    let mut key = [0xffu8; 32];
    if let Some(tail) = key.get_mut(28..) {
        tail.copy_from_slice(&v.to_be_bytes());
    }
    B256::from(key)
}

/// The waiting-list key of proposals that wait for their value to become known.
fn value_key(value: &B256) -> B256 {
    alloy_primitives::keccak256([b"value".as_slice(), value.as_slice()].concat())
}
