//! The `koma_*` namespace over KoMaBFT: `koma_getFinality`, `koma_getMilestone`,
//! `koma_validators`.

use crate::backend::{CheckpointInfo, ConsensusApi, FinalBlock, ThresholdStatus, ValidatorStatus};
use crate::error::invalid_params;
use crate::state::RpcState;
use alloy_primitives::B256;
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::Serialize;
use std::sync::Arc;

/// `koma_getFinality`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finality {
    #[serde(with = "alloy::serde::quantity")]
    pub block_number: u64,
    pub block_hash: B256,
    /// How far the block has come: `included` (in the canonical chain), `final`
    /// (KoMaBFT, at the node's threshold), `checkpointed` (in a checkpoint accepted on
    /// L1) or `notarized` (that checkpoint is the node's configured confirmations deep).
    pub status: &'static str,
    /// The highest threshold at which the block is final (0 if none): the fraction of
    /// stake that would have to equivocate to revert it.
    pub confidence: f64,
    pub thresholds: Vec<ThresholdFinal>,
    /// The accepted checkpoint that holds the block (as `koma_getCheckpoint` gives it);
    /// `null` until there is one (or when the node follows no L1).
    pub checkpointed: Option<CheckpointInfo>,
    /// The checkpoint is at least the node's configured confirmations deep on L1.
    pub notarized: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdFinal {
    pub threshold: String,
    #[serde(rename = "final")]
    pub is_final: bool,
}

#[rpc(server, namespace = "koma")]
pub trait KomaConsensusApi {
    /// Finality of a block given by hash, number (hex or decimal), tag, or by the hash
    /// of a transaction in it.
    #[method(name = "getFinality")]
    fn get_finality(&self, id: String) -> RpcResult<Option<Finality>>;
    /// The last final block at every configured threshold.
    #[method(name = "getMilestone")]
    fn get_milestone(&self) -> RpcResult<Vec<ThresholdStatus>>;
    /// The staker set with each staker's latest unit.
    #[method(name = "validators")]
    fn validators(&self) -> RpcResult<Vec<ValidatorStatus>>;
}

#[derive(Debug, Clone)]
pub struct KomaConsensus {
    state: Arc<RpcState>,
    consensus: Arc<dyn ConsensusApi>,
}

impl KomaConsensus {
    pub fn new(state: Arc<RpcState>) -> Option<Self> {
        let consensus = state.consensus.clone()?;
        Some(Self { state, consensus })
    }

    fn resolve(&self, id: &str) -> RpcResult<Option<(u64, B256)>> {
        let db = &self.state.db;
        let id = id.trim();
        let storage = |e: koma_storage::StorageError| crate::error::internal(e);
        let by_number = |n: u64| -> RpcResult<Option<(u64, B256)>> {
            Ok(db
                .header_by_number(n)
                .map_err(storage)?
                .map(|h| (h.number(), h.hash)))
        };
        match id {
            "latest" | "pending" => {
                let h = db.head();
                return Ok(Some((h.number(), h.hash)));
            }
            "earliest" => return by_number(0),
            "safe" => return by_number(self.state.final_number()),
            "finalized" => return by_number(self.state.finalized_number()),
            _ => {}
        }
        if let Some(hex) = id.strip_prefix("0x") {
            if hex.len() == 64 {
                let hash: B256 = id.parse().map_err(|_| invalid_params("invalid hash"))?;
                if let Some(header) = db.header(hash).map_err(storage)? {
                    if !db.is_canonical(hash, header.number).map_err(storage)? {
                        return Ok(None);
                    }
                    return Ok(Some((header.number, hash)));
                }
                if let Some(loc) = db.tx_location(hash).map_err(storage)? {
                    return by_number(loc.block_number);
                }
                return Ok(None);
            }
            let n = u64::from_str_radix(hex, 16).map_err(|_| {
                invalid_params("expected a block hash, number, tag or transaction hash")
            })?;
            return by_number(n);
        }
        let n: u64 = id.parse().map_err(|_| {
            invalid_params("expected a block hash, number, tag or transaction hash")
        })?;
        by_number(n)
    }
}

impl KomaConsensus {
    /// The accepted checkpoint whose tree holds block `(number, hash)`.
    fn checkpoint_of(&self, number: u64, hash: B256) -> RpcResult<Option<CheckpointInfo>> {
        let Some(cp) = self
            .state
            .checkpoints
            .as_ref()
            .and_then(|c| c.checkpoint_covering(number))
        else {
            return Ok(None);
        };
        let Some(header) = self.state.db.header(hash).map_err(crate::error::internal)? else {
            return Ok(None);
        };
        let leaf = crate::state::block_leaf(hash, &header);
        let tree = self
            .state
            .checkpoint_tree(&cp)
            .map_err(crate::error::internal)?;
        let held = number
            .checked_sub(cp.start)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| tree.leaves().get(i))
            == Some(&leaf.hash());
        Ok(held.then_some(cp))
    }

    /// Whether the canonical block `(number, hash)` is `last_final` or one of its
    /// ancestors: by hash, not by number, so a block that replaced a final one (at a
    /// threshold low enough for that to happen) is not reported final.
    fn is_ancestor(&self, number: u64, hash: B256, last_final: FinalBlock) -> RpcResult<bool> {
        let db = &self.state.db;
        let storage = |e: koma_storage::StorageError| crate::error::internal(e);
        if last_final.number < number {
            return Ok(false);
        }
        // Walk back from the final block to the canonical chain (at once, normally).
        let mut cursor = last_final.hash;
        let mut cursor_number = last_final.number;
        loop {
            if cursor_number == number {
                return Ok(cursor == hash);
            }
            if db.is_canonical(cursor, cursor_number).map_err(storage)? {
                // The rest of the way is canonical, as is `(number, hash)`.
                return Ok(true);
            }
            let Some(header) = db.header(cursor).map_err(storage)? else {
                return Ok(false);
            };
            cursor = header.parent_hash;
            cursor_number = cursor_number.saturating_sub(1);
        }
    }
}

impl KomaConsensusApiServer for KomaConsensus {
    fn get_finality(&self, id: String) -> RpcResult<Option<Finality>> {
        let Some((number, hash)) = self.resolve(&id)? else {
            return Ok(None);
        };
        let thresholds = self.consensus.thresholds();
        let mut confidence = 0.0f64;
        let mut list = Vec::new();
        for t in &thresholds {
            let is_final = match t.last_final {
                Some(f) => self.is_ancestor(number, hash, f)?,
                None => false,
            };
            if is_final {
                confidence = confidence.max(t.fraction);
            }
            list.push(ThresholdFinal {
                threshold: t.threshold.clone(),
                is_final,
            });
        }
        let node_final = list
            .get(self.consensus.node_threshold())
            .is_some_and(|t| t.is_final);
        let checkpointed = self.checkpoint_of(number, hash)?;
        let notarized = checkpointed.as_ref().is_some_and(|cp| cp.notarized);
        let status = match (&checkpointed, notarized) {
            (Some(_), true) => "notarized",
            (Some(_), false) => "checkpointed",
            (None, _) if node_final => "final",
            (None, _) => "included",
        };
        Ok(Some(Finality {
            block_number: number,
            block_hash: hash,
            status,
            confidence,
            thresholds: list,
            checkpointed,
            notarized,
        }))
    }

    fn get_milestone(&self) -> RpcResult<Vec<ThresholdStatus>> {
        Ok(self.consensus.thresholds())
    }

    fn validators(&self) -> RpcResult<Vec<ValidatorStatus>> {
        Ok(self.consensus.validators())
    }
}
