//! The `eth_*`, `net_*`, `web3_*` and `txpool_*` namespaces.
//!
//! The method definitions and their dispatch are here; the work is done per area, as
//! reth's `rpc-eth-api` splits it:
//!
//! - `state`: block resolution, one consistent state per request, balances, code,
//!   storage, nonces;
//! - `blocks`: blocks, receipts, transaction and uncle counts;
//! - `transactions`: sending raw transactions, transactions and receipts by hash;
//! - `call`: `eth_call` and `eth_estimateGas`;
//! - `logs`: `eth_getLogs` and the log scan the filters share;
//! - `fees`: gas price, priority fee, fee history;
//! - `filters`: polling filters;
//! - `subscriptions`: `eth_subscribe`;
//! - `pool`: `txpool_*`, and `net_*` / `web3_*`.
//!
//! Handlers that touch storage or run the EVM run on the [`BlockingPool`]; the rest
//! (constants, the in-memory head, the pool's counters) answer on the async worker.

mod blocks;
mod bridge;
mod call;
mod checkpoints;
mod fees;
mod filters;
mod logs;
mod pool;
mod producers;
mod state;
mod subscriptions;
mod transactions;

pub use blocks::BlockSeal;
pub use bridge::{DepositStatus, WithdrawalFields, WithdrawalProof};
pub use checkpoints::{BlockProof, MerkleOfMerkles};
pub use pool::{TxpoolContent, TxpoolStatus};
pub use subscriptions::event_logs;

use crate::blocking::{BlockingPool, Work};
use crate::convert::RpcReceipt;
use crate::params::{LogFilter, Quantity, RewardPercentiles};
use crate::state::RpcState;
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::rpc::types::state::StateOverride;
use alloy::rpc::types::{
    Block, FeeHistory, FilterChanges, Index, Log, SyncStatus, Transaction, TransactionRequest,
};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use serde_json::value::RawValue;
use std::sync::Arc;

#[rpc(server, namespace = "eth")]
pub trait EthApi {
    #[method(name = "chainId")]
    fn chain_id(&self) -> RpcResult<U64>;
    #[method(name = "blockNumber")]
    fn block_number(&self) -> RpcResult<U64>;
    #[method(name = "syncing")]
    fn syncing(&self) -> RpcResult<SyncStatus>;
    #[method(name = "gasPrice")]
    fn gas_price(&self) -> RpcResult<U256>;
    #[method(name = "maxPriorityFeePerGas")]
    fn max_priority_fee_per_gas(&self) -> RpcResult<U256>;
    #[method(name = "blobBaseFee")]
    fn blob_base_fee(&self) -> RpcResult<U256>;
    #[method(name = "feeHistory")]
    async fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<RewardPercentiles>,
    ) -> RpcResult<FeeHistory>;
    #[method(name = "accounts")]
    fn accounts(&self) -> RpcResult<Vec<Address>>;
    #[method(name = "coinbase")]
    fn coinbase(&self) -> RpcResult<Address>;
    #[method(name = "mining")]
    fn mining(&self) -> RpcResult<bool>;
    #[method(name = "getBalance")]
    async fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256>;
    #[method(name = "getTransactionCount")]
    async fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64>;
    #[method(name = "getCode")]
    async fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes>;
    #[method(name = "getStorageAt")]
    async fn storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256>;
    #[method(name = "call")]
    async fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<Bytes>;
    #[method(name = "estimateGas")]
    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<U64>;
    #[method(name = "sendRawTransaction")]
    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256>;
    #[method(name = "getTransactionByHash")]
    async fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>>;
    #[method(name = "getTransactionByBlockHashAndIndex")]
    async fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: Index,
    ) -> RpcResult<Option<Transaction>>;
    #[method(name = "getTransactionByBlockNumberAndIndex")]
    async fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: Index,
    ) -> RpcResult<Option<Transaction>>;
    #[method(name = "getTransactionReceipt")]
    async fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<RpcReceipt>>;
    #[method(name = "getBlockByNumber")]
    async fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> RpcResult<Option<Block>>;
    #[method(name = "getBlockByHash")]
    async fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>>;
    #[method(name = "getBlockReceipts")]
    async fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<RpcReceipt>>>;
    #[method(name = "getBlockTransactionCountByNumber")]
    async fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;
    #[method(name = "getBlockTransactionCountByHash")]
    async fn block_tx_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    #[method(name = "getUncleCountByBlockNumber")]
    async fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;
    #[method(name = "getUncleCountByBlockHash")]
    async fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    #[method(name = "getLogs")]
    async fn logs(&self, filter: LogFilter) -> RpcResult<Vec<Log>>;
    #[method(name = "newFilter")]
    fn new_filter(&self, filter: LogFilter) -> RpcResult<U256>;
    #[method(name = "newBlockFilter")]
    fn new_block_filter(&self) -> RpcResult<U256>;
    #[method(name = "newPendingTransactionFilter")]
    fn new_pending_transaction_filter(&self) -> RpcResult<U256>;
    #[method(name = "getFilterChanges")]
    async fn filter_changes(&self, id: U256) -> RpcResult<FilterChanges>;
    #[method(name = "getFilterLogs")]
    async fn filter_logs(&self, id: U256) -> RpcResult<Vec<Log>>;
    #[method(name = "uninstallFilter")]
    fn uninstall_filter(&self, id: U256) -> RpcResult<bool>;
    #[subscription(name = "subscribe" => "subscription", unsubscribe = "unsubscribe", item = serde_json::Value)]
    async fn subscribe(&self, kind: String, params: Option<Box<RawValue>>) -> SubscriptionResult;
}

/// The chain's own block data, beside Ethereum's shapes.
#[rpc(server, namespace = "koma")]
pub trait KomaChainApi {
    /// The producer's seal over a block (by hash, number or tag): the signature that
    /// travels beside the unsigned Ethereum header, with the address it recovers to.
    #[method(name = "getBlockSeal")]
    async fn block_seal(&self, block: BlockId) -> RpcResult<Option<BlockSeal>>;
    /// A checkpoint accepted on L1 (by number, or `"latest"`): its range, root, L1
    /// transaction and block, confirmations; `null` if not (yet) accepted.
    #[method(name = "getCheckpoint")]
    async fn checkpoint(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<crate::backend::CheckpointInfo>>;
    /// The proof that L2 block `block` is in an accepted checkpoint: its leaf fields,
    /// its index, the Merkle path and the checkpoint number, as the root contract's
    /// `verifyBlock` takes them; `null` while no accepted checkpoint covers it.
    #[method(name = "getBlockProof")]
    async fn block_proof(&self, block: BlockNumberOrTag) -> RpcResult<Option<BlockProof>>;
    /// Komodo's `calc_MoM`: the Merkle root over the checkpoint leaves of the `depth`
    /// blocks ending at block `height` (leaves, padding and hashing as in a checkpoint).
    /// Both are numbers or hex quantities; `depth` is 1 to 10,000.
    #[method(name = "calcMoM")]
    async fn calc_mom(&self, height: Quantity, depth: Quantity) -> RpcResult<MerkleOfMerkles>;
    /// What `Bridge.exit` on L1 takes for the `index`-th (default 0) withdrawal that
    /// transaction `tx` made through the L2 bridge: the withdrawal, its proof to the
    /// block's `withdrawalsRoot`, the block's leaf, and, once an accepted checkpoint covers
    /// the block, the checkpoint number and the block's proof (else `null`). `null` for an
    /// unknown transaction.
    #[method(name = "getWithdrawalProof")]
    async fn withdrawal_proof(
        &self,
        tx: B256,
        index: Option<Quantity>,
    ) -> RpcResult<Option<WithdrawalProof>>;
    /// Deposit `id` from L1: its fields and L1 transaction as this node read them past
    /// its confirmations, and where it was applied on L2 with that block's finality;
    /// `null` for id 0.
    #[method(name = "getDeposit")]
    async fn deposit(&self, id: Quantity) -> RpcResult<Option<DepositStatus>>;
    /// Who produces a block: a block number or tag (default `"pending"`, the next
    /// block), or `{"span": n}` for span n's first block. The span's election (from L1
    /// or the genesis list), its reserves, the replacements made before the block, the
    /// producers in succession order and the one in turn; `null` for a block whose
    /// span's election is not known yet.
    #[method(name = "producers")]
    async fn producers(
        &self,
        at: Option<ProducersAt>,
    ) -> RpcResult<Option<crate::backend::SpanProducers>>;
}

pub use producers::ProducersAt;

#[rpc(server, namespace = "net")]
pub trait NetApi {
    #[method(name = "version")]
    fn version(&self) -> RpcResult<String>;
    #[method(name = "listening")]
    fn listening(&self) -> RpcResult<bool>;
    #[method(name = "peerCount")]
    fn peer_count(&self) -> RpcResult<U64>;
}

#[rpc(server, namespace = "web3")]
pub trait Web3Api {
    #[method(name = "clientVersion")]
    fn client_version(&self) -> RpcResult<String>;
    #[method(name = "sha3")]
    fn sha3(&self, data: Bytes) -> RpcResult<B256>;
}

#[rpc(server, namespace = "txpool")]
pub trait TxpoolApi {
    #[method(name = "status")]
    fn status(&self) -> RpcResult<TxpoolStatus>;
    #[method(name = "content")]
    async fn content(&self) -> RpcResult<TxpoolContent>;
}

/// Implementation of all namespaces over one [`RpcState`].
#[derive(Debug, Clone)]
pub struct KomaApi {
    pub(crate) state: Arc<RpcState>,
    blocking: BlockingPool,
}

impl KomaApi {
    pub fn new(state: Arc<RpcState>) -> Self {
        let blocking = BlockingPool::new(&state.config);
        Self { state, blocking }
    }

    /// Runs `f` on the blocking pool (see [`crate::blocking`]).
    async fn spawn<R, F>(&self, work: Work, f: F) -> RpcResult<R>
    where
        F: FnOnce(&KomaApi) -> RpcResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let this = self.clone();
        self.blocking.run(work, move || f(&this)).await
    }

    /// Storage reads on the blocking pool.
    async fn io<R, F>(&self, f: F) -> RpcResult<R>
    where
        F: FnOnce(&KomaApi) -> RpcResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.spawn(Work::Io, f).await
    }
}

#[async_trait]
impl EthApiServer for KomaApi {
    fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.state.spec.chain_id))
    }

    fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.state.db.head().number()))
    }

    fn syncing(&self) -> RpcResult<SyncStatus> {
        Ok(self.sync_status())
    }

    fn gas_price(&self) -> RpcResult<U256> {
        Ok(self.gas_price_now())
    }

    fn max_priority_fee_per_gas(&self) -> RpcResult<U256> {
        Ok(U256::from(self.state.spec.fees.min_priority_fee))
    }

    fn blob_base_fee(&self) -> RpcResult<U256> {
        Ok(U256::from(1))
    }

    async fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<RewardPercentiles>,
    ) -> RpcResult<FeeHistory> {
        let percentiles = match &percentiles {
            Some(p) => Some(crate::params::check_percentiles(p)?.to_vec()),
            None => None,
        };
        let count = block_count.to::<u64>();
        self.io(move |api| api.fee_history_in(count, newest, percentiles.as_deref()))
            .await
    }

    fn accounts(&self) -> RpcResult<Vec<Address>> {
        Ok(Vec::new())
    }

    fn coinbase(&self) -> RpcResult<Address> {
        Ok(self.state.db.head().header.beneficiary)
    }

    fn mining(&self) -> RpcResult<bool> {
        Ok(false)
    }

    async fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        self.io(move |api| api.balance_at(address, block)).await
    }

    async fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
        self.io(move |api| api.nonce_at(address, block)).await
    }

    async fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        self.io(move |api| api.code_at(address, block)).await
    }

    async fn storage_at(
        &self,
        address: Address,
        slot: U256,
        block: Option<BlockId>,
    ) -> RpcResult<B256> {
        self.io(move |api| api.storage_slot_at(address, slot, block))
            .await
    }

    async fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<Bytes> {
        self.spawn(Work::Evm, move |api| {
            api.call_at(&request, block, overrides.as_ref())
        })
        .await
    }

    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<U64> {
        self.spawn(Work::Evm, move |api| {
            api.estimate_at(&request, block, overrides.as_ref())
        })
        .await
    }

    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256> {
        self.submit_raw(raw).await
    }

    async fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        self.io(move |api| api.transaction_by_hash_in(hash)).await
    }

    async fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: Index,
    ) -> RpcResult<Option<Transaction>> {
        self.io(move |api| api.transaction_at(BlockId::hash(hash), index))
            .await
    }

    async fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: Index,
    ) -> RpcResult<Option<Transaction>> {
        self.io(move |api| api.transaction_at(BlockId::Number(number), index))
            .await
    }

    async fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<RpcReceipt>> {
        self.io(move |api| api.receipt_of(hash)).await
    }

    async fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> RpcResult<Option<Block>> {
        self.io(move |api| api.block_at(BlockId::Number(number), full))
            .await
    }

    async fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        self.io(move |api| api.block_at(BlockId::hash(hash), full))
            .await
    }

    async fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<RpcReceipt>>> {
        self.io(move |api| api.block_receipts_at(block)).await
    }

    async fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        self.io(move |api| api.tx_count_at(BlockId::Number(number)))
            .await
    }

    async fn block_tx_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        self.io(move |api| api.tx_count_at(BlockId::hash(hash)))
            .await
    }

    async fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        self.io(move |api| api.uncle_count_at(BlockId::Number(number)))
            .await
    }

    async fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        self.io(move |api| api.uncle_count_at(BlockId::hash(hash)))
            .await
    }

    async fn logs(&self, filter: LogFilter) -> RpcResult<Vec<Log>> {
        let filter = filter.into_filter()?;
        self.io(move |api| api.logs_of(&filter)).await
    }

    fn new_filter(&self, filter: LogFilter) -> RpcResult<U256> {
        self.install_log_filter(filter.into_filter()?)
    }

    fn new_block_filter(&self) -> RpcResult<U256> {
        Ok(self.install_block_filter())
    }

    fn new_pending_transaction_filter(&self) -> RpcResult<U256> {
        Ok(self.install_pending_filter())
    }

    async fn filter_changes(&self, id: U256) -> RpcResult<FilterChanges> {
        self.io(move |api| api.poll_filter(id)).await
    }

    async fn filter_logs(&self, id: U256) -> RpcResult<Vec<Log>> {
        let filter = self.log_filter(id)?;
        self.io(move |api| api.logs_of(&filter)).await
    }

    fn uninstall_filter(&self, id: U256) -> RpcResult<bool> {
        Ok(self.state.filters.uninstall(id))
    }

    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<Box<RawValue>>,
    ) -> SubscriptionResult {
        self.subscribe_to(pending, &kind, params).await
    }
}

#[async_trait]
impl KomaChainApiServer for KomaApi {
    async fn block_seal(&self, block: BlockId) -> RpcResult<Option<BlockSeal>> {
        self.io(move |api| api.block_seal_at(block)).await
    }
    async fn checkpoint(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<crate::backend::CheckpointInfo>> {
        self.checkpoint_at(number)
    }
    async fn block_proof(&self, block: BlockNumberOrTag) -> RpcResult<Option<BlockProof>> {
        self.io(move |api| api.block_proof_at(block)).await
    }
    async fn calc_mom(&self, height: Quantity, depth: Quantity) -> RpcResult<MerkleOfMerkles> {
        self.io(move |api| api.mom_at(height.0, depth.0)).await
    }
    async fn withdrawal_proof(
        &self,
        tx: B256,
        index: Option<Quantity>,
    ) -> RpcResult<Option<WithdrawalProof>> {
        let index = index.map_or(0, |q| q.0);
        self.io(move |api| api.withdrawal_proof_of(tx, index)).await
    }

    async fn deposit(&self, id: Quantity) -> RpcResult<Option<DepositStatus>> {
        self.io(move |api| api.deposit_status(id.0)).await
    }

    async fn producers(
        &self,
        at: Option<ProducersAt>,
    ) -> RpcResult<Option<crate::backend::SpanProducers>> {
        self.io(move |api| api.producers_at(at)).await
    }
}

impl NetApiServer for KomaApi {
    fn version(&self) -> RpcResult<String> {
        Ok(self.state.spec.chain_id.to_string())
    }
    fn listening(&self) -> RpcResult<bool> {
        Ok(true)
    }
    fn peer_count(&self) -> RpcResult<U64> {
        let peers = self.state.network.as_ref().map_or(0, |n| n.peer_count());
        Ok(U64::from(peers))
    }
}

impl Web3ApiServer for KomaApi {
    fn client_version(&self) -> RpcResult<String> {
        Ok(self.state.config.client_version.clone())
    }
    fn sha3(&self, data: Bytes) -> RpcResult<B256> {
        Ok(alloy_primitives::keccak256(&data))
    }
}

#[async_trait]
impl TxpoolApiServer for KomaApi {
    fn status(&self) -> RpcResult<TxpoolStatus> {
        Ok(self.pool_status())
    }
    async fn content(&self) -> RpcResult<TxpoolContent> {
        self.check_pool_content_size()?;
        self.io(|api| api.pool_content()).await
    }
}
