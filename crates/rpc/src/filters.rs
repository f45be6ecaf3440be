//! Polling filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`).

use alloy::rpc::types::Filter;
use alloy_primitives::{B256, U256};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Most filters installed at once; beyond this the oldest idle one is dropped.
const MAX_FILTERS: usize = 10_000;

#[derive(Debug)]
pub enum FilterKind {
    /// Logs matching the filter, from `next_block` on.
    Logs(Box<Filter>),
    /// Hashes of new canonical blocks from `next_block` on.
    Blocks,
    /// Hashes of transactions added to the pool.
    PendingTransactions(broadcast::Receiver<B256>),
}

#[derive(Debug)]
pub struct InstalledFilter {
    pub kind: FilterKind,
    /// First block not yet reported.
    pub next_block: u64,
    last_poll: Instant,
}

/// Installed filters by id.
#[derive(Debug, Default)]
pub struct FilterStore {
    filters: Mutex<HashMap<U256, InstalledFilter>>,
    next_id: Mutex<u64>,
}

impl FilterStore {
    pub fn install(&self, kind: FilterKind, next_block: u64, timeout: Duration) -> U256 {
        let mut filters = self.filters.lock();
        filters.retain(|_, f| f.last_poll.elapsed() < timeout);
        if filters.len() >= MAX_FILTERS
            && let Some(oldest) = filters
                .iter()
                .min_by_key(|(_, f)| f.last_poll)
                .map(|(id, _)| *id)
        {
            filters.remove(&oldest);
        }
        let mut next = self.next_id.lock();
        *next += 1;
        // Ids are not guessable in order, so one client cannot poll another's filter
        // by counting: mix the counter with the process start address space.
        let id = U256::from(*next) ^ (U256::from(std::process::id()) << 64);
        filters.insert(
            id,
            InstalledFilter {
                kind,
                next_block,
                last_poll: Instant::now(),
            },
        );
        id
    }

    pub fn uninstall(&self, id: U256) -> bool {
        self.filters.lock().remove(&id).is_some()
    }

    /// Runs `f` on the filter, refreshing its idle timer. `None` if unknown.
    pub fn with<R>(&self, id: U256, f: impl FnOnce(&mut InstalledFilter) -> R) -> Option<R> {
        let mut filters = self.filters.lock();
        let filter = filters.get_mut(&id)?;
        filter.last_poll = Instant::now();
        Some(f(filter))
    }
}
