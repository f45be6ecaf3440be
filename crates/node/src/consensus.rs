//! KoMaBFT in the node: drives the sans-I/O [`Eras`] core (one Highway instance per
//! era) with the clock, the consensus gossip topic, unit requests to peers and RocksDB.
//!
//! - Values are milestones: a round leader proposes the hash of its head; a proposal
//!   is accepted once its L2 block is imported here and descends from the parent
//!   milestone ([`ChainValues`]), so final milestones form a chain.
//! - Every unit is stored under its era; the node's own units durably *before* they
//!   are broadcast. At start the open eras' DAGs are re-added and the node signs
//!   nothing until then. Era records are stored as eras start.
//! - A final milestone makes its block and all ancestors final at that threshold;
//!   the record (last final block per threshold) is stored and served over RPC.

use crate::chain::ChainWriter;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::B256;
use koma_consensus::{
    Effect, EraRecord, Eras, ErasConfig, Evidence, Observation, SignedUnit, Threshold, Validity,
    ValueCheck,
};
use koma_network::{Misbehaviour, NetworkHandle, PeerId, SyncRequest, SyncResponse, Topic};
use koma_primitives::ChainSpec;
use koma_rpc::{ConsensusApi, FinalBlock, ThresholdStatus, ValidatorStatus};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// A consensus gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConsensusMessage {
    Unit(SignedUnit),
    Evidence(Evidence),
}

impl ConsensusMessage {
    /// One tag byte, then the unit's or the evidence's binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            Self::Unit(u) => (0u8, u.to_bytes()),
            Self::Evidence(e) => (1u8, e.to_bytes()),
        };
        let mut out = Vec::with_capacity(body.len().saturating_add(1));
        out.push(tag);
        out.extend_from_slice(&body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, koma_consensus::unit::DecodeError> {
        match bytes.split_first() {
            Some((0, body)) => SignedUnit::from_bytes(body).map(Self::Unit),
            Some((1, body)) => Evidence::from_bytes(body).map(Self::Evidence),
            Some((tag, _)) => Err(koma_consensus::unit::DecodeError::BadByte {
                what: "message tag",
                byte: *tag,
            }),
            None => Err(koma_consensus::unit::DecodeError::Truncated(0)),
        }
    }
}

/// Unit signatures checked on libsecp256k1 (the library the EVM precompile links), a
/// few times faster than the pure-Rust `Secp256k1Verifier` and with the same rule: the
/// 65-byte signature must recover to the creator's address. High-s signatures are
/// refused, so a unit has one valid signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct LibSecp256k1Verifier;

impl koma_consensus::UnitVerifier for LibSecp256k1Verifier {
    fn verify(&self, key: &alloy_primitives::Address, hash: &B256, signature: &[u8]) -> bool {
        alloy_primitives::Signature::try_from(signature)
            .ok()
            .and_then(|sig| koma_evm::recover_prehash(hash, &sig).ok())
            .is_some_and(|a| a == *key)
    }
}

/// Proposed values are L2 block hashes: valid if the block is known here and descends
/// from (or is) the parent milestone; unknown until it has been imported.
struct ChainValues {
    db: koma_storage::Database,
}

impl ValueCheck for ChainValues {
    fn check(&self, value: &B256, parent: &B256) -> Validity {
        let Ok(Some(header)) = self.db.header(*value) else {
            return Validity::Unknown;
        };
        let Ok(Some(parent_header)) = self.db.header(*parent) else {
            return Validity::Unknown;
        };
        if header.number < parent_header.number {
            return Validity::Invalid;
        }
        let canonical = |h: &B256, n: u64| self.db.is_canonical(*h, n).unwrap_or(false);
        if canonical(value, header.number) && canonical(parent, parent_header.number) {
            return Validity::Valid;
        }
        // A side branch: walk back from the value to the parent's height.
        let mut cursor = header;
        let mut hash = *value;
        while cursor.number > parent_header.number {
            hash = cursor.parent_hash;
            match self.db.header(hash) {
                Ok(Some(h)) => cursor = h,
                _ => return Validity::Unknown,
            }
        }
        if hash == *parent {
            Validity::Valid
        } else {
            Validity::Invalid
        }
    }
}

/// What the consensus task receives from the rest of the node.
#[derive(Debug)]
pub(crate) enum ConsensusInput {
    /// A message from gossip (or a unit fetched from a peer), with its sender and
    /// the verdict to give gossipsub.
    Message {
        message: ConsensusMessage,
        from: Option<PeerId>,
        validation: Option<koma_network::GossipValidation>,
    },
    /// A peer asks for the latest unit of every validator of an era instance.
    Latest {
        instance: B256,
        reply: oneshot::Sender<Vec<Vec<u8>>>,
    },
    /// Blocks that proposals named were fetched and stored: check them again.
    ValuesArrived,
}

/// The finality record: the last final block per threshold (stored in the database).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct FinalityRecord {
    last_final: Vec<Option<(u64, B256)>>,
}

/// The node's view of KoMaBFT, shared with RPC and the network event loop.
#[derive(Debug)]
pub(crate) struct ConsensusView {
    thresholds: Vec<Threshold>,
    node_threshold: usize,
    record: RwLock<FinalityRecord>,
    validators: RwLock<Vec<ValidatorStatus>>,
    /// Blocks as they become final at the node's threshold.
    pub finalized: broadcast::Sender<FinalBlock>,
    db: koma_storage::Database,
}

impl ConsensusView {
    /// A unit's encoding, to answer a peer: every unit this node accepted is stored.
    pub fn unit_bytes(&self, hash: &B256) -> Option<Vec<u8>> {
        self.db.consensus_unit(*hash).ok().flatten()
    }
}

impl ConsensusApi for ConsensusView {
    fn thresholds(&self) -> Vec<ThresholdStatus> {
        let record = self.record.read();
        self.thresholds
            .iter()
            .enumerate()
            .map(|(i, t)| ThresholdStatus {
                threshold: format!("{}/{}", t.num, t.den),
                fraction: t.num as f64 / t.den.max(1) as f64,
                last_final: record
                    .last_final
                    .get(i)
                    .copied()
                    .flatten()
                    .map(|(number, hash)| FinalBlock { number, hash }),
            })
            .collect()
    }
    fn node_threshold(&self) -> usize {
        self.node_threshold
    }
    fn validators(&self) -> Vec<ValidatorStatus> {
        self.validators.read().clone()
    }
}

/// The thresholds tracked and the one `safe`/`finalized` follow (1/3).
fn thresholds() -> (Vec<Threshold>, Threshold) {
    (Threshold::defaults(), Threshold::new(1, 3))
}

pub(crate) struct ConsensusTask {
    chain: Arc<ChainWriter>,
    eras: Eras,
    net: Option<NetworkHandle>,
    view: Arc<ConsensusView>,
    input: mpsc::Sender<ConsensusInput>,
    /// Every time the core asked to be woken at (each request must be honoured).
    timers: std::collections::BTreeSet<u64>,
    /// Test only: the key to sign conflicting twins of own units with.
    #[cfg_attr(not(feature = "equivocation"), allow(dead_code))]
    equivocate: Option<PrivateKeySigner>,
    /// Units asked for recently (hash -> when), so a missing unit is asked for once.
    requested: HashMap<B256, std::time::Instant>,
    /// Blocks (proposed values) being fetched from peers.
    fetching: Arc<parking_lot::Mutex<std::collections::HashSet<B256>>>,
    /// The newest era announced in the log.
    logged_era: Option<u64>,
    /// The block the validators' fork choice builds on that the chain follows, and
    /// when it was last computed.
    followed: Option<B256>,
    followed_at: std::time::Instant,
    /// What reloading the stored eras returned: applied first thing (it may hold own
    /// units of an era the reload started, which must be stored and sent like any).
    startup: Vec<Effect>,
}

/// How often the validators' fork choice is recomputed for the L2 fork choice to follow.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// How long before a unit still missing is asked for again.
const REQUEST_RETRY: Duration = Duration::from_secs(2);

fn now_ms() -> u64 {
    crate::produce::unix_now_ms()
}

/// Builds the consensus task for `spec`, reloading the stored eras and DAGs. `None` if
/// the chain has no consensus section.
pub(crate) fn start(
    chain: Arc<ChainWriter>,
    spec: &ChainSpec,
    key: Option<PrivateKeySigner>,
    net: Option<NetworkHandle>,
    stop: watch::Receiver<bool>,
    equivocate: bool,
    spawner: &crate::tasks::TaskSpawner,
) -> eyre::Result<Option<Started>> {
    let Some(params) = &spec.consensus else {
        return Ok(None);
    };
    let stakers: Vec<_> = params
        .stakers
        .iter()
        .map(|s| (s.address, s.stake))
        .collect();
    let staker = key.filter(|k| stakers.iter().any(|(a, _)| *a == k.address()));
    #[cfg(not(feature = "equivocation"))]
    eyre::ensure!(
        !equivocate,
        "this build cannot equivocate (built without the `equivocation` feature)"
    );
    let twin_key = staker.clone().filter(|_| equivocate);
    if twin_key.is_some() {
        tracing::warn!(
            "EQUIVOCATING on purpose (test flag): every own unit gets a conflicting twin"
        );
    }
    let (ths, node_threshold) = thresholds();
    let config = ErasConfig {
        chain: spec.digest(),
        genesis_value: chain.db.genesis_hash(),
        genesis_time: spec.timestamp.saturating_mul(1000),
        stakers,
        era_blocks: params.era_blocks,
        min_round_len: params.min_round_ms,
        round_exp: params.round_exp,
        max_round_exp: params.max_round_exp,
        max_future: 60_000,
        thresholds: ths,
        signer: staker
            .clone()
            .map(|k| Arc::new(k) as Arc<dyn koma_consensus::UnitSigner>),
        verifier: Arc::new(LibSecp256k1Verifier),
        values: Arc::new(ChainValues {
            db: chain.db.clone(),
        }),
    };
    let mut records: Vec<EraRecord> = Vec::new();
    for raw in chain.db.era_records()? {
        match serde_json::from_slice(&raw) {
            Ok(r) => records.push(r),
            Err(e) => eyre::bail!("stored KoMaBFT era record is corrupt: {e}"),
        }
    }
    records.sort_by_key(|r| r.era);
    let open: Vec<&EraRecord> = records
        .iter()
        .rev()
        .take(koma_consensus::era::MAX_OPEN_ERAS)
        .collect();
    let mut units = Vec::new();
    for r in &open {
        for raw in chain.db.consensus_units(r.instance_id)? {
            if let Ok(u) = SignedUnit::from_bytes(&raw) {
                units.push(u);
            }
        }
    }
    if let Some(k) = &staker {
        tracing::info!(staker = %k.address(), era = open.first().map_or(0, |r| r.era), units = units.len(), "taking part in KoMaBFT");
    }
    // Era records are stored at once (a new node starts era 0 here); the rest of what
    // the reload returned is applied when the task starts (finalizations it repeats
    // are below the stored record and change nothing).
    let (eras, startup) = Eras::restore(config, records, units, now_ms())
        .map_err(|e| eyre::eyre!("KoMaBFT eras: {e}"))?;
    for effect in &startup {
        if let Effect::EraStarted(record) = effect {
            store_era_record(&chain.db, record)?;
        }
    }
    let node_threshold = eras
        .thresholds()
        .iter()
        .position(|t| *t == node_threshold)
        .unwrap_or(0);
    let record: FinalityRecord = chain
        .db
        .finality()?
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default();
    if let Some(Some((n, _))) = record.last_final.get(node_threshold) {
        chain.finalized.store(*n, Ordering::Relaxed);
    }
    let (finalized, _) = broadcast::channel(256);
    let view = Arc::new(ConsensusView {
        thresholds: eras.thresholds().to_vec(),
        node_threshold,
        record: RwLock::new(record),
        validators: RwLock::new(Vec::new()),
        finalized,
        db: chain.db.clone(),
    });
    let (tx, rx) = mpsc::channel(4096);
    let task = ConsensusTask {
        chain,
        eras,
        net,
        view: view.clone(),
        input: tx.clone(),
        timers: std::collections::BTreeSet::from([now_ms()]),
        equivocate: twin_key,
        requested: HashMap::new(),
        fetching: Default::default(),
        logged_era: None,
        followed: None,
        followed_at: std::time::Instant::now(),
        startup,
    };
    task.refresh_validators();
    let handle = spawner.critical("KoMaBFT", task.run(rx, stop));
    Ok(Some((view, tx, handle)))
}

/// Most blocks fetched back from a proposed block to one this node has.
const MAX_VALUE_BRANCH: usize = 1024;

/// Fetches block `value` and its ancestors back to a stored block, then imports them
/// oldest first. Returns how many were imported (0: `value` is here already).
async fn fetch_branch(
    chain: &Arc<ChainWriter>,
    net: &NetworkHandle,
    value: B256,
    from: Option<PeerId>,
) -> Result<usize, String> {
    use alloy_rlp::Decodable;
    let mut peers = net.peers();
    if let Some(f) = from {
        peers.retain(|p| *p != f);
        peers.insert(0, f);
    }
    let mut branch: Vec<koma_primitives::Block> = Vec::new();
    let mut next = value;
    while chain.db.header(next).map_err(|e| e.to_string())?.is_none() {
        if branch.len() >= MAX_VALUE_BRANCH.min(chain.max_reorg_depth as usize) {
            return Err(format!("no stored ancestor within {} blocks", branch.len()));
        }
        let mut found = None;
        for peer in &peers {
            let Ok(SyncResponse::Blocks(items)) =
                net.request(*peer, SyncRequest::BlockByHash(next)).await
            else {
                continue;
            };
            let Some(raw) = items.first() else { continue };
            match koma_primitives::Block::decode(&mut raw.as_slice()) {
                Ok(block) if block.header.hash_slow() == next => {
                    found = Some(block);
                    break;
                }
                _ => net.report(*peer, Misbehaviour::InvalidResponse),
            }
        }
        let block = found.ok_or_else(|| format!("no peer has block {next}"))?;
        next = block.header.parent_hash;
        branch.push(block);
    }
    let count = branch.len();
    for block in branch.into_iter().rev() {
        match chain.import_async(block).await {
            Ok(_) => {}
            // Stored as a side block even though fork choice may not switch to it
            // (e.g. heavier, but below the final block): that is all a proposal needs.
            Err(koma_producer::ImportError::ReorgTooDeep { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(count)
}

/// What [`start`] hands the node: the view for RPC and the network, the task's input,
/// and the task.
pub(crate) type Started = (
    Arc<ConsensusView>,
    mpsc::Sender<ConsensusInput>,
    tokio::task::JoinHandle<()>,
);

fn store_era_record(db: &koma_storage::Database, record: &EraRecord) -> eyre::Result<()> {
    db.put_era_record(record.era, &serde_json::to_vec(record)?)?;
    Ok(())
}

impl ConsensusTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<ConsensusInput>,
        mut stop: watch::Receiver<bool>,
    ) {
        // (The reloaded units are on disk already.)
        let startup: Vec<Effect> = std::mem::take(&mut self.startup)
            .into_iter()
            .filter(|e| !matches!(e, Effect::Store(_)))
            .collect();
        self.apply(startup, None).await;
        // Proposals wait for the L2 block they name; each new head may be it.
        let mut heads = self.chain.head.subscribe();
        loop {
            let sleep = match self.timers.first() {
                Some(t) => Duration::from_millis(t.saturating_sub(now_ms())),
                None => Duration::from_secs(1),
            };
            tokio::select! {
                input = rx.recv() => match input {
                    Some(ConsensusInput::Message { message, from, validation }) => {
                        self.on_message(message, from, validation).await;
                    }
                    Some(ConsensusInput::Latest { instance, reply }) => {
                        let mut units: Vec<Vec<u8>> = self
                            .eras
                            .latest_units(&instance)
                            .into_iter()
                            .map(SignedUnit::to_bytes)
                            .collect();
                        if units.is_empty() {
                            // An era closed long ago: its tips are on disk.
                            units = self
                                .chain
                                .db
                                .era_tips(instance)
                                .unwrap_or_default()
                                .into_iter()
                                .filter_map(|h| self.chain.db.consensus_unit(h).ok().flatten())
                                .collect();
                        }
                        let _ = reply.send(units);
                    }
                    Some(ConsensusInput::ValuesArrived) => {
                        let effects = self.eras.recheck_values(now_ms());
                        self.apply(effects, None).await;
                    }
                    None => break,
                },
                _ = tokio::time::sleep(sleep) => {
                    let now = now_ms();
                    self.timers.retain(|t| *t > now);
                    let head = self.chain.db.head().hash;
                    self.eras.set_candidate(Some(head));
                    let effects = self.eras.handle_timer(now_ms());
                    self.apply(effects, None).await;
                    self.refresh_validators();
                }
                changed = heads.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let effects = self.eras.recheck_values(now_ms());
                    self.apply(effects, None).await;
                }
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            self.follow_estimate().await;
        }
    }

    /// Makes the L2 fork choice contain the block the validators' fork choice builds
    /// on (see [`ChainWriter::follow_estimate`]); recomputed at most every
    /// [`FOLLOW_INTERVAL`]. A block not imported yet is fetched like any proposed value
    /// and followed once it is.
    async fn follow_estimate(&mut self) {
        if self.followed_at.elapsed() < FOLLOW_INTERVAL {
            return;
        }
        self.followed_at = std::time::Instant::now();
        let Some(estimate) = self.eras.fork_choice_value() else {
            return;
        };
        if self.followed == Some(estimate) {
            return;
        }
        match self.chain.follow_estimate_async(estimate).await {
            Ok(true) => self.followed = Some(estimate),
            Ok(false) => {}
            Err(error) => {
                // Conflicts with a final block (or cannot be executed): not followed.
                tracing::debug!(%estimate, %error, "cannot follow the validators' fork choice");
                self.followed = Some(estimate);
            }
        }
    }

    async fn on_message(
        &mut self,
        message: ConsensusMessage,
        from: Option<PeerId>,
        validation: Option<koma_network::GossipValidation>,
    ) {
        let now = now_ms();
        let mut known_era = true;
        let (effects, hash) = match message {
            ConsensusMessage::Unit(unit) => {
                let hash = unit.hash();
                let instance = unit.unit.instance_id;
                known_era = self.eras.era_of(&instance).is_some();
                (self.eras.handle_unit(unit, now), Some(hash))
            }
            ConsensusMessage::Evidence(ev) => (self.eras.handle_evidence(ev, now), None),
        };
        let invalid = effects
            .iter()
            .any(|e| matches!(e, Effect::Invalid { unit, .. } if Some(*unit) == hash));
        if let Some(v) = validation {
            if invalid {
                v.reject();
            } else if !known_era {
                // A unit of an era this node has not reached cannot be checked here:
                // kept for later, but not forwarded (no amplification of junk).
                v.ignore();
            } else {
                v.accept();
            }
        }
        if invalid && let (Some(peer), Some(net)) = (from, &self.net) {
            net.report(peer, Misbehaviour::InvalidConsensusMessage);
        }
        self.apply(effects, from).await;
    }

    /// Carries out what the core asked for, in order. Storage writes run on blocking
    /// threads, never on the async workers: own units one by one and synced (each
    /// must be durable before it is sent), peers' units in one unsynced batch.
    async fn apply(&mut self, effects: Vec<Effect>, from: Option<PeerId>) {
        let mut missing = Vec::new();
        let mut stored: Vec<(B256, B256, Vec<u8>)> = Vec::new();
        let mut unsent = std::collections::HashSet::new();
        for effect in effects {
            match effect {
                Effect::Persist(unit) => {
                    let raw = unit.to_bytes();
                    let hash = unit.hash();
                    let instance = unit.unit.instance_id;
                    let result = self
                        .blocking(move |db| db.put_consensus_unit(instance, hash, &raw, true))
                        .await;
                    if let Err(error) = result {
                        // Never send a unit that is not durably stored, and sign no
                        // more: after a restart this node would not know it signed
                        // it, and could equivocate. It keeps following finality.
                        tracing::error!(%hash, %error, "cannot store an own consensus unit: this node stops signing");
                        self.eras.stop_signing();
                        unsent.insert(hash);
                    }
                }
                Effect::Store(unit) => {
                    stored.push((unit.unit.instance_id, unit.hash(), unit.to_bytes()));
                }
                Effect::Broadcast(unit) => {
                    if unsent.contains(&unit.hash()) {
                        continue;
                    }
                    #[cfg(feature = "equivocation")]
                    if let Some(key) = &self.equivocate {
                        // A twin with the same creator and sequence number: other value
                        // or timestamp, validly signed. Peers that see both prove it.
                        let mut twin = unit.unit.clone();
                        match twin.value {
                            Some(v) => twin.value = Some(alloy_primitives::keccak256(v)),
                            None => twin.timestamp = twin.timestamp.saturating_add(1),
                        }
                        let signature = koma_consensus::UnitSigner::sign(key, &twin.hash());
                        let twin = SignedUnit {
                            unit: twin,
                            signature,
                        };
                        self.publish(ConsensusMessage::Unit(twin)).await;
                    }
                    self.publish(ConsensusMessage::Unit(unit)).await
                }
                Effect::Evidence(ev) => {
                    tracing::warn!(
                        validator = ev.creator(),
                        "equivocation detected; evidence gossiped"
                    );
                    self.publish(ConsensusMessage::Evidence(ev)).await;
                }
                Effect::Request(hash) => missing.push(hash),
                Effect::RequestValue(value) => self.fetch_value(value, from),
                Effect::RequestLatest(instance) => self.request_latest(instance),
                Effect::Timer(t) => {
                    self.timers.insert(t);
                }
                Effect::Finalized {
                    threshold, value, ..
                } => self.on_final(threshold, value).await,
                Effect::Invalid { unit, error } => {
                    tracing::debug!(%unit, %error, "invalid consensus unit");
                }
                Effect::RoundExp(exp) => {
                    tracing::info!(round_exp = exp, "round length changed");
                    crate::metrics::set_round_exp(&self.chain.spec, exp);
                }
                Effect::EraStarted(record) => {
                    // The same record comes again when its cap rises (a switch caught
                    // up at a higher threshold): stored again, logged once.
                    if self.logged_era.is_none_or(|e| record.era > e) {
                        self.logged_era = Some(record.era);
                        tracing::info!(
                            era = record.era,
                            start = record.start,
                            validators = record.validators.len(),
                            banned = record.banned.len(),
                            "KoMaBFT era started"
                        );
                    }
                    let era = record.era;
                    let result = self.blocking(move |db| store_era_record(db, &record)).await;
                    if let Err(e) = result {
                        tracing::error!(error = %e, era, "cannot store era record");
                    }
                }
                Effect::EraClosed {
                    era,
                    instance_id,
                    tips,
                } => {
                    let result = self
                        .blocking(move |db| db.put_era_tips(instance_id, &tips))
                        .await;
                    if let Err(e) = result {
                        tracing::warn!(error = %e, era, "cannot store the tips of a closed era");
                    }
                    tracing::debug!(era, "KoMaBFT era closed");
                }
            }
        }
        if !stored.is_empty() {
            let count = stored.len();
            let result = self
                .blocking(move |db| {
                    for (instance, hash, raw) in &stored {
                        db.put_consensus_unit(*instance, *hash, raw, false)?;
                    }
                    Ok::<(), koma_storage::StorageError>(())
                })
                .await;
            if let Err(e) = result {
                // Peers' units are served to others and reloaded after a restart;
                // without them this node fetches them again, nothing is unsafe.
                tracing::warn!(error = %e, count, "cannot store consensus units");
            }
        }
        if !missing.is_empty() {
            let now = std::time::Instant::now();
            self.requested
                .retain(|_, at| now.duration_since(*at) < REQUEST_RETRY);
            missing.retain(|h| self.eras.unit(h).is_none() && !self.requested.contains_key(h));
            missing.sort();
            missing.dedup();
            for h in &missing {
                self.requested.insert(*h, now);
            }
            if !missing.is_empty() {
                self.request(missing, from);
            }
        }
    }

    /// Runs a storage write on a blocking thread.
    async fn blocking<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
        &self,
        f: impl FnOnce(&koma_storage::Database) -> Result<T, E> + Send + 'static,
    ) -> Result<T, String> {
        let db = self.chain.db.clone();
        match tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("storage task failed: {e}")),
        }
    }

    /// A proposal names an L2 block this node does not have (typically one of a
    /// branch its fork choice left, e.g. the other side's during a partition):
    /// fetches it and its missing ancestors from peers (first the one that sent the
    /// proposal), imports them through fork choice (stored as a side branch unless
    /// heavier), then has the core check the waiting proposals again.
    fn fetch_value(&self, value: B256, from: Option<PeerId>) {
        let Some(net) = self.net.clone() else { return };
        if !self.fetching.lock().insert(value) {
            return;
        }
        let chain = self.chain.clone();
        let input = self.input.clone();
        let fetching = self.fetching.clone();
        tokio::spawn(async move {
            let result = fetch_branch(&chain, &net, value, from).await;
            fetching.lock().remove(&value);
            match result {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(%value, blocks = n, "fetched the branch of a proposed block");
                    let _ = input.send(ConsensusInput::ValuesArrived).await;
                }
                Err(e) => tracing::debug!(%value, error = %e, "cannot fetch a proposed block yet"),
            }
        });
    }

    async fn publish(&self, message: ConsensusMessage) {
        let Some(net) = &self.net else { return };
        let data = message.encode();
        if let Err(e) = net.publish(Topic::Consensus, data).await {
            tracing::debug!(error = %e, "cannot gossip consensus message");
        }
    }

    /// Feeds units a peer sent back into the task.
    async fn feed(input: &mpsc::Sender<ConsensusInput>, items: Vec<Vec<u8>>, peer: PeerId) {
        for raw in items {
            if let Ok(unit) = SignedUnit::from_bytes(&raw) {
                let message = ConsensusInput::Message {
                    message: ConsensusMessage::Unit(unit),
                    from: Some(peer),
                    validation: None,
                };
                let _ = input.send(message).await;
            }
        }
    }

    /// Fetches missing units, in one request per batch, from the peer that sent us
    /// their dependent (or else another peer). Their own missing dependencies come
    /// back as the next batch, so catching up on the DAG takes one round trip per
    /// layer of units missed.
    fn request(&self, hashes: Vec<B256>, from: Option<PeerId>) {
        let Some(net) = self.net.clone() else { return };
        let input = self.input.clone();
        tokio::spawn(async move {
            let mut peers = net.peers();
            if let Some(f) = from {
                peers.retain(|p| *p != f);
                peers.insert(0, f);
            }
            for chunk in hashes.chunks(koma_network::MAX_SYNC_ITEMS as usize) {
                for peer in peers.iter().take(3) {
                    let Ok(SyncResponse::Units(items)) =
                        net.request(*peer, SyncRequest::Units(chunk.to_vec())).await
                    else {
                        continue;
                    };
                    if items.is_empty() {
                        continue;
                    }
                    Self::feed(&input, items, *peer).await;
                    break;
                }
            }
        });
    }

    /// This node is behind (it saw units of a later era): asks a few peers for the
    /// latest units of its current era, whose dependencies then follow by request.
    fn request_latest(&self, instance: B256) {
        let Some(net) = self.net.clone() else { return };
        let input = self.input.clone();
        tokio::spawn(async move {
            for peer in net.peers().into_iter().take(3) {
                if let Ok(SyncResponse::Units(items)) =
                    net.request(peer, SyncRequest::LatestUnits(instance)).await
                {
                    Self::feed(&input, items, peer).await;
                }
            }
        });
    }

    /// Milestone `value` is final at threshold `index`: so are its block and
    /// ancestors. At the node's threshold the block must be on the canonical chain:
    /// if fork choice had left its branch, the node switches to it first, and it
    /// becomes the floor of every later reorg.
    async fn on_final(&self, index: usize, value: B256) {
        let header = match self.chain.db.header(value) {
            Ok(Some(header)) => header,
            _ => {
                tracing::warn!(%value, "final milestone not imported here");
                return;
            }
        };
        let number = header.number;
        if index == self.view.node_threshold
            && let Err(error) = self.chain.adopt_final_async(value).await
        {
            tracing::error!(%value, number, %error, "cannot switch to the final block");
            return;
        }
        let record = {
            let mut record = self.view.record.write();
            if record.last_final.len() < self.view.thresholds.len() {
                record.last_final.resize(self.view.thresholds.len(), None);
            }
            let Some(slot) = record.last_final.get_mut(index) else {
                return;
            };
            if slot.is_some_and(|(n, _)| n >= number) {
                return;
            }
            *slot = Some((number, value));
            record.clone()
        };
        if index == self.view.node_threshold {
            let _ = self.view.finalized.send(FinalBlock {
                number,
                hash: value,
            });
            tracing::info!(number, hash = %value, "finalized");
        }
        if let Ok(raw) = serde_json::to_vec(&record)
            && let Err(e) = self.blocking(move |db| db.put_finality(&raw)).await
        {
            tracing::warn!(error = %e, "cannot store the finality record");
        }
    }

    fn refresh_validators(&self) {
        let Some(current) = self.eras.current() else {
            return;
        };
        let state = current.state();
        let validators = &state.validators;
        let era = self.eras.current_era();
        let list = validators
            .indices()
            .map(|i| {
                let latest = state
                    .latest()
                    .get(i as usize)
                    .and_then(Observation::correct)
                    .and_then(|h| state.unit(&h));
                ValidatorStatus {
                    index: i,
                    address: validators.key(i).copied().unwrap_or_default(),
                    stake: validators.weight(i),
                    faulty: state.is_faulty(i),
                    era,
                    latest_unit: latest.map(|u| u.hash),
                    latest_seq: latest.map(|u| u.seq),
                    latest_timestamp: latest.map(|u| u.timestamp),
                    round_length_ms: latest.map(|u| state.params.round_len(u.round_exp)),
                }
            })
            .collect();
        *self.view.validators.write() = list;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koma_consensus::{Secp256k1Verifier, UnitSigner, UnitVerifier};

    #[test]
    fn libsecp_and_k256_verifiers_agree() {
        let key = PrivateKeySigner::random();
        let addr = UnitSigner::address(&key);
        for i in 0..50u8 {
            let hash = alloy_primitives::keccak256([i]);
            let sig = UnitSigner::sign(&key, &hash);
            assert!(LibSecp256k1Verifier.verify(&addr, &hash, &sig));
            assert!(Secp256k1Verifier.verify(&addr, &hash, &sig));
            let other = alloy_primitives::keccak256([i, i]);
            assert!(!LibSecp256k1Verifier.verify(&addr, &other, &sig));
            let mut bad = sig.to_vec();
            bad[64] ^= 1;
            assert_eq!(
                LibSecp256k1Verifier.verify(&addr, &hash, &bad),
                Secp256k1Verifier.verify(&addr, &hash, &bad)
            );
            assert!(!LibSecp256k1Verifier.verify(&addr, &hash, &sig[..64]));
        }
    }
}
