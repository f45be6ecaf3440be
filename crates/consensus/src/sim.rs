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
//! With [`Scenario::l2`] the values are a modelled L2 chain instead of opaque hashes:
//! validators take turns producing blocks on their own head, blocks travel by gossip
//! that does not cross a partition, a node imports a block only once it has its
//! parent (asking the sender for missing ancestors), follows the longest chain that
//! contains its last final block (so it reorgs as blocks arrive), and proposes its
//! head. A proposal naming a block the node has not imported waits, and the node
//! fetches it ([`Effect::RequestValue`]). Checked on top: final blocks of all nodes
//! lie on one L2 chain; every node's head contains its final block; after every heal,
//! every online honest node finalizes a *new* L2 block at 1/3 within a few rounds.
//!
//! Used by the crate's tests (`tests/sim.rs`) and by `koma bench consensus`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use crate::era::{EraSets, Eras, ErasConfig, NextSet, SameSet};
use crate::types::EraRecord;
use crate::unit::Secp256k1Verifier;
use crate::{
    AnyValue, Effect, Evidence, SignedUnit, Threshold, Timestamp, UnitSigner, UnitVerifier,
    ValidatorIndex, Validity, ValueCheck, quorum,
};
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes, keccak256};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
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
    /// More splits into the two halves, as `[start, end)` windows (ms).
    pub partitions: Vec<(u64, u64)>,
    /// Model the L2 chain (see the module notes): a block every this many ms.
    pub l2: Option<u64>,
    pub min_round_len: u64,
    pub max_round_exp: u8,
    /// All validators weigh the same (otherwise 1..=100 at random).
    pub equal_stake: bool,
    /// Blocks per era (`u64::MAX`: one era for the whole run).
    pub era_blocks: u64,
    /// Real secp256k1 keys and signatures (as in the node) instead of the cheap mock.
    pub real_keys: bool,
    /// `(validator, at)`: the validator's storage fails at `at` ms and its host calls
    /// `stop_signing` (as the node does when an own unit cannot be persisted). It
    /// must create no unit after that, and the others go on finalizing.
    pub stop_signing: Vec<(ValidatorIndex, u64)>,
    /// The validator set changes at every era switch (see [`SimSets`]): the last
    /// validator joins in era 1, validator 0 leaves in era 2, weights change. Each
    /// node learns a new set only on its second look (as a node reads it from L1).
    pub set_changes: bool,
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
            partitions: Vec::new(),
            l2: None,
            min_round_len: 512,
            max_round_exp: 6,
            equal_stake: false,
            era_blocks: u64::MAX,
            real_keys: false,
            stop_signing: Vec::new(),
            set_changes: false,
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
        let heal = self.partitions.iter().map(|(_, e)| *e).max().unwrap_or(0);
        self.partition_until.max(crash_times).max(heal)
    }

    /// The end of the split window `at` falls in, if any.
    fn split_until(&self, at: u64) -> Option<u64> {
        if at < self.partition_until {
            return Some(self.partition_until);
        }
        self.partitions
            .iter()
            .find(|(s, e)| *s <= at && at < *e)
            .map(|(_, e)| *e)
    }
}

/// An L2 block of the modelled chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct L2Block {
    parent: B256,
    number: u64,
}

/// One node's L2 chain: the blocks it imported, its head, its last final block and the
/// block the validators' fork choice builds on (as the node: its head must contain it).
#[derive(Debug)]
struct NodeChain {
    known: HashMap<B256, L2Block>,
    head: B256,
    last_final: B256,
    estimate: B256,
}

impl NodeChain {
    fn new(genesis: B256) -> Self {
        let known = HashMap::from([(
            genesis,
            L2Block {
                parent: B256::ZERO,
                number: 0,
            },
        )]);
        Self {
            known,
            head: genesis,
            last_final: genesis,
            estimate: genesis,
        }
    }

    /// The block the head must contain: the validators' fork choice if it is imported
    /// and contains the last final block, else the last final block.
    fn floor(&self) -> B256 {
        if self.extends(&self.estimate, &self.last_final) == Some(true) {
            self.estimate
        } else {
            self.last_final
        }
    }

    /// Whether `b` is `ancestor` or descends from it (both known).
    fn extends(&self, b: &B256, ancestor: &B256) -> Option<bool> {
        let target = self.known.get(ancestor)?.number;
        let mut cursor = *b;
        loop {
            let block = self.known.get(&cursor)?;
            if block.number <= target {
                return Some(cursor == *ancestor);
            }
            cursor = block.parent;
        }
    }

    /// Fork choice, as the node's: the longest chain that contains the floor (the
    /// validators' fork choice, or the last final block); a longer one only replaces
    /// the head, ties keep it.
    fn choose_head(&mut self) {
        let floor = self.floor();
        let mut best = (self.known[&self.head].number, self.head);
        if self.extends(&self.head, &floor) != Some(true) {
            best = (self.known[&floor].number, floor);
        }
        let mut candidates: Vec<(u64, B256)> = self
            .known
            .iter()
            .filter(|(_, b)| b.number > best.0)
            .map(|(h, b)| (b.number, *h))
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        for (n, h) in candidates {
            if self.extends(&h, &floor) == Some(true) {
                best = (n, h);
                break;
            }
        }
        self.head = best.1;
    }
}

/// The node's value rule on the modelled chain, as the node's: a proposal is valid
/// once its block is imported and descends from the parent milestone's block.
struct ModelValues(Arc<Mutex<NodeChain>>);

impl ValueCheck for ModelValues {
    fn check(&self, value: &B256, parent: &B256) -> Validity {
        let chain = self.0.lock().expect("sim lock");
        match chain.extends(value, parent) {
            None => Validity::Unknown,
            Some(true) => Validity::Valid,
            Some(false) => Validity::Invalid,
        }
    }
}

enum Msg {
    Unit(SignedUnit),
    Evidence(Evidence),
    Request(B256, usize),
    RequestLatest(B256, usize),
    /// An L2 block (gossip or an answer).
    Block(B256, L2Block, usize),
    /// A node asks for an L2 block.
    BlockRequest(B256, usize),
    /// A node asks for the peer's L2 head (sync).
    Status(usize),
}

enum Event {
    Deliver(usize, Msg),
    Timer(usize),
    Restart(usize),
    /// The node's storage fails: it stops signing.
    StopSigning(usize),
    /// L2 slot: its producer builds a block.
    Produce(u64),
    /// A node's periodic L2 sync round.
    Sync(usize),
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
    /// Per era the first node entered: the validators that created units in it.
    pub era_creators: Vec<(u64, Vec<usize>)>,
    /// Validators banned from that node's current era (proven equivocators).
    pub banned: Vec<ValidatorIndex>,
    /// Each honest online validator's round exponent at the end.
    pub round_exps: Vec<u8>,
    /// With the L2 model: per heal (end of a split window), the time (ms) until
    /// the last online honest node finalized a new L2 block at 1/3.
    pub heal_to_final: Vec<u64>,
    /// With the L2 model: the highest L2 block final at 1/3 (first honest online
    /// node), and L2 blocks produced in all.
    pub l2_final_number: u64,
    pub l2_blocks: usize,
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
    /// Nodes that stopped signing.
    signing_stopped: Vec<bool>,
    records: Vec<BTreeMap<u64, EraRecord>>,
    /// Finalized blocks per node and threshold, with the time.
    finalized: Vec<Vec<Vec<(B256, Timestamp)>>>,
    /// The first block finalized at each (threshold, era, height) by an honest node.
    decided: Vec<BTreeMap<(u64, u64), (B256, usize)>>,
    proposed_at: HashMap<B256, Timestamp>,
    /// Who created each unit sent (both versions of an equivocation).
    creators: HashMap<B256, usize>,
    /// Validators that created units, by era instance.
    created_in: HashMap<B256, std::collections::BTreeSet<usize>>,
    /// Every unit sent: what nodes hold on disk after an era closed in memory.
    archive: HashMap<B256, SignedUnit>,
    units_created: usize,
    bytes_created: usize,
    units_handled: usize,
    handle_time: Duration,
    failure: Option<String>,
    /// The L2 model: every block produced, each node's chain, blocks waiting for
    /// their parent (per node, by parent), and per threshold the highest final block
    /// any honest node reported (all final blocks must be on its chain).
    l2_blocks: HashMap<B256, L2Block>,
    chains: Vec<Arc<Mutex<NodeChain>>>,
    l2_orphans: Vec<HashMap<B256, Vec<(B256, L2Block)>>>,
    l2_final_tip: Vec<Option<B256>>,
    /// Per node, L2 blocks final at 1/3 with the time.
    l2_final: Vec<Vec<(u64, Timestamp)>>,
    /// `KOMA_SIM_TRACE` set: print proposals, value requests, L2 imports and
    /// finalizations as they happen (to debug one seed).
    trace: bool,
}

fn genesis_value() -> B256 {
    keccak256("genesis")
}

/// The sets of a [`Scenario::set_changes`] run, by era: era 0 (genesis) has every
/// validator but the last; eras `3k + 1` add it and triple validator 1's weight; eras
/// `3k + 2` drop validator 0; eras `3k + 3` are the genesis set again. A node is told
/// `Unknown` the first time it asks for an era's set.
struct SimSets {
    all: Vec<(Address, u64)>,
    asked: Mutex<HashSet<u64>>,
}

impl SimSets {
    fn genesis(all: &[(Address, u64)]) -> Vec<(Address, u64)> {
        all[..all.len().saturating_sub(1)].to_vec()
    }

    fn set(all: &[(Address, u64)], era: u64) -> Vec<(Address, u64)> {
        match era % 3 {
            1 => all
                .iter()
                .enumerate()
                .map(|(i, (a, w))| (*a, if i == 1 { w * 3 } else { *w }))
                .collect(),
            2 => all[1..].to_vec(),
            _ => Self::genesis(all),
        }
    }
}

impl EraSets for SimSets {
    fn next_set(&self, era: u64, _terminal_value: &B256) -> NextSet {
        if self.asked.lock().expect("sim lock").insert(era) {
            return NextSet::Unknown;
        }
        NextSet::Known {
            validators: Self::set(&self.all, era),
            source: None,
        }
    }
}

fn node(
    sc: &Scenario,
    seed: u64,
    stakers: &[(Address, u64)],
    signer: Arc<dyn UnitSigner>,
    records: Vec<EraRecord>,
    units: Vec<SignedUnit>,
    now: Timestamp,
    values: Arc<dyn ValueCheck>,
) -> (Eras, Vec<Effect>) {
    let (genesis, sets): (Vec<(Address, u64)>, Arc<dyn EraSets>) = if sc.set_changes {
        (
            SimSets::genesis(stakers),
            Arc::new(SimSets {
                all: stakers.to_vec(),
                asked: Mutex::default(),
            }),
        )
    } else {
        (stakers.to_vec(), Arc::new(SameSet))
    };
    let config = ErasConfig {
        chain: keccak256(format!("sim {seed}")),
        genesis_value: genesis_value(),
        genesis_time: 0,
        stakers: genesis,
        sets,
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
        values,
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
        let chains: Vec<Arc<Mutex<NodeChain>>> = (0..sc.validators)
            .map(|_| Arc::new(Mutex::new(NodeChain::new(genesis_value()))))
            .collect();
        for (i, signer) in signers.iter().enumerate() {
            let (eras, effects) = node(
                &sc,
                seed,
                &stakers,
                signer.clone(),
                Vec::new(),
                Vec::new(),
                0,
                values_for(&sc, &chains[i]),
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
            signing_stopped: vec![false; n],
            records,
            finalized: vec![vec![Vec::new(); thresholds.len()]; n],
            decided: vec![BTreeMap::new(); thresholds.len()],
            thresholds,
            proposed_at: HashMap::new(),
            creators: HashMap::new(),
            created_in: HashMap::new(),
            archive: HashMap::new(),
            units_created: 0,
            bytes_created: 0,
            units_handled: 0,
            handle_time: Duration::ZERO,
            failure: None,
            l2_blocks: HashMap::from([(
                genesis_value(),
                L2Block {
                    parent: B256::ZERO,
                    number: 0,
                },
            )]),
            chains,
            l2_orphans: vec![HashMap::new(); n],
            l2_final_tip: vec![None; Threshold::defaults().len()],
            l2_final: vec![Vec::new(); n],
            trace: std::env::var_os("KOMA_SIM_TRACE").is_some(),
            sc,
        };
        for i in 0..n {
            sim.push(1, Event::Timer(i));
        }
        if let Some(interval) = sim.sc.l2 {
            sim.push(interval, Event::Produce(1));
            for i in 0..n {
                sim.push(1_000 + i as u64 * 7, Event::Sync(i));
            }
        }
        for (v, at) in sim.sc.stop_signing.clone() {
            sim.push(at, Event::StopSigning(v as usize));
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

    /// Whether `from` and `to` are on different sides of a split in force now.
    fn split(&self, from: usize, to: usize) -> Option<u64> {
        let half = self.sc.validators / 2;
        ((from < half) != (to < half))
            .then(|| self.sc.split_until(self.now))
            .flatten()
    }

    fn delay(&mut self, from: usize, to: usize) -> u64 {
        let d = self.rng.random_range(self.sc.min_delay..=self.sc.max_delay);
        match self.split(from, to) {
            Some(until) => until - self.now + d,
            None => d,
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

    /// L2 traffic (gossip, block requests, sync) does not cross a split: it is lost,
    /// not delayed, as gossip and requests to unreachable peers are.
    fn send_l2(&mut self, from: usize, to: usize, msg: Msg) {
        if self.split(from, to).is_some() {
            return;
        }
        let d = self.rng.random_range(self.sc.min_delay..=self.sc.max_delay);
        self.push(self.now + d, Event::Deliver(to, msg));
    }

    /// The node learned an L2 block: imported if its parent is here (then its
    /// waiting children too), else held while the parent is asked for.
    fn receive_block(&mut self, node: usize, hash: B256, block: L2Block, from: usize) -> bool {
        let mut imported = false;
        let mut queue = vec![(hash, block)];
        while let Some((h, b)) = queue.pop() {
            let parent_known = {
                let mut chain = self.chains[node].lock().expect("sim lock");
                if chain.known.contains_key(&h) {
                    continue;
                }
                let known = chain.known.contains_key(&b.parent);
                if known {
                    chain.known.insert(h, b);
                }
                known
            };
            if parent_known {
                if self.trace {
                    eprintln!(
                        "{} node {node} imported #{} from {from}",
                        self.now, b.number
                    );
                }
                imported = true;
                if let Some(children) = self.l2_orphans[node].remove(&h) {
                    queue.extend(children);
                }
            } else {
                let waiting = self.l2_orphans[node].entry(b.parent).or_default();
                if !waiting.iter().any(|(x, _)| *x == h) {
                    waiting.push((h, b));
                }
                // Asked every time (an earlier answer may have been lost to a split),
                // as the node walks the whole branch back on every fetch.
                self.send_l2(node, from, Msg::BlockRequest(b.parent, node));
            }
        }
        if imported {
            self.chains[node].lock().expect("sim lock").choose_head();
        }
        imported
    }

    fn produce(&mut self, slot: u64) {
        let n = self.sc.validators;
        if let Some(interval) = self.sc.l2 {
            self.push(self.now + interval, Event::Produce(slot + 1));
        }
        let producer = (slot % n as u64) as usize;
        if self.down(producer, self.now) {
            return;
        }
        // During a split the second half produces at half the rate, so the first
        // half's branch is the longer one and the L2 fork choice prefers it, whatever
        // the validators' fork choice (a tie on weight) picks: the two disagree.
        if producer >= n / 2
            && self.sc.split_until(self.now).is_some()
            && (slot / n as u64) % 2 == 1
        {
            return;
        }
        let (hash, block) = {
            let mut chain = self.chains[producer].lock().expect("sim lock");
            let parent = chain.head;
            let block = L2Block {
                parent,
                number: chain.known[&parent].number + 1,
            };
            let hash = keccak256(format!("l2 {producer} {slot} {parent}"));
            chain.known.insert(hash, block);
            chain.head = hash;
            (hash, block)
        };
        self.l2_blocks.insert(hash, block);
        for to in (0..n).filter(|t| *t != producer) {
            self.send_l2(producer, to, Msg::Block(hash, block, producer));
        }
    }

    /// Whether `b` descends from `ancestor` (or is it) in the global block tree.
    fn l2_extends(&self, b: &B256, ancestor: &B256) -> bool {
        let Some(target) = self.l2_blocks.get(ancestor).map(|a| a.number) else {
            return false;
        };
        let mut cursor = *b;
        while let Some(block) = self.l2_blocks.get(&cursor) {
            if block.number <= target {
                return cursor == *ancestor;
            }
            cursor = block.parent;
        }
        false
    }

    /// A final milestone on the L2 model: all final blocks of a threshold must be on
    /// one chain; at 1/3 (the node's threshold) the node's fork choice follows it.
    fn on_final_value(&mut self, node: usize, threshold: usize, value: B256) {
        if self.sc.l2.is_none() || self.is_equivocator(node) {
            return;
        }
        let th = self.thresholds[threshold];
        if self.faulty_weight() <= th.ftt(self.total()) {
            match self.l2_final_tip[threshold] {
                None => self.l2_final_tip[threshold] = Some(value),
                Some(tip) if self.l2_extends(&value, &tip) => {
                    self.l2_final_tip[threshold] = Some(value)
                }
                Some(tip) if self.l2_extends(&tip, &value) => {}
                Some(tip) => self.fail(format!(
                    "SAFETY: node {node} finalized L2 block {value} at {}/{}, which conflicts with final block {tip}",
                    th.num, th.den
                )),
            }
        }
        if th != Threshold::new(1, 3) {
            return;
        }
        let number = {
            let mut chain = self.chains[node].lock().expect("sim lock");
            match chain.extends(&value, &chain.last_final.clone()) {
                Some(true) => {
                    chain.last_final = value;
                    chain.choose_head();
                    Some(chain.known[&value].number)
                }
                Some(false) => None,
                None => {
                    drop(chain);
                    self.fail(format!(
                        "node {node} finalized L2 block {value} it never imported"
                    ));
                    return;
                }
            }
        };
        if self.trace {
            let chain = self.chains[node].lock().expect("sim lock");
            eprintln!(
                "{} node {node} final@1/3 {:?} head {} #{}",
                self.now, number, chain.head, chain.known[&chain.head].number
            );
        }
        match number {
            Some(n) => self.l2_final[node].push((n, self.now)),
            None => {
                let last = self.chains[node].lock().expect("sim lock").last_final;
                if !self.l2_extends(&last, &value) {
                    self.fail(format!(
                        "node {node} finalized L2 block {value}, which conflicts with its final block {last}"
                    ));
                }
            }
        }
    }

    /// A node's sync round: ask a random peer for its head.
    fn sync_round(&mut self, node: usize) {
        self.push(self.now + 1_000, Event::Sync(node));
        let to = self.other(node);
        self.send_l2(node, to, Msg::Status(node));
    }

    fn broadcast_unit(&mut self, from: usize, unit: SignedUnit) {
        let n = self.sc.validators;
        self.units_created += 1;
        self.bytes_created += unit.to_bytes().len();
        self.creators.insert(unit.hash(), from);
        self.created_in
            .entry(unit.unit.instance_id)
            .or_default()
            .insert(from);
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
                Effect::Persist(u) => {
                    if self.signing_stopped[node] {
                        self.fail(format!(
                            "node {node} created unit {} after it stopped signing (seed {})",
                            u.hash(),
                            self.seed
                        ));
                    }
                    self.persisted[node].push(u)
                }
                // Peers' units are not kept across a simulated crash: a restarted node
                // fetches them again (the harder case for catching up).
                Effect::Store(_) => {}
                Effect::Broadcast(u) => {
                    if self.trace {
                        let n = u
                            .unit
                            .value
                            .and_then(|v| self.l2_blocks.get(&v))
                            .map(|b| b.number);
                        eprintln!(
                            "{} node {node} unit seq {} value {:?}",
                            self.now, u.unit.seq, n
                        );
                    }
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
                Effect::RequestValue(v) => {
                    if self.trace {
                        eprintln!(
                            "{} node {node} request value {:?}",
                            self.now,
                            self.l2_blocks.get(&v).map(|b| b.number)
                        );
                    }
                    // The node asks its peers in turn until one has it: here all
                    // at once (answers after the first change nothing).
                    for to in (0..self.sc.validators).filter(|t| *t != node) {
                        self.send_l2(node, to, Msg::BlockRequest(v, node));
                    }
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
                    value,
                    ..
                } => {
                    self.on_finalized(node, threshold, block, era, height);
                    self.on_final_value(node, threshold, value);
                }
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
            values_for(&self.sc, &self.chains[i]),
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
            Event::Timer(n) | Event::Restart(n) | Event::Sync(n) | Event::StopSigning(n) => *n,
            Event::Produce(slot) => {
                self.produce(*slot);
                return true;
            }
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
                if self.trace
                    && let Some(h) = self.nodes[n].current()
                {
                    let st = h.state();
                    let tip = st.fork_choice(st.latest());
                    eprintln!(
                        "{at} node {n} pending {} tip {:?}",
                        h.pending_len(),
                        tip.and_then(|t| st.block(&t)).map(|b| (b.height, b.value))
                    );
                }
                self.timers.retain(|(m, t)| *m != n || *t > at);
                let value = match self.sc.l2 {
                    Some(_) => self.chains[n].lock().expect("sim lock").head,
                    None => keccak256(format!("milestone {n} {at}")),
                };
                self.nodes[n].set_candidate(Some(value));
                self.nodes[n].handle_timer(at)
            }
            Event::Produce(_) => Vec::new(),
            Event::Sync(n) => {
                self.sync_round(n);
                Vec::new()
            }
            Event::StopSigning(n) => {
                self.nodes[n].stop_signing();
                self.signing_stopped[n] = true;
                Vec::new()
            }
            Event::Deliver(to, Msg::Block(hash, block, from)) => {
                if self.receive_block(to, hash, block, from) {
                    self.nodes[to].recheck_values(at)
                } else {
                    Vec::new()
                }
            }
            Event::Deliver(to, Msg::BlockRequest(hash, from)) => {
                let found = self.chains[to]
                    .lock()
                    .expect("sim lock")
                    .known
                    .get(&hash)
                    .copied();
                if let Some(block) = found {
                    self.send_l2(to, from, Msg::Block(hash, block, to));
                }
                Vec::new()
            }
            Event::Deliver(to, Msg::Status(from)) => {
                // Answered with the head block; the asker fetches what it misses.
                let (head, block) = {
                    let chain = self.chains[to].lock().expect("sim lock");
                    (chain.head, chain.known[&chain.head])
                };
                let ahead = {
                    let chain = self.chains[from].lock().expect("sim lock");
                    block.number > chain.known[&chain.head].number
                        && !chain.known.contains_key(&head)
                };
                if ahead {
                    self.send_l2(to, from, Msg::Block(head, block, to));
                }
                Vec::new()
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
        if self.sc.l2.is_some()
            && let Some(estimate) = self.nodes[node].fork_choice_value()
        {
            let mut chain = self.chains[node].lock().expect("sim lock");
            if chain.estimate != estimate {
                chain.estimate = estimate;
                chain.choose_head();
            }
        }
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
        let mut heal_to_final = Vec::new();
        let one_third_index = self
            .thresholds
            .iter()
            .position(|t| *t == Threshold::new(1, 3))
            .unwrap_or(0);
        if self.sc.l2.is_some() {
            for i in &online_honest {
                let chain = self.chains[*i].lock().expect("sim lock");
                if chain.extends(&chain.head, &chain.last_final) != Some(true) {
                    return Err(format!(
                        "scenario {} seed {}: node {i}'s head {} does not contain its final block {} (replay with KOMA_SIM_SEED={})",
                        self.sc.name, self.seed, chain.head, chain.last_final, self.seed
                    ));
                }
            }
            let owed = faulty <= self.thresholds[one_third_index].ftt(total)
                && u128::from(crashed) * 2
                    < u128::from(total).saturating_sub(
                        3 * u128::from(self.thresholds[one_third_index].ftt(total)),
                    );
            let mut heals: Vec<u64> = self.sc.partitions.iter().map(|(_, e)| *e).collect();
            if self.sc.partition_until > 0 {
                heals.push(self.sc.partition_until);
            }
            heals.sort_unstable();
            for heal in heals.into_iter().filter(|h| *h < end) {
                // The L2 block final before the heal, per node; the first newer one after.
                let mut worst = 0;
                for i in &online_honest {
                    let before = self.l2_final[*i]
                        .iter()
                        .filter(|(_, at)| *at <= heal)
                        .map(|(n, _)| *n)
                        .max()
                        .unwrap_or(0);
                    let after = self.l2_final[*i]
                        .iter()
                        .find(|(n, at)| *at > heal && *n > before)
                        .map(|(_, at)| at - heal);
                    match after {
                        Some(d) => worst = worst.max(d),
                        None if owed => {
                            return Err(format!(
                                "scenario {} seed {}: LIVENESS: node {i} finalized no new L2 block at 1/3 after the heal at {heal} ms (final before: {before}; replay with KOMA_SIM_SEED={})\n{}",
                                self.sc.name,
                                self.seed,
                                self.seed,
                                (0..self.sc.validators)
                                    .map(|j| self.diagnose(j))
                                    .collect::<Vec<_>>()
                                    .join("\n")
                            ));
                        }
                        None => worst = u64::MAX,
                    }
                }
                heal_to_final.push(worst);
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
            era_creators: self.records[first]
                .values()
                .map(|r| {
                    let creators = self
                        .created_in
                        .get(&r.instance_id)
                        .map(|c| c.iter().copied().collect())
                        .unwrap_or_default();
                    (r.era, creators)
                })
                .collect(),
            banned: (0..self.sc.validators)
                .filter(|v| {
                    self.nodes[first]
                        .records()
                        .last()
                        .is_some_and(|r| r.banned.contains(&self.keys[*v]))
                })
                .map(|v| v as ValidatorIndex)
                .collect(),
            round_exps: online_honest
                .iter()
                .filter_map(|i| self.nodes[*i].current().and_then(|h| h.round_exp()))
                .collect(),
            heal_to_final,
            l2_final_number: self.l2_final[first].last().map_or(0, |(n, _)| *n),
            l2_blocks: self.l2_blocks.len().saturating_sub(1),
        })
    }
}

fn values_for(sc: &Scenario, chain: &Arc<Mutex<NodeChain>>) -> Arc<dyn ValueCheck> {
    match sc.l2 {
        Some(_) => Arc::new(ModelValues(chain.clone())),
        None => Arc::new(AnyValue),
    }
}

/// Runs `scenario` with `seed`. `Err` describes the first violated invariant (with
/// the seed to replay it).
pub fn run(scenario: Scenario, seed: u64) -> Result<Report, String> {
    Sim::new(scenario, seed).run()
}
