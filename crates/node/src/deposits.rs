//! Deposits from L1, node side (docs/bridge.md, ADRs 0016 and 0017).
//!
//! - **Reading.** The watcher reads the L1 bridge's `StateSynced` events up to the L1
//!   block `confirmations - 1` below the head, in id order, and keeps the hash chain over
//!   them; after each read it compares its count and hash with the contract's
//!   `stateCounter`/`stateHash` at that block, and reads everything again if they
//!   differ (a reorg, or a missed event). What it holds is the node's [`DepositBook`]; a
//!   message is *confirmed* once it is `confirmations` deep.
//! - **Announcing.** A producer's block announces, in its header, the deposit
//!   watermark confirmed in its book (the last id and the hash chain through it,
//!   `koma_primitives::bridge::Watermark`). An importer that reads L1 checks it
//!   (`ChainWriter::check_deposits`): read with the same hash chain (one block short of
//!   confirmed is enough, as the producer may have read L1 a little later), else the
//!   block waits; confirmed with another hash chain, the block is invalid.
//! - **Agreeing.** A staker accepts a proposed milestone only once every watermark
//!   the blocks it adds announce is confirmed in its own book; until then the proposal
//!   waits (never "invalid": L1 views converge, and a node whose L1 lags must not
//!   refuse what the others accept). A final block's watermark is agreed.
//! - **Applying.** Producers apply deposits only up to agreed watermarks, as system
//!   transactions at the start of a block; every importer, with or without an L1,
//!   checks them against the agreed hash chain (`koma_producer::check_applied_deposits`
//!   and `ChainWriter::check_deposits`), never against its own reading (ADR 0017).

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use alloy_primitives::{Address, B256, Bytes, U256};
use koma_l1::bindings::Bridge;
use koma_primitives::bridge::{L1Deposit, StateSynced, Watermark, next_state_hash};
use parking_lot::RwLock;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// L1 blocks read per `eth_getLogs` request.
const LOG_RANGE: u64 = 2_000;

/// What a node's book says about a deposit watermark a block announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DepositVerdict {
    /// On L1 with the same hash chain, `confirmations` deep: producers announce it,
    /// stakers vote for it.
    Confirmed,
    /// On L1 with the same hash chain, one block short of `confirmations`: importers
    /// take it (a producer's reading of L1 may be one block ahead of this node's).
    Seen,
    /// Not read here yet: an importer holds the block back, a staker waits.
    NotSeen,
    /// Confirmed here with another hash chain: the block invents or alters a deposit.
    Conflicts,
    /// This node does not read an L1: it follows the stakers.
    NoL1,
}

#[derive(Debug, Default)]
struct Book {
    /// Messages read from id 1 on (index `id - 1`): confirmed, or one L1 block short.
    messages: Vec<L1Deposit>,
    /// The next L1 block to read.
    next_block: u64,
    /// The L1 head at the last read.
    l1_head: u64,
    /// How deep a message must be to be confirmed.
    confirmations: u64,
    /// How many messages were confirmed at the last look (to tell when more are).
    confirmed_seen: usize,
}

impl Book {
    fn hash(&self) -> B256 {
        self.messages.last().map_or(B256::ZERO, |m| m.state_hash)
    }

    fn is_confirmed(&self, m: &L1Deposit) -> bool {
        m.l1_block.saturating_add(self.confirmations) <= self.l1_head
    }

    /// How many messages are confirmed (they are in L1 block order).
    fn confirmed_count(&self) -> usize {
        self.messages.partition_point(|m| self.is_confirmed(m))
    }

    /// Whether more messages are confirmed than at the last call.
    fn more_confirmed(&mut self) -> bool {
        let count = self.confirmed_count();
        let more = count > self.confirmed_seen;
        self.confirmed_seen = count;
        more
    }
}

/// The deposits this node saw confirmed on L1 (empty on a node without an L1).
#[derive(Debug)]
pub struct DepositBook {
    reads_l1: bool,
    book: RwLock<Book>,
    /// Bumped whenever deposits were added (proposals waiting on them are checked
    /// again).
    grew: watch::Sender<u64>,
}

impl DepositBook {
    pub(crate) fn new(reads_l1: bool) -> Self {
        Self {
            reads_l1,
            book: RwLock::new(Book::default()),
            grew: watch::channel(0).0,
        }
    }

    pub fn reads_l1(&self) -> bool {
        self.reads_l1
    }

    /// What this node's reading says about a watermark a block announces: the message
    /// with its id and the hash chain through it.
    pub(crate) fn verdict(&self, mark: &Watermark) -> DepositVerdict {
        if !self.reads_l1 {
            return DepositVerdict::NoL1;
        }
        let b = self.book.read();
        let index = mark.id.checked_sub(1).and_then(|i| usize::try_from(i).ok());
        match index.and_then(|i| b.messages.get(i)) {
            Some(m) if m.state_hash == mark.hash && b.is_confirmed(m) => DepositVerdict::Confirmed,
            Some(m) if m.state_hash == mark.hash => DepositVerdict::Seen,
            Some(m) if b.is_confirmed(m) => DepositVerdict::Conflicts,
            _ => DepositVerdict::NotSeen,
        }
    }

    /// Tells whoever waits on deposits (held blocks, waiting proposals) to look again:
    /// more were read, or more were agreed.
    pub(crate) fn notify(&self) {
        self.grew.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// How deep on L1 a deposit must be for producers and stakers.
    pub(crate) fn set_confirmations(&self, confirmations: u64) {
        self.book.write().confirmations = confirmations;
    }

    /// The L1 head moved to `head`: messages may have become confirmed.
    pub(crate) fn saw_head(&self, head: u64) {
        let mut b = self.book.write();
        if head <= b.l1_head {
            return;
        }
        b.l1_head = head;
        let more = b.more_confirmed();
        drop(b);
        if more {
            self.grew.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.grew.subscribe()
    }

    /// Appends messages read in order; refuses (and changes nothing) if they do not
    /// continue the book. Returns whether anything was added.
    pub(crate) fn extend(&self, read: Vec<(u64, Bytes, u64, B256)>, receiver: Address) -> bool {
        let mut b = self.book.write();
        let mut hash = b.hash();
        let mut next = (b.messages.len() as u64).saturating_add(1);
        let mut added = Vec::with_capacity(read.len());
        for (id, data, l1_block, l1_tx) in read {
            if id < next {
                continue; // read again (an overlapping range)
            }
            if id != next {
                return false;
            }
            hash = next_state_hash(hash, id, receiver, &data);
            added.push(L1Deposit {
                id,
                data,
                l1_block,
                l1_tx,
                state_hash: hash,
            });
            next = next.saturating_add(1);
        }
        let grew = !added.is_empty();
        b.messages.extend(added);
        b.more_confirmed();
        drop(b);
        if grew {
            self.grew.send_modify(|n| *n = n.wrapping_add(1));
        }
        grew
    }
}

impl koma_rpc::DepositsApi for DepositBook {
    fn deposit(&self, id: u64) -> Option<L1Deposit> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        let b = self.book.read();
        b.messages.get(index).filter(|m| b.is_confirmed(m)).cloned()
    }

    fn confirmed(&self) -> (u64, u64) {
        let b = self.book.read();
        (
            b.confirmed_count() as u64,
            b.l1_head.saturating_sub(b.confirmations),
        )
    }
}

impl DepositBook {
    /// The data of the confirmed deposits `first, first + 1, ...` (at most `max`).
    pub(crate) fn confirmed_from(&self, first: u64, max: usize) -> Vec<Bytes> {
        let b = self.book.read();
        let Some(start) = first.checked_sub(1).and_then(|i| usize::try_from(i).ok()) else {
            return Vec::new();
        };
        b.messages
            .iter()
            .skip(start)
            .take(max)
            .take_while(|m| b.is_confirmed(m))
            .map(|m| m.data.clone())
            .collect()
    }
}

/// Where and how to read L1.
#[derive(Debug, Clone)]
pub(crate) struct WatchConfig {
    pub l1_rpc: String,
    pub contracts_file: PathBuf,
    pub confirmations: u64,
    pub poll: Duration,
}

/// Reads confirmed deposits into `book` until `stop`; an L1 that fails is retried,
/// never fatal.
pub(crate) async fn watch_l1(
    book: std::sync::Arc<DepositBook>,
    config: WatchConfig,
    mut stop: watch::Receiver<bool>,
) {
    let Some(contracts) =
        crate::checkpoint::wait_for_contracts(&config.contracts_file, &mut stop).await
    else {
        return;
    };
    let Some(bridge) = contracts.bridge else {
        tracing::info!("deposits: the L1 deployment has no bridge");
        let _ = stop.changed().await;
        return;
    };
    let provider = match config.l1_rpc.parse() {
        Ok(url) => ProviderBuilder::new().connect_http(url).erased(),
        Err(e) => {
            tracing::error!(url = %config.l1_rpc, error = %e, "invalid L1 URL; deposits are off");
            let _ = stop.changed().await;
            return;
        }
    };
    book.set_confirmations(config.confirmations);
    book.book.write().next_block = contracts.deploy_block;
    tracing::info!(%bridge, confirmations = config.confirmations, "deposits: following the L1 bridge");
    let mut failures = 0u64;
    let mut tick = tokio::time::interval(config.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match read(
            &book,
            &provider,
            bridge,
            contracts.deploy_block,
            config.confirmations,
        )
        .await
        {
            Ok(()) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(error = %e, failures, "deposits: cannot read the L1; retrying");
                }
            }
        }
    }
}

/// One read: the new events up to one L1 block short of `confirmations` (importers take
/// those, producers and stakers wait for the last block), then the contract's count and
/// hash at the last block read, which must match the book.
async fn read(
    book: &DepositBook,
    provider: &DynProvider,
    bridge: Address,
    deploy_block: u64,
    confirmations: u64,
) -> eyre::Result<()> {
    let head = provider.get_block_number().await?;
    let Some(safe) = head.checked_sub(confirmations.saturating_sub(1)) else {
        return Ok(());
    };
    let from = book.book.read().next_block;
    if safe < from {
        book.saw_head(head);
        return Ok(());
    }
    let to = safe.min(from.saturating_add(LOG_RANGE - 1));
    let filter = Filter::new()
        .address(bridge)
        .event_signature(StateSynced::SIGNATURE_HASH)
        .from_block(from)
        .to_block(to);
    let mut read = Vec::new();
    let mut receiver = Address::ZERO;
    for log in provider.get_logs(&filter).await? {
        let event = StateSynced::decode_log_data(log.data())
            .map_err(|e| eyre::eyre!("a StateSynced event that does not decode: {e}"))?;
        let id = u64::try_from(event.id).map_err(|_| eyre::eyre!("a deposit id above u64"))?;
        receiver = event.receiver;
        read.push((
            id,
            event.data,
            log.block_number.unwrap_or(to),
            log.transaction_hash.unwrap_or_default(),
        ));
    }
    let contract = Bridge::new(bridge, provider);
    let added = !read.is_empty();
    if added && !book.extend(read, receiver) {
        return restart(book, deploy_block, "the events skip an id");
    }
    let counter = contract.stateCounter().block(to.into()).call().await?;
    let hash = contract.stateHash().block(to.into()).call().await?;
    let (count, ours) = {
        let b = book.book.read();
        (b.messages.len() as u64, b.hash())
    };
    if counter != U256::from(count) || hash != ours {
        if count > 0 && counter < U256::from(count) {
            // the book holds deposits the L1 no longer has: a reorg deeper than the
            // confirmations. What was agreed on L2 stays; say so loudly.
            tracing::error!(
                ours = count,
                l1 = %counter,
                "deposits: the L1 lost confirmed deposits (a reorg deeper than the confirmations)"
            );
        }
        return restart(book, deploy_block, "the contract's hash chain differs");
    }
    {
        let mut b = book.book.write();
        b.next_block = to.saturating_add(1);
    }
    book.saw_head(head.min(to.saturating_add(confirmations.saturating_sub(1))));
    if added {
        tracing::info!(
            deposits = count,
            l1_block = to,
            state_hash = %ours,
            "deposits: confirmed on L1"
        );
    }
    Ok(())
}

/// Drops the book and reads from the deployment again.
fn restart(book: &DepositBook, deploy_block: u64, why: &str) -> eyre::Result<()> {
    tracing::warn!(
        why,
        "deposits: reading the L1 bridge again from its deployment"
    );
    let mut b = book.book.write();
    *b = Book {
        next_block: deploy_block,
        confirmations: b.confirmations,
        ..Book::default()
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use koma_rpc::DepositsApi;

    fn msg(id: u64) -> (u64, Bytes, u64, B256) {
        (id, Bytes::from(vec![id as u8; 3]), 10 + id, B256::ZERO)
    }

    #[test]
    fn the_book_takes_messages_in_order_only() {
        let book = DepositBook::new(true);
        let receiver = Address::with_last_byte(1);
        assert!(book.extend(vec![msg(1), msg(2)], receiver));
        assert!(!book.extend(vec![msg(4)], receiver), "a gap is refused");
        assert!(
            !book.extend(vec![msg(2)], receiver),
            "a repeat adds nothing"
        );
        assert!(
            book.extend(vec![msg(2), msg(3)], receiver),
            "an overlap continues"
        );
        // read, but the L1 head is not known to be past them yet
        book.set_confirmations(2);
        assert_eq!(book.confirmed().0, 0);
        assert!(book.confirmed_from(1, 10).is_empty());
        let h1 = next_state_hash(B256::ZERO, 1, receiver, &msg(1).1);
        let h2 = next_state_hash(h1, 2, receiver, &msg(2).1);
        let h3 = next_state_hash(h2, 3, receiver, &msg(3).1);
        let mark = |id, hash| Watermark { id, hash };
        assert_eq!(book.verdict(&mark(1, h1)), DepositVerdict::Seen);
        assert!(book.deposit(1).is_none());

        // messages are in L1 blocks 11, 12, 13: at head 14, the first two are 2 deep
        let mut grew = book.subscribe();
        book.saw_head(14);
        assert!(grew.has_changed().unwrap());
        grew.mark_unchanged();
        assert_eq!(book.confirmed(), (2, 12));
        assert_eq!(book.deposit(2).map(|d| d.state_hash), Some(h2));
        assert!(book.deposit(3).is_none(), "one block short");
        assert_eq!(book.confirmed_from(2, 10), vec![msg(2).1]);
        assert_eq!(book.verdict(&mark(2, h2)), DepositVerdict::Confirmed);
        assert_eq!(book.verdict(&mark(3, h3)), DepositVerdict::Seen);
        assert_eq!(book.verdict(&mark(2, h3)), DepositVerdict::Conflicts);
        assert_eq!(
            book.verdict(&mark(3, h2)),
            DepositVerdict::NotSeen,
            "another chain one block short: an L1 reorg may still change it"
        );
        assert_eq!(book.verdict(&mark(4, h3)), DepositVerdict::NotSeen);
        book.saw_head(13);
        assert!(!grew.has_changed().unwrap(), "the head never goes back");

        book.saw_head(15);
        assert!(grew.has_changed().unwrap());
        assert_eq!(book.confirmed_from(2, 10), vec![msg(2).1, msg(3).1]);
        assert_eq!(book.confirmed_from(2, 1), vec![msg(2).1]);
        assert!(book.confirmed_from(4, 10).is_empty());
        assert!(book.confirmed_from(0, 10).is_empty());
        assert_eq!(book.verdict(&mark(3, h3)), DepositVerdict::Confirmed);

        // a restart keeps the depth
        restart(&book, 5, "test").unwrap();
        assert_eq!(book.book.read().confirmations, 2);
        assert_eq!(book.confirmed(), (0, 0));
        assert_eq!(
            DepositBook::new(false).verdict(&mark(1, h1)),
            DepositVerdict::NoL1
        );
    }
}
