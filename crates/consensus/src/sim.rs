//! A seeded discrete-event simulation of KoMaBFT: many validators of unequal stake,
//! random message delays (hence reordering), a partition that heals, validators that
//! crash (and possibly restart from what they persisted), and equivocators — no real
//! network, no real clock. The same seed gives the same run.
//!
//! Invariants, checked as the run goes:
//! - safety (Theorem 1): at every threshold `t` whose fault tolerance covers the
//!   equivocators' weight, no two honest validators finalize different blocks at the
//!   same height (checked on every finalization against the first one seen);
//! - no honest unit is ever found invalid;
//! - a restarted validator never equivocates (it reloads its units before signing).
//!
//! At the end: liveness (Theorem 2, the paper's bound) — for every threshold with
//! faulty weight `f <= t` and crashed weight `c < (W - 3t)/2`, every honest validator
//! online at the end finalized new blocks after the network stabilised; every honest
//! validator learned of every equivocator.
//!
//! Used by the crate's tests (`tests/sim.rs`) and by `koma bench consensus`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use crate::era::{EraRecord, Eras, ErasConfig};
use crate::unit::Secp256k1Verifier;
use crate::{
    AnyValue, Effect, Evidence, SignedUnit, Threshold, Timestamp, UnitSigner, UnitVerifier,
    ValidatorIndex, quorum,
};
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes, keccak256};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Test keys: a signature is `keccak(address ‖ hash)`. Cheap enough for hundreds of
/// validators; the real secp256k1 scheme is tested on its own (and costs ~50 µs per
/// verification on top of the figures the simulation reports).
#[derive(Debug, Clone, Copy)]
pub struct MockSigner(pub Address);

impl UnitSigner for MockSigner {
    fn address(&self) -> Address {
        self.0
    }
    fn sign(&self, hash: &B256) -> Bytes {
        mock_sig(&self.0, hash)
    }
}

fn mock_sig(key: &Address, hash: &B256) -> Bytes {
    let mut pre = key.to_vec();
    pre.extend_from_slice(hash.as_slice());
    Bytes::from(keccak256(pre).to_vec())
}

/// Verifies [`MockSigner`] signatures.
#[derive(Debug, Clone, Copy)]
pub struct MockVerifier;

impl UnitVerifier for MockVerifier {
    fn verify(&self, key: &Address, hash: &B256, signature: &[u8]) -> bool {
        signature == mock_sig(key, hash).as_ref()
    }
}

/// A validator that stops at `at` and, if `restart` is set, comes back then with the
/// units it had persisted.
#[derive(Clone, Debug)]
pub struct Crash {
    pub validator: ValidatorIndex,
    pub at: u64,
    pub restart: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub validators: usize,
    /// Simulated time, ms.
    pub duration: u64,
    /// One-way message delay, uniform in this range (ms).
    pub min_delay: u64,
    pub max_delay: u64,
    pub crashes: Vec<Crash>,
    /// Validators that sign two versions of every unit, each sent to half the others.
    pub equivocators: Vec<ValidatorIndex>,
    /// Until this time, messages between the two halves are held back.
    pub partition_until: u64,
    pub min_round_len: u64,
    pub max_round_exp: u8,
    /// All validators weigh the same (otherwise 1..=100 at random).
    pub equal_stake: bool,
    /// Blocks per era (`u64::MAX`: one era for the whole run).
    pub era_blocks: u64,
    /// Real secp256k1 keys and signatures (as in the node) instead of the cheap mock.
    pub real_keys: bool,
}

impl Scenario {
    pub fn new(name: &str, validators: usize, duration: u64) -> Self {
        Self {
            name: name.to_string(),
            validators,
            duration,
            min_delay: 5,
            max_delay: 60,
            crashes: Vec::new(),
            equivocators: Vec::new(),
            partition_until: 0,
            min_round_len: 512,
            max_round_exp: 6,
            equal_stake: false,
            era_blocks: u64::MAX,
            real_keys: false,
        }
    }

    /// When the network is synchronous again with its final set of live validators.
    pub fn stable_from(&self) -> u64 {
        let crash_times = self
            .crashes
            .iter()
            .map(|c| c.restart.unwrap_or(c.at))
            .max()
            .unwrap_or(0);
        self.partition_until.max(crash_times)
    }
}

enum Msg {
    Unit(SignedUnit),
    Evidence(Evidence),
    Request(B256, usize),
    RequestLatest(B256, usize),
}

enum Event {
    Deliver(usize, Msg),
    Timer(usize),
    Restart(usize),
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    /// Digest of every node's finalized blocks with times: equal for equal seeds.
    pub digest: B256,
    /// Thresholds (as "num/den") for which liveness was owed and checked.
    pub live_thresholds: Vec<String>,
    /// Blocks finalized per threshold by the first honest online node.
    pub finalized: Vec<usize>,
    /// Per threshold: the fewest blocks any honest online node finalized after the
    /// network stabilised (all thresholds, owed by Theorem 2 or not).
    pub finalized_after_stable: Vec<usize>,
    /// Proposal -> final at 1/3, per honest node and block (ms).
    pub latencies: Vec<u64>,
    /// Units created in the whole run.
    pub units_created: usize,
    /// Units received and processed by all nodes, and the CPU time that took.
    pub units_handled: usize,
    pub handle_time: Duration,
    /// Mean encoded size of a unit (wire format).
    pub bytes_per_unit: f64,
    pub simulated_ms: u64,
    /// The era the first honest online node reached.
    pub eras: u64,
    /// Validators left out of that node's current era (banned equivocators).
    pub banned: Vec<ValidatorIndex>,
    /// Each honest online validator's round exponent at the end.
    pub round_exps: Vec<u8>,
}

impl Report {
    pub fn percentile(&self, p: f64) -> Option<u64> {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l.get(i).copied()
    }

    pub fn cpu_per_unit(&self) -> Duration {
        self.handle_time
            .checked_div(self.units_handled.max(1) as u32)
            .unwrap_or_default()
    }
}

struct Sim {
    sc: Scenario,
    seed: u64,
    rng: StdRng,
    nodes: Vec<Eras>,
    keys: Vec<Address>,
    signers: Vec<Arc<dyn UnitSigner>>,
    weights: Vec<u64>,
    thresholds: Vec<Threshold>,
    now: Timestamp,
    queue: BinaryHeap<Reverse<(Timestamp, usize)>>,
    events: HashMap<usize, Event>,
    next_id: usize,
    timers: HashSet<(usize, Timestamp)>,
    /// Every unit and era record each node persisted (what a restart reloads).
    persisted: Vec<Vec<SignedUnit>>,
    records: Vec<BTreeMap<u64, EraRecord>>,
    /// Finalized blocks per node and threshold, with the time.
    finalized: Vec<Vec<Vec<(B256, Timestamp)>>>,
    /// The first block finalized at each (threshold, era, height) by an honest node.
    decided: Vec<BTreeMap<(u64, u64), (B256, usize)>>,
    proposed_at: HashMap<B256, Timestamp>,
    /// Who created each unit sent (both versions of an equivocation).
    creators: HashMap<B256, usize>,
    /// Every unit sent: what nodes hold on disk after an era closed in memory.
    archive: HashMap<B256, SignedUnit>,
    units_created: usize,
    bytes_created: usize,
    units_handled: usize,
    handle_time: Duration,
    failure: Option<String>,
}

fn node(
    sc: &Scenario,
    seed: u64,
    stakers: &[(Address, u64)],
    signer: Arc<dyn UnitSigner>,
    records: Vec<EraRecord>,
    units: Vec<SignedUnit>,
    now: Timestamp,
) -> (Eras, Vec<Effect>) {
    let config = ErasConfig {
        chain: keccak256(format!("sim {seed}")),
        genesis_value: keccak256("genesis"),
        genesis_time: 0,
        stakers: stakers.to_vec(),
        era_blocks: sc.era_blocks,
        min_round_len: sc.min_round_len,
        round_exp: 0,
        max_round_exp: sc.max_round_exp,
        max_future: 60_000,
        thresholds: Threshold::defaults(),
        signer: Some(signer),
        verifier: if sc.real_keys {
            Arc::new(Secp256k1Verifier)
        } else {
            Arc::new(MockVerifier)
        },
        values: Arc::new(AnyValue),
    };
    Eras::restore(config, records, units, now).expect("valid eras")
}

impl Sim {
    fn new(sc: Scenario, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let signers: Vec<Arc<dyn UnitSigner>> = (0..sc.validators)
            .map(|i| -> Arc<dyn UnitSigner> {
                let secret = keccak256(format!("validator {i}"));
                if sc.real_keys {
                    Arc::new(PrivateKeySigner::from_bytes(&secret).expect("valid key"))
                } else {
                    Arc::new(MockSigner(Address::from_word(secret)))
                }
            })
            .collect();
        let keys: Vec<Address> = signers.iter().map(|s| s.address()).collect();
        let weights: Vec<u64> = (0..sc.validators)
            .map(|_| {
                if sc.equal_stake {
                    100
                } else {
                    rng.random_range(1..=100)
                }
            })
            .collect();
        let stakers: Vec<(Address, u64)> =
            keys.iter().copied().zip(weights.iter().copied()).collect();
        let thresholds = Threshold::defaults();
        let mut nodes = Vec::new();
        let mut records = Vec::new();
        for signer in &signers {
            let (eras, effects) = node(
                &sc,
                seed,
                &stakers,
                signer.clone(),
                Vec::new(),
                Vec::new(),
                0,
            );
            let mut r = BTreeMap::new();
            for e in effects {
                if let Effect::EraStarted(rec) = e {
                    r.insert(rec.era, rec);
                }
            }
            nodes.push(eras);
            records.push(r);
        }
        let n = sc.validators;
        let mut sim = Self {
            seed,
            rng,
            nodes,
            keys,
            signers,
            weights,
            now: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_id: 0,
            timers: HashSet::new(),
            persisted: vec![Vec::new(); n],
            records,
            finalized: vec![vec![Vec::new(); thresholds.len()]; n],
            decided: vec![BTreeMap::new(); thresholds.len()],
            thresholds,
            proposed_at: HashMap::new(),
            creators: HashMap::new(),
            archive: HashMap::new(),
            units_created: 0,
            bytes_created: 0,
            units_handled: 0,
            handle_time: Duration::ZERO,
            failure: None,
            sc,
        };
        for i in 0..n {
            sim.push(1, Event::Timer(i));
        }
        for c in sim.sc.crashes.clone() {
            if let Some(t) = c.restart {
                sim.push(t, Event::Restart(c.validator as usize));
            }
        }
        sim
    }

    fn fail(&mut self, msg: String) {
        if self.failure.is_none() {
            self.failure = Some(format!(
                "scenario {} seed {} at {} ms: {msg} (replay with KOMA_SIM_SEED={})",
                self.sc.name, self.seed, self.now, self.seed
            ));
        }
    }

    fn push(&mut self, at: Timestamp, event: Event) {
        let id = self.next_id;
        self.next_id += 1;
        self.events.insert(id, event);
        self.queue.push(Reverse((at, id)));
    }

    fn down(&self, i: usize, at: u64) -> bool {
        self.sc
            .crashes
            .iter()
            .any(|c| c.validator as usize == i && at >= c.at && c.restart.is_none_or(|r| at < r))
    }

    fn is_equivocator(&self, i: usize) -> bool {
        self.sc.equivocators.contains(&(i as ValidatorIndex))
    }

    fn delay(&mut self, from: usize, to: usize) -> u64 {
        let d = self.rng.random_range(self.sc.min_delay..=self.sc.max_delay);
        let half = self.sc.validators / 2;
        let split = (from < half) != (to < half);
        if split && self.now < self.sc.partition_until {
            self.sc.partition_until - self.now + d
        } else {
            d
        }
    }

    /// A random node other than `me` (asked for units: it may be down).
    fn other(&mut self, me: usize) -> usize {
        let n = self.sc.validators;
        let pick = self.rng.random_range(0..n.saturating_sub(1).max(1));
        if pick >= me { (pick + 1) % n } else { pick }
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        let d = self.delay(from, to);
        self.push(self.now + d, Event::Deliver(to, msg));
    }

    fn broadcast_unit(&mut self, from: usize, unit: SignedUnit) {
        let n = self.sc.validators;
        self.units_created += 1;
        self.bytes_created += unit.to_bytes().len();
        self.creators.insert(unit.hash(), from);
        self.archive.insert(unit.hash(), unit.clone());
        if self.is_equivocator(from) {
            // A second version of the unit (other value or timestamp), to half the others.
            let mut other = unit.unit.clone();
            match other.value {
                Some(v) => other.value = Some(keccak256(v)),
                None => other.timestamp += 1,
            }
            let fork = SignedUnit {
                signature: self.signers[from].sign(&other.hash()),
                unit: other,
            };
            self.creators.insert(fork.hash(), from);
            self.archive.insert(fork.hash(), fork.clone());
            for to in (0..n).filter(|t| *t != from) {
                let u = if to % 2 == 0 {
                    unit.clone()
                } else {
                    fork.clone()
                };
                self.send(from, to, Msg::Unit(u));
            }
            return;
        }
        for to in (0..n).filter(|t| *t != from) {
            self.send(from, to, Msg::Unit(unit.clone()));
        }
    }

    fn apply(&mut self, node: usize, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Persist(u) => self.persisted[node].push(u),
                // Peers' units are not kept across a simulated crash: a restarted node
                // fetches them again (the harder case for catching up).
                Effect::Store(_) => {}
                Effect::Broadcast(u) => {
                    if let Some(v) = u.unit.value {
                        self.proposed_at.entry(v).or_insert(u.unit.timestamp);
                    }
                    self.broadcast_unit(node, u)
                }
                Effect::Evidence(ev) => {
                    let culprit = self.keys.iter().position(|k| {
                        self.nodes[node]
                            .era_of(&ev.a.unit.instance_id)
                            .and_then(|e| self.nodes[node].era(e))
                            .and_then(|h| h.state().validators.key(ev.creator()))
                            == Some(k)
                    });
                    if let Some(c) = culprit
                        && !self.is_equivocator(c)
                    {
                        self.fail(format!(
                            "SAFETY: honest validator {c} equivocated (seen by node {node})"
                        ));
                    }
                    for to in (0..self.sc.validators).filter(|t| *t != node) {
                        self.send(node, to, Msg::Evidence(ev.clone()));
                    }
                }
                Effect::Request(h) => {
                    let to = self.other(node);
                    self.send(node, to, Msg::Request(h, node));
                }
                Effect::RequestLatest(instance) => {
                    for _ in 0..2 {
                        let to = self.other(node);
                        self.send(node, to, Msg::RequestLatest(instance, node));
                    }
                }
                Effect::EraStarted(record) => {
                    self.records[node].insert(record.era, record);
                }
                Effect::EraClosed { .. } => {}
                Effect::Timer(t) => {
                    if self.timers.insert((node, t)) {
                        self.push(t.max(self.now), Event::Timer(node));
                    }
                }
                Effect::Finalized {
                    threshold,
                    block,
                    era,
                    height,
                    ..
                } => self.on_finalized(node, threshold, block, era, height),
                Effect::Invalid { unit, error } => {
                    // Units of equivocators may be refused (e.g. once they are banned);
                    // an honest unit never may.
                    let creator = self.creators.get(&unit).copied();
                    if creator.is_none_or(|c| !self.is_equivocator(c)) {
                        self.fail(format!(
                            "node {node} found unit {unit} of {creator:?} invalid: {error}"
                        ));
                    }
                }
                Effect::RoundExp(_) => {}
            }
        }
    }

    fn on_finalized(&mut self, node: usize, threshold: usize, block: B256, era: u64, height: u64) {
        self.finalized[node][threshold].push((block, self.now));
        if self.is_equivocator(node) {
            return;
        }
        let th = self.thresholds[threshold];
        if self.faulty_weight() > th.ftt(self.total()) {
            return;
        }
        let height = (era, height);
        match self.decided[threshold].get(&height) {
            None => {
                self.decided[threshold].insert(height, (block, node));
            }
            Some((other, first)) if *other != block => {
                let (other, first) = (*other, *first);
                self.fail(format!(
                    "SAFETY: nodes {first} and {node} finalized different blocks at (era, height) {height:?} at threshold {}/{} ({other} vs {block}; faulty weight {} of {})\n{}\n{}",
                    th.num,
                    th.den,
                    self.faulty_weight(),
                    self.total(),
                    self.diagnose(first),
                    self.diagnose(node)
                ));
            }
            Some(_) => {}
        }
    }

    fn restart(&mut self, i: usize) {
        // A fresh instance that reloads what the node persisted, exactly as the node
        // does after a crash: it must not sign before its own units are back.
        let records: Vec<EraRecord> = self.records[i].values().cloned().collect();
        let stakers: Vec<(Address, u64)> = self
            .keys
            .iter()
            .copied()
            .zip(self.weights.iter().copied())
            .collect();
        let (h, effects) = node(
            &self.sc,
            self.seed,
            &stakers,
            self.signers[i].clone(),
            records,
            self.persisted[i].clone(),
            self.now,
        );
        self.nodes[i] = h;
        self.finalized[i] = vec![Vec::new(); self.thresholds.len()];
        // Finality of the reloaded units is not news; units signed later are.
        let effects: Vec<Effect> = effects
            .into_iter()
            .filter(|e| !matches!(e, Effect::Finalized { .. }))
            .collect();
        self.apply(i, effects);
        // Catch up: ask peers for their latest units (their dependencies follow by
        // request), as the node's sync does.
        let instance = self.nodes[i]
            .records()
            .last()
            .map(|r| r.instance_id)
            .unwrap_or_default();
        for _ in 0..3 {
            let to = self.other(i);
            self.send(i, to, Msg::RequestLatest(instance, i));
        }
        self.timers.retain(|(m, _)| *m != i);
        self.push(self.now, Event::Timer(i));
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((at, id))) = self.queue.pop() else {
            return false;
        };
        if at > self.sc.duration || self.failure.is_some() {
            return false;
        }
        self.now = at;
        let Some(event) = self.events.remove(&id) else {
            return true;
        };
        let node = match &event {
            Event::Deliver(to, _) => *to,
            Event::Timer(n) | Event::Restart(n) => *n,
        };
        if self.down(node, at) {
            return true;
        }
        let started = Instant::now();
        let effects = match event {
            Event::Restart(n) => {
                self.restart(n);
                Vec::new()
            }
            Event::Timer(n) => {
                self.timers.retain(|(m, t)| *m != n || *t > at);
                let value = keccak256(format!("milestone {n} {at}"));
                self.nodes[n].set_candidate(Some(value));
                self.nodes[n].handle_timer(at)
            }
            Event::Deliver(to, Msg::Unit(u)) => {
                self.units_handled += 1;
                self.nodes[to].handle_unit(u, at)
            }
            Event::Deliver(to, Msg::Evidence(ev)) => self.nodes[to].handle_evidence(ev, at),
            Event::Deliver(to, Msg::Request(h, from)) => {
                // From memory, or from the node's disk (every unit it has seen).
                let found = self.nodes[to]
                    .unit(&h)
                    .cloned()
                    .or_else(|| self.archive.get(&h).cloned());
                if let Some(u) = found {
                    self.send(to, from, Msg::Unit(u));
                }
                Vec::new()
            }
            Event::Deliver(to, Msg::RequestLatest(instance, from)) => {
                let units: Vec<SignedUnit> = self.nodes[to]
                    .latest_units(&instance)
                    .into_iter()
                    .cloned()
                    .collect();
                for u in units {
                    self.send(to, from, Msg::Unit(u));
                }
                Vec::new()
            }
        };
        self.handle_time += started.elapsed();
        self.apply(node, effects);
        true
    }

    /// What a node's view looks like, for failure messages.
    fn diagnose(&self, i: usize) -> String {
        let eras = &self.nodes[i];
        let Some(h) = eras.current() else {
            return "no era".into();
        };
        let st = h.state();
        let last: Vec<String> = self.finalized[i]
            .iter()
            .map(|l| l.last().map_or("-".into(), |(_, at)| at.to_string()))
            .collect();
        let tip = st.fork_choice(st.latest());
        let tip_h = tip.and_then(|t| st.block(&t)).map(|b| b.height);
        let detectors: Vec<String> = h
            .detectors()
            .iter()
            .map(|d| {
                let last = d.last_finalized();
                format!(
                    "{:?} h{:?} on-tip {}",
                    d.status(),
                    last.and_then(|l| st.block(&l)).map(|b| b.height),
                    match (tip, last) {
                        (Some(t), Some(l)) => st.extends(&t, &l),
                        _ => false,
                    }
                )
            })
            .collect();
        let latest: Vec<String> = st
            .validators
            .indices()
            .map(|v| match st.latest_unit(v) {
                Some(u) => format!("{v}:{}@{}e{}", u.seq, u.timestamp, u.round_exp),
                None if st.is_faulty(v) => format!("{v}:faulty"),
                None => format!("{v}:-"),
            })
            .collect();
        format!(
            "node {i}: era {}, tip height {tip_h:?}, units {}, pending {}, round exp {:?}, last finalization per threshold at {last:?}, detectors {detectors:?}, faulty weight {}, latest {latest:?}",
            eras.current_era(),
            st.units_len(),
            h.pending_len(),
            h.round_exp(),
            st.faulty_weight()
        )
    }

    fn honest(&self) -> Vec<usize> {
        (0..self.sc.validators)
            .filter(|i| !self.is_equivocator(*i))
            .collect()
    }

    fn faulty_weight(&self) -> u64 {
        self.sc
            .equivocators
            .iter()
            .map(|v| self.weights[*v as usize])
            .sum()
    }

    fn total(&self) -> u64 {
        self.weights.iter().sum()
    }

    fn run(mut self) -> Result<Report, String> {
        while self.step() {}
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        let stable = self.sc.stable_from();
        let total = self.total();
        let faulty = self.faulty_weight();
        let end = self.sc.duration;
        let online_honest: Vec<usize> = self
            .honest()
            .into_iter()
            .filter(|i| !self.down(*i, end))
            .collect();
        let crashed: u64 = (0..self.sc.validators)
            .filter(|i| self.down(*i, end))
            .map(|i| self.weights[i])
            .sum();
        let honest_online: u64 = online_honest.iter().map(|i| self.weights[*i]).sum();
        let mut live = Vec::new();
        for (t, th) in self.thresholds.iter().enumerate() {
            let ftt = th.ftt(total);
            // Theorem 2: liveness is owed with f <= t and c < (W - 3t)/2.
            let owed = faulty <= ftt
                && u128::from(crashed) * 2 < u128::from(total).saturating_sub(3 * u128::from(ftt));
            if !owed {
                continue;
            }
            // The summit level the live honest weight can reach, and the rounds that
            // takes (one level per round, plus a few to settle).
            let Some(level) = (1..=63).find(|k| quorum(total, ftt, *k) <= honest_online) else {
                return Err(format!(
                    "scenario {} seed {}: Theorem 2 owes liveness at {}/{} but no summit level fits (honest online {honest_online} of {total})",
                    self.sc.name, self.seed, th.num, th.den
                ));
            };
            // Rounds may have doubled once while the network was unstable.
            let round = self.sc.min_round_len << self.sc.max_round_exp.min(1);
            let needed = stable + u64::from(level + 4) * round;
            if needed > end {
                return Err(format!(
                    "scenario {} is too short to check liveness at {}/{}: it needs {needed} ms (summit level {level}), runs {end} ms",
                    self.sc.name, th.num, th.den
                ));
            }
            live.push(format!("{}/{}", th.num, th.den));
            for i in &online_honest {
                let after = self.finalized[*i][t]
                    .iter()
                    .filter(|(_, at)| *at > needed.saturating_sub(2 * round))
                    .count();
                if after < 1 {
                    return Err(format!(
                        "scenario {} seed {}: LIVENESS: node {i} finalized nothing at {}/{} after {} ms (stable from {stable} ms; faulty {faulty}, crashed {crashed}, honest online {honest_online} of {total}; replay with KOMA_SIM_SEED={})\n{}",
                        self.sc.name,
                        self.seed,
                        th.num,
                        th.den,
                        needed.saturating_sub(2 * round),
                        self.seed,
                        (0..self.sc.validators)
                            .map(|j| self.diagnose(j))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ));
                }
            }
        }
        for i in &online_honest {
            for e in &self.sc.equivocators {
                // Banned from the current era, or caught in it.
                let key = self.keys[*e as usize];
                let known = self.nodes[*i].current().is_some_and(|h| {
                    let st = h.state();
                    st.validators.index_of(&key).is_none_or(|x| st.is_faulty(x))
                });
                if !known {
                    return Err(format!(
                        "scenario {} seed {}: node {i} never learned that {e} equivocated",
                        self.sc.name, self.seed
                    ));
                }
            }
        }
        let mut latencies = Vec::new();
        let one_third = self
            .thresholds
            .iter()
            .position(|t| *t == Threshold::new(1, 3))
            .unwrap_or(0);
        for i in &online_honest {
            let eras = &self.nodes[*i];
            for (block, at) in &self.finalized[*i][one_third] {
                let value = eras
                    .records()
                    .iter()
                    .find_map(|r| eras.era(r.era)?.state().block(block).map(|b| b.value));
                if let Some(value) = value
                    && let Some(p) = self.proposed_at.get(&value)
                {
                    latencies.push(at - p);
                }
            }
        }
        let digest = {
            let mut pre = Vec::new();
            for node in &self.finalized {
                for list in node {
                    for (b, at) in list {
                        pre.extend_from_slice(b.as_slice());
                        pre.extend_from_slice(&at.to_be_bytes());
                    }
                }
            }
            keccak256(pre)
        };
        let first = online_honest.first().copied().unwrap_or(0);
        let finalized_after_stable = (0..self.thresholds.len())
            .map(|t| {
                online_honest
                    .iter()
                    .map(|i| {
                        self.finalized[*i][t]
                            .iter()
                            .filter(|(_, at)| *at > stable)
                            .count()
                    })
                    .min()
                    .unwrap_or(0)
            })
            .collect();
        Ok(Report {
            scenario: self.sc.name.clone(),
            seed: self.seed,
            digest,
            live_thresholds: live,
            finalized: self.finalized[first].iter().map(Vec::len).collect(),
            finalized_after_stable,
            latencies,
            units_created: self.units_created,
            units_handled: self.units_handled,
            handle_time: self.handle_time,
            bytes_per_unit: self.bytes_created as f64 / self.units_created.max(1) as f64,
            simulated_ms: self.sc.duration,
            eras: self.nodes[first].current_era(),
            banned: (0..self.sc.validators)
                .filter(|v| {
                    self.nodes[first]
                        .current()
                        .is_some_and(|h| h.state().validators.index_of(&self.keys[*v]).is_none())
                })
                .map(|v| v as ValidatorIndex)
                .collect(),
            round_exps: online_honest
                .iter()
                .filter_map(|i| self.nodes[*i].current().and_then(|h| h.round_exp()))
                .collect(),
        })
    }
}

/// Runs `scenario` with `seed`. `Err` describes the first violated invariant (with
/// the seed to replay it).
pub fn run(scenario: Scenario, seed: u64) -> Result<Report, String> {
    Sim::new(scenario, seed).run()
}
