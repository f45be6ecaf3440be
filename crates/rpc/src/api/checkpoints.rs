//! `koma_getCheckpoint` and `koma_getBlockProof`: what L1 holds of the chain, and the
//! proof that a block is in it.

use super::KomaApi;
use super::state::storage_err;
use crate::backend::CheckpointInfo;
use crate::error::{internal, invalid_params, server};
use alloy::eips::BlockNumberOrTag;
use alloy_primitives::B256;
use jsonrpsee::core::RpcResult;
use koma_checkpoint::{BlockLeaf, MerkleTree};
use serde::Serialize;

/// The fields of a block's checkpoint leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenLeaf {
    #[serde(with = "alloy::serde::quantity")]
    pub number: u64,
    #[serde(with = "alloy::serde::quantity")]
    pub timestamp: u64,
    pub block_hash: B256,
    pub receipts_root: B256,
    pub withdrawals_root: B256,
}

/// `koma_getBlockProof`: everything the root contract's `verifyBlock(checkpoint, leaf,
/// index, proof)` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockProof {
    #[serde(with = "alloy::serde::quantity")]
    pub checkpoint: u64,
    pub leaf: ProvenLeaf,
    pub leaf_hash: B256,
    /// The leaf's position in the checkpoint (block number minus its start).
    #[serde(with = "alloy::serde::quantity")]
    pub index: u64,
    /// Sibling hashes from the leaf up.
    pub proof: Vec<B256>,
    pub root: B256,
}

impl KomaApi {
    fn checkpoints(&self) -> RpcResult<&dyn crate::backend::CheckpointApi> {
        self.state.checkpoints.as_deref().ok_or_else(|| {
            server("this node follows no L1 (start it with --l1-rpc and --l1-contracts)")
        })
    }

    pub(super) fn checkpoint_at(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<CheckpointInfo>> {
        let api = self.checkpoints()?;
        match number {
            BlockNumberOrTag::Latest => Ok(api.checkpoint(None)),
            BlockNumberOrTag::Number(n) => Ok(api.checkpoint(Some(n))),
            other => Err(invalid_params(format!(
                "a checkpoint is named by its number or `latest`, not {other}"
            ))),
        }
    }

    pub(super) fn block_proof_at(&self, block: BlockNumberOrTag) -> RpcResult<Option<BlockProof>> {
        let api = self.checkpoints()?;
        let number = match block {
            BlockNumberOrTag::Number(n) => n,
            other => {
                return Err(invalid_params(format!(
                    "a block proof is asked for by block number, not {other}"
                )));
            }
        };
        let Some(cp) = api.checkpoint_covering(number) else {
            return Ok(None);
        };
        let mut leaves = Vec::new();
        let mut proven = None;
        for n in cp.start..=cp.end {
            let header = self
                .state
                .db
                .header_by_number(n)
                .map_err(storage_err)?
                .ok_or_else(|| {
                    internal(format!("block {n} of checkpoint {} is missing", cp.number))
                })?;
            let leaf = BlockLeaf {
                number: n,
                timestamp: header.header.timestamp,
                block_hash: header.hash,
                receipts_root: header.header.receipts_root,
                withdrawals_root: header.header.withdrawals_root.unwrap_or_default(),
            };
            if n == number {
                proven = Some(leaf);
            }
            leaves.push(leaf.hash());
        }
        let (Some(leaf), Some(index)) = (proven, number.checked_sub(cp.start)) else {
            return Ok(None);
        };
        let tree = MerkleTree::new(leaves);
        if tree.root() != cp.root {
            return Err(internal(format!(
                "checkpoint {} on L1 has root {}, this node's blocks give {}",
                cp.number,
                cp.root,
                tree.root()
            )));
        }
        let proof = tree
            .proof(index)
            .ok_or_else(|| internal("no proof for a leaf of the tree"))?;
        Ok(Some(BlockProof {
            checkpoint: cp.number,
            leaf_hash: leaf.hash(),
            leaf: ProvenLeaf {
                number: leaf.number,
                timestamp: leaf.timestamp,
                block_hash: leaf.block_hash,
                receipts_root: leaf.receipts_root,
                withdrawals_root: leaf.withdrawals_root,
            },
            index,
            proof,
            root: cp.root,
        }))
    }
}
