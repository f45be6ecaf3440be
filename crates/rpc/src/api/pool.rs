//! `txpool_status` and `txpool_content`.
//!
//! The pool may hold hundreds of thousands of transactions; `txpool_content` answers
//! only while it holds at most `max_txpool_content` (checked from the counters before
//! anything is copied), else -32005.

use super::KomaApi;
use crate::convert::rpc_transaction;
use crate::error;
use alloy::rpc::types::Transaction;
use alloy_primitives::{Address, U64};
use jsonrpsee::core::RpcResult;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

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

type BySender = BTreeMap<Address, BTreeMap<u64, Arc<koma_txpool::PooledTx>>>;

impl KomaApi {
    pub(super) fn pool_status(&self) -> TxpoolStatus {
        let s = self.state.pool.status();
        TxpoolStatus {
            pending: U64::from(s.pending),
            queued: U64::from(s.queued),
        }
    }

    fn content_limit_error(&self, count: usize) -> jsonrpsee::types::ErrorObjectOwned {
        error::limit(format!(
            "txpool content of {count} transactions exceeds the limit {}",
            self.state.config.max_txpool_content
        ))
    }

    /// Refuses `txpool_content` for a pool larger than the limit, before any copy.
    pub(super) fn check_pool_content_size(&self) -> RpcResult<()> {
        let s = self.state.pool.status();
        let count = s.pending.saturating_add(s.queued);
        if count > self.state.config.max_txpool_content {
            return Err(self.content_limit_error(count));
        }
        Ok(())
    }

    pub(super) fn pool_content(&self) -> RpcResult<TxpoolContent> {
        let content = self.state.pool.content();
        // The pool may have grown since the check.
        let count = content
            .pending
            .values()
            .chain(content.queued.values())
            .map(BTreeMap::len)
            .fold(0usize, usize::saturating_add);
        if count > self.state.config.max_txpool_content {
            return Err(self.content_limit_error(count));
        }
        let convert = |m: BySender| {
            m.into_iter()
                .map(|(address, txs)| {
                    let txs = txs
                        .into_iter()
                        .map(|(nonce, p)| {
                            (nonce.to_string(), rpc_transaction(&p.tx, p.sender, None))
                        })
                        .collect();
                    (address, txs)
                })
                .collect()
        };
        Ok(TxpoolContent {
            pending: convert(content.pending),
            queued: convert(content.queued),
        })
    }
}
