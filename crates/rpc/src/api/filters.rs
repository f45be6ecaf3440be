//! Polling filters: installing them (in memory, bounded: see [`crate::filters`]) and
//! polling them (storage reads, on the blocking pool).

use super::KomaApi;
use super::state::storage_err;
use crate::error::server;
use crate::filters::{FilterKind, FilterLimits};
use alloy::rpc::types::{Filter, FilterChanges};
use alloy_primitives::U256;
use jsonrpsee::core::RpcResult;

/// What a poll has to read, decided under the store's lock.
enum Todo {
    Blocks(u64),
    Logs(Box<Filter>, u64),
    Done(FilterChanges),
}

impl KomaApi {
    fn filter_limits(&self) -> FilterLimits {
        let cfg = &self.state.config;
        FilterLimits {
            timeout: cfg.filter_timeout,
            max_filters: cfg.max_filters,
            max_criteria: cfg.max_filter_criteria,
        }
    }

    /// The block after the in-memory head.
    fn next_block(&self) -> u64 {
        self.state.db.head().number().saturating_add(1)
    }

    pub(super) fn install_log_filter(&self, filter: Filter) -> RpcResult<U256> {
        // Like geth: changes start at the filter's fromBlock, or after the current head.
        let start = filter.get_from_block().unwrap_or_else(|| self.next_block());
        Ok(self.state.filters.install(
            FilterKind::Logs(Box::new(filter)),
            start,
            self.filter_limits(),
        ))
    }

    pub(super) fn install_block_filter(&self) -> U256 {
        self.state
            .filters
            .install(FilterKind::Blocks, self.next_block(), self.filter_limits())
    }

    pub(super) fn install_pending_filter(&self) -> U256 {
        let rx = self.state.pool.subscribe();
        self.state
            .filters
            .install(FilterKind::PendingTransactions(rx), 0, self.filter_limits())
    }

    /// The filter of a log filter id (for `eth_getFilterLogs`).
    pub(super) fn log_filter(&self, id: U256) -> RpcResult<Filter> {
        self.state
            .filters
            .with(id, |f| match &f.kind {
                FilterKind::Logs(filter) => Some(filter.as_ref().clone()),
                _ => None,
            })
            .flatten()
            .ok_or_else(|| server("filter not found"))
    }

    /// `eth_getFilterChanges`.
    pub(super) fn poll_filter(&self, id: U256) -> RpcResult<FilterChanges> {
        let snap = self.snapshot()?;
        let head = snap.head().number();
        let todo = self
            .state
            .filters
            .with(id, |f| {
                let from = f.next_block;
                match &mut f.kind {
                    FilterKind::Blocks => {
                        f.next_block = head.saturating_add(1);
                        Todo::Blocks(from)
                    }
                    FilterKind::Logs(filter) => {
                        f.next_block = head.saturating_add(1);
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
            Todo::Done(changes) => Ok(changes),
            Todo::Blocks(from) => {
                // At most the last `max_logs_block_range` blocks: a filter polled
                // rarely does not make one poll read the whole chain.
                let window = self.state.config.max_logs_block_range.max(1);
                let from = from.max(head.saturating_sub(window.saturating_sub(1)));
                let mut hashes = Vec::new();
                for n in from..=head {
                    if let Some(h) = snap.canonical_hash(n).map_err(storage_err)? {
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
                Ok(FilterChanges::Logs(
                    self.logs_in_range(&snap, &filter, from, to)?,
                ))
            }
        }
    }
}
