//! `koma_getWithdrawalProof`: what `Bridge.exit` on L1 takes for a withdrawal made on L2.

use super::KomaApi;
use super::checkpoints::ProvenLeaf;
use super::state::storage_err;
use crate::error::{internal, invalid_params};
use crate::state::block_leaf;
use alloy::eips::BlockNumberOrTag;
use alloy_primitives::{Address, B256, U256};
use jsonrpsee::core::RpcResult;
use koma_primitives::bridge::{Withdrawal, withdrawals};
use koma_primitives::merkle::MerkleTree;
use serde::{Deserialize, Serialize};

/// A withdrawal's fields as `BridgeMessages.Withdrawal` has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalFields {
    pub nonce: U256,
    pub sender: Address,
    pub recipient: Address,
    /// The L1 token id (KMC: 0x…1010, ETH: 0xeeee…eeee, else the ERC-20's L1 address).
    pub token: Address,
    pub amount: U256,
}

/// `koma_getWithdrawalProof`: the fields of `Bridge.exit`'s `ExitProof`. The withdrawal
/// part is there as soon as the transaction is in a block; `checkpoint`, `blockIndex`
/// and `blockProof` are `null` until an accepted checkpoint covers the block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalProof {
    pub withdrawal: WithdrawalFields,
    /// keccak256(abi.encode(nonce, sender, recipient, token, amount)).
    pub leaf: B256,
    /// Its position among the block's withdrawals.
    #[serde(with = "alloy::serde::quantity")]
    pub withdrawal_index: u64,
    /// Sibling hashes from the leaf up to the block's `withdrawalsRoot`.
    pub withdrawal_proof: Vec<B256>,
    pub block_leaf: ProvenLeaf,
    #[serde(with = "alloy::serde::quantity::opt")]
    pub checkpoint: Option<u64>,
    #[serde(with = "alloy::serde::quantity::opt")]
    pub block_index: Option<u64>,
    pub block_proof: Option<Vec<B256>>,
}

impl KomaApi {
    /// The proof of the `index`-th withdrawal made by transaction `tx` (`None`: no such
    /// transaction in the chain).
    pub(super) fn withdrawal_proof_of(
        &self,
        tx: B256,
        index: u64,
    ) -> RpcResult<Option<WithdrawalProof>> {
        let snap = self.snapshot()?;
        let Some(loc) = snap.tx_location(tx).map_err(storage_err)? else {
            return Ok(None);
        };
        let Some(header) = snap
            .header_by_number(loc.block_number)
            .map_err(storage_err)?
        else {
            return Ok(None);
        };
        let receipts = snap
            .receipts(header.hash)
            .map_err(storage_err)?
            .ok_or_else(|| internal(format!("receipts of block {} missing", header.hash)))?;
        let tx_index = usize::try_from(loc.index).map_err(internal)?;
        // the block's withdrawals in log order, and where this transaction's begin
        let mut before = 0usize;
        let mut own = Vec::new();
        for (i, receipt) in receipts.iter().enumerate() {
            let found = withdrawals(receipt.logs());
            match i.cmp(&tx_index) {
                std::cmp::Ordering::Less => before = before.saturating_add(found.len()),
                std::cmp::Ordering::Equal => own = found,
                std::cmp::Ordering::Greater => break,
            }
        }
        let position = usize::try_from(index).map_err(internal)?;
        let Some(withdrawal) = own.get(position).cloned() else {
            return Err(invalid_params(format!(
                "transaction {tx} made {} withdrawal(s) through the L2 bridge; there is no index {index}",
                own.len()
            )));
        };
        let all = withdrawals(receipts.iter().flat_map(|r| r.logs()));
        let tree = MerkleTree::from_iter(all.iter().map(Withdrawal::leaf));
        let withdrawal_index = u64::try_from(before.saturating_add(position)).map_err(internal)?;
        let withdrawal_proof = tree
            .proof(withdrawal_index)
            .ok_or_else(|| internal("no proof for a leaf of the withdrawals tree"))?;
        let leaf = block_leaf(header.hash, &header.header);
        if leaf.withdrawals_root != tree.root() {
            return Err(internal(format!(
                "block {}'s withdrawalsRoot does not match its withdrawals",
                header.header.number
            )));
        }
        let block = self.block_proof_at(BlockNumberOrTag::Number(header.header.number))?;
        Ok(Some(WithdrawalProof {
            leaf: withdrawal.leaf(),
            withdrawal: WithdrawalFields {
                nonce: withdrawal.nonce,
                sender: withdrawal.sender,
                recipient: withdrawal.recipient,
                token: withdrawal.token,
                amount: withdrawal.amount,
            },
            withdrawal_index,
            withdrawal_proof,
            block_leaf: ProvenLeaf {
                number: leaf.number,
                timestamp: leaf.timestamp,
                block_hash: leaf.block_hash,
                receipts_root: leaf.receipts_root,
                withdrawals_root: leaf.withdrawals_root,
            },
            checkpoint: block.as_ref().map(|b| b.checkpoint),
            block_index: block.as_ref().map(|b| b.index),
            block_proof: block.map(|b| b.proof),
        }))
    }
}
