//! Polling filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`).
//!
//! The store is bounded twice: in filters (`max_filters`) and in the addresses and
//! topics all log filters hold together (`max_filter_criteria`). Installing beyond
//! either bound drops the filters polled longest ago; filters idle for the timeout are
//! dropped in any case.

use alloy::rpc::types::Filter;
use alloy_primitives::{B256, U256};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

#[derive(Debug)]
pub enum FilterKind {
    /// Logs matching the filter, from `next_block` on.
    Logs(Box<Filter>),
    /// Hashes of new canonical blocks from `next_block` on.
    Blocks,
    /// Hashes of transactions added to the pool.
    PendingTransactions(broadcast::Receiver<B256>),
}

impl FilterKind {
    /// What the filter counts against `max_filter_criteria`: its addresses and topics
    /// (at least 1).
    fn weight(&self) -> usize {
        match self {
            Self::Logs(f) => f
                .topics
                .iter()
                .map(|t| t.len())
                .fold(f.address.len(), usize::saturating_add)
                .max(1),
            Self::Blocks | Self::PendingTransactions(_) => 1,
        }
    }
}

#[derive(Debug)]
pub struct InstalledFilter {
    pub kind: FilterKind,
    /// First block not yet reported.
    pub next_block: u64,
    last_poll: Instant,
    weight: usize,
}

/// The bounds of a [`FilterStore`].
#[derive(Debug, Clone, Copy)]
pub struct FilterLimits {
    /// Filters not polled for this long are dropped.
    pub timeout: Duration,
    pub max_filters: usize,
    pub max_criteria: usize,
}

/// Installed filters by id.
#[derive(Debug, Default)]
pub struct FilterStore {
    filters: Mutex<HashMap<U256, InstalledFilter>>,
}

impl FilterStore {
    pub fn install(&self, kind: FilterKind, next_block: u64, limits: FilterLimits) -> U256 {
        let weight = kind.weight();
        let mut filters = self.filters.lock();
        filters.retain(|_, f| f.last_poll.elapsed() < limits.timeout);
        let mut total = filters
            .values()
            .map(|f| f.weight)
            .fold(0usize, usize::saturating_add);
        while !filters.is_empty()
            && (filters.len() >= limits.max_filters
                || total.saturating_add(weight) > limits.max_criteria)
        {
            let Some((oldest, dropped)) = filters
                .iter()
                .min_by_key(|(_, f)| f.last_poll)
                .map(|(id, f)| (*id, f.weight))
            else {
                break;
            };
            filters.remove(&oldest);
            total = total.saturating_sub(dropped);
        }
        // Random 128-bit ids, like geth's: one client cannot guess another's filter.
        let id = loop {
            let id = U256::from(rand::random::<u128>());
            if !filters.contains_key(&id) {
                break id;
            }
        };
        filters.insert(
            id,
            InstalledFilter {
                kind,
                next_block,
                last_poll: Instant::now(),
                weight,
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

    /// Installed filters now.
    pub fn len(&self) -> usize {
        self.filters.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;

    fn limits(max_filters: usize, max_criteria: usize) -> FilterLimits {
        FilterLimits {
            timeout: Duration::from_secs(300),
            max_filters,
            max_criteria,
        }
    }

    fn log_filter(addresses: usize) -> FilterKind {
        let list: Vec<Address> = (0..addresses)
            .map(|i| Address::with_last_byte(i as u8))
            .collect();
        FilterKind::Logs(Box::new(Filter::new().address(list)))
    }

    #[test]
    fn the_store_is_bounded_in_filters_and_criteria() {
        let store = FilterStore::default();
        let ids: Vec<U256> = (0..5)
            .map(|_| store.install(FilterKind::Blocks, 0, limits(3, 1_000)))
            .collect();
        assert_eq!(store.len(), 3);
        // The oldest went first.
        assert!(!store.uninstall(ids[0]));
        assert!(!store.uninstall(ids[1]));
        assert!(store.uninstall(ids[4]));

        let store = FilterStore::default();
        let a = store.install(log_filter(100), 0, limits(100, 250));
        let b = store.install(log_filter(100), 0, limits(100, 250));
        assert_eq!(store.len(), 2);
        // 100 + 100 + 100 > 250: the oldest is dropped to make room.
        let c = store.install(log_filter(100), 0, limits(100, 250));
        assert!(store.with(a, |_| ()).is_none());
        assert!(store.with(b, |_| ()).is_some());
        assert!(store.with(c, |_| ()).is_some());
        assert_ne!(b, c);
    }
}
