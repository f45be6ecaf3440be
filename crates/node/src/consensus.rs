//! KoMaBFT in the node: drives the sans-I/O [`Highway`] core with the clock, the
//! consensus gossip topic, unit requests to peers and RocksDB.
//!
//! - Values are milestones: a round leader proposes the hash of its head, which always
//!   extends the last final block (the chain writer never unwinds below it).
//! - Every unit is stored; the node's own units durably *before* they are broadcast.
//!   At start the stored DAG is re-added and the node signs nothing until then.
//! - A final milestone makes its block and all ancestors final at that threshold;
//!   the record (last final block per threshold) is stored and served over RPC.

use crate::chain::ChainWriter;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::B256;
use koma_consensus::{
    Effect, Evidence, Highway, Observation, Params, Secp256k1Verifier, SignedUnit, Threshold,
    Validators,
};
use koma_network::{Misbehaviour, NetworkHandle, PeerId, SyncRequest, SyncResponse, Topic};
use koma_primitives::ChainSpec;
use koma_rpc::{ConsensusApi, FinalBlock, ThresholdStatus, ValidatorStatus};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// A consensus gossip message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ConsensusMessage {
    Unit(SignedUnit),
    Evidence(Evidence),
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
}

/// The finality record: the last final block per threshold (stored in the database).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct FinalityRecord {
    last_final: Vec<Option<(u64, B256)>>,
}

/// The node's view of KoMaBFT, shared with RPC.
#[derive(Debug)]
pub(crate) struct ConsensusView {
    thresholds: Vec<Threshold>,
    node_threshold: usize,
    record: RwLock<FinalityRecord>,
    validators: RwLock<Vec<ValidatorStatus>>,
    /// Blocks as they become final at the node's threshold.
    pub finalized: broadcast::Sender<FinalBlock>,
    /// Encoded units by hash, to answer peers' requests.
    units: RwLock<std::collections::HashMap<B256, Vec<u8>>>,
}

impl ConsensusView {
    pub fn unit_bytes(&self, hash: &B256) -> Option<Vec<u8>> {
        self.units.read().get(hash).cloned()
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

/// The thresholds tracked (ascending) and the one `safe`/`finalized` follow (1/3).
fn thresholds() -> (Vec<Threshold>, usize) {
    (Threshold::defaults(), 1)
}

pub(crate) struct ConsensusTask {
    chain: Arc<ChainWriter>,
    highway: Highway,
    net: Option<NetworkHandle>,
    view: Arc<ConsensusView>,
    input: mpsc::Sender<ConsensusInput>,
    /// Every time the core asked to be woken at (each request must be honoured).
    timers: std::collections::BTreeSet<u64>,
    /// Units asked for recently (hash -> when), so a missing unit is asked for once.
    requested: std::collections::HashMap<B256, std::time::Instant>,
}

/// How long before a unit still missing is asked for again.
const REQUEST_RETRY: Duration = Duration::from_secs(2);

fn now_ms() -> u64 {
    crate::produce::unix_now_ms()
}

/// Builds the consensus task for `spec`, reloading the stored DAG. `None` if the chain
/// has no consensus section.
pub(crate) fn start(
    chain: Arc<ChainWriter>,
    spec: &ChainSpec,
    key: Option<PrivateKeySigner>,
    net: Option<NetworkHandle>,
    stop: watch::Receiver<bool>,
) -> eyre::Result<
    Option<(
        Arc<ConsensusView>,
        mpsc::Sender<ConsensusInput>,
        tokio::task::JoinHandle<()>,
    )>,
> {
    let Some(params) = &spec.consensus else {
        return Ok(None);
    };
    let validators = Validators::new(params.stakers.iter().map(|s| (s.address, s.stake)))
        .map_err(|e| eyre::eyre!("consensus stakers: {e}"))?;
    let genesis = chain.db.genesis_hash();
    let instance_id = alloy_primitives::keccak256([spec.digest().as_slice(), b"era-0"].concat());
    let era_start = spec.timestamp.saturating_mul(1000);
    let p = Params {
        instance_id,
        seed: alloy_primitives::keccak256([genesis.as_slice(), b"leaders"].concat()),
        min_round_len: params.min_round_ms,
        round_exp: params.round_exp,
        max_round_exp: params.max_round_exp,
        era_start,
        max_future: 60_000,
    };
    let (ths, node_threshold) = thresholds();
    let stored = chain.db.consensus_units()?;
    let staker = key.filter(|k| validators.index_of(&k.address()).is_some());
    if let Some(k) = &staker {
        tracing::info!(staker = %k.address(), units = stored.len(), "taking part in KoMaBFT");
    }
    let mut highway = Highway::new(
        validators.clone(),
        p,
        &ths,
        staker.map(|k| Box::new(k) as Box<dyn koma_consensus::UnitSigner>),
        Box::new(Secp256k1Verifier),
        stored.is_empty(),
    );
    let units: Vec<SignedUnit> = stored
        .iter()
        .filter_map(|raw| serde_json::from_slice(raw).ok())
        .collect();
    let mut cache = std::collections::HashMap::new();
    for raw in &stored {
        if let Ok(u) = serde_json::from_slice::<SignedUnit>(raw) {
            cache.insert(u.hash(), raw.clone());
        }
    }
    // Finality effects of the reloaded DAG are not news: the record is stored.
    let _ = highway.restore_own(units, now_ms());
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
        thresholds: ths,
        node_threshold,
        record: RwLock::new(record),
        validators: RwLock::new(Vec::new()),
        finalized,
        units: RwLock::new(cache),
    });
    let (tx, rx) = mpsc::channel(4096);
    let task = ConsensusTask {
        chain,
        highway,
        net,
        view: view.clone(),
        input: tx.clone(),
        timers: std::collections::BTreeSet::from([now_ms()]),
        requested: std::collections::HashMap::new(),
    };
    task.refresh_validators(&validators);
    let handle = tokio::spawn(task.run(rx, stop));
    Ok(Some((view, tx, handle)))
}

impl ConsensusTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<ConsensusInput>,
        mut stop: watch::Receiver<bool>,
    ) {
        let validators = self.highway.state().validators.clone();
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
                    None => break,
                },
                _ = tokio::time::sleep(sleep) => {
                    let now = now_ms();
                    self.timers.retain(|t| *t > now);
                    let head = self.chain.db.head().hash;
                    self.highway.set_candidate(Some(head));
                    let effects = self.highway.handle_timer(now_ms());
                    self.apply(effects, None).await;
                    self.refresh_validators(&validators);
                }
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
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
        let (effects, hash) = match message {
            ConsensusMessage::Unit(unit) => {
                let hash = unit.hash();
                let raw = serde_json::to_vec(&unit).unwrap_or_default();
                let effects = self.highway.handle_unit(unit, now);
                if self.highway.unit(&hash).is_some() {
                    let _ = self.chain.db.put_consensus_unit(hash, &raw, false);
                    self.view.units.write().insert(hash, raw);
                }
                (effects, Some(hash))
            }
            ConsensusMessage::Evidence(ev) => (self.highway.handle_evidence(ev, now), None),
        };
        let invalid = effects
            .iter()
            .any(|e| matches!(e, Effect::Invalid { unit, .. } if Some(*unit) == hash));
        if let Some(v) = validation {
            if invalid {
                v.reject();
            } else {
                v.accept();
            }
        }
        if invalid && let (Some(peer), Some(net)) = (from, &self.net) {
            net.report(peer, Misbehaviour::InvalidConsensusMessage);
        }
        self.apply(effects, from).await;
    }

    async fn apply(&mut self, effects: Vec<Effect>, from: Option<PeerId>) {
        let mut missing = Vec::new();
        for effect in effects {
            match effect {
                Effect::Persist(unit) => {
                    let raw = serde_json::to_vec(&unit).unwrap_or_default();
                    let db = self.chain.db.clone();
                    let hash = unit.hash();
                    let raw2 = raw.clone();
                    let stored = tokio::task::spawn_blocking(move || {
                        db.put_consensus_unit(hash, &raw2, true)
                    })
                    .await;
                    if !matches!(stored, Ok(Ok(()))) {
                        // Never broadcast a unit that is not durably stored.
                        tracing::error!(%hash, "cannot store own unit; not broadcasting it");
                        return;
                    }
                    self.view.units.write().insert(hash, raw);
                }
                Effect::Broadcast(unit) => self.publish(ConsensusMessage::Unit(unit)).await,
                Effect::Evidence(ev) => {
                    tracing::warn!(
                        validator = ev.creator(),
                        "equivocation detected; evidence gossiped"
                    );
                    self.publish(ConsensusMessage::Evidence(ev)).await;
                }
                Effect::Request(hash) => missing.push(hash),
                Effect::Timer(t) => {
                    self.timers.insert(t);
                }
                Effect::Finalized {
                    threshold, value, ..
                } => self.on_final(threshold, value),
                Effect::Invalid { unit, error } => {
                    tracing::debug!(%unit, %error, "invalid consensus unit");
                }
            }
        }
        if !missing.is_empty() {
            let now = std::time::Instant::now();
            self.requested
                .retain(|_, at| now.duration_since(*at) < REQUEST_RETRY);
            missing.retain(|h| self.highway.unit(h).is_none() && !self.requested.contains_key(h));
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

    async fn publish(&self, message: ConsensusMessage) {
        let Some(net) = &self.net else { return };
        let Ok(data) = serde_json::to_vec(&message) else {
            return;
        };
        if let Err(e) = net.publish(Topic::Consensus, data).await {
            tracing::debug!(error = %e, "cannot gossip consensus message");
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
                    for raw in items {
                        if let Ok(unit) = serde_json::from_slice::<SignedUnit>(&raw) {
                            let message = ConsensusInput::Message {
                                message: ConsensusMessage::Unit(unit),
                                from: Some(*peer),
                                validation: None,
                            };
                            let _ = input.send(message).await;
                        }
                    }
                    break;
                }
            }
        });
    }

    /// Milestone `value` is final at threshold `index`: so are its block and ancestors.
    fn on_final(&self, index: usize, value: B256) {
        let Ok(Some(header)) = self.chain.db.header(value) else {
            tracing::debug!(%value, "final milestone not imported here yet");
            return;
        };
        let number = header.number;
        if !self.chain.db.is_canonical(value, number).unwrap_or(false) {
            tracing::warn!(%value, number, "final milestone is not on our chain");
            return;
        }
        let record = {
            let mut record = self.view.record.write();
            if record.last_final.len() < self.view.thresholds.len() {
                record.last_final.resize(self.view.thresholds.len(), None);
            }
            let slot = &mut record.last_final[index];
            if slot.is_some_and(|(n, _)| n >= number) {
                return;
            }
            *slot = Some((number, value));
            record.clone()
        };
        if index == self.view.node_threshold {
            self.chain.finalized.store(number, Ordering::Relaxed);
            let _ = self.view.finalized.send(FinalBlock {
                number,
                hash: value,
            });
            tracing::info!(number, hash = %value, "finalized");
        }
        if let Ok(raw) = serde_json::to_vec(&record) {
            let _ = self.chain.db.put_finality(&raw);
        }
    }

    fn refresh_validators(&self, validators: &Validators) {
        let state = self.highway.state();
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
                    latest_unit: latest.map(|u| u.hash),
                    latest_seq: latest.map(|u| u.seq),
                    latest_timestamp: latest.map(|u| u.timestamp),
                }
            })
            .collect();
        *self.view.validators.write() = list;
    }
}
