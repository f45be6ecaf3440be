//! KOMA's transaction pool: validation, anti-spam rules, per-sender nonce queues,
//! replacement, eviction, and the best-first order block producers consume.
//!
//! Pure logic: no I/O, no clock. Account state comes in through [`AccountReader`] (over
//! the chain database: [`PoolStateView`]), block outcomes through
//! [`TxPool::on_canonical_block`]. [`TxPool`] is `Send + Sync` and meant
//! to be shared behind an `Arc` by the RPC server, the network and the producer.
//!
//! # Admission
//!
//! [`TxPool::add_raw`] (and [`TxPool::add_transaction`] for decoded transactions) run, in
//! order: size, type (0, 1, 2, 4; blobs are refused), EIP-155 chain id, init-code size,
//! the chain's per-transaction gas cap (EIP-7825), block gas limit, fee cap >= tip, non-empty EIP-7702 authorization list, intrinsic gas
//! and the EIP-7623 floor (from revm's gas tables for the configured fork), minimum tip
//! and base fee floor; then duplicate check; then signature recovery (low-s, via
//! libsecp256k1); then, under the pool lock, nonce (not below the account nonce and at
//! most `max_per_sender - 1` ahead), balance (this transaction's `value + gas_limit *
//! max_fee`, then the sum over all of the sender's pooled transactions), replacement
//! (same sender and nonce: fee cap and tip both >= 110 %), per-sender limit, and
//! capacity. Every rejection is a [`PoolError`] whose message is geth's.
//!
//! # Structure and invariants
//!
//! Each sender has a `BTreeMap<nonce, Arc<PooledTx>>` plus the account nonce and balance
//! the pool last saw. Its transactions from the account nonce up to the first missing
//! nonce are **pending** (executable); those after the gap are **queued**. So:
//!
//! * pending transactions never have a gap, and no nonce is below the account nonce;
//! * a queued transaction is promoted as soon as the gap below it fills, by a new
//!   transaction or by a block ([`TxPool::on_canonical_block`]);
//! * the worst-case cost of all of a sender's transactions never exceeds its balance;
//! * pending <= `max_pending`, queued <= `max_queued`, per sender <= `max_per_sender`.
//!
//! A hash index serves lookups; two ordered sets hold each sender's highest pending and
//! highest queued transaction, ordered by (fee cap, tip, newest first). When a sub-pool
//! is full, a newcomer must outbid the cheapest of these **tails** and evicts it.
//! Evicting only tails means eviction never opens a gap in a pending sequence. All
//! operations are O(log n) per transaction, except applying a new account state, which is
//! linear in that sender's transactions (at most `max_per_sender`).
//!
//! # Block building
//!
//! [`TxPool::best_transactions`] returns [`BestTransactions`]: a heap with each sender's
//! next executable transaction ranked by effective tip at the given base fee (ties: first
//! come, first served). The base fee is an argument rather than pool state, so a new base
//! fee needs no re-sort. Transactions whose fee cap is below the base fee stay in the pool
//! (as in geth) but are not yielded, and neither are their successors.
//!
//! # Concurrency
//!
//! One `parking_lot::RwLock` guards the state. Decoding, stateless checks, signature
//! recovery and account reads happen before the lock is taken; the critical section of an
//! insert is a few map operations. New pending hashes are broadcast after the lock is
//! released ([`TxPool::subscribe`]).

// Blocks from peers and transactions from RPC clients must never crash the node: no
// unwrap/expect/panic, no unchecked indexing or arithmetic outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod admission;
mod best;
mod config;
mod error;
mod pool;
mod state_view;
mod tx;
mod validate;

#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

pub use alloy::consensus::TxEnvelope;
use alloy_primitives::{Address, B256, map::AddressHashMap};
use parking_lot::RwLock;
use revm::context_interface::cfg::GasParams;
use tokio::sync::broadcast;

pub use admission::{Admission, AdmissionConfig, AdmissionStopped};
pub use best::BestTransactions;
pub use config::{GWEI, PoolConfig};
pub use error::{PoolError, RPC_CODE_INVALID_PARAMS, RPC_CODE_POOL};
pub use state_view::PoolStateView;
pub use tx::{AccountInfoLite, AccountReader, PooledTx};
pub use validate::recover_sender;

use pool::{Changes, PoolInner};

/// Capacity of the new-pending-transaction broadcast. A subscriber that falls further
/// behind gets `RecvError::Lagged` and skips ahead.
pub const PENDING_EVENTS_CAPACITY: usize = 16_384;

/// Numbers of executable and future transactions (`txpool_status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Executable transactions.
    pub pending: usize,
    /// Transactions waiting for a lower nonce.
    pub queued: usize,
}

/// Transactions by sender and nonce (`txpool_content`).
#[derive(Debug, Clone, Default)]
pub struct PoolContent {
    /// Executable transactions.
    pub pending: BTreeMap<Address, BTreeMap<u64, Arc<PooledTx>>>,
    /// Transactions waiting for a lower nonce.
    pub queued: BTreeMap<Address, BTreeMap<u64, Arc<PooledTx>>>,
}

/// The transaction pool. See the crate documentation for rules and invariants.
pub struct TxPool {
    config: PoolConfig,
    gas_params: GasParams,
    inner: Arc<RwLock<PoolInner>>,
    sequence: AtomicU64,
    pending_events: broadcast::Sender<B256>,
}

impl std::fmt::Debug for TxPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxPool")
            .field("config", &self.config)
            .field("status", &self.status())
            .finish()
    }
}

impl TxPool {
    /// An empty pool with `config`.
    pub fn new(config: PoolConfig) -> Self {
        let (pending_events, _) = broadcast::channel(PENDING_EVENTS_CAPACITY);
        Self {
            gas_params: GasParams::new_spec(config.spec),
            config,
            inner: Arc::new(RwLock::new(PoolInner::default())),
            sequence: AtomicU64::new(0),
            pending_events,
        }
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Decodes an EIP-2718 transaction (`eth_sendRawTransaction` input), validates it and
    /// inserts it. Returns its hash.
    ///
    /// `base_fee` is the base fee of the next block. Transactions whose fee cap is below
    /// it are accepted (they wait for the base fee to fall) but not offered to producers.
    pub fn add_raw(
        &self,
        raw: &[u8],
        state: &dyn AccountReader,
        base_fee: u64,
    ) -> Result<B256, PoolError> {
        let tx = validate::decode_raw(raw, self.config.max_tx_size)?;
        self.add_decoded(tx, raw.len(), state, base_fee, false)
    }

    /// Validates an already decoded transaction (signature included) and inserts it.
    pub fn add_transaction(
        &self,
        tx: TxEnvelope,
        state: &dyn AccountReader,
        base_fee: u64,
    ) -> Result<B256, PoolError> {
        let encoded_len = tx.eip2718_encoded_length();
        self.add_decoded(tx, encoded_len, state, base_fee, false)
    }

    fn add_decoded(
        &self,
        tx: TxEnvelope,
        encoded_len: usize,
        state: &dyn AccountReader,
        _base_fee: u64,
        authoritative: bool,
    ) -> Result<B256, PoolError> {
        validate::validate_stateless(&tx, encoded_len, &self.config, &self.gas_params)?;
        let hash = *tx.tx_hash();
        // Resubmissions are common (wallets retry); answer them before paying for
        // signature recovery.
        if self.inner.read().contains(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let sender = validate::recover_sender(&tx)?;
        let account = state.account(sender);
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let pooled = Arc::new(PooledTx::new(tx, sender, encoded_len, sequence));
        let changes = self
            .inner
            .write()
            .insert(&self.config, pooled, account, authoritative)?;
        self.publish(&changes);
        Ok(hash)
    }

    /// Executable transactions for a block with `base_fee`, best first. See
    /// [`BestTransactions`].
    pub fn best_transactions(&self, base_fee: u64) -> BestTransactions {
        BestTransactions::new(Arc::clone(&self.inner), base_fee)
    }

    /// Brings the pool up to date after a block became canonical.
    ///
    /// Re-reads the accounts of the senders of `mined` transactions and of
    /// `touched_senders` (accounts whose nonce or balance the block changed), then drops
    /// transactions below the new nonces (mined or made stale), drops each sender's tail
    /// that the new balance no longer covers, and promotes queued transactions whose gap
    /// is now filled. `base_fee` (of the next block) needs no work: the ranking is
    /// computed per [`TxPool::best_transactions`] call.
    pub fn on_canonical_block(
        &self,
        mined: &[B256],
        touched_senders: &[Address],
        state: &dyn AccountReader,
        _base_fee: u64,
    ) {
        // Minimum nonce per sender implied by the mined transactions: a reader lagging
        // behind the block must not resurrect them.
        let mut senders: AddressHashMap<u64> = AddressHashMap::default();
        {
            let inner = self.inner.read();
            for hash in mined {
                if let Some(tx) = inner.get(hash) {
                    let next = tx.nonce().saturating_add(1);
                    let entry = senders.entry(tx.sender).or_insert(next);
                    *entry = (*entry).max(next);
                }
            }
            for sender in touched_senders {
                if inner.is_tracked(sender) {
                    senders.entry(*sender).or_insert(0);
                }
            }
        }
        let accounts: Vec<(Address, AccountInfoLite)> = senders
            .into_iter()
            .map(|(sender, min_nonce)| {
                let mut account = state.account(sender);
                account.nonce = account.nonce.max(min_nonce);
                (sender, account)
            })
            .collect();
        let changes = self.inner.write().apply_accounts(&self.config, &accounts);
        tracing::debug!(
            mined = mined.len(),
            senders = accounts.len(),
            dropped = changes.discarded.len(),
            promoted = changes.promoted.len(),
            "txpool updated for canonical block"
        );
        self.publish(&changes);
    }

    /// Puts transactions back into the pool, e.g. those of blocks a reorg removed from the
    /// canonical chain. The account state read for each sender is adopted as is (nonces
    /// may go down after a reorg). Transactions that are no longer valid are dropped
    /// silently.
    pub fn reinject(&self, txs: Vec<TxEnvelope>, state: &dyn AccountReader, base_fee: u64) {
        let total = txs.len();
        let mut accepted = 0usize;
        for tx in txs {
            let encoded_len = tx.eip2718_encoded_length();
            if self
                .add_decoded(tx, encoded_len, state, base_fee, true)
                .is_ok()
            {
                accepted = accepted.saturating_add(1);
            }
        }
        tracing::debug!(total, accepted, "reinjected transactions");
    }

    /// Removes transactions (e.g. found invalid while building a block). Later
    /// transactions of the same senders become queued until the gap is filled again (if
    /// that overflows the queued limit, the cheapest queued tails are evicted too).
    /// Returns every transaction that left the pool.
    pub fn remove_transactions(&self, hashes: &[B256]) -> Vec<Arc<PooledTx>> {
        self.inner.write().remove(&self.config, hashes)
    }

    /// The pooled transaction with `hash`.
    pub fn get(&self, hash: &B256) -> Option<Arc<PooledTx>> {
        self.inner.read().get(hash).cloned()
    }

    /// Whether a transaction with `hash` is pooled.
    pub fn contains(&self, hash: &B256) -> bool {
        self.inner.read().contains(hash)
    }

    /// Numbers of pending and queued transactions.
    pub fn status(&self) -> PoolStatus {
        let inner = self.inner.read();
        PoolStatus {
            pending: inner.pending_count(),
            queued: inner.queued_count(),
        }
    }

    /// All pooled transactions by sender and nonce, split into pending and queued.
    pub fn content(&self) -> PoolContent {
        let (pending, queued) = self.inner.read().content();
        PoolContent { pending, queued }
    }

    /// The nonce a new transaction of `sender` should use (`eth_getTransactionCount`
    /// with `"pending"`): the first nonce at or after `state_nonce` that continues the
    /// sender's executable sequence in the pool.
    pub fn pending_nonce(&self, sender: Address, state_nonce: u64) -> u64 {
        self.inner.read().pending_nonce(&sender, state_nonce)
    }

    /// Hashes of transactions as they become executable (inserted as pending or
    /// promoted), for `eth_subscribe("newPendingTransactions")`.
    pub fn subscribe(&self) -> broadcast::Receiver<B256> {
        self.pending_events.subscribe()
    }

    /// Number of pooled transactions, pending and queued.
    pub fn len(&self) -> usize {
        self.inner.read().len()
    }

    /// Whether the pool holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn publish(&self, changes: &Changes) {
        for gone in &changes.discarded {
            tracing::trace!(hash = %gone.hash, sender = %gone.sender, nonce = gone.nonce(), "transaction left the pool");
        }
        if self.pending_events.receiver_count() == 0 {
            return;
        }
        for hash in &changes.promoted {
            // Only fails when every receiver is gone, which is not an error for the pool.
            let _ = self.pending_events.send(*hash);
        }
    }

    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        self.inner.read().assert_invariants(&self.config);
    }
}
