//! `koma_getWithdrawalProof`: what `Bridge.exit` on L1 takes for a withdrawal made on L2;
//! `koma_getDeposit`: where a deposit from L1 is.

use super::KomaApi;
use super::checkpoints::ProvenLeaf;
use super::state::storage_err;
use crate::error::{internal, invalid_params};
use crate::state::block_leaf;
use alloy::eips::BlockNumberOrTag;
use alloy_primitives::{Address, B256, U256};
use jsonrpsee::core::RpcResult;
use koma_primitives::bridge::{self, Deposit, Withdrawal, withdrawals};
use koma_primitives::merkle::MerkleTree;
use koma_storage::StateReader as _;
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

/// `koma_getDeposit`: a deposit from L1 (state message `id`) and how far it has come.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositStatus {
    #[serde(with = "alloy::serde::quantity")]
    pub id: u64,
    /// How far it has come (ADR 0017): `unknown` (not confirmed on L1 as this node
    /// reads it, not announced), `confirmed` (confirmed on L1 as this node reads it),
    /// `announced` (a canonical block's deposit watermark covers it), `agreed` (the
    /// final block's watermark covers it) or `applied` (its transaction is in the
    /// canonical chain).
    pub status: &'static str,
    /// The deposit's fields, when this node read it from L1.
    pub token: Option<Address>,
    pub from: Option<Address>,
    pub to: Option<Address>,
    pub amount: Option<U256>,
    #[serde(with = "alloy::serde::quantity::opt")]
    pub l1_block_number: Option<u64>,
    pub l1_transaction_hash: Option<B256>,
    /// The hash chain through this deposit (as L1's `stateHash` and L2's
    /// `lastStateHash` compute it).
    pub state_hash: Option<B256>,
    /// The system transaction that applied it on L2.
    pub transaction_hash: Option<B256>,
    #[serde(with = "alloy::serde::quantity::opt")]
    pub block_number: Option<u64>,
    pub block_hash: Option<B256>,
    /// `koma_getFinality` of that block (`null` before it is applied, or without
    /// KoMaBFT).
    pub finality: Option<crate::finality::Finality>,
}

impl KomaApi {
    /// Deposit `id` (`None`: the id is 0).
    pub(super) fn deposit_status(&self, id: u64) -> RpcResult<Option<DepositStatus>> {
        if id == 0 {
            return Ok(None);
        }
        let snap = self.snapshot()?;
        let applied = snap
            .storage(bridge::L2_BRIDGE_ADDRESS, bridge::LAST_STATE_ID_SLOT)
            .map_err(storage_err)?
            >= U256::from(id);
        let covers = |header: Option<&alloy::consensus::Header>| {
            header
                .and_then(|h| bridge::Watermark::of(h).ok())
                .is_some_and(|mark| mark.id >= id)
        };
        let announced = covers(Some(&snap.head().header));
        let final_header = snap
            .header_by_number(self.state.final_number())
            .map_err(storage_err)?;
        let agreed = covers(final_header.as_ref().map(|h| &h.header));
        let read = self.state.deposits.as_ref().and_then(|d| d.deposit(id));
        let fields = read.as_ref().and_then(|d| Deposit::decode(&d.data).ok());
        let tx = read
            .as_ref()
            .map(|d| *bridge::deposit_tx(self.state.spec.chain_id, id, d.data.clone()).tx_hash());
        let location = match tx {
            Some(hash) if applied => snap.tx_location(hash).map_err(storage_err)?,
            _ => None,
        };
        let finality = match (&location, crate::KomaConsensus::new(self.state.clone())) {
            (Some(loc), Some(consensus)) => {
                crate::KomaConsensusApiServer::get_finality(&consensus, loc.block_hash.to_string())?
            }
            _ => None,
        };
        Ok(Some(DepositStatus {
            id,
            status: if applied {
                "applied"
            } else if agreed {
                "agreed"
            } else if announced {
                "announced"
            } else if read.is_some() {
                "confirmed"
            } else {
                "unknown"
            },
            token: fields.as_ref().map(|d| d.token),
            from: fields.as_ref().map(|d| d.from),
            to: fields.as_ref().map(|d| d.to),
            amount: fields.as_ref().map(|d| d.amount),
            l1_block_number: read.as_ref().map(|d| d.l1_block),
            l1_transaction_hash: read.as_ref().map(|d| d.l1_tx),
            state_hash: read.as_ref().map(|d| d.state_hash),
            transaction_hash: location.as_ref().and(tx),
            block_number: location.as_ref().map(|l| l.block_number),
            block_hash: location.as_ref().map(|l| l.block_hash),
            finality,
        }))
    }

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
