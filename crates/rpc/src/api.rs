//! The `eth_*`, `net_*`, `web3_*` and `txpool_*` namespaces.

use crate::convert::{RpcReceipt, rpc_block, rpc_header, rpc_receipts, rpc_transaction};
use crate::error::{self, header_not_found, internal, invalid_params, reverted, server};
use crate::filters::FilterKind;
use crate::state::{ChainEvent, PoolStateView, RpcState};
use alloy::consensus::Transaction as _;
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::rpc::types::state::StateOverride;
use alloy::rpc::types::{
    Block, FeeHistory, Filter, FilterBlockOption, FilterChanges, Header as RpcHeader, Index, Log,
    SyncStatus, Transaction, TransactionRequest,
};
use alloy_primitives::{Address, B256, Bytes, U64, U256, keccak256};
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage};
use koma_evm::BlockEnvInput;
use koma_evm::call::{CallError, CallResult, Caller};
use koma_primitives::SealedHeader;
use koma_storage::{StateReader, StorageError, StoredBody};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

fn storage_err(e: StorageError) -> ErrorObjectOwned {
    internal(e)
}

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
    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;
    #[method(name = "accounts")]
    fn accounts(&self) -> RpcResult<Vec<Address>>;
    #[method(name = "coinbase")]
    fn coinbase(&self) -> RpcResult<Address>;
    #[method(name = "mining")]
    fn mining(&self) -> RpcResult<bool>;
    #[method(name = "getBalance")]
    fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256>;
    #[method(name = "getTransactionCount")]
    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64>;
    #[method(name = "getCode")]
    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes>;
    #[method(name = "getStorageAt")]
    fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256>;
    #[method(name = "call", blocking)]
    fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<Bytes>;
    #[method(name = "estimateGas", blocking)]
    fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<U64>;
    #[method(name = "sendRawTransaction")]
    fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256>;
    #[method(name = "getTransactionByHash")]
    fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>>;
    #[method(name = "getTransactionByBlockHashAndIndex")]
    fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: Index,
    ) -> RpcResult<Option<Transaction>>;
    #[method(name = "getTransactionByBlockNumberAndIndex")]
    fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: Index,
    ) -> RpcResult<Option<Transaction>>;
    #[method(name = "getTransactionReceipt")]
    fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<RpcReceipt>>;
    #[method(name = "getBlockByNumber")]
    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>>;
    #[method(name = "getBlockByHash")]
    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>>;
    #[method(name = "getBlockReceipts")]
    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<RpcReceipt>>>;
    #[method(name = "getBlockTransactionCountByNumber")]
    fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;
    #[method(name = "getBlockTransactionCountByHash")]
    fn block_tx_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    #[method(name = "getUncleCountByBlockNumber")]
    fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>>;
    #[method(name = "getUncleCountByBlockHash")]
    fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    #[method(name = "getLogs", blocking)]
    fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>>;
    #[method(name = "newFilter")]
    fn new_filter(&self, filter: Filter) -> RpcResult<U256>;
    #[method(name = "newBlockFilter")]
    fn new_block_filter(&self) -> RpcResult<U256>;
    #[method(name = "newPendingTransactionFilter")]
    fn new_pending_transaction_filter(&self) -> RpcResult<U256>;
    #[method(name = "getFilterChanges", blocking)]
    fn filter_changes(&self, id: U256) -> RpcResult<FilterChanges>;
    #[method(name = "getFilterLogs", blocking)]
    fn filter_logs(&self, id: U256) -> RpcResult<Vec<Log>>;
    #[method(name = "uninstallFilter")]
    fn uninstall_filter(&self, id: U256) -> RpcResult<bool>;
    #[subscription(name = "subscribe" => "subscription", unsubscribe = "unsubscribe", item = serde_json::Value)]
    async fn subscribe(
        &self,
        kind: String,
        params: Option<serde_json::Value>,
    ) -> SubscriptionResult;
}

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

/// `txpool_status`.
#[derive(Debug, Clone, Serialize)]
pub struct TxpoolStatus {
    pub pending: U64,
    pub queued: U64,
}

/// `txpool_content`: sender -> nonce -> transaction.
#[derive(Debug, Clone, Serialize)]
pub struct TxpoolContent {
    pub pending: BTreeMap<Address, BTreeMap<String, Transaction>>,
    pub queued: BTreeMap<Address, BTreeMap<String, Transaction>>,
}

#[rpc(server, namespace = "txpool")]
pub trait TxpoolApi {
    #[method(name = "status")]
    fn status(&self) -> RpcResult<TxpoolStatus>;
    #[method(name = "content")]
    fn content(&self) -> RpcResult<TxpoolContent>;
}

/// Implementation of all namespaces over one [`RpcState`].
#[derive(Debug, Clone)]
pub struct KomaApi {
    pub(crate) state: Arc<RpcState>,
}

impl KomaApi {
    pub fn new(state: Arc<RpcState>) -> Self {
        Self { state }
    }

    fn resolve_number(&self, tag: BlockNumberOrTag) -> u64 {
        match tag {
            BlockNumberOrTag::Number(n) => n,
            BlockNumberOrTag::Earliest => 0,
            BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized => match &self.state.consensus {
                // The last block final at the node's threshold.
                Some(c) => c
                    .thresholds()
                    .get(c.node_threshold())
                    .and_then(|t| t.last_final)
                    .map_or(0, |b| b.number),
                // No finality layer: the head is the best answer (docs/rpc.md).
                None => self.state.db.head().number(),
            },
            _ => self.state.db.head().number(),
        }
    }

    fn header_by_tag(&self, tag: BlockNumberOrTag) -> RpcResult<Option<SealedHeader>> {
        if matches!(tag, BlockNumberOrTag::Latest | BlockNumberOrTag::Pending) {
            return Ok(Some(self.state.db.head()));
        }
        self.state
            .db
            .header_by_number(self.resolve_number(tag))
            .map_err(storage_err)
    }

    fn header_by_id(&self, id: BlockId) -> RpcResult<Option<SealedHeader>> {
        match id {
            BlockId::Number(tag) => self.header_by_tag(tag),
            BlockId::Hash(h) => {
                let header = self.state.db.header(h.block_hash).map_err(storage_err)?;
                let Some(header) = header else {
                    return Ok(None);
                };
                if h.require_canonical == Some(true)
                    && !self
                        .state
                        .db
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

    fn state_at(&self, block: Option<BlockId>) -> RpcResult<(SealedHeader, crate::state::StateAt)> {
        let header = self
            .header_by_id(block.unwrap_or_default())?
            .ok_or_else(header_not_found)?;
        let state = self.state.state_for(&header);
        Ok((header, state))
    }

    fn body(&self, hash: B256) -> RpcResult<StoredBody> {
        self.state
            .db
            .body(hash)
            .map_err(storage_err)?
            .ok_or_else(|| internal(format!("body of block {hash} missing")))
    }

    fn block(&self, header: Option<SealedHeader>, full: bool) -> RpcResult<Option<Block>> {
        let Some(header) = header else {
            return Ok(None);
        };
        let body = self.body(header.hash)?;
        Ok(Some(rpc_block(&header, &body, full)))
    }

    fn tx_at(&self, header: Option<SealedHeader>, index: Index) -> RpcResult<Option<Transaction>> {
        let Some(header) = header else {
            return Ok(None);
        };
        let body = self.body(header.hash)?;
        let i: usize = index.into();
        Ok(body
            .transactions
            .get(i)
            .zip(body.senders.get(i))
            .map(|(tx, sender)| rpc_transaction(tx, *sender, Some((&header, i as u64)))))
    }

    fn receipts_of(&self, header: &SealedHeader) -> RpcResult<Vec<RpcReceipt>> {
        let body = self.body(header.hash)?;
        let receipts = self
            .state
            .db
            .receipts(header.hash)
            .map_err(storage_err)?
            .ok_or_else(|| internal(format!("receipts of block {} missing", header.hash)))?;
        Ok(rpc_receipts(header, &body, &receipts))
    }

    fn caller_for(&self, header: &SealedHeader) -> Caller<'_> {
        let h = &header.header;
        Caller {
            spec: &self.state.spec,
            env: BlockEnvInput {
                number: h.number,
                timestamp: h.timestamp,
                beneficiary: h.beneficiary,
                gas_limit: h.gas_limit,
                base_fee: h.base_fee_per_gas.unwrap_or_default(),
                prevrandao: h.mix_hash,
            },
            gas_cap: self.state.config.gas_cap,
        }
    }

    /// Logs of canonical blocks `from..=to` matching `filter`.
    fn logs_in_range(&self, filter: &Filter, from: u64, to: u64) -> RpcResult<Vec<Log>> {
        let cfg = &self.state.config;
        if to >= from && to - from >= cfg.max_logs_block_range {
            return Err(error::limit(format!(
                "query exceeds max block range {}",
                cfg.max_logs_block_range
            )));
        }
        let mut out = Vec::new();
        for number in from..=to {
            let Some(header) = self
                .state
                .db
                .header_by_number(number)
                .map_err(storage_err)?
            else {
                break;
            };
            self.collect_block_logs(filter, &header, &mut out)?;
            if out.len() > cfg.max_logs {
                return Err(error::limit(format!(
                    "query returned more than {} results",
                    cfg.max_logs
                )));
            }
        }
        Ok(out)
    }

    fn collect_block_logs(
        &self,
        filter: &Filter,
        header: &SealedHeader,
        out: &mut Vec<Log>,
    ) -> RpcResult<()> {
        if !filter.matches_bloom(header.header.logs_bloom) {
            return Ok(());
        }
        for receipt in self.receipts_of(header)? {
            out.extend(
                receipt
                    .inner
                    .logs()
                    .iter()
                    .filter(|l| filter.matches(&l.inner))
                    .cloned(),
            );
        }
        Ok(())
    }

    fn filter_range(&self, filter: &Filter) -> RpcResult<(u64, u64)> {
        let head = self.state.db.head().number();
        match filter.block_option {
            FilterBlockOption::Range {
                from_block,
                to_block,
            } => {
                let from = from_block.map_or(head, |t| self.resolve_number(t));
                let to = to_block.map_or(head, |t| self.resolve_number(t)).min(head);
                if from > to && from <= head {
                    return Err(invalid_params("invalid block range params"));
                }
                Ok((from, to))
            }
            FilterBlockOption::AtBlockHash(_) => Ok((0, 0)),
        }
    }
}

fn call_error(e: CallError) -> ErrorObjectOwned {
    match e {
        CallError::Invalid(m) | CallError::Override(m) => server(m),
        CallError::Database(e) => internal(e),
    }
}

fn call_result(r: CallResult) -> RpcResult<Bytes> {
    match r {
        CallResult::Success { output, .. } => Ok(output),
        CallResult::Revert { output, .. } => Err(reverted(&output)),
        CallResult::Halt { reason, .. } => Err(server(halt_message(&reason))),
    }
}

fn halt_message(reason: &str) -> String {
    if reason.contains("OutOfGas") {
        "out of gas".into()
    } else {
        format!("execution halted: {reason}")
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
        let progress = self.state.network.as_ref().and_then(|n| n.sync_progress());
        Ok(match progress {
            None => SyncStatus::None,
            Some(p) => SyncStatus::Info(Box::new(alloy::rpc::types::SyncInfo {
                starting_block: U256::from(p.starting_block),
                current_block: U256::from(p.current_block),
                highest_block: U256::from(p.highest_block),
                ..Default::default()
            })),
        })
    }

    fn gas_price(&self) -> RpcResult<U256> {
        let tip = u128::from(self.state.spec.fees.min_priority_fee);
        Ok(U256::from(u128::from(self.state.next_base_fee()) + tip))
    }

    fn max_priority_fee_per_gas(&self) -> RpcResult<U256> {
        Ok(U256::from(self.state.spec.fees.min_priority_fee))
    }

    fn blob_base_fee(&self) -> RpcResult<U256> {
        Ok(U256::from(1))
    }

    fn fee_history(
        &self,
        block_count: U64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        let count = block_count.to::<u64>().min(1024);
        let newest = self
            .resolve_number(newest)
            .min(self.state.db.head().number());
        if let Some(p) = &percentiles
            && (p.iter().any(|x| !(0.0..=100.0).contains(x)) || p.windows(2).any(|w| w[0] > w[1]))
        {
            return Err(invalid_params(
                "invalid reward percentiles: must be ascending values in [0, 100]",
            ));
        }
        if count == 0 {
            return Ok(FeeHistory {
                oldest_block: newest,
                ..Default::default()
            });
        }
        let oldest = newest.saturating_sub(count - 1);
        let mut hist = FeeHistory {
            oldest_block: oldest,
            ..Default::default()
        };
        let mut rewards = Vec::new();
        let mut last = None;
        for n in oldest..=newest {
            let h = self
                .state
                .db
                .header_by_number(n)
                .map_err(storage_err)?
                .ok_or_else(header_not_found)?;
            let base_fee = h.header.base_fee_per_gas.unwrap_or_default();
            hist.base_fee_per_gas.push(u128::from(base_fee));
            hist.gas_used_ratio
                .push(h.header.gas_used as f64 / h.header.gas_limit.max(1) as f64);
            hist.base_fee_per_blob_gas.push(0);
            hist.blob_gas_used_ratio.push(0.0);
            if let Some(p) = &percentiles {
                let receipts = self.receipts_of(&h)?;
                let body = self.body(h.hash)?;
                let mut tips: Vec<(u128, u64)> = body
                    .transactions
                    .iter()
                    .zip(&receipts)
                    .map(|(tx, r)| {
                        (
                            tx.effective_tip_per_gas(base_fee).unwrap_or_default(),
                            r.gas_used,
                        )
                    })
                    .collect();
                tips.sort_unstable();
                // No tip below the pool's floor can be included, so the floor is the
                // least a fee estimator should see (empty blocks would otherwise suggest
                // a 0 tip that the pool refuses).
                let floor = u128::from(self.state.spec.fees.min_priority_fee);
                rewards.push(
                    percentile_rewards(&tips, h.header.gas_used, p)
                        .into_iter()
                        .map(|r| r.max(floor))
                        .collect(),
                );
            }
            last = Some(h);
        }
        if let Some(h) = last {
            hist.base_fee_per_gas
                .push(u128::from(self.state.spec.base_fee_after(&h.header)));
            hist.base_fee_per_blob_gas.push(0);
        }
        if percentiles.is_some() {
            hist.reward = Some(rewards);
        }
        Ok(hist)
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

    fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<U256> {
        let (_, state) = self.state_at(block)?;
        Ok(state
            .account(address)
            .map_err(storage_err)?
            .map(|a| a.balance)
            .unwrap_or_default())
    }

    fn transaction_count(&self, address: Address, block: Option<BlockId>) -> RpcResult<U64> {
        let (_, state) = self.state_at(block)?;
        let nonce = state
            .account(address)
            .map_err(storage_err)?
            .map(|a| a.nonce)
            .unwrap_or_default();
        if matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending))) {
            return Ok(U64::from(self.state.pool.pending_nonce(address, nonce)));
        }
        Ok(U64::from(nonce))
    }

    fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Bytes> {
        let (_, state) = self.state_at(block)?;
        let Some(acc) = state.account(address).map_err(storage_err)? else {
            return Ok(Bytes::new());
        };
        Ok(state
            .code(acc.code_hash)
            .map_err(storage_err)?
            .unwrap_or_default())
    }

    fn storage_at(&self, address: Address, slot: U256, block: Option<BlockId>) -> RpcResult<B256> {
        let (_, state) = self.state_at(block)?;
        Ok(state.storage(address, slot).map_err(storage_err)?.into())
    }

    fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<Bytes> {
        let (header, state) = self.state_at(block)?;
        let r = self
            .caller_for(&header)
            .call(state, &request, overrides.as_ref())
            .map_err(call_error)?;
        call_result(r)
    }

    fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> RpcResult<U64> {
        let (header, state) = self.state_at(block)?;
        match self
            .caller_for(&header)
            .estimate_gas(state, &request, overrides.as_ref())
            .map_err(call_error)?
        {
            Ok(gas) => Ok(U64::from(gas)),
            Err(failure) => call_result(failure).map(|_| U64::ZERO),
        }
    }

    fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256> {
        let view = PoolStateView(self.state.db.clone());
        let hash = self
            .state
            .pool
            .add_raw(&raw, &view, self.state.next_base_fee())
            .map_err(|e| ErrorObjectOwned::owned(e.rpc_code(), e.to_string(), None::<()>))?;
        if let Some(network) = &self.state.network {
            network.broadcast_transaction(raw);
        }
        Ok(hash)
    }

    fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        if let Some(loc) = self.state.db.tx_location(hash).map_err(storage_err)? {
            let header = self
                .state
                .db
                .header_by_number(loc.block_number)
                .map_err(storage_err)?;
            return self.tx_at(header, Index(loc.index as usize));
        }
        Ok(self
            .state
            .pool
            .get(&hash)
            .map(|p| rpc_transaction(&p.tx, p.sender, None)))
    }

    fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: Index,
    ) -> RpcResult<Option<Transaction>> {
        let header = self.header_by_id(BlockId::hash(hash))?;
        self.tx_at(header, index)
    }

    fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: Index,
    ) -> RpcResult<Option<Transaction>> {
        let header = self.header_by_tag(number)?;
        self.tx_at(header, index)
    }

    fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<RpcReceipt>> {
        let Some(loc) = self.state.db.tx_location(hash).map_err(storage_err)? else {
            return Ok(None);
        };
        let Some(header) = self
            .state
            .db
            .header_by_number(loc.block_number)
            .map_err(storage_err)?
        else {
            return Ok(None);
        };
        Ok(self
            .receipts_of(&header)?
            .into_iter()
            .nth(loc.index as usize))
    }

    fn block_by_number(&self, number: BlockNumberOrTag, full: bool) -> RpcResult<Option<Block>> {
        let header = self.header_by_tag(number)?;
        self.block(header, full)
    }

    fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        let header = self.header_by_id(BlockId::hash(hash))?;
        self.block(header, full)
    }

    fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<RpcReceipt>>> {
        let Some(header) = self.header_by_id(block)? else {
            return Ok(None);
        };
        self.receipts_of(&header).map(Some)
    }

    fn block_tx_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        let Some(header) = self.header_by_tag(number)? else {
            return Ok(None);
        };
        Ok(Some(U64::from(self.body(header.hash)?.transactions.len())))
    }

    fn block_tx_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        let Some(header) = self.header_by_id(BlockId::hash(hash))? else {
            return Ok(None);
        };
        Ok(Some(U64::from(self.body(header.hash)?.transactions.len())))
    }

    fn uncle_count_by_number(&self, number: BlockNumberOrTag) -> RpcResult<Option<U64>> {
        Ok(self.header_by_tag(number)?.map(|_| U64::ZERO))
    }

    fn uncle_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        Ok(self.header_by_id(BlockId::hash(hash))?.map(|_| U64::ZERO))
    }

    fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        if let FilterBlockOption::AtBlockHash(hash) = filter.block_option {
            let header = self
                .header_by_id(BlockId::hash(hash))?
                .ok_or_else(|| server("unknown block"))?;
            let mut out = Vec::new();
            self.collect_block_logs(&filter, &header, &mut out)?;
            return Ok(out);
        }
        let head = self.state.db.head().number();
        if let FilterBlockOption::Range {
            from_block,
            to_block,
        } = filter.block_option
        {
            // Like geth: a range that reaches past the head is an error, not clamped.
            let beyond = |t: Option<BlockNumberOrTag>| matches!(t, Some(BlockNumberOrTag::Number(n)) if n > head);
            if beyond(to_block) || beyond(from_block) {
                return Err(invalid_params(
                    "block range extends beyond current head block",
                ));
            }
        }
        let (from, to) = self.filter_range(&filter)?;
        self.logs_in_range(&filter, from, to)
    }

    fn new_filter(&self, filter: Filter) -> RpcResult<U256> {
        // Like geth: changes start at the filter's fromBlock, or after the current head.
        let start = match filter.get_from_block() {
            Some(from) => from,
            None => self.state.db.head().number() + 1,
        };
        Ok(self.state.filters.install(
            FilterKind::Logs(Box::new(filter)),
            start,
            self.state.config.filter_timeout,
        ))
    }

    fn new_block_filter(&self) -> RpcResult<U256> {
        let next = self.state.db.head().number() + 1;
        Ok(self
            .state
            .filters
            .install(FilterKind::Blocks, next, self.state.config.filter_timeout))
    }

    fn new_pending_transaction_filter(&self) -> RpcResult<U256> {
        let rx = self.state.pool.subscribe();
        Ok(self.state.filters.install(
            FilterKind::PendingTransactions(rx),
            0,
            self.state.config.filter_timeout,
        ))
    }

    fn filter_changes(&self, id: U256) -> RpcResult<FilterChanges> {
        let head = self.state.db.head().number();
        enum Todo {
            Blocks(u64),
            Logs(Box<Filter>, u64),
            Done(FilterChanges),
        }
        let todo = self
            .state
            .filters
            .with(id, |f| {
                let from = f.next_block;
                match &mut f.kind {
                    FilterKind::Blocks => {
                        f.next_block = head + 1;
                        Todo::Blocks(from)
                    }
                    FilterKind::Logs(filter) => {
                        f.next_block = head + 1;
                        Todo::Logs(filter.clone(), from)
                    }
                    FilterKind::PendingTransactions(rx) => {
                        let mut hashes = Vec::new();
                        loop {
                            match rx.try_recv() {
                                Ok(h) => hashes.push(h),
                                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                                    continue;
                                }
                                Err(_) => break,
                            }
                        }
                        Todo::Done(FilterChanges::Hashes(hashes))
                    }
                }
            })
            .ok_or_else(|| server("filter not found"))?;
        match todo {
            Todo::Done(c) => Ok(c),
            Todo::Blocks(from) => {
                let mut hashes = Vec::new();
                for n in from..=head {
                    if let Some(h) = self.state.db.canonical_hash(n).map_err(storage_err)? {
                        hashes.push(h);
                    }
                }
                Ok(FilterChanges::Hashes(hashes))
            }
            Todo::Logs(filter, from) => {
                let to = filter.get_to_block().unwrap_or(head).min(head);
                if from > to {
                    return Ok(FilterChanges::Logs(Vec::new()));
                }
                Ok(FilterChanges::Logs(self.logs_in_range(&filter, from, to)?))
            }
        }
    }

    fn filter_logs(&self, id: U256) -> RpcResult<Vec<Log>> {
        let filter = self
            .state
            .filters
            .with(id, |f| match &f.kind {
                FilterKind::Logs(filter) => Some(filter.clone()),
                _ => None,
            })
            .ok_or_else(|| server("filter not found"))?
            .ok_or_else(|| server("filter not found"))?;
        self.logs(*filter)
    }

    fn uninstall_filter(&self, id: U256) -> RpcResult<bool> {
        Ok(self.state.filters.uninstall(id))
    }

    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: String,
        params: Option<serde_json::Value>,
    ) -> SubscriptionResult {
        match kind.as_str() {
            "finalized" => {
                let sink = pending.accept().await?;
                let mut rx = self.state.finalized.subscribe();
                tokio::spawn(async move {
                    loop {
                        let block = match rx.recv().await {
                            Ok(b) => b,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        };
                        let Ok(msg) = SubscriptionMessage::new(
                            sink.method_name(),
                            sink.subscription_id(),
                            &block,
                        ) else {
                            break;
                        };
                        if sink.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
                Ok(())
            }
            "newHeads" => {
                let sink = pending.accept().await?;
                let mut rx = self.state.events.subscribe();
                tokio::spawn(async move {
                    loop {
                        let ev = match rx.recv().await {
                            Ok(ev) => ev,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        };
                        if ev.removed {
                            continue;
                        }
                        let header: RpcHeader = rpc_header(&ev.header, None);
                        let Ok(msg) = SubscriptionMessage::new(
                            sink.method_name(),
                            sink.subscription_id(),
                            &header,
                        ) else {
                            break;
                        };
                        if sink.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
                Ok(())
            }
            "logs" => {
                let filter: Filter = match params {
                    Some(p) => match serde_json::from_value(p) {
                        Ok(f) => f,
                        Err(e) => {
                            pending
                                .reject(invalid_params(format!("invalid logs filter: {e}")))
                                .await;
                            return Ok(());
                        }
                    },
                    None => Filter::default(),
                };
                let sink = pending.accept().await?;
                let mut rx = self.state.events.subscribe();
                tokio::spawn(async move {
                    loop {
                        let ev = match rx.recv().await {
                            Ok(ev) => ev,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        };
                        for log in event_logs(&ev, &filter) {
                            let Ok(msg) = SubscriptionMessage::new(
                                sink.method_name(),
                                sink.subscription_id(),
                                &log,
                            ) else {
                                return;
                            };
                            if sink.send(msg).await.is_err() {
                                return;
                            }
                        }
                    }
                });
                Ok(())
            }
            "newPendingTransactions" => {
                let full = matches!(params, Some(serde_json::Value::Bool(true)));
                let sink = pending.accept().await?;
                let mut rx = self.state.pool.subscribe();
                let pool = self.state.pool.clone();
                tokio::spawn(async move {
                    loop {
                        let hash = match rx.recv().await {
                            Ok(h) => h,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        };
                        let msg = if full {
                            let Some(p) = pool.get(&hash) else { continue };
                            SubscriptionMessage::new(
                                sink.method_name(),
                                sink.subscription_id(),
                                &rpc_transaction(&p.tx, p.sender, None),
                            )
                        } else {
                            SubscriptionMessage::new(
                                sink.method_name(),
                                sink.subscription_id(),
                                &hash,
                            )
                        };
                        let Ok(msg) = msg else { break };
                        if sink.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
                Ok(())
            }
            other => {
                pending
                    .reject(invalid_params(format!(
                        "unsupported subscription type: {other}"
                    )))
                    .await;
                Ok(())
            }
        }
    }
}

/// Logs of a chain event that match `filter`, flagged `removed` for reorged blocks.
pub fn event_logs(ev: &ChainEvent, filter: &Filter) -> Vec<Log> {
    if !filter.matches_bloom(ev.header.header.logs_bloom) {
        return Vec::new();
    }
    rpc_receipts(&ev.header, &ev.body, &ev.receipts)
        .into_iter()
        .flat_map(|r| r.inner.logs().to_vec())
        .filter(|l| filter.matches(&l.inner))
        .map(|mut l| {
            l.removed = ev.removed;
            l
        })
        .collect()
}

/// Gas-weighted tip percentiles of one block (as geth computes them).
fn percentile_rewards(
    sorted_tips: &[(u128, u64)],
    gas_used: u64,
    percentiles: &[f64],
) -> Vec<u128> {
    if sorted_tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    let mut out = Vec::with_capacity(percentiles.len());
    let mut idx = 0usize;
    let mut cumulative = sorted_tips.first().map_or(0, |t| t.1);
    for p in percentiles {
        let threshold = (gas_used as f64 * p / 100.0) as u64;
        while cumulative < threshold && idx + 1 < sorted_tips.len() {
            idx += 1;
            cumulative += sorted_tips.get(idx).map_or(0, |t| t.1);
        }
        out.push(sorted_tips.get(idx).map_or(0, |t| t.0));
    }
    out
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
        Ok(keccak256(&data))
    }
}

impl TxpoolApiServer for KomaApi {
    fn status(&self) -> RpcResult<TxpoolStatus> {
        let s = self.state.pool.status();
        Ok(TxpoolStatus {
            pending: U64::from(s.pending),
            queued: U64::from(s.queued),
        })
    }
    fn content(&self) -> RpcResult<TxpoolContent> {
        let c = self.state.pool.content();
        let convert = |m: BTreeMap<Address, BTreeMap<u64, Arc<koma_txpool::PooledTx>>>| {
            m.into_iter()
                .map(|(addr, txs)| {
                    let txs = txs
                        .into_iter()
                        .map(|(nonce, p)| {
                            (nonce.to_string(), rpc_transaction(&p.tx, p.sender, None))
                        })
                        .collect();
                    (addr, txs)
                })
                .collect()
        };
        Ok(TxpoolContent {
            pending: convert(c.pending),
            queued: convert(c.queued),
        })
    }
}
