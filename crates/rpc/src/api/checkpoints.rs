//! `koma_getCheckpoint` and `koma_getBlockProof`: what L1 holds of the chain, and the
//! proof that a block is in it.

use super::KomaApi;
use super::state::storage_err;
use crate::backend::CheckpointInfo;
use crate::error::{internal, invalid_params, server};
use crate::state::block_leaf;
use alloy::eips::BlockNumberOrTag;
use alloy_primitives::B256;
use jsonrpsee::core::RpcResult;
use serde::Serialize;

/// The fields of a block's checkpoint leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
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

/// `koma_calcMoM`: Komodo's `calc_MoM` over KOMA's checkpoint leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MerkleOfMerkles {
    /// The last block covered.
    pub height: u64,
    /// Blocks covered: `height - MoMdepth + 1 ..= height`.
    #[serde(rename = "MoMdepth")]
    pub depth: u64,
    #[serde(rename = "MoM")]
    pub mom: B256,
}

/// Most blocks one `koma_calcMoM` covers.
pub const MAX_MOM_DEPTH: u64 = 10_000;

impl KomaApi {
    pub(super) fn mom_at(&self, height: u64, depth: u64) -> RpcResult<MerkleOfMerkles> {
        if depth == 0 || depth > MAX_MOM_DEPTH {
            return Err(invalid_params(format!(
                "depth must be 1 to {MAX_MOM_DEPTH}, not {depth}"
            )));
        }
        let snap = self.snapshot()?;
        let head = snap.head().number();
        let first = height
            .checked_add(1)
            .and_then(|h| h.checked_sub(depth))
            .ok_or_else(|| invalid_params(format!("depth {depth} reaches below block 0")))?;
        if height > head {
            return Err(invalid_params(format!(
                "height {height} is above the head ({head})"
            )));
        }
        let mut leaves = Vec::new();
        for n in first..=height {
            let header = snap
                .header_by_number(n)
                .map_err(storage_err)?
                .ok_or_else(|| internal(format!("canonical block {n} is missing")))?;
            leaves.push(block_leaf(header.hash, &header.header).hash());
        }
        Ok(MerkleOfMerkles {
            height,
            depth,
            mom: koma_checkpoint::MerkleTree::new(leaves).root(),
        })
    }

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
        let Some(index) = number.checked_sub(cp.start) else {
            return Ok(None);
        };
        let tree = self.state.checkpoint_tree(&cp).map_err(tree_err)?;
        let header = self
            .state
            .db
            .header_by_number(number)
            .map_err(storage_err)?
            .ok_or_else(|| {
                internal(format!(
                    "block {number} of checkpoint {} is missing",
                    cp.number
                ))
            })?;
        let leaf = block_leaf(header.hash, &header.header);
        // the tree was checked against L1's root; the block read now must be its leaf
        let position = usize::try_from(index).map_err(internal)?;
        if tree.leaves().get(position) != Some(&leaf.hash()) {
            return Err(internal(format!(
                "block {number} is not the one checkpoint {} holds",
                cp.number
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

/// A checkpoint tree the node cannot rebuild is the node's fault (or its chain's), not
/// the caller's.
pub(crate) fn tree_err(e: crate::state::CheckpointTreeError) -> jsonrpsee::types::ErrorObjectOwned {
    internal(e)
}
