//! The pool's state behind the lock: per-sender nonce queues, the hash index, and the
//! ordered sets of eviction candidates. Everything here is synchronous and O(log n) per
//! transaction, except account updates, which are O(transactions of that sender).

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use alloy_primitives::{
    Address, B256, U256,
    map::{AddressHashMap, B256HashMap},
};

use crate::{AccountInfoLite, PoolConfig, PoolError, PooledTx};

/// Result of a successful insertion or account update.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Transactions that became executable (inserted as pending or promoted from queued).
    pub(crate) promoted: Vec<B256>,
    /// Transactions that left the pool: replaced, evicted, mined, stale or unaffordable.
    pub(crate) discarded: Vec<Arc<PooledTx>>,
}

/// Ordering of eviction candidates: lowest fee cap first, then lowest tip, then the most
/// recent arrival. Sequence numbers are unique, so the sender never decides the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TailKey {
    fee_cap: u128,
    tip: u128,
    newest_first: Reverse<u64>,
    sender: Address,
}

impl TailKey {
    fn of(tx: &PooledTx) -> Self {
        Self {
            fee_cap: tx.max_fee_per_gas(),
            tip: tx.tip_cap(),
            newest_first: Reverse(tx.sequence),
            sender: tx.sender,
        }
    }

    /// Whether `tx` pays strictly more than this candidate and may take its place.
    fn is_outbid_by(&self, tx: &PooledTx) -> bool {
        (tx.max_fee_per_gas(), tx.tip_cap()) > (self.fee_cap, self.tip)
    }
}

/// One sender's transactions and the account state they were checked against.
///
/// Invariants: every nonce is `>= state_nonce`; `[state_nonce, pending_end)` are all
/// present (pending) and `pending_end` is absent, so every nonce above it is queued;
/// `total_cost` is the sum of the costs and never exceeds `balance`.
#[derive(Debug)]
struct SenderTxs {
    state_nonce: u64,
    balance: U256,
    txs: BTreeMap<u64, Arc<PooledTx>>,
    pending_end: u64,
    total_cost: U256,
}

impl SenderTxs {
    fn new(account: AccountInfoLite) -> Self {
        Self {
            state_nonce: account.nonce,
            balance: account.balance,
            txs: BTreeMap::new(),
            pending_end: account.nonce,
            total_cost: U256::ZERO,
        }
    }

    fn pending_len(&self) -> usize {
        usize::try_from(self.pending_end.saturating_sub(self.state_nonce)).unwrap_or(usize::MAX)
    }

    fn queued_len(&self) -> usize {
        self.txs.len().saturating_sub(self.pending_len())
    }

    fn pending_tail(&self) -> Option<&Arc<PooledTx>> {
        if self.pending_end > self.state_nonce {
            self.txs.get(&self.pending_end.checked_sub(1)?)
        } else {
            None
        }
    }

    fn queued_tail(&self) -> Option<&Arc<PooledTx>> {
        self.txs
            .last_key_value()
            .filter(|(nonce, _)| **nonce > self.pending_end)
            .map(|(_, tx)| tx)
    }

    /// Moves `pending_end` over the transactions that now follow without a gap.
    fn advance_pending_end(&mut self) {
        while self.txs.contains_key(&self.pending_end) {
            // Nonce u64::MAX is never admitted (EIP-2681), so this cannot saturate on a
            // present key.
            self.pending_end = self.pending_end.saturating_add(1);
        }
    }

    /// Adopts a new account state: drops transactions below the nonce, then the tail
    /// that the balance no longer covers (dropping from the tail never opens a gap).
    fn apply_account(&mut self, account: AccountInfoLite, dropped: &mut Vec<Arc<PooledTx>>) {
        self.state_nonce = account.nonce;
        self.balance = account.balance;
        let kept = self.txs.split_off(&account.nonce);
        dropped.extend(std::mem::replace(&mut self.txs, kept).into_values());

        let mut total = U256::ZERO;
        let mut unaffordable_from = None;
        for (nonce, tx) in &self.txs {
            let with_tx = total.saturating_add(tx.cost());
            if with_tx > self.balance {
                unaffordable_from = Some(*nonce);
                break;
            }
            total = with_tx;
        }
        if let Some(nonce) = unaffordable_from {
            dropped.extend(self.txs.split_off(&nonce).into_values());
        }
        self.total_cost = total;
        self.pending_end = self.state_nonce;
        self.advance_pending_end();
    }

    /// Hashes of the pending transactions at or above `from`.
    fn pending_from(&self, from: u64) -> impl Iterator<Item = B256> + '_ {
        let start = from.max(self.state_nonce);
        let end = self.pending_end.max(start);
        self.txs.range(start..end).map(|(_, tx)| tx.hash)
    }

    /// Removes the transaction with `nonce`; later transactions become queued.
    fn remove(&mut self, nonce: u64) -> Option<Arc<PooledTx>> {
        let tx = self.txs.remove(&nonce)?;
        self.total_cost = self.total_cost.saturating_sub(tx.cost());
        if nonce < self.pending_end {
            self.pending_end = nonce;
        }
        Some(tx)
    }
}

/// The pool proper. All counters and index sets are kept exact by detaching a sender
/// (removing its contribution) before changing it and attaching it again afterwards.
#[derive(Debug, Default)]
pub(crate) struct PoolInner {
    by_hash: B256HashMap<Arc<PooledTx>>,
    senders: AddressHashMap<SenderTxs>,
    /// The highest pending transaction of every sender that has pending transactions.
    pending_tails: BTreeSet<TailKey>,
    /// The highest queued transaction of every sender that has queued transactions.
    queued_tails: BTreeSet<TailKey>,
    pending_count: usize,
    queued_count: usize,
}

impl PoolInner {
    pub(crate) fn get(&self, hash: &B256) -> Option<&Arc<PooledTx>> {
        self.by_hash.get(hash)
    }

    pub(crate) fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub(crate) fn pending_count(&self) -> usize {
        self.pending_count
    }

    pub(crate) fn queued_count(&self) -> usize {
        self.queued_count
    }

    pub(crate) fn is_tracked(&self, sender: &Address) -> bool {
        self.senders.contains_key(sender)
    }

    /// Takes a sender out of the indexes so it can be changed freely.
    fn detach(&mut self, sender: &Address) -> Option<SenderTxs> {
        let txs = self.senders.remove(sender)?;
        if let Some(tail) = txs.pending_tail() {
            self.pending_tails.remove(&TailKey::of(tail));
        }
        if let Some(tail) = txs.queued_tail() {
            self.queued_tails.remove(&TailKey::of(tail));
        }
        self.pending_count = self.pending_count.saturating_sub(txs.pending_len());
        self.queued_count = self.queued_count.saturating_sub(txs.queued_len());
        Some(txs)
    }

    /// Puts a sender back into the indexes; a sender without transactions is forgotten.
    fn attach(&mut self, sender: Address, txs: SenderTxs) {
        if txs.txs.is_empty() {
            return;
        }
        if let Some(tail) = txs.pending_tail() {
            self.pending_tails.insert(TailKey::of(tail));
        }
        if let Some(tail) = txs.queued_tail() {
            self.queued_tails.insert(TailKey::of(tail));
        }
        self.pending_count = self.pending_count.saturating_add(txs.pending_len());
        self.queued_count = self.queued_count.saturating_add(txs.queued_len());
        self.senders.insert(sender, txs);
    }

    /// Validates `tx` against its sender's state and the pool limits, and inserts it.
    ///
    /// `account` is the sender's state as just read. If `authoritative`, it replaces what
    /// the pool knows (used after reorgs, where nonces may go down); otherwise the pool
    /// only moves forward (a state read that raced with a block import must not undo it).
    pub(crate) fn insert(
        &mut self,
        config: &PoolConfig,
        tx: Arc<PooledTx>,
        account: AccountInfoLite,
        authoritative: bool,
    ) -> Result<Changes, PoolError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let sender = tx.sender;
        let mut changes = Changes::default();
        let mut txs = match self.detach(&sender) {
            Some(mut txs) => {
                let newer = if authoritative {
                    account.nonce != txs.state_nonce || account.balance != txs.balance
                } else {
                    account.nonce > txs.state_nonce
                        || (account.nonce == txs.state_nonce && account.balance != txs.balance)
                };
                if newer {
                    let old_pending_end = txs.pending_end;
                    txs.apply_account(account, &mut changes.discarded);
                    changes.promoted.extend(txs.pending_from(old_pending_end));
                }
                txs
            }
            None => SenderTxs::new(account),
        };
        for gone in &changes.discarded {
            self.by_hash.remove(&gone.hash);
        }

        let hash = tx.hash;
        let nonce = tx.nonce();
        let old_pending_end = txs.pending_end;
        let placed = self.place(config, &mut txs, tx, &mut changes.discarded);
        if placed.is_ok() {
            let first_new = old_pending_end.max(txs.state_nonce);
            if nonce < first_new {
                // Replacement of a pending transaction: the new one is pending too.
                changes.promoted.push(hash);
            }
            changes.promoted.extend(txs.pending_from(first_new));
        }
        self.attach(sender, txs);
        placed?;

        self.enforce_limits(config, &mut changes.discarded);
        changes
            .promoted
            .retain(|hash| self.by_hash.contains_key(hash));
        if !self.by_hash.contains_key(&hash) {
            // Evicted right away by the capacity rules: it paid no more than what is left.
            return Err(PoolError::PoolFull);
        }
        Ok(changes)
    }

    /// The checks that need the sender's queue, then the insertion (with replacement or
    /// eviction) into `txs`, which is detached.
    fn place(
        &mut self,
        config: &PoolConfig,
        txs: &mut SenderTxs,
        tx: Arc<PooledTx>,
        discarded: &mut Vec<Arc<PooledTx>>,
    ) -> Result<(), PoolError> {
        let nonce = tx.nonce();
        if nonce < txs.state_nonce {
            return Err(PoolError::NonceTooLow {
                state: txs.state_nonce,
                tx: nonce,
            });
        }
        let max_gap = u64::try_from(config.max_per_sender).unwrap_or(u64::MAX);
        if nonce.saturating_sub(txs.state_nonce) >= max_gap {
            return Err(PoolError::NonceTooHigh {
                state: txs.state_nonce,
                tx: nonce,
                max_gap: max_gap.saturating_sub(1),
            });
        }
        let cost = tx.cost();
        if cost > txs.balance {
            return Err(PoolError::InsufficientFunds {
                balance: txs.balance,
                cost,
                overshot: cost.saturating_sub(txs.balance),
            });
        }
        let replaced = txs.txs.get(&nonce).cloned();
        let others = txs
            .total_cost
            .saturating_sub(replaced.as_ref().map_or(U256::ZERO, |old| old.cost()));
        let total = others.saturating_add(cost);
        if total > txs.balance {
            return Err(PoolError::Overdraft {
                balance: txs.balance,
                queued: others,
                cost,
                overshot: total.saturating_sub(txs.balance),
            });
        }

        match &replaced {
            Some(old) => {
                if !is_sufficient_bump(old, &tx, config.price_bump_percent) {
                    return Err(PoolError::ReplacementUnderpriced);
                }
            }
            None => {
                if txs.txs.len() >= config.max_per_sender {
                    return Err(PoolError::AccountLimitExceeded);
                }
                self.make_room(config, txs, &tx, discarded)?;
            }
        }

        // Committed from here on: nothing below can fail. (`make_room` may have evicted
        // this sender's own queued tail, so the total is taken afresh.)
        if let Some(old) = replaced {
            txs.total_cost = txs.total_cost.saturating_sub(old.cost());
            self.by_hash.remove(&old.hash);
            discarded.push(old);
        }
        txs.total_cost = txs.total_cost.saturating_add(cost);
        self.by_hash.insert(tx.hash, Arc::clone(&tx));
        txs.txs.insert(nonce, tx);
        txs.advance_pending_end();
        Ok(())
    }

    /// Frees one slot in the sub-pool `tx` goes to if that sub-pool is full, by evicting
    /// the cheapest tail that `tx` outbids; otherwise the pool is full for `tx`.
    fn make_room(
        &mut self,
        config: &PoolConfig,
        txs: &mut SenderTxs,
        tx: &PooledTx,
        discarded: &mut Vec<Arc<PooledTx>>,
    ) -> Result<(), PoolError> {
        if tx.nonce() == txs.pending_end {
            if self.pending_count.saturating_add(txs.pending_len()) < config.max_pending {
                return Ok(());
            }
            // The sender is detached, so its own pending tail (the nonce just below, which
            // must stay) is not a candidate.
            match self.pending_tails.first().copied() {
                Some(victim) if victim.is_outbid_by(tx) => {
                    self.evict_pending_tail(&victim.sender, discarded);
                    Ok(())
                }
                _ => Err(PoolError::PoolFull),
            }
        } else {
            if self.queued_count.saturating_add(txs.queued_len()) < config.max_queued {
                return Ok(());
            }
            let own = txs.queued_tail().map(|tail| TailKey::of(tail));
            let other = self.queued_tails.first().copied();
            let victim = match (own, other) {
                (Some(own), Some(other)) => Some(own.min(other)),
                (own, other) => own.or(other),
            };
            match victim {
                Some(victim) if victim.is_outbid_by(tx) => {
                    if own == Some(victim) {
                        if let Some((_, gone)) = txs.txs.pop_last() {
                            txs.total_cost = txs.total_cost.saturating_sub(gone.cost());
                            self.by_hash.remove(&gone.hash);
                            discarded.push(gone);
                        }
                    } else {
                        self.evict_queued_tail(&victim.sender, discarded);
                    }
                    Ok(())
                }
                _ => Err(PoolError::PoolFull),
            }
        }
    }

    fn evict_pending_tail(&mut self, sender: &Address, discarded: &mut Vec<Arc<PooledTx>>) {
        let Some(mut txs) = self.detach(sender) else {
            return;
        };
        if let Some(nonce) = txs.pending_tail().map(|tail| tail.nonce())
            && let Some(gone) = txs.remove(nonce)
        {
            tracing::debug!(hash = %gone.hash, sender = %gone.sender, nonce, "evicted pending transaction");
            self.by_hash.remove(&gone.hash);
            discarded.push(gone);
        }
        self.attach(*sender, txs);
    }

    fn evict_queued_tail(&mut self, sender: &Address, discarded: &mut Vec<Arc<PooledTx>>) {
        let Some(mut txs) = self.detach(sender) else {
            return;
        };
        if let Some(nonce) = txs.queued_tail().map(|tail| tail.nonce())
            && let Some(gone) = txs.remove(nonce)
        {
            tracing::debug!(hash = %gone.hash, sender = %gone.sender, nonce, "evicted queued transaction");
            self.by_hash.remove(&gone.hash);
            discarded.push(gone);
        }
        self.attach(*sender, txs);
    }

    /// Evicts the cheapest tails until both sub-pools are within their limits.
    fn enforce_limits(&mut self, config: &PoolConfig, discarded: &mut Vec<Arc<PooledTx>>) {
        while self.pending_count > config.max_pending {
            let Some(victim) = self.pending_tails.first().copied() else {
                break;
            };
            self.evict_pending_tail(&victim.sender, discarded);
        }
        while self.queued_count > config.max_queued {
            let Some(victim) = self.queued_tails.first().copied() else {
                break;
            };
            self.evict_queued_tail(&victim.sender, discarded);
        }
    }

    /// Adopts new account states (after a block): prunes mined and stale transactions,
    /// drops what balances no longer cover, promotes what became executable.
    pub(crate) fn apply_accounts(
        &mut self,
        config: &PoolConfig,
        accounts: &[(Address, AccountInfoLite)],
    ) -> Changes {
        let mut changes = Changes::default();
        for (sender, account) in accounts {
            let Some(mut txs) = self.detach(sender) else {
                continue;
            };
            let old_pending_end = txs.pending_end;
            let first_dropped = changes.discarded.len();
            txs.apply_account(*account, &mut changes.discarded);
            for gone in changes.discarded.get(first_dropped..).unwrap_or_default() {
                self.by_hash.remove(&gone.hash);
            }
            changes.promoted.extend(txs.pending_from(old_pending_end));
            self.attach(*sender, txs);
        }
        self.enforce_limits(config, &mut changes.discarded);
        changes
            .promoted
            .retain(|hash| self.by_hash.contains_key(hash));
        changes
    }

    /// Removes the given transactions; later transactions of the same senders become
    /// queued until the gap is filled again.
    pub(crate) fn remove(&mut self, config: &PoolConfig, hashes: &[B256]) -> Vec<Arc<PooledTx>> {
        let mut removed = Vec::new();
        for hash in hashes {
            let Some(tx) = self.by_hash.get(hash).cloned() else {
                continue;
            };
            let Some(mut txs) = self.detach(&tx.sender) else {
                continue;
            };
            if let Some(gone) = txs.remove(tx.nonce()) {
                self.by_hash.remove(&gone.hash);
                removed.push(gone);
            }
            self.attach(tx.sender, txs);
        }
        // Demoted transactions may overflow the queued limit.
        self.enforce_limits(config, &mut removed);
        removed
    }

    /// The lowest pending transaction of every sender (the only ones executable now).
    pub(crate) fn pending_heads(&self) -> impl Iterator<Item = &Arc<PooledTx>> + '_ {
        self.senders
            .values()
            .filter(|txs| txs.pending_end > txs.state_nonce)
            .filter_map(|txs| txs.txs.get(&txs.state_nonce))
    }

    /// The sender's transaction with `nonce`, if pooled.
    pub(crate) fn by_sender_nonce(&self, sender: &Address, nonce: u64) -> Option<&Arc<PooledTx>> {
        self.senders.get(sender)?.txs.get(&nonce)
    }

    /// Next nonce after the sender's executable sequence, given the caller's view of the
    /// account nonce (which may be newer than the pool's).
    pub(crate) fn pending_nonce(&self, sender: &Address, state_nonce: u64) -> u64 {
        let Some(txs) = self.senders.get(sender) else {
            return state_nonce;
        };
        let start = state_nonce.max(txs.state_nonce);
        if start <= txs.pending_end {
            return txs.pending_end;
        }
        let mut next = start;
        while txs.txs.contains_key(&next) {
            next = next.saturating_add(1);
        }
        next
    }

    /// Pending and queued transactions by sender and nonce.
    #[allow(clippy::type_complexity)]
    pub(crate) fn content(
        &self,
    ) -> (
        BTreeMap<Address, BTreeMap<u64, Arc<PooledTx>>>,
        BTreeMap<Address, BTreeMap<u64, Arc<PooledTx>>>,
    ) {
        let mut pending = BTreeMap::new();
        let mut queued = BTreeMap::new();
        for (sender, txs) in &self.senders {
            let executable: BTreeMap<_, _> = txs
                .txs
                .range(..txs.pending_end)
                .map(|(nonce, tx)| (*nonce, Arc::clone(tx)))
                .collect();
            let future: BTreeMap<_, _> = txs
                .txs
                .range(txs.pending_end..)
                .map(|(nonce, tx)| (*nonce, Arc::clone(tx)))
                .collect();
            if !executable.is_empty() {
                pending.insert(*sender, executable);
            }
            if !future.is_empty() {
                queued.insert(*sender, future);
            }
        }
        (pending, queued)
    }

    /// Checks every structural invariant; panics with a description if one is broken.
    #[cfg(test)]
    pub(crate) fn assert_invariants(&self, config: &PoolConfig) {
        let mut pending = 0;
        let mut queued = 0;
        let mut total = 0;
        let mut pending_tails = BTreeSet::new();
        let mut queued_tails = BTreeSet::new();
        for (sender, txs) in &self.senders {
            assert!(!txs.txs.is_empty(), "empty sender {sender} kept");
            assert!(
                txs.txs.len() <= config.max_per_sender,
                "sender {sender} over its limit"
            );
            let mut expected_end = txs.state_nonce;
            while txs.txs.contains_key(&expected_end) {
                expected_end += 1;
            }
            assert_eq!(txs.pending_end, expected_end, "pending_end of {sender}");
            let mut cost = U256::ZERO;
            for (nonce, tx) in &txs.txs {
                assert!(
                    *nonce >= txs.state_nonce,
                    "stale nonce {nonce} kept for {sender}"
                );
                assert_eq!(tx.nonce(), *nonce);
                assert_eq!(tx.sender, *sender);
                let indexed = self
                    .by_hash
                    .get(&tx.hash)
                    .expect("pooled tx missing from hash index");
                assert!(Arc::ptr_eq(indexed, tx), "hash index points elsewhere");
                cost += tx.cost();
            }
            assert_eq!(txs.total_cost, cost, "total cost of {sender}");
            assert!(txs.total_cost <= txs.balance, "{sender} overdrawn");
            pending += txs.pending_len();
            queued += txs.queued_len();
            total += txs.txs.len();
            if let Some(tail) = txs.pending_tail() {
                pending_tails.insert(TailKey::of(tail));
            }
            if let Some(tail) = txs.queued_tail() {
                queued_tails.insert(TailKey::of(tail));
            }
        }
        assert_eq!(self.pending_count, pending, "pending count");
        assert_eq!(self.queued_count, queued, "queued count");
        assert_eq!(self.by_hash.len(), total, "hash index size");
        assert_eq!(self.pending_tails, pending_tails, "pending tails");
        assert_eq!(self.queued_tails, queued_tails, "queued tails");
        assert!(
            self.pending_count <= config.max_pending,
            "pending over limit"
        );
        assert!(self.queued_count <= config.max_queued, "queued over limit");
    }
}

/// geth's replacement rule: both the fee cap and the tip must strictly rise, and by at
/// least `bump_percent` percent.
fn is_sufficient_bump(old: &PooledTx, new: &PooledTx, bump_percent: u128) -> bool {
    let threshold = |value: u128| {
        // u128 fees times a small percentage: compute in U256 so absurd fees cannot wrap.
        let scaled =
            U256::from(value).saturating_mul(U256::from(100u128.saturating_add(bump_percent)));
        scaled.checked_div(U256::from(100u8)).unwrap_or_default()
    };
    let (old_cap, new_cap) = (old.max_fee_per_gas(), new.max_fee_per_gas());
    let (old_tip, new_tip) = (old.tip_cap(), new.tip_cap());
    new_cap > old_cap
        && new_tip > old_tip
        && U256::from(new_cap) >= threshold(old_cap)
        && U256::from(new_tip) >= threshold(old_tip)
}
