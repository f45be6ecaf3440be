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

mod codec;
mod fetch;
mod task;
mod values;
mod verifier;
mod view;

pub(crate) use codec::ConsensusMessage;
pub use verifier::LibSecp256k1Verifier;
pub(crate) use view::ConsensusView;

use crate::chain::ChainWriter;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::B256;
use koma_consensus::{Effect, EraRecord, Eras, ErasConfig, SignedUnit, Threshold};
use koma_network::{NetworkHandle, PeerId};
use koma_primitives::ChainSpec;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use task::ConsensusTask;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use values::ChainValues;
use view::FinalityRecord;

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

/// The thresholds tracked and the one `safe`/`finalized` follow (1/3).
fn thresholds() -> (Vec<Threshold>, Threshold) {
    (Threshold::defaults(), Threshold::new(1, 3))
}

fn now_ms() -> u64 {
    crate::clock::unix_now_ms()
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
    // A key outside the genesis set signs in the eras whose set (from L1) holds it.
    let staker = key;
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
        sets: Arc::new(crate::stake::L1Sets {
            db: chain.db.clone(),
            view: chain.stake.clone(),
        }),
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
            deposits: chain.deposits.clone(),
            stake: chain.stake.clone(),
            finalized: chain.finalized.clone(),
            checked: Default::default(),
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
