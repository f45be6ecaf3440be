//! Blocks, their receipts and counts.
//!
//! A block's size is bounded by its gas limit (every transaction costs at least 21,000
//! gas, every log at least 375), so a block or its receipts is a bounded answer; the
//! serialized answer is also bounded by the server's response size limit.

use super::KomaApi;
use super::state::storage_err;
use crate::convert::{RpcReceipt, rpc_block, rpc_receipts, rpc_transaction};
use crate::error::internal;
use alloy::eips::BlockId;
use alloy::rpc::types::{Block, Index, Transaction};
use alloy_primitives::{Address, B256, U64};
use jsonrpsee::core::RpcResult;
use koma_primitives::{Seal, SealedHeader};
use koma_storage::{Snapshot, StoredBody};
use serde::Serialize;

/// `koma_getBlockSeal`: who sealed a block, and the seal itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockSeal {
    pub block_hash: B256,
    #[serde(with = "alloy::serde::quantity")]
    pub block_number: u64,
    /// The address the seal recovers to (`null` for genesis, which nobody seals).
    pub producer: Option<Address>,
    /// r ‖ s ‖ v (65 bytes) over `digest` (`null` for genesis).
    pub seal: Option<Seal>,
    /// `keccak256("KOMA block seal v1" ‖ chain id as 8 big-endian bytes ‖ block hash)`.
    pub digest: B256,
}

impl KomaApi {
    pub(super) fn block_seal_at(&self, id: BlockId) -> RpcResult<Option<BlockSeal>> {
        let snap = self.snapshot()?;
        let Some(header) = self.header_by_id(&snap, id)? else {
            return Ok(None);
        };
        let chain_id = self.state.spec.chain_id;
        let seal = snap.seal(header.hash).map_err(storage_err)?;
        let producer = seal
            .as_ref()
            .map(|s| koma_primitives::seal::recover_producer(chain_id, header.hash, s))
            .transpose()
            .map_err(|e| internal(format!("stored seal of {}: {e}", header.hash)))?;
        Ok(Some(BlockSeal {
            block_hash: header.hash,
            block_number: header.number(),
            producer,
            seal,
            digest: koma_primitives::seal::seal_digest(chain_id, header.hash),
        }))
    }

    pub(super) fn body(&self, snap: &Snapshot<'_>, hash: B256) -> RpcResult<StoredBody> {
        snap.body(hash)
            .map_err(storage_err)?
            .ok_or_else(|| internal(format!("body of block {hash} missing")))
    }

    pub(super) fn receipts_of(
        &self,
        snap: &Snapshot<'_>,
        header: &SealedHeader,
    ) -> RpcResult<Vec<RpcReceipt>> {
        let body = self.body(snap, header.hash)?;
        let receipts = snap
            .receipts(header.hash)
            .map_err(storage_err)?
            .ok_or_else(|| internal(format!("receipts of block {} missing", header.hash)))?;
        Ok(rpc_receipts(header, &body, &receipts))
    }

    pub(super) fn block_at(&self, id: BlockId, full: bool) -> RpcResult<Option<Block>> {
        let snap = self.snapshot()?;
        let Some(header) = self.header_by_id(&snap, id)? else {
            return Ok(None);
        };
        let body = self.body(&snap, header.hash)?;
        Ok(Some(rpc_block(&header, &body, full)))
    }

    pub(super) fn block_receipts_at(&self, id: BlockId) -> RpcResult<Option<Vec<RpcReceipt>>> {
        let snap = self.snapshot()?;
        let Some(header) = self.header_by_id(&snap, id)? else {
            return Ok(None);
        };
        self.receipts_of(&snap, &header).map(Some)
    }

    pub(super) fn tx_count_at(&self, id: BlockId) -> RpcResult<Option<U64>> {
        let snap = self.snapshot()?;
        let Some(header) = self.header_by_id(&snap, id)? else {
            return Ok(None);
        };
        Ok(Some(U64::from(
            self.body(&snap, header.hash)?.transactions.len(),
        )))
    }

    pub(super) fn uncle_count_at(&self, id: BlockId) -> RpcResult<Option<U64>> {
        let snap = self.snapshot()?;
        Ok(self.header_by_id(&snap, id)?.map(|_| U64::ZERO))
    }

    /// The transaction at `index` of the block `header` (if both exist).
    pub(super) fn tx_in(
        &self,
        snap: &Snapshot<'_>,
        header: &SealedHeader,
        index: usize,
    ) -> RpcResult<Option<Transaction>> {
        let body = self.body(snap, header.hash)?;
        Ok(body
            .transactions
            .get(index)
            .zip(body.senders.get(index))
            .map(|(tx, sender)| rpc_transaction(tx, *sender, Some((header, index as u64)))))
    }

    pub(super) fn transaction_at(
        &self,
        id: BlockId,
        index: Index,
    ) -> RpcResult<Option<Transaction>> {
        let snap = self.snapshot()?;
        let Some(header) = self.header_by_id(&snap, id)? else {
            return Ok(None);
        };
        self.tx_in(&snap, &header, index.into())
    }
}
