//! Era staker sets from the L1 stake table (ADR 0018, docs/staking.md).
//!
//! - **Anchoring.** Every block names, in its header's `parentBeaconBlockRoot`, an L1
//!   block its producer saw `confirmations` deep (its *L1 anchor*; zero while the
//!   producer reads no L1). A producer never names an older block than the parent did.
//! - **Agreeing.** A staker accepts a proposed milestone only if the anchor of the block
//!   it names is a block of its own L1 chain, at most one block short of
//!   `confirmations` deep, and not older than the parent milestone's anchor; otherwise
//!   the proposal waits. A final block's anchor is agreed.
//! - **Switching.** Era `e + 1`'s staker set is the root contract's active set (signers
//!   and weights) at the L1 block the anchor of era `e`'s terminal block names, read
//!   by block hash (EIP-1898), so every node reads the same state. A zero anchor
//!   carries the set over. The switch waits until the set is read here.

use crate::checkpoint::wait_for_contracts;
use alloy::eips::BlockId;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy_primitives::{Address, B256, U256};
use koma_consensus::{EraSets, NextSet, SetSource, Validity};
use koma_l1::bindings::RootChain;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Recent L1 blocks kept (number and hash), enough for any anchor still in use.
const WINDOW: usize = 4096;
/// Most L1 blocks read per poll (after an outage the window restarts near the head).
const READ_PER_POLL: u64 = 64;
/// L1 blocks read again at every poll, to notice a reorg.
const REREAD: u64 = 2;

/// Recent canonical L1 blocks, as this node reads them.
#[derive(Debug, Default)]
struct Window {
    by_number: BTreeMap<u64, B256>,
    by_hash: HashMap<B256, u64>,
    /// The L1 head at the last read.
    head: u64,
    confirmations: u64,
}

impl Window {
    /// Records `hash` at `number`; a different hash there (a reorg) drops it and
    /// everything above.
    fn record(&mut self, number: u64, hash: B256) {
        if self.by_number.get(&number) == Some(&hash) {
            return;
        }
        let dropped = self.by_number.split_off(&number);
        for h in dropped.values() {
            self.by_hash.remove(h);
        }
        self.by_number.insert(number, hash);
        self.by_hash.insert(hash, number);
        while self.by_number.len() > WINDOW {
            if let Some((_, h)) = self.by_number.pop_first() {
                self.by_hash.remove(&h);
            }
        }
    }

    /// The newest block `confirmations` deep.
    fn confirmed(&self) -> Option<(u64, B256)> {
        let deepest = self.head.checked_sub(self.confirmations)?;
        self.by_number
            .range(..=deepest)
            .next_back()
            .map(|(n, h)| (*n, *h))
    }
}

/// What this node asks its L1 for, off the consensus path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// The staker set at this block.
    Set(B256),
    /// Where this block is, if canonical (an anchor older than the window: restored
    /// units after a restart, or a long outage).
    Block(B256),
}

/// An anchor looked up outside the window.
#[derive(Debug, Clone, Copy)]
enum Lookup {
    Pending,
    Canonical(u64),
}

/// Most anchors kept from lookups outside the window.
const LOOKUPS_KEPT: usize = 4096;

/// A set read from L1, by the hash of the block it was read at.
#[derive(Debug, Clone)]
enum Fetch {
    Pending,
    Ready(Arc<AtAnchor>),
}

/// What the root contract said at one L1 block: its active staker set and its producer
/// candidates ranked by votes.
#[derive(Debug)]
struct AtAnchor {
    source: SetSource,
    validators: Vec<(Address, u64)>,
    ranking: Arc<Vec<Address>>,
}

/// Where the stakers stand on L1 now (for `koma_validators`), read at the newest L1 block
/// this node polled; nothing consensus decides depends on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StakerTable {
    /// The L1 block it was read at.
    pub l1_block: u64,
    /// The pending set (signer, weight): what the next set id will hold.
    pub pending: Vec<(Address, u64)>,
    /// Signers (of the pending or active set, or members of this node's era) whose
    /// KoMaBFT key was slashed.
    pub slashed: std::collections::HashSet<Address>,
}

/// The cheap reads that tell whether the stake table changed: every stake, top-up,
/// decrease, exit and slash rewrites the pending commitment, an activation the active
/// one, and a slash adds to `slashedHeld` (also for a staker already out of the pending
/// set); the era members decide whose slashed flag is read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableSource {
    pending_commit: B256,
    set_commit: B256,
    slashed_held: U256,
    members: Vec<Address>,
}

/// This node's view of L1 for staking: recent blocks (to anchor and check anchors) and
/// the staker sets read at anchors (for era switches).
#[derive(Debug)]
pub struct StakeView {
    reads_l1: bool,
    window: RwLock<Window>,
    sets: Mutex<HashMap<B256, Fetch>>,
    /// Anchors older than the window, looked up by hash.
    looked_up: Mutex<HashMap<B256, Lookup>>,
    requests: mpsc::UnboundedSender<Request>,
    requests_rx: Mutex<Option<mpsc::UnboundedReceiver<Request>>>,
    /// Bumped when the window grows or a set arrives (waiting proposals and switches
    /// look again).
    changed: watch::Sender<u64>,
    /// Whether "cannot follow eras without an L1" was said.
    warned: std::sync::atomic::AtomicBool,
    /// Whether "cannot import blocks of elected producers without an L1" was said.
    warned_producers: std::sync::atomic::AtomicBool,
    /// Misbehaviour to prove on L1 (crate::slashing), one report per signer.
    reports: mpsc::UnboundedSender<crate::slashing::Report>,
    reports_rx: Mutex<Option<mpsc::UnboundedReceiver<crate::slashing::Report>>>,
    /// Offenders reported: (key, whether as a producer).
    reported: Mutex<std::collections::HashSet<(Address, bool)>>,
    /// The stake table now, for `koma_validators` (None until read, or without an L1).
    table: RwLock<Option<StakerTable>>,
    /// What the table was last read from (see `read_table`).
    table_source: Mutex<Option<TableSource>>,
    /// The current era's members (the consensus task keeps it up to date), whose slashing
    /// the table reads even once they are in no set on L1.
    members: RwLock<Vec<Address>>,
}

impl StakeView {
    pub(crate) fn new(reads_l1: bool) -> Self {
        let (requests, rx) = mpsc::unbounded_channel();
        let (reports, reports_rx) = mpsc::unbounded_channel();
        Self {
            reads_l1,
            window: RwLock::new(Window::default()),
            sets: Mutex::new(HashMap::new()),
            looked_up: Mutex::new(HashMap::new()),
            requests,
            requests_rx: Mutex::new(Some(rx)),
            changed: watch::channel(0).0,
            warned: Default::default(),
            warned_producers: Default::default(),
            reports,
            reports_rx: Mutex::new(Some(reports_rx)),
            reported: Default::default(),
            table: RwLock::new(None),
            table_source: Mutex::new(None),
            members: RwLock::new(Vec::new()),
        }
    }

    /// The stake table as last read from L1.
    pub(crate) fn table(&self) -> Option<StakerTable> {
        self.table.read().clone()
    }

    /// The current era's members (read with the table, for their L1 status).
    pub(crate) fn set_members(&self, members: Vec<Address>) {
        let mut current = self.members.write();
        if *current != members {
            *current = members;
        }
    }

    /// Hands evidence of misbehaviour to the L1 slasher, once per offender and kind
    /// (staker or producer: the channel holds at most one report of each per key ever
    /// seen).
    pub(crate) fn report_offence(&self, report: crate::slashing::Report) {
        let key = (report.signer, report.offence.against_producer());
        if self.reads_l1 && self.reported.lock().insert(key) {
            let _ = self.reports.send(report);
        }
    }

    /// The slasher's end of the reports (taken once).
    pub(crate) fn take_reports(&self) -> Option<mpsc::UnboundedReceiver<crate::slashing::Report>> {
        self.reports_rx.lock().take()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The anchor a new block on a parent anchored at `parent` names: this node's newest
    /// confirmed L1 block if it is newer, else the parent's (never an older block).
    pub(crate) fn anchor_after(&self, parent: B256) -> B256 {
        let w = self.window.read();
        let Some((number, hash)) = w.confirmed() else {
            return parent;
        };
        if parent.is_zero() {
            return hash;
        }
        match w.by_hash.get(&parent) {
            Some(p) if *p < number => hash,
            // the parent's is as new, or unknown here (newer than this node's reading)
            _ => parent,
        }
    }

    /// Whether a staker votes for a milestone whose block names `anchor`, after a
    /// parent milestone whose block names `parent`.
    pub(crate) fn verdict(&self, anchor: B256, parent: B256) -> Validity {
        if anchor == parent || !self.reads_l1 {
            return Validity::Valid;
        }
        if anchor.is_zero() {
            // producers never drop an anchor; the header says so to everyone alike
            return Validity::Invalid;
        }
        let Some(number) = self.number_of(anchor, true) else {
            return Validity::Unknown; // not read here (yet)
        };
        let w = self.window.read();
        if number.saturating_add(w.confirmations) > w.head.saturating_add(1) {
            return Validity::Unknown; // not deep enough here (yet)
        }
        drop(w);
        match self.number_of(parent, false) {
            Some(p) if p > number => Validity::Unknown, // older than the parent's: never
            _ => Validity::Valid,
        }
    }

    /// The number of the canonical L1 block `hash` as this node read it: from the
    /// window, else from a lookup by hash (asked for here if `ask`).
    fn number_of(&self, hash: B256, ask: bool) -> Option<u64> {
        if let Some(n) = self.window.read().by_hash.get(&hash) {
            return Some(*n);
        }
        let mut looked_up = self.looked_up.lock();
        match looked_up.get(&hash) {
            Some(Lookup::Canonical(n)) => Some(*n),
            Some(Lookup::Pending) => None,
            None => {
                if ask {
                    if looked_up.len() >= LOOKUPS_KEPT {
                        looked_up.clear();
                    }
                    looked_up.insert(hash, Lookup::Pending);
                    let _ = self.requests.send(Request::Block(hash));
                }
                None
            }
        }
    }

    /// The staker set read at L1 block `anchor`, or `None` (and a request to read it).
    fn set_at(&self, anchor: B256) -> Option<(SetSource, Vec<(Address, u64)>)> {
        self.at_anchor(anchor)
            .map(|at| (at.source, at.validators.clone()))
    }

    /// What the root contract said at L1 block `anchor`, or `None` (and a request to
    /// read it).
    fn at_anchor(&self, anchor: B256) -> Option<Arc<AtAnchor>> {
        let mut sets = self.sets.lock();
        match sets.get(&anchor) {
            Some(Fetch::Ready(at)) => Some(at.clone()),
            Some(Fetch::Pending) => None,
            None => {
                sets.insert(anchor, Fetch::Pending);
                let _ = self.requests.send(Request::Set(anchor));
                None
            }
        }
    }

    /// The window's newest blocks, for tests.
    #[cfg(test)]
    fn saw(&self, head: u64, confirmations: u64, blocks: &[(u64, B256)]) {
        let mut w = self.window.write();
        w.head = head;
        w.confirmations = confirmations;
        for (n, h) in blocks {
            w.record(*n, *h);
        }
    }
}

/// Span producers (ADR 0022) are elected from the candidates ranked at an anchor.
impl koma_producer::ProducerRankings for StakeView {
    fn ranking_at(&self, anchor: B256) -> Option<Arc<Vec<Address>>> {
        if !self.reads_l1 {
            if !self
                .warned_producers
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::error!(
                    "the span's producers are elected on L1 and this node reads no L1 (--l1-rpc): it cannot import blocks past this span"
                );
            }
            return None;
        }
        self.at_anchor(anchor).map(|at| at.ranking.clone())
    }
}

/// The [`EraSets`] of a chain whose stake table is on L1 (see the module docs).
pub(crate) struct L1Sets {
    pub(crate) db: koma_storage::Database,
    pub(crate) view: Arc<StakeView>,
}

impl EraSets for L1Sets {
    fn next_set(&self, era: u64, terminal_value: &B256) -> NextSet {
        let Ok(Some(header)) = self.db.header(*terminal_value) else {
            return NextSet::Unknown;
        };
        let anchor = header.parent_beacon_block_root.unwrap_or_default();
        if anchor.is_zero() {
            return NextSet::Same;
        }
        if !self.view.reads_l1 {
            if !self
                .view
                .warned
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::error!(
                    era,
                    "the next era's staker set is on L1 and this node reads no L1 (--l1-rpc): it cannot follow finality past this era"
                );
            }
            return NextSet::Unknown;
        }
        match self.view.set_at(anchor) {
            Some((source, validators)) => {
                tracing::info!(
                    era,
                    l1_block = source.l1_block,
                    set_id = source.set_id,
                    stakers = validators.len(),
                    "next era's staker set read from L1"
                );
                NextSet::Known {
                    validators,
                    source: Some(source),
                }
            }
            None => NextSet::Unknown,
        }
    }
}

/// Reads L1 blocks into the window and the staker sets asked for, until `stop`; an L1
/// that fails is retried, never fatal.
pub(crate) async fn watch_l1(
    view: Arc<StakeView>,
    config: crate::deposits::WatchConfig,
    mut stop: watch::Receiver<bool>,
) {
    let Some(mut requests) = view.requests_rx.lock().take() else {
        return;
    };
    let Some(contracts) = wait_for_contracts(&config.contracts_file, &mut stop).await else {
        return;
    };
    let provider = match config.l1_rpc.parse() {
        Ok(url) => ProviderBuilder::new().connect_http(url).erased(),
        Err(e) => {
            tracing::error!(url = %config.l1_rpc, error = %e, "invalid L1 URL; staking is off");
            let _ = stop.changed().await;
            return;
        }
    };
    view.window.write().confirmations = config.confirmations;
    let mut failures = 0u64;
    let mut tick = tokio::time::interval(config.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retry: Vec<B256> = Vec::new();
    loop {
        let result = tokio::select! {
            _ = tick.tick() => {
                let mut result = read_window(&view, &provider).await;
                if result.is_ok() {
                    result = read_table(&view, &provider, contracts.root_chain).await;
                }
                for anchor in std::mem::take(&mut retry) {
                    if let Err(e) = read_set(&view, &provider, contracts.root_chain, anchor).await {
                        retry.push(anchor);
                        result = Err(e);
                    }
                }
                result
            }
            Some(request) = requests.recv() => match request {
                Request::Set(anchor) => {
                    let result = read_set(&view, &provider, contracts.root_chain, anchor).await;
                    if result.is_err() {
                        retry.push(anchor);
                    }
                    result
                }
                Request::Block(hash) => {
                    let result = look_up(&view, &provider, hash).await;
                    if !matches!(result, Ok(true)) {
                        // asked again at the next check (it may be newer than this reading)
                        view.looked_up.lock().remove(&hash);
                    }
                    result.map(|_| ())
                }
            },
            _ = stop.changed() => return,
        };
        match result {
            Ok(()) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(error = %e, failures, "staking: cannot read the L1; retrying");
                }
            }
        }
    }
}

/// Reads the L1 blocks up to one short of `confirmations` deep that are not in the
/// window yet (and the newest few again, to notice reorgs).
async fn read_window(view: &StakeView, provider: &DynProvider) -> eyre::Result<()> {
    let head = provider.get_block_number().await?;
    let (last, confirmations) = {
        let w = view.window.read();
        (w.by_number.keys().next_back().copied(), w.confirmations)
    };
    let Some(top) = head.checked_sub(confirmations.saturating_sub(1)) else {
        return Ok(());
    };
    let from = last
        .map_or(top, |l| l.saturating_sub(REREAD))
        .max(top.saturating_sub(READ_PER_POLL - 1));
    let mut grew = false;
    for number in from..=top {
        let Some(block) = provider.get_block_by_number(number.into()).await? else {
            break; // the L1 went back meanwhile; read again next time
        };
        let mut w = view.window.write();
        let known = w.by_number.get(&number) == Some(&block.header.hash);
        w.record(number, block.header.hash);
        grew |= !known;
    }
    let moved = {
        let mut w = view.window.write();
        let moved = w.head != head;
        w.head = head;
        moved
    };
    if grew || moved {
        view.notify();
    }
    Ok(())
}

/// Reads the stake table (pending set, slashed keys) at the newest L1 block, once per
/// new L1 head: three 32-byte reads, and the sets (256 bytes of key per staker) and
/// slashed flags only when those show a change.
async fn read_table(view: &StakeView, provider: &DynProvider, root: Address) -> eyre::Result<()> {
    let head = view.window.read().head;
    if view
        .table
        .read()
        .as_ref()
        .is_some_and(|t| t.l1_block == head)
    {
        return Ok(());
    }
    let root = RootChain::new(root, provider);
    let at = BlockId::number(head);
    let source = TableSource {
        pending_commit: root.pendingCommit().block(at).call().await?,
        set_commit: root.setCommit().block(at).call().await?,
        slashed_held: root.slashedHeld().block(at).call().await?,
        members: view.members.read().clone(),
    };
    if view.table_source.lock().as_ref() == Some(&source) {
        if let Some(table) = view.table.write().as_mut() {
            table.l1_block = head; // the same table, now as of this block
        }
        return Ok(());
    }
    let pending = root.pendingSet().block(at).call().await?;
    let pending: Vec<(Address, u64)> = pending
        .signers
        .iter()
        .zip(&pending.weights)
        .filter(|(signer, weight)| !signer.is_zero() && !weight.is_zero())
        .map(|(signer, weight)| (*signer, u64::try_from(*weight).unwrap_or(u64::MAX)))
        .collect();
    let active = root.activeSet().block(at).call().await?;
    // a slashed key leaves the pending set at once, so only signers outside it can be
    // slashed: the active set's and this node's era members'
    let mut candidates: Vec<Address> = active.signers.clone();
    candidates.extend(source.members.iter().copied());
    candidates.sort();
    candidates.dedup();
    let mut slashed = std::collections::HashSet::new();
    for signer in candidates {
        if signer.is_zero() || pending.iter().any(|(s, _)| *s == signer) {
            continue;
        }
        if root.slashed(signer).block(at).call().await? {
            slashed.insert(signer);
        }
    }
    *view.table.write() = Some(StakerTable {
        l1_block: head,
        pending,
        slashed,
    });
    *view.table_source.lock() = Some(source);
    Ok(())
}

/// Looks up the L1 block `hash` outside the window: `true` (and noted) if it is on
/// this node's canonical L1 chain.
async fn look_up(view: &StakeView, provider: &DynProvider, hash: B256) -> eyre::Result<bool> {
    let Some(block) = provider.get_block_by_hash(hash).await? else {
        return Ok(false);
    };
    let number = block.header.number;
    let canonical = provider
        .get_block_by_number(number.into())
        .await?
        .is_some_and(|b| b.header.hash == hash);
    if canonical {
        view.looked_up
            .lock()
            .insert(hash, Lookup::Canonical(number));
        view.notify();
    }
    Ok(canonical)
}

/// Reads the active staker set and the producer ranking at L1 block `anchor` (by hash).
async fn read_set(
    view: &StakeView,
    provider: &DynProvider,
    root_chain: Address,
    anchor: B256,
) -> eyre::Result<()> {
    let block = provider
        .get_block_by_hash(anchor)
        .await?
        .ok_or_else(|| eyre::eyre!("the L1 does not know block {anchor}"))?;
    let root = RootChain::new(root_chain, provider);
    let set = root.activeSet().block(BlockId::hash(anchor)).call().await?;
    let mut validators = Vec::with_capacity(set.signers.len());
    for (signer, weight) in set.signers.iter().zip(&set.weights) {
        if *weight == U256::ZERO {
            continue;
        }
        validators.push((*signer, u64::try_from(*weight)?));
    }
    let ranking = root
        .producerRanking()
        .block(BlockId::hash(anchor))
        .call()
        .await?
        .producers;
    let source = SetSource {
        l1_block: block.header.number,
        l1_hash: anchor,
        set_id: u64::try_from(set.setId)?,
    };
    tracing::debug!(
        l1_block = source.l1_block,
        set_id = source.set_id,
        stakers = validators.len(),
        candidates = ranking.len(),
        "staking: read a staker set and the producer ranking"
    );
    view.sets.lock().insert(
        anchor,
        Fetch::Ready(Arc::new(AtAnchor {
            source,
            validators,
            ranking: Arc::new(ranking),
        })),
    );
    view.notify();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> B256 {
        B256::repeat_byte(n)
    }

    #[test]
    fn anchors_move_forward_only_and_are_checked_against_the_own_reading() {
        let view = StakeView::new(true);
        // nothing read yet: carry the parent's
        assert_eq!(view.anchor_after(B256::ZERO), B256::ZERO);
        view.saw(12, 2, &[(9, h(9)), (10, h(10)), (11, h(11))]);
        assert_eq!(view.anchor_after(B256::ZERO), h(10), "2 deep: block 10");
        assert_eq!(view.anchor_after(h(9)), h(10));
        assert_eq!(view.anchor_after(h(10)), h(10));
        assert_eq!(
            view.anchor_after(h(11)),
            h(11),
            "never older than the parent's"
        );
        assert_eq!(
            view.anchor_after(h(99)),
            h(99),
            "unknown here: newer, carried"
        );

        assert_eq!(view.verdict(h(10), h(9)), Validity::Valid);
        assert_eq!(
            view.verdict(h(11), h(10)),
            Validity::Valid,
            "one short is enough"
        );
        assert_eq!(
            view.verdict(h(99), h(10)),
            Validity::Unknown,
            "not read here"
        );
        assert_eq!(
            view.verdict(h(9), h(10)),
            Validity::Unknown,
            "older than the parent's"
        );
        assert_eq!(
            view.verdict(B256::ZERO, h(10)),
            Validity::Invalid,
            "dropped"
        );
        assert_eq!(view.verdict(h(10), h(10)), Validity::Valid);
        // a reorg at 10 drops 10 and 11
        view.saw(12, 2, &[(10, h(20))]);
        assert_eq!(view.verdict(h(11), h(9)), Validity::Unknown);
        assert_eq!(view.verdict(h(20), h(9)), Validity::Valid);
        // a node without an L1 follows the stakers
        assert_eq!(StakeView::new(false).verdict(h(99), h(1)), Validity::Valid);
    }

    #[test]
    fn an_anchor_older_than_the_window_is_looked_up_by_hash_once() {
        let view = StakeView::new(true);
        let mut rx = view.requests_rx.lock().take().unwrap();
        view.saw(200, 2, &[(100, h(100)), (198, h(198))]);
        assert_eq!(view.verdict(h(7), h(100)), Validity::Unknown);
        assert_eq!(view.verdict(h(7), h(100)), Validity::Unknown);
        assert_eq!(rx.try_recv().unwrap(), Request::Block(h(7)));
        assert!(rx.try_recv().is_err(), "asked once while pending");
        // found canonical at 7: deep, but older than the parent's anchor (100)
        view.looked_up.lock().insert(h(7), Lookup::Canonical(7));
        assert_eq!(view.verdict(h(7), h(100)), Validity::Unknown);
        assert_eq!(view.verdict(h(7), h(6)), Validity::Valid);
        assert_eq!(view.verdict(h(100), h(7)), Validity::Valid);
        // not found (the watcher forgets it): asked again at the next check
        view.looked_up.lock().remove(&h(7));
        assert_eq!(view.verdict(h(7), h(6)), Validity::Unknown);
        assert_eq!(rx.try_recv().unwrap(), Request::Block(h(7)));
    }

    #[test]
    fn a_set_is_asked_for_once_and_served_when_read() {
        use koma_producer::ProducerRankings;
        let view = StakeView::new(true);
        assert!(view.set_at(h(1)).is_none());
        assert!(view.ranking_at(h(1)).is_none());
        let mut rx = view.requests_rx.lock().take().unwrap();
        assert_eq!(rx.try_recv().unwrap(), Request::Set(h(1)));
        assert!(rx.try_recv().is_err(), "asked once");
        let source = SetSource {
            l1_block: 7,
            l1_hash: h(1),
            set_id: 2,
        };
        view.sets.lock().insert(
            h(1),
            Fetch::Ready(Arc::new(AtAnchor {
                source,
                validators: vec![(Address::repeat_byte(1), 5)],
                ranking: Arc::new(vec![Address::repeat_byte(9)]),
            })),
        );
        assert_eq!(
            view.set_at(h(1)),
            Some((source, vec![(Address::repeat_byte(1), 5)]))
        );
        assert_eq!(
            view.ranking_at(h(1)).as_deref(),
            Some(&vec![Address::repeat_byte(9)])
        );
        // without an L1 there is no ranking to read, and no request
        let blind = StakeView::new(false);
        assert!(blind.ranking_at(h(1)).is_none());
    }
}
