//! Seeded, replayable simulations of KoMaBFT: many validators of unequal stake, random
//! message delays and reordering, partitions that heal, crashed validators and
//! equivocators, with no real network and no real clock.
//!
//! Invariants checked after every event:
//! - safety (Theorem 1): at every threshold `t` whose fault tolerance covers the
//!   equivocators' weight, no two honest validators finalize conflicting blocks;
//! - no honest unit is ever found invalid.
//!
//! At the end: liveness (Theorem 2) — where the honest validators that stayed online
//! can form the quorum, every honest online validator finalized new blocks after the
//! network stabilised; and determinism — the same seed gives the same digest.
//!
//! `KOMA_SIM_SEEDS=n` runs n seeds per scenario (default: a few, for CI);
//! `KOMA_SIM_SEED=s` replays one seed. A failure prints the seed.

use alloy_primitives::{Address, B256, Bytes, keccak256};
use koma_consensus::{
    Effect, Evidence, Highway, Params, SignedUnit, Threshold, Timestamp, UnitSigner, UnitVerifier,
    ValidatorIndex, Validators, quorum,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

/// Test keys: a signature is `keccak(address ‖ hash)`. Cheap enough for 100 validators;
/// the real secp256k1 keys are tested in the crate's unit tests.
struct MockSigner(Address);

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

struct MockVerifier;

impl UnitVerifier for MockVerifier {
    fn verify(&self, key: &Address, hash: &B256, signature: &[u8]) -> bool {
        signature == mock_sig(key, hash).as_ref()
    }
}

#[derive(Clone, Debug)]
struct Scenario {
    name: &'static str,
    validators: usize,
    /// Simulated time, ms.
    duration: u64,
    min_delay: u64,
    max_delay: u64,
    /// Validators that stop for good at the given time.
    crashes: Vec<(ValidatorIndex, u64)>,
    /// Validators that sign two versions of every unit, each sent to half the others.
    equivocators: Vec<ValidatorIndex>,
    /// Until this time, messages between the two halves are held back.
    partition_until: u64,
    min_round_len: u64,
}

impl Scenario {
    fn stable_from(&self) -> u64 {
        self.partition_until
            .max(self.crashes.iter().map(|(_, t)| *t).max().unwrap_or(0))
    }
}

enum Msg {
    Unit(SignedUnit),
    Evidence(Evidence),
    Request(B256, usize),
}

enum Event {
    Deliver(usize, Msg),
    Timer(usize),
}

struct Sim {
    sc: Scenario,
    seed: u64,
    rng: StdRng,
    nodes: Vec<Highway>,
    keys: Vec<Address>,
    weights: Vec<u64>,
    now: Timestamp,
    queue: BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    events: HashMap<usize, Event>,
    next_id: usize,
    timers: HashSet<(usize, Timestamp)>,
    /// Finalized blocks per node and threshold, with the time.
    finalized: Vec<Vec<Vec<(B256, Timestamp)>>>,
    thresholds: Vec<Threshold>,
    proposed_at: HashMap<B256, Timestamp>,
}

fn thresholds() -> Vec<Threshold> {
    Threshold::defaults()
}

impl Sim {
    fn new(sc: Scenario, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let keys: Vec<Address> = (0..sc.validators)
            .map(|i| Address::from_word(keccak256(format!("validator {i}"))))
            .collect();
        let weights: Vec<u64> = (0..sc.validators)
            .map(|_| rng.random_range(1..=100))
            .collect();
        let validators =
            Validators::new(keys.iter().copied().zip(weights.iter().copied())).unwrap();
        let params = Params {
            instance_id: keccak256(format!("sim {seed}")),
            seed: keccak256(format!("leaders {seed}")),
            min_round_len: sc.min_round_len,
            round_exp: 0,
            max_round_exp: 8,
            era_start: 0,
            max_future: 60_000,
        };
        let nodes = keys
            .iter()
            .map(|k| {
                Highway::new(
                    validators.clone(),
                    params.clone(),
                    &thresholds(),
                    Some(Box::new(MockSigner(*k))),
                    Box::new(MockVerifier),
                    true,
                )
            })
            .collect();
        let n = sc.validators;
        let mut sim = Self {
            sc,
            seed,
            rng,
            nodes,
            keys,
            weights,
            now: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_id: 0,
            timers: HashSet::new(),
            finalized: vec![vec![Vec::new(); thresholds().len()]; n],
            thresholds: thresholds(),
            proposed_at: HashMap::new(),
        };
        for i in 0..n {
            sim.push(1, Event::Timer(i));
        }
        sim
    }

    fn push(&mut self, at: Timestamp, event: Event) {
        let id = self.next_id;
        self.next_id += 1;
        self.events.insert(id, event);
        self.queue.push(Reverse((at, id as u64, id)));
    }

    fn crashed(&self, i: usize, at: u64) -> bool {
        self.sc
            .crashes
            .iter()
            .any(|(v, t)| *v as usize == i && at >= *t)
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

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        let d = self.delay(from, to);
        self.push(self.now + d, Event::Deliver(to, msg));
    }

    fn broadcast_unit(&mut self, from: usize, unit: SignedUnit) {
        let n = self.sc.validators;
        if self.is_equivocator(from) {
            // A second version of the unit (other value or timestamp), to half the others.
            let mut other = unit.unit.clone();
            match other.value {
                Some(v) => other.value = Some(keccak256(v)),
                None => other.timestamp += 1,
            }
            let fork = SignedUnit {
                signature: mock_sig(&self.keys[from], &other.hash()),
                unit: other,
            };
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
                Effect::Persist(_) => {}
                Effect::Broadcast(u) => {
                    if let Some(v) = u.unit.value {
                        self.proposed_at.entry(v).or_insert(u.unit.timestamp);
                    }
                    self.broadcast_unit(node, u)
                }
                Effect::Evidence(ev) => {
                    for to in (0..self.sc.validators).filter(|t| *t != node) {
                        self.send(node, to, Msg::Evidence(ev.clone()));
                    }
                }
                Effect::Request(h) => {
                    let to = self.rng.random_range(0..self.sc.validators);
                    if to != node {
                        self.send(node, to, Msg::Request(h, node));
                    }
                }
                Effect::Timer(t) => {
                    if self.timers.insert((node, t)) {
                        self.push(t.max(self.now), Event::Timer(node));
                    }
                }
                Effect::Finalized {
                    threshold, block, ..
                } => self.finalized[node][threshold].push((block, self.now)),
                Effect::Invalid { unit, error } => {
                    panic!(
                        "seed {} ({}): node {node} found unit {unit} invalid: {error}",
                        self.seed, self.sc.name
                    )
                }
            }
        }
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((at, _, id))) = self.queue.pop() else {
            return false;
        };
        if at > self.sc.duration {
            return false;
        }
        self.now = at;
        let Some(event) = self.events.remove(&id) else {
            return true;
        };
        let node = match &event {
            Event::Deliver(to, _) => *to,
            Event::Timer(n) => *n,
        };
        if self.crashed(node, at) {
            return true;
        }
        let effects = match event {
            Event::Timer(n) => {
                self.timers.retain(|(m, t)| *m != n || *t > at);
                let value = keccak256(format!("milestone {n} {at}"));
                self.nodes[n].set_candidate(Some(value));
                self.nodes[n].handle_timer(at)
            }
            Event::Deliver(to, Msg::Unit(u)) => self.nodes[to].handle_unit(u, at),
            Event::Deliver(to, Msg::Evidence(ev)) => self.nodes[to].handle_evidence(ev, at),
            Event::Deliver(to, Msg::Request(h, from)) => {
                if let Some(u) = self.nodes[to].unit(&h).cloned() {
                    self.send(to, from, Msg::Unit(u));
                }
                Vec::new()
            }
        };
        self.apply(node, effects);
        self.check_safety();
        true
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

    fn check_safety(&self) {
        let faulty = self.faulty_weight();
        let honest = self.honest();
        for (t, th) in self.thresholds.iter().enumerate() {
            if faulty > th.ftt(self.total()) {
                continue;
            }
            for a in &honest {
                for b in &honest {
                    let (fa, fb) = (&self.finalized[*a][t], &self.finalized[*b][t]);
                    let common = fa.len().min(fb.len());
                    for k in 0..common {
                        assert_eq!(
                            fa[k].0,
                            fb[k].0,
                            "seed {} ({}): nodes {a} and {b} finalized different blocks at height {k} at threshold {}/{} (faulty weight {faulty} of {})",
                            self.seed,
                            self.sc.name,
                            th.num,
                            th.den,
                            self.total()
                        );
                    }
                }
            }
        }
    }

    fn run(mut self) -> Report {
        while self.step() {}
        let stable = self.sc.stable_from();
        let total = self.total();
        let faulty = self.faulty_weight();
        let online_honest: Vec<usize> = self
            .honest()
            .into_iter()
            .filter(|i| !self.crashed(*i, u64::MAX))
            .collect();
        let online_weight: u64 = online_honest.iter().map(|i| self.weights[*i]).sum();
        let mut live_thresholds = Vec::new();
        for (t, th) in self.thresholds.iter().enumerate() {
            let ftt = th.ftt(total);
            // Liveness is owed where the equivocators stay within the tolerance and the
            // honest online weight reaches the quorum of a summit of a few levels.
            if faulty > ftt || online_weight < quorum(total, ftt, 6) {
                continue;
            }
            live_thresholds.push(t);
            for i in &online_honest {
                let after = self.finalized[*i][t]
                    .iter()
                    .filter(|(_, at)| *at > stable + 4 * self.sc.min_round_len)
                    .count();
                assert!(
                    after >= 2,
                    "seed {} ({}): node {i} finalized only {after} blocks at {}/{} after the network stabilised at {stable} ms (online honest weight {online_weight} of {total}, faulty {faulty})",
                    self.seed,
                    self.sc.name,
                    th.num,
                    th.den
                );
            }
        }
        // Every honest node ends up knowing every equivocator.
        for i in &online_honest {
            for e in &self.sc.equivocators {
                assert!(
                    self.nodes[*i].state().is_faulty(*e),
                    "seed {} ({}): node {i} never learned that {e} equivocated",
                    self.seed,
                    self.sc.name
                );
            }
        }
        // Latency from proposal to finality at 1/3, for the figures.
        let mut latencies = Vec::new();
        for i in &online_honest {
            for (block, at) in &self.finalized[*i][1] {
                if let Some(value) = self.nodes[*i].state().block(block).map(|b| b.value)
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
        let units = self
            .nodes
            .iter()
            .map(|n| n.state().units_len())
            .max()
            .unwrap_or(0);
        Report {
            digest,
            live_thresholds,
            latencies,
            units,
            finalized: self.finalized[online_honest[0]]
                .iter()
                .map(Vec::len)
                .collect(),
        }
    }
}

#[derive(Debug)]
struct Report {
    digest: B256,
    live_thresholds: Vec<usize>,
    latencies: Vec<u64>,
    units: usize,
    finalized: Vec<usize>,
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("KOMA_SIM_SEED") {
        return vec![s.parse().expect("KOMA_SIM_SEED must be a number")];
    }
    let n: u64 = std::env::var("KOMA_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    (1..=n).collect()
}

fn run_scenario(sc: Scenario) {
    for seed in seeds() {
        let report =
            std::panic::catch_unwind(|| Sim::new(sc.clone(), seed).run()).unwrap_or_else(|e| {
                eprintln!(
                    "FAILED: scenario {} seed {seed}; replay with KOMA_SIM_SEED={seed}",
                    sc.name
                );
                std::panic::resume_unwind(e)
            });
        let again = Sim::new(sc.clone(), seed).run();
        assert_eq!(
            report.digest, again.digest,
            "seed {seed} ({}): not deterministic",
            sc.name
        );
        let mut lat = report.latencies.clone();
        lat.sort_unstable();
        let p50 = lat.get(lat.len() / 2).copied().unwrap_or(0);
        eprintln!(
            "{} seed {seed}: finalized per threshold {:?}, live thresholds {:?}, units {}, latency at 1/3 p50 {p50} ms",
            sc.name, report.finalized, report.live_thresholds, report.units
        );
    }
}

#[test]
fn honest_validators_finalize_at_every_threshold() {
    run_scenario(Scenario {
        name: "honest-7",
        validators: 7,
        duration: 20_000,
        min_delay: 5,
        max_delay: 60,
        crashes: vec![],
        equivocators: vec![],
        partition_until: 0,
        min_round_len: 512,
    });
}

#[test]
fn crashed_validators_within_the_bound() {
    run_scenario(Scenario {
        name: "crash-10",
        validators: 10,
        duration: 30_000,
        min_delay: 5,
        max_delay: 80,
        crashes: vec![(3, 5_000)],
        equivocators: vec![],
        partition_until: 0,
        min_round_len: 512,
    });
}

#[test]
fn a_partition_heals() {
    run_scenario(Scenario {
        name: "partition-8",
        validators: 8,
        duration: 30_000,
        min_delay: 5,
        max_delay: 50,
        crashes: vec![],
        equivocators: vec![],
        partition_until: 8_000,
        min_round_len: 512,
    });
}

#[test]
fn equivocators_are_exposed_and_safety_holds() {
    run_scenario(Scenario {
        name: "equivocate-9",
        validators: 9,
        duration: 30_000,
        min_delay: 5,
        max_delay: 60,
        crashes: vec![],
        equivocators: vec![4],
        partition_until: 0,
        min_round_len: 512,
    });
}

#[test]
#[ignore = "long: 100 validators (run with --ignored)"]
fn hundred_validators() {
    run_scenario(Scenario {
        name: "hundred",
        validators: 100,
        duration: 15_000,
        min_delay: 25,
        max_delay: 75,
        crashes: vec![(7, 3_000)],
        equivocators: vec![11],
        partition_until: 2_000,
        min_round_len: 1024,
    });
}
