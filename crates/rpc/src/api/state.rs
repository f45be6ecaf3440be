//! Block resolution and state reads.
//!
//! Every request that reads the chain takes one storage [`Snapshot`] and resolves its
//! block tag in it, once: `latest` is the snapshot's head, and the state read for it
//! is the snapshot's plain state, so a block committed while the request runs changes
//! nothing it sees (`eth_call` with overrides, a nonce and a balance read together,
//! a log scan over a range). Older blocks are read through their state root, which
//! never changes.

use super::KomaApi;
use crate::error::{header_not_found, internal, server};
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::rpc::types::SyncStatus;
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_trie::TrieAccount;
use jsonrpsee::core::RpcResult;
use jsonrpsee::types::ErrorObjectOwned;
use koma_primitives::SealedHeader;
use koma_storage::{HistoricalState, Snapshot, StateReader, StorageError};

pub(super) fn storage_err(e: StorageError) -> ErrorObjectOwned {
    internal(e)
}

/// The state after one block, read from a snapshot.
pub(super) enum StateView<'a> {
    /// The snapshot's head: its plain tables.
    Head(&'a Snapshot<'a>),
    /// An older block: its state root.
    Historical(HistoricalState),
}

impl StateReader for StateView<'_> {
    fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError> {
        match self {
            Self::Head(s) => s.account(address),
            Self::Historical(s) => s.account(address),
        }
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StorageError> {
        match self {
            Self::Head(s) => s.storage(address, slot),
            Self::Historical(s) => s.storage(address, slot),
        }
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError> {
        match self {
            Self::Head(s) => s.code(code_hash),
            Self::Historical(s) => s.code(code_hash),
        }
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        match self {
            Self::Head(s) => s.block_hash(number),
            Self::Historical(s) => s.block_hash(number),
        }
    }
}

impl KomaApi {
    /// A consistent view of the chain for one request.
    pub(super) fn snapshot(&self) -> RpcResult<Snapshot<'_>> {
        self.state.db.snapshot().map_err(storage_err)
    }

    /// The block number a tag stands for in `snap` (not checked to exist).
    pub(super) fn tag_number(&self, snap: &Snapshot<'_>, tag: BlockNumberOrTag) -> u64 {
        let head = snap.head().number();
        match tag {
            BlockNumberOrTag::Number(n) => n,
            BlockNumberOrTag::Earliest => 0,
            // KoMaBFT finality at the node's threshold, or the head without a finality
            // layer (docs/rpc.md); `finalized` may stand for notarized on L1 instead
            BlockNumberOrTag::Safe => self.state.final_number().min(head),
            BlockNumberOrTag::Finalized => self.state.finalized_number().min(head),
            BlockNumberOrTag::Latest | BlockNumberOrTag::Pending => head,
        }
    }

    /// The canonical header a tag stands for in `snap`.
    pub(super) fn header_by_tag(
        &self,
        snap: &Snapshot<'_>,
        tag: BlockNumberOrTag,
    ) -> RpcResult<Option<SealedHeader>> {
        if matches!(tag, BlockNumberOrTag::Latest | BlockNumberOrTag::Pending) {
            return Ok(Some(snap.head().clone()));
        }
        snap.header_by_number(self.tag_number(snap, tag))
            .map_err(storage_err)
    }

    /// The header a block id (tag, number or EIP-1898 hash) stands for in `snap`.
    pub(super) fn header_by_id(
        &self,
        snap: &Snapshot<'_>,
        id: BlockId,
    ) -> RpcResult<Option<SealedHeader>> {
        match id {
            BlockId::Number(tag) => self.header_by_tag(snap, tag),
            BlockId::Hash(h) => {
                let Some(header) = snap.header(h.block_hash).map_err(storage_err)? else {
                    return Ok(None);
                };
                if h.require_canonical == Some(true)
                    && !snap
                        .is_canonical(h.block_hash, header.number)
                        .map_err(storage_err)?
                {
                    return Err(server(format!("block {} is not canonical", h.block_hash)));
                }
                Ok(Some(SealedHeader {
                    hash: h.block_hash,
                    header,
                }))
            }
        }
    }

    /// The header `block` (default `latest`) stands for, and the state after it.
    pub(super) fn state_at<'s>(
        &self,
        snap: &'s Snapshot<'s>,
        block: Option<BlockId>,
    ) -> RpcResult<(SealedHeader, StateView<'s>)> {
        let header = self
            .header_by_id(snap, block.unwrap_or_default())?
            .ok_or_else(header_not_found)?;
        let state = if header.hash == snap.head().hash {
            StateView::Head(snap)
        } else {
            StateView::Historical(snap.database().state_at(header.header.state_root))
        };
        Ok((header, state))
    }

    fn account_at(
        &self,
        address: Address,
        block: Option<BlockId>,
    ) -> RpcResult<Option<TrieAccount>> {
        let snap = self.snapshot()?;
        let (_, state) = self.state_at(&snap, block)?;
        state.account(address).map_err(storage_err)
    }

    pub(super) fn balance_at(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        Ok(self
            .account_at(address, block)?
            .map(|a| a.balance)
            .unwrap_or_default())
    }

    pub(super) fn nonce_at(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
        let nonce = self
            .account_at(address, block)?
            .map(|a| a.nonce)
            .unwrap_or_default();
        if matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending))) {
            return Ok(U64::from(self.state.pool.pending_nonce(address, nonce)));
        }
        Ok(U64::from(nonce))
    }

    pub(super) fn code_at(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        let snap = self.snapshot()?;
        let (_, state) = self.state_at(&snap, block)?;
        let Some(account) = state.account(address).map_err(storage_err)? else {
            return Ok(Bytes::new());
        };
        Ok(state
            .code(account.code_hash)
            .map_err(storage_err)?
            .unwrap_or_default())
    }

    pub(super) fn storage_slot_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256> {
        let snap = self.snapshot()?;
        let (_, state) = self.state_at(&snap, block)?;
        Ok(state.storage(address, slot).map_err(storage_err)?.into())
    }

    pub(super) fn sync_status(&self) -> SyncStatus {
        match self.state.network.as_ref().and_then(|n| n.sync_progress()) {
            None => SyncStatus::None,
            Some(p) => SyncStatus::Info(Box::new(alloy::rpc::types::SyncInfo {
                starting_block: U256::from(p.starting_block),
                current_block: U256::from(p.current_block),
                highest_block: U256::from(p.highest_block),
                ..Default::default()
            })),
        }
    }
}
