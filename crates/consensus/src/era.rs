//! Eras: one [`Highway`] instance per era, each with its own validator set, leader
//! seed and tree of blocks; the switch from one to the next; and the memory bound that
//! comes with it (only the current era and the one before stay open).
//!
//! - An era ends with its *terminal* block: the block at height `era_blocks - 1` of its
//!   tree (no proposal may build on it). Once that block is final at the switch
//!   threshold ([`SWITCH_THRESHOLD`], 1/3), era `e + 1` starts: its instance id is
//!   `keccak(chain, e + 1, terminal block)`, its first block extends the terminal
//!   block's value, its units may not be older than the terminal block, and the
//!   validators proven to have equivocated in earlier eras are banned from it.
//! - The ended era stays open: its validators keep witnessing in it (one unit per
//!   round) until its terminal block is final at every threshold that still runs
//!   there, so that thresholds above the switch threshold carry over (a staker that
//!   was down during the switch adds its units when it is back). An era closes once
//!   that is done and two newer eras exist, or when [`MAX_OPEN_ERAS`] are open.
//! - Confidence across a switch: a block of era `e` is reported final at threshold
//!   `t` only if every switch up to era `e` reached `t` too — otherwise an adversary
//!   above the switch threshold could have made honest nodes enter different eras. A
//!   finalization held back this way is released as soon as the switch catches up.
//! - Units of an unknown instance (an era this node has not reached) are kept, up to a
//!   bound, and replayed when the era starts; meanwhile the node asks its peers for the
//!   latest units of its own current era ([`Effect::RequestLatest`]) to catch up.

use crate::highway::{Config, Effect, Highway};
use crate::state::{Block, EraBase, ValueCheck};
use crate::types::{EraRecord, Params, SetSource, Threshold, Timestamp, Validators};
use crate::unit::{Evidence, SignedUnit, UnitSigner, UnitVerifier};
use alloy_primitives::map::B256Map;
use alloy_primitives::{Address, B256, keccak256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The threshold at which an era's terminal block ends the era.
pub const SWITCH_THRESHOLD: Threshold = Threshold::new(1, 3);
/// Eras always kept open: the current one and the one before (late units and evidence
/// of the previous era still count).
pub const OPEN_ERAS: usize = 2;
/// Most eras open at once: older ones close even if their last block never became
/// final at every threshold (then later eras stay capped below those thresholds).
pub const MAX_OPEN_ERAS: usize = 4;
/// Most units of unknown eras kept for later.
const MAX_ORPHANS: usize = 4096;
/// Least time between two requests for the latest units of the current era (ms).
const LATEST_REQUEST_INTERVAL: u64 = 1_000;
/// Closed eras whose latest units are kept (to help peers that fell behind).
const CLOSED_TIPS: usize = 64;

/// How the eras of a chain are set up.
pub struct ErasConfig {
    /// Identifies the chain (e.g. the digest of its spec); part of every instance id.
    pub chain: B256,
    /// The value era 0's first block extends (the L2 genesis hash).
    pub genesis_value: B256,
    pub genesis_time: Timestamp,
    /// The genesis staker set (era 0's validators).
    pub stakers: Vec<(Address, u64)>,
    /// Where the sets of later eras come from (less the banned).
    pub sets: Arc<dyn EraSets>,
    /// Blocks per era (the terminal block is at height `era_blocks - 1`).
    pub era_blocks: u64,
    pub min_round_len: u64,
    pub round_exp: u8,
    pub max_round_exp: u8,
    pub max_future: u64,
    pub thresholds: Vec<Threshold>,
    pub signer: Option<Arc<dyn UnitSigner>>,
    pub verifier: Arc<dyn UnitVerifier>,
    pub values: Arc<dyn ValueCheck>,
}

/// The validator set of an era that is about to start, as the chain decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextSet {
    /// This set, read from `source`.
    Known {
        validators: Vec<(Address, u64)>,
        source: Option<SetSource>,
    },
    /// The previous era's set carries over (the terminal block names no source).
    Same,
    /// Not known here yet: the switch waits. The implementation fetches it and tells
    /// the node to look again ([`Eras::recheck_values`]); timers retry too.
    Unknown,
}

/// Decides each era's validator set from the previous era's terminal block. Every
/// honest node must answer the same for the same block (or `Unknown` until it can).
pub trait EraSets: Send + Sync {
    /// The set of era `era`, which follows the terminal block whose value is
    /// `terminal_value`.
    fn next_set(&self, era: u64, terminal_value: &B256) -> NextSet;
}

/// Every era keeps the genesis set (less the banned): a chain without a stake table.
#[derive(Clone, Copy, Debug, Default)]
pub struct SameSet;

impl EraSets for SameSet {
    fn next_set(&self, _era: u64, _terminal_value: &B256) -> NextSet {
        NextSet::Same
    }
}

/// Why eras cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum EraError {
    #[error("validator set of era {era}: {source}")]
    Validators {
        era: u64,
        source: crate::types::ValidatorsError,
    },
}

struct Era {
    record: EraRecord,
    highway: Highway,
    /// Whether the era ended (its terminal block is final at the switch threshold).
    ended: bool,
    /// Highest threshold index its terminal block reached.
    terminal_reached: Option<usize>,
    /// Per threshold: the latest finalization held back by the cap.
    held: Vec<Option<Effect>>,
}

/// The eras of one chain, as one sans-I/O state machine (see the module docs).
pub struct Eras {
    config: ErasConfig,
    thresholds: Vec<Threshold>,
    switch_index: usize,
    eras: BTreeMap<u64, Era>,
    by_instance: B256Map<u64>,
    /// Addresses proven to have equivocated (banned from later eras).
    banned: Vec<Address>,
    orphans: std::collections::VecDeque<SignedUnit>,
    last_latest_request: Option<(B256, Timestamp)>,
    /// The latest units of recently closed eras, by instance.
    closed_tips: BTreeMap<u64, (B256, Vec<SignedUnit>)>,
}

impl std::fmt::Debug for Eras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eras")
            .field("open", &self.eras.keys().collect::<Vec<_>>())
            .field("orphans", &self.orphans.len())
            .finish_non_exhaustive()
    }
}

/// The instance id of era `era` after terminal block `key_block`.
pub fn instance_id(chain: &B256, era: u64, key_block: &B256) -> B256 {
    keccak256(
        [
            b"koma-era".as_slice(),
            chain.as_slice(),
            &era.to_be_bytes(),
            key_block.as_slice(),
        ]
        .concat(),
    )
}

impl Eras {
    /// Starts from stored era records and units (empty on a new node: era 0 starts at
    /// genesis). Returns the effects of re-adding the units (not news: finalizations
    /// among them may be re-reported).
    pub fn restore(
        config: ErasConfig,
        mut records: Vec<EraRecord>,
        units: Vec<SignedUnit>,
        now: Timestamp,
    ) -> Result<(Self, Vec<Effect>), EraError> {
        let total: u64 = config
            .stakers
            .iter()
            .map(|(_, w)| *w)
            .fold(0, u64::saturating_add);
        let mut thresholds = config.thresholds.clone();
        if !thresholds.contains(&SWITCH_THRESHOLD) {
            thresholds.push(SWITCH_THRESHOLD);
        }
        thresholds.sort_by_key(|t| t.ftt(total));
        thresholds.dedup_by_key(|t| t.ftt(total));
        let switch_index = thresholds
            .iter()
            .position(|t| *t == SWITCH_THRESHOLD)
            .unwrap_or(0);
        let mut eras = Self {
            config,
            switch_index,
            eras: BTreeMap::new(),
            by_instance: B256Map::default(),
            banned: Vec::new(),
            orphans: std::collections::VecDeque::new(),
            last_latest_request: None,
            closed_tips: BTreeMap::new(),
            thresholds,
        };
        records.sort_by_key(|r| r.era);
        let keep = records.len().saturating_sub(MAX_OPEN_ERAS);
        let records: Vec<EraRecord> = records.into_iter().skip(keep).collect();
        let mut effects = Vec::new();
        if records.is_empty() {
            let record = eras.genesis_record();
            effects.push(Effect::EraStarted(record.clone()));
            eras.open(record, &units)?;
        } else {
            for record in records {
                eras.banned.clone_from(&record.banned);
                eras.open(record, &units)?;
            }
        }
        // Re-add the stored units, era by era, oldest first.
        let mut by_era: BTreeMap<u64, Vec<SignedUnit>> = BTreeMap::new();
        for u in units {
            if let Some(e) = eras.by_instance.get(&u.unit.instance_id) {
                by_era.entry(*e).or_default().push(u);
            }
        }
        let open: Vec<u64> = eras.eras.keys().copied().collect();
        for e in open {
            let units = by_era.remove(&e).unwrap_or_default();
            let out = match eras.eras.get_mut(&e) {
                Some(era) => era.highway.restore_own(units, now),
                None => Vec::new(),
            };
            eras.post(e, out, now, &mut effects);
        }
        Ok((eras, effects))
    }

    fn genesis_record(&self) -> EraRecord {
        EraRecord {
            era: 0,
            instance_id: instance_id(&self.config.chain, 0, &B256::ZERO),
            start: self.config.genesis_time,
            base_value: self.config.genesis_value,
            key_block: B256::ZERO,
            validators: self.config.stakers.clone(),
            banned: Vec::new(),
            cap: self.thresholds.len().saturating_sub(1),
            source: None,
        }
    }

    /// Opens the instance of `record`; `units` are the node's stored units (to know
    /// whether it signed in this era before).
    fn open(&mut self, record: EraRecord, units: &[SignedUnit]) -> Result<(), EraError> {
        let validators = Validators::new(record.validators.iter().copied()).map_err(|source| {
            EraError::Validators {
                era: record.era,
                source,
            }
        })?;
        let params = Params {
            era: record.era,
            instance_id: record.instance_id,
            seed: keccak256([record.instance_id.as_slice(), b"leaders"].concat()),
            min_round_len: self.config.min_round_len,
            round_exp: self.config.round_exp,
            max_round_exp: self.config.max_round_exp,
            era_start: record.start,
            max_future: self.config.max_future,
        };
        let me = self.config.signer.as_ref().map(|s| s.address());
        let signed_before = units.iter().any(|u| {
            u.unit.instance_id == record.instance_id
                && me.is_some_and(|m| validators.key(u.unit.creator) == Some(&m))
        });
        let config = Config {
            validators,
            params,
            thresholds: self.thresholds.clone(),
            signer: self.config.signer.clone(),
            verifier: self.config.verifier.clone(),
            values: self.config.values.clone(),
            base: EraBase {
                value: record.base_value,
                blocks: self.config.era_blocks.max(1),
            },
            banned: Vec::new(),
            fresh: !signed_before,
            initial_round_exp: self.current().and_then(Highway::round_exp),
        };
        self.by_instance.insert(record.instance_id, record.era);
        let n = self.thresholds.len();
        self.eras.insert(
            record.era,
            Era {
                highway: Highway::new(config),
                record,
                ended: false,
                terminal_reached: None,
                held: vec![None; n],
            },
        );
        Ok(())
    }

    /// The thresholds watched, ascending ([`Effect::Finalized`] indexes them).
    pub fn thresholds(&self) -> &[Threshold] {
        &self.thresholds
    }

    /// The current (newest) era.
    pub fn current(&self) -> Option<&Highway> {
        self.eras.values().next_back().map(|e| &e.highway)
    }

    pub fn current_era(&self) -> u64 {
        self.eras.keys().next_back().copied().unwrap_or(0)
    }

    /// The open eras' records, oldest first.
    pub fn records(&self) -> Vec<&EraRecord> {
        self.eras.values().map(|e| &e.record).collect()
    }

    pub fn era(&self, era: u64) -> Option<&Highway> {
        self.eras.get(&era).map(|e| &e.highway)
    }

    /// The era a unit's instance belongs to, if it is open.
    pub fn era_of(&self, instance_id: &B256) -> Option<u64> {
        self.by_instance.get(instance_id).copied()
    }

    /// A unit of an open era, by hash.
    pub fn unit(&self, hash: &B256) -> Option<&SignedUnit> {
        self.eras.values().rev().find_map(|e| e.highway.unit(hash))
    }

    /// The latest unit of every validator in the era of `instance_id` (to answer a
    /// peer that is catching up).
    pub fn latest_units(&self, instance_id: &B256) -> Vec<&SignedUnit> {
        let Some(era) = self.era_of(instance_id).and_then(|e| self.eras.get(&e)) else {
            return self
                .closed_tips
                .values()
                .find(|(i, _)| i == instance_id)
                .map(|(_, tips)| tips.iter().collect())
                .unwrap_or_default();
        };
        let state = era.highway.state();
        state
            .validators
            .indices()
            .filter_map(|v| state.latest_unit(v))
            .map(|u| &u.signed)
            .collect()
    }

    /// Stops this node signing, in every open era and every later one (see
    /// [`Highway::stop_signing`]).
    pub fn stop_signing(&mut self) {
        self.config.signer = None;
        for era in self.eras.values_mut() {
            era.highway.stop_signing();
        }
    }

    /// The current era's [`Highway::fork_choice_value`].
    pub fn fork_choice_value(&self) -> Option<B256> {
        self.current().map(Highway::fork_choice_value)
    }

    /// The value a leader proposes (the node's head), for the current era.
    pub fn set_candidate(&mut self, value: Option<B256>) {
        if let Some(era) = self.eras.values_mut().next_back() {
            era.highway.set_candidate(value);
        }
    }

    /// Runs `f` on era `e` (if open) and handles what it returned.
    fn on_era(
        &mut self,
        e: u64,
        now: Timestamp,
        effects: &mut Vec<Effect>,
        f: impl FnOnce(&mut Highway) -> Vec<Effect>,
    ) {
        let out = self.eras.get_mut(&e).map(|era| f(&mut era.highway));
        if let Some(out) = out {
            self.post(e, out, now, effects);
        }
    }

    /// Runs `f` on every open era, oldest first.
    fn on_each_era(
        &mut self,
        now: Timestamp,
        f: impl Fn(&mut Highway) -> Vec<Effect>,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let open: Vec<u64> = self.eras.keys().copied().collect();
        for e in open {
            self.on_era(e, now, &mut effects, &f);
        }
        effects
    }

    pub fn handle_unit(&mut self, unit: SignedUnit, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        match self.era_of(&unit.unit.instance_id) {
            Some(e) => self.on_era(e, now, &mut effects, |h| h.handle_unit(unit, now)),
            None => {
                // A unit of an era we have not reached: keep it for when we get there,
                // and catch up on our current era meanwhile. (A unit stamped before the
                // current era began belongs to one long closed: dropped.)
                let current_start = self.eras.values().next_back().map_or(0, |e| e.record.start);
                if unit.unit.timestamp <= current_start {
                    return effects;
                }
                let hash = unit.hash();
                if !self.orphans.iter().any(|o| o.hash() == hash) {
                    if self.orphans.len() >= MAX_ORPHANS {
                        self.orphans.pop_front();
                    }
                    self.orphans.push_back(unit);
                }
                self.request_latest(now, &mut effects);
            }
        }
        effects
    }

    pub fn handle_evidence(&mut self, evidence: Evidence, now: Timestamp) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(e) = self.era_of(&evidence.a.unit.instance_id) {
            self.on_era(e, now, &mut effects, |h| h.handle_evidence(evidence, now));
        }
        effects
    }

    pub fn handle_timer(&mut self, now: Timestamp) -> Vec<Effect> {
        self.on_each_era(now, |h| {
            if h.is_retired() {
                Vec::new()
            } else {
                h.handle_timer(now)
            }
        })
    }

    /// New values are known (see [`Highway::recheck_values`]).
    pub fn recheck_values(&mut self, now: Timestamp) -> Vec<Effect> {
        self.on_each_era(now, |h| h.recheck_values(now))
    }

    fn request_latest(&mut self, now: Timestamp, effects: &mut Vec<Effect>) {
        let Some(instance) = self.eras.values().next_back().map(|e| e.record.instance_id) else {
            return;
        };
        let due = self
            .last_latest_request
            .is_none_or(|(i, t)| i != instance || now >= t.saturating_add(LATEST_REQUEST_INTERVAL));
        if due {
            self.last_latest_request = Some((instance, now));
            effects.push(Effect::RequestLatest(instance));
        }
    }

    /// Handles what era `e` returned: caps finalizations, notices the era's end, and
    /// starts the next era.
    fn post(&mut self, e: u64, out: Vec<Effect>, now: Timestamp, effects: &mut Vec<Effect>) {
        let mut reached_changed = false;
        for effect in out {
            match effect {
                Effect::Finalized {
                    threshold, block, ..
                } => {
                    let Some(era) = self.eras.get_mut(&e) else {
                        continue;
                    };
                    let is_terminal = era
                        .highway
                        .state()
                        .block(&block)
                        .is_some_and(|b| era.highway.state().is_terminal(b));
                    if is_terminal && era.terminal_reached.is_none_or(|r| r < threshold) {
                        era.terminal_reached = Some(threshold);
                        reached_changed = true;
                    }
                    if threshold <= era.record.cap {
                        effects.push(effect);
                    } else if let Some(slot) = era.held.get_mut(threshold) {
                        *slot = Some(effect);
                    }
                }
                other => effects.push(other),
            }
        }
        if reached_changed {
            self.update_caps(effects);
        }
        self.maybe_switch(e, now, effects);
        self.maybe_retire(e);
        self.close_old(effects);
    }

    /// Closes the oldest eras: those beyond [`MAX_OPEN_ERAS`], and retired ones
    /// beyond [`OPEN_ERAS`].
    fn close_old(&mut self, effects: &mut Vec<Effect>) {
        loop {
            let oldest_retired = self
                .eras
                .values()
                .next()
                .is_some_and(|e| e.highway.is_retired());
            let close =
                self.eras.len() > MAX_OPEN_ERAS || (self.eras.len() > OPEN_ERAS && oldest_retired);
            if !close {
                return;
            }
            if let Some((_, old)) = self.eras.pop_first() {
                self.by_instance.remove(&old.record.instance_id);
                let state = old.highway.state();
                let tips: Vec<SignedUnit> = state
                    .validators
                    .indices()
                    .filter_map(|v| state.latest_unit(v).map(|u| u.signed.clone()))
                    .collect();
                effects.push(Effect::EraClosed {
                    era: old.record.era,
                    instance_id: old.record.instance_id,
                    tips: tips.iter().map(SignedUnit::hash).collect(),
                });
                self.closed_tips
                    .insert(old.record.era, (old.record.instance_id, tips));
                while self.closed_tips.len() > CLOSED_TIPS {
                    self.closed_tips.pop_first();
                }
            }
        }
    }

    /// Recomputes every open era's cap from its predecessor's terminal block, and
    /// releases finalizations the new caps allow.
    fn update_caps(&mut self, effects: &mut Vec<Effect>) {
        let open: Vec<u64> = self.eras.keys().copied().collect();
        let mut prev_cap: Option<usize> = None;
        let mut prev_reached: Option<Option<usize>> = None;
        for e in open {
            let Some(era) = self.eras.get_mut(&e) else {
                continue;
            };
            if let (Some(pc), Some(pr)) = (prev_cap, prev_reached) {
                let cap = pc.min(pr.unwrap_or(0));
                if cap > era.record.cap {
                    era.record.cap = cap;
                    effects.push(Effect::EraStarted(era.record.clone()));
                    for i in 0..=cap {
                        if let Some(held) = era.held.get_mut(i).and_then(Option::take) {
                            effects.push(held);
                        }
                    }
                }
            }
            prev_cap = Some(era.record.cap);
            prev_reached = Some(era.terminal_reached);
        }
    }

    /// Starts era `e + 1` once era `e`'s terminal block is final at the switch
    /// threshold and the next era's validator set is known here.
    fn maybe_switch(&mut self, e: u64, now: Timestamp, effects: &mut Vec<Effect>) {
        let next = e.saturating_add(1);
        let Some(era) = self.eras.get_mut(&e) else {
            return;
        };
        if era.ended {
            return;
        }
        let Some(terminal) = era
            .highway
            .last_finalized(self.switch_index)
            .filter(|b| era.highway.state().is_terminal(b))
            .cloned()
        else {
            return;
        };
        if self.by_instance.values().any(|x| *x == next) {
            // Restored after a restart: the next era is already open.
            era.ended = true;
            return;
        }
        let set = self.config.sets.next_set(next, &terminal.value);
        if set == NextSet::Unknown {
            return; // looked at again on the next timer or recheck
        }
        era.ended = true;
        // Equivocators of this era are banned from the next ones.
        let state = era.highway.state();
        for v in state.validators.indices() {
            if state.evidence_against(v).is_some()
                && let Some(key) = state.validators.key(v)
                && !self.banned.contains(key)
            {
                self.banned.push(*key);
            }
        }
        let cap = era
            .record
            .cap
            .min(era.terminal_reached.unwrap_or(self.switch_index));
        let (validators, source) = match set {
            NextSet::Known { validators, source } => (validators, source),
            NextSet::Same | NextSet::Unknown => (era.record.validators.clone(), era.record.source),
        };
        let previous = era.record.validators.clone();
        let record = self.next_record(next, &terminal, cap, validators, source, previous);
        if self.open(record.clone(), &[]).is_err() {
            return;
        }
        effects.push(Effect::EraStarted(record.clone()));
        // Units that arrived early.
        let (mine, rest): (
            std::collections::VecDeque<SignedUnit>,
            std::collections::VecDeque<SignedUnit>,
        ) = std::mem::take(&mut self.orphans)
            .into_iter()
            .partition(|u| u.unit.instance_id == record.instance_id);
        self.orphans = rest;
        self.orphans.retain(|u| u.unit.timestamp > record.start);
        let mut out = Vec::new();
        if let Some(era) = self.eras.get_mut(&next) {
            for u in mine {
                out.extend(era.highway.handle_unit(u, now));
            }
            out.extend(era.highway.handle_timer(now));
        }
        // Still units of later eras: catch up on this one next.
        if !self.orphans.is_empty() {
            self.request_latest(now, &mut out);
        }
        self.post(next, out, now, effects);
    }

    /// The record of era `era`: `validators` less the banned (and without zero
    /// weights), or `previous` if none would be left.
    fn next_record(
        &self,
        era: u64,
        terminal: &Block,
        cap: usize,
        validators: Vec<(Address, u64)>,
        source: Option<SetSource>,
        previous: Vec<(Address, u64)>,
    ) -> EraRecord {
        let validators: Vec<(Address, u64)> = validators
            .into_iter()
            .filter(|(a, w)| *w > 0 && !self.banned.contains(a))
            .collect();
        EraRecord {
            era,
            instance_id: instance_id(&self.config.chain, era, &terminal.hash),
            start: terminal.timestamp,
            base_value: terminal.value,
            key_block: terminal.hash,
            // Never an empty set: if every staker left or was banned, the chain cannot
            // go on safely anyway; keep the set before so the failure is visible, not
            // a panic.
            validators: if validators.is_empty() {
                previous
            } else {
                validators
            },
            banned: self.banned.clone(),
            cap,
            source,
        }
    }

    /// An ended era stops witnessing once its terminal block is final at every
    /// threshold still running there.
    fn maybe_retire(&mut self, e: u64) {
        let Some(era) = self.eras.get_mut(&e) else {
            return;
        };
        if !era.ended || era.highway.is_retired() {
            return;
        }
        let state = era.highway.state();
        let running = era
            .highway
            .detectors()
            .iter()
            .rposition(|d| !d.exceeded(state))
            .unwrap_or(0);
        if era.terminal_reached.is_some_and(|r| r >= running) {
            era.highway.retire();
        }
    }
}
