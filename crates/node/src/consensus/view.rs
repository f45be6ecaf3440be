//! What RPC and the network event loop read of KoMaBFT: the finality record, the
//! validators' status and stored units.

use alloy_primitives::B256;
use koma_consensus::Threshold;
use koma_rpc::{ConsensusApi, FinalBlock, ThresholdStatus, ValidatorStatus};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// The finality record: the last final block per threshold (stored in the database).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct FinalityRecord {
    pub(super) last_final: Vec<Option<(u64, B256)>>,
}

/// The node's view of KoMaBFT, shared with RPC and the network event loop.
#[derive(Debug)]
pub(crate) struct ConsensusView {
    pub(super) thresholds: Vec<Threshold>,
    pub(super) node_threshold: usize,
    pub(super) record: RwLock<FinalityRecord>,
    pub(super) validators: RwLock<Vec<ValidatorStatus>>,
    /// Blocks as they become final at the node's threshold.
    pub(crate) finalized: broadcast::Sender<FinalBlock>,
    pub(super) db: koma_storage::Database,
}

impl ConsensusView {
    /// A unit's encoding, to answer a peer: every unit this node accepted is stored.
    pub(crate) fn unit_bytes(&self, hash: &B256) -> Option<Vec<u8>> {
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
