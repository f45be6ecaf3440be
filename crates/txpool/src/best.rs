//! Block-building order: best effective tip first, each sender's transactions in nonce
//! order.

use std::{cmp::Ordering, collections::BinaryHeap, sync::Arc};

use alloy_primitives::{Address, map::AddressHashSet};
use parking_lot::RwLock;

use crate::{PooledTx, pool::PoolInner};

/// A sender's next transaction, ranked by what it pays the producer.
#[derive(Debug)]
struct Candidate {
    tip: u128,
    tx: Arc<PooledTx>,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    /// Max-heap order: higher tip first; on equal tips, earlier arrival first.
    fn cmp(&self, other: &Self) -> Ordering {
        self.tip
            .cmp(&other.tip)
            .then_with(|| other.tx.sequence.cmp(&self.tx.sequence))
    }
}

/// Iterator over executable transactions for a block at a given base fee.
///
/// Holds one candidate per sender in a binary heap: it starts with each sender's lowest
/// pending nonce (a snapshot taken when the iterator is created, O(senders)) and, when
/// it yields a sender's nonce `n`, looks up `n + 1` in the pool (a short read lock) and
/// pushes it. So a sender's transactions come out in nonce order, interleaved with other
/// senders' by effective tip. A transaction whose fee cap is below the base fee ends its
/// sender's sequence, as does [`BestTransactions::mark_invalid`].
///
/// The iterator does not keep the pool locked between items; it never yields a
/// transaction twice, but may yield a transaction that arrived after it was created (as
/// the continuation of a sender's sequence).
pub struct BestTransactions {
    pool: Arc<RwLock<PoolInner>>,
    base_fee: u64,
    heap: BinaryHeap<Candidate>,
    invalid: AddressHashSet,
}

impl std::fmt::Debug for BestTransactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BestTransactions")
            .field("base_fee", &self.base_fee)
            .field("candidates", &self.heap.len())
            .field("invalid_senders", &self.invalid.len())
            .finish()
    }
}

impl BestTransactions {
    pub(crate) fn new(pool: Arc<RwLock<PoolInner>>, base_fee: u64) -> Self {
        let candidates: Vec<Candidate> = pool
            .read()
            .pending_heads()
            .filter_map(|tx| {
                tx.effective_tip(base_fee).map(|tip| Candidate {
                    tip,
                    tx: Arc::clone(tx),
                })
            })
            .collect();
        Self {
            pool,
            base_fee,
            heap: BinaryHeap::from(candidates),
            invalid: AddressHashSet::default(),
        }
    }

    /// Base fee the ranking is computed for.
    pub fn base_fee(&self) -> u64 {
        self.base_fee
    }

    /// Skips every further transaction of `sender` (e.g. its last one failed to execute,
    /// so its later nonces cannot execute either).
    pub fn mark_invalid(&mut self, sender: Address) {
        self.invalid.insert(sender);
    }
}

impl Iterator for BestTransactions {
    type Item = Arc<PooledTx>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(Candidate { tx, .. }) = self.heap.pop() {
            if self.invalid.contains(&tx.sender) {
                continue;
            }
            let successor = tx
                .nonce()
                .checked_add(1)
                .and_then(|nonce| self.pool.read().by_sender_nonce(&tx.sender, nonce).cloned());
            if let Some(next) = successor
                && let Some(tip) = next.effective_tip(self.base_fee)
            {
                self.heap.push(Candidate { tip, tx: next });
            }
            return Some(tx);
        }
        None
    }
}
