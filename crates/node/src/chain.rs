//! The single writer of the chain: block production ([`ChainWriter::produce`]), gossip
//! import, sync and KoMaBFT's fork choice all go through [`ChainWriter`], one at a
//! time, and it announces what changed to the pool, the RPC subscriptions and the head
//! watchers.

use crate::deposits::{DepositBook, DepositVerdict};
use alloy::consensus::{ReceiptEnvelope, TxEnvelope};
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, U256};
use alloy_rlp::Encodable;
use koma_primitives::bridge::Watermark;
use koma_primitives::{Block, ChainSpec, SealedHeader};
use koma_producer::{BuildError, ImportError, ImportOutcome, PoolAccess, build_block_with};
use koma_storage::ChainEvent;
use koma_storage::{Database, StoredBody};
use koma_txpool::{BestTransactions, PoolStateView, TxPool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

#[derive(Debug)]
pub(crate) struct ChainWriter {
    pub spec: Arc<ChainSpec>,
    pub db: Database,
    pub pool: Arc<TxPool>,
    pub events: broadcast::Sender<Arc<ChainEvent>>,
    /// The canonical head; producers and sync wait on it.
    pub head: watch::Sender<SealedHeader>,
    /// Held while a block is built or imported: one writer at a time.
    write: tokio::sync::Mutex<()>,
    pub max_reorg_depth: u64,
    /// Number of the last block final at the node's threshold: no reorg goes below it.
    pub finalized: Arc<std::sync::atomic::AtomicU64>,
    /// The canonical block the validators' fork choice builds on (number, hash): no
    /// reorg goes below it either, so fork choice keeps the chain KoMaBFT extends.
    pub estimate: parking_lot::Mutex<Option<(u64, B256)>>,
    /// Tips of the stored side branches (hash -> number, total difficulty), to find
    /// the heaviest known descendant of a block fork choice must switch to.
    pub side_tips: parking_lot::Mutex<std::collections::HashMap<B256, (u64, U256)>>,
    /// Deposits confirmed on L1, which own blocks announce.
    pub deposits: Arc<DepositBook>,
    /// The node's L1 view for staking: anchors for own blocks, sets for eras.
    pub(crate) stake: Arc<crate::stake::StakeView>,
    /// Each block's producers: elected on L1 per span, replaced within it (ADR 0022).
    pub elections: Arc<koma_producer::Elections>,
    /// When (unix seconds, this node's clock) the final blocks' deposit watermark
    /// reached each id: `(id, since)`, oldest first, at most [`AGREED_KEPT`].
    agreed: parking_lot::Mutex<std::collections::VecDeque<(u64, u64)>>,
    /// Test only (feature `forge-deposits`): own blocks forge or omit deposits.
    pub forge_deposits: ForgeDeposits,
    /// Test only: every own block gets a twin on the same parent (`Produced::twin`).
    pub double_seal_for_testing: bool,
    /// The latest sealed header seen per (parent, producer): a second, different one on
    /// the same parent is a double seal, reported on L1 (ADR 0023).
    seals: parking_lot::Mutex<
        std::collections::HashMap<(B256, Address), koma_primitives::SignedHeader>,
    >,
}

/// Test only: how a producer misbehaves with deposits, so that the importers' refusal
/// can be exercised on a real network (feature `forge-deposits`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForgeDeposits {
    /// Honest.
    #[default]
    No,
    /// Own blocks announce the confirmed deposits with their amounts doubled, or an
    /// invented one when none is pending, and apply them in the next block as if agreed.
    Forge,
    /// Own blocks announce deposits honestly but never apply any.
    Omit,
}

/// A block this node produced, committed and announced, for the producer loop to report
/// and gossip.
#[derive(Debug)]
pub(crate) struct Produced {
    pub header: SealedHeader,
    pub txs: usize,
    pub execution_ms: f64,
    pub state_root_ms: f64,
    pub commit_ms: f64,
    /// The block as gossiped (RLP, seal included).
    pub encoded: Vec<u8>,
    /// Test only (`double_seal_for_testing`): a second block on the same parent, as
    /// gossiped.
    pub twin: Option<Vec<u8>>,
}

/// The pool's best transactions as the block builder takes them; transactions that
/// fail at execution are collected to be dropped from the pool.
struct BestAdapter {
    best: BestTransactions,
    rejected: Vec<B256>,
}

impl PoolAccess for BestAdapter {
    fn next_best(&mut self) -> Option<(TxEnvelope, Address)> {
        self.best.next().map(|p| (p.tx.clone(), p.sender))
    }
    fn skip_sender(&mut self, sender: Address) {
        self.best.mark_invalid(sender);
    }
    fn reject(&mut self, tx: B256, sender: Address) {
        self.best.mark_invalid(sender);
        self.rejected.push(tx);
    }
}

/// Where own blocks take deposits from: the book's confirmed reading, agreed as far as
/// the last final block.
#[derive(Clone, Copy)]
struct OwnDeposits<'a> {
    book: &'a DepositBook,
    agreed_through: u64,
    stake: &'a crate::stake::StakeView,
}

impl koma_producer::DepositSource for OwnDeposits<'_> {
    fn confirmed_from(&self, first: u64, max: usize) -> Vec<alloy_primitives::Bytes> {
        self.book.confirmed_from(first, max)
    }
    fn agreed_through(&self) -> u64 {
        self.agreed_through
    }
    fn l1_anchor(&self, parent: B256) -> B256 {
        self.stake.anchor_after(parent)
    }
}

/// Test only: the confirmed deposits with their amounts doubled, or, when none is
/// pending, an invented deposit of 1,000 KMC to the producer (`.1`); announced, and
/// applied from the next block on as if the stakers had agreed.
#[cfg(feature = "forge-deposits")]
struct Forged<'a>(&'a DepositBook, Address);

#[cfg(feature = "forge-deposits")]
impl koma_producer::DepositSource for Forged<'_> {
    fn confirmed_from(&self, first: u64, max: usize) -> Vec<alloy_primitives::Bytes> {
        use koma_primitives::bridge::{Deposit, KMC_TOKEN};
        let real = self.0.confirmed_from(first, max);
        if real.is_empty() {
            tracing::warn!(id = first, "TEST: inventing a deposit");
            return vec![
                Deposit {
                    token: KMC_TOKEN,
                    from: Address::ZERO,
                    to: self.1,
                    amount: U256::from(1_000_000_000_000_000_000_000u128), // 1,000 KMC
                    metadata: None,
                }
                .encode(),
            ];
        }
        tracing::warn!(id = first, "TEST: altering deposits");
        real.into_iter()
            .map(|data| match Deposit::decode(&data) {
                Ok(mut d) => {
                    d.amount = d.amount.saturating_mul(U256::from(2u64));
                    d.encode()
                }
                Err(_) => data,
            })
            .collect()
    }
    fn agreed_through(&self) -> u64 {
        u64::MAX
    }
}

/// How long before a block's time a deposit must have been agreed here for a block on
/// the head that applies none to be taken as omitting it: far more than honest nodes
/// see finality apart (a round or two).
const OMISSION_GRACE_SECS: u64 = 8;

/// Agreed watermark steps remembered for the omission check.
const AGREED_KEPT: usize = 1024;

/// Sealed headers kept for double-seal detection (cleared when full: blocks a few
/// minutes apart on one parent are not looked for).
const SEALS_KEPT: usize = 4096;

/// Test only: `block` again, stamped a second later and sealed anew by `key`: a second
/// block on the same parent (the same state root, so it imports), as gossiped.
fn twin_for_testing(spec: &ChainSpec, block: &Block, key: &PrivateKeySigner) -> Option<Vec<u8>> {
    let mut header = block.header.header.clone();
    header.timestamp = header.timestamp.saturating_add(1);
    let signed = koma_primitives::SignedHeader::sign(header, spec.chain_id, key).ok()?;
    tracing::warn!(
        number = signed.number,
        "TEST: sealing a second block on the same parent"
    );
    let twin = Block {
        header: signed,
        body: block.body.clone(),
    };
    let mut encoded = Vec::with_capacity(twin.length());
    twin.encode(&mut encoded);
    Some(encoded)
}

/// Side tips kept at most; beyond it, the lowest go first.
const MAX_SIDE_TIPS: usize = 256;

/// The pool already recovered the sender of every transaction it holds.
struct PoolSenders<'a>(&'a TxPool);

impl koma_producer::KnownSenders for PoolSenders<'_> {
    fn sender(&self, tx: &B256) -> Option<alloy_primitives::Address> {
        self.0.get(tx).map(|p| p.sender)
    }
}

impl ChainWriter {
    pub fn new(
        spec: Arc<ChainSpec>,
        db: Database,
        pool: Arc<TxPool>,
        events: broadcast::Sender<Arc<ChainEvent>>,
        max_reorg_depth: u64,
        deposits: Arc<DepositBook>,
        stake: Arc<crate::stake::StakeView>,
    ) -> Self {
        let head = db.head();
        let elections = Arc::new(koma_producer::Elections::new(stake.clone()));
        Self {
            spec,
            db,
            pool,
            events,
            head: watch::Sender::new(head),
            write: tokio::sync::Mutex::new(()),
            max_reorg_depth,
            finalized: Default::default(),
            estimate: Default::default(),
            side_tips: Default::default(),
            deposits,
            stake,
            elections,
            agreed: Default::default(),
            forge_deposits: ForgeDeposits::No,
            double_seal_for_testing: false,
            seals: Default::default(),
        }
    }

    /// Waits until a write in progress (a block being built or imported) is committed.
    pub async fn quiesce(&self) {
        drop(self.write.lock().await);
    }

    /// A block joined the canonical chain: the pool forgets its transactions, the
    /// subscriptions hear about it.
    pub fn canonical(
        &self,
        header: SealedHeader,
        body: StoredBody,
        receipts: Vec<ReceiptEnvelope>,
    ) {
        let mined: Vec<B256> = body.transactions.iter().map(|t| *t.tx_hash()).collect();
        let next_base_fee = self.spec.base_fee_after(&header.header);
        self.pool.on_canonical_block(
            &mined,
            &body.senders,
            &PoolStateView(self.db.clone()),
            next_base_fee,
        );
        self.head.send_replace(header.clone());
        let _ = self.events.send(Arc::new(ChainEvent {
            header,
            body,
            receipts,
            removed: false,
        }));
    }

    /// Builds the next block on `parent` as the producer `key` with the pool's best
    /// transactions (adding them for at most `budget` once the write lock is held),
    /// stamped now but not before `earliest`, commits it and announces it: the only way
    /// an own block enters the chain. `None` if `parent` is no longer the head once the
    /// write lock is held (a block arrived meanwhile).
    pub async fn produce(
        self: &Arc<Self>,
        parent: B256,
        key: &PrivateKeySigner,
        earliest: u64,
        budget: Duration,
    ) -> Result<Option<Produced>, BuildError> {
        let _guard = self.write.lock().await;
        if self.db.head().hash != parent {
            return Ok(None);
        }
        let timestamp = (crate::clock::unix_now_ms() / 1000).max(earliest);
        let deadline = Instant::now()
            .checked_add(budget)
            .unwrap_or_else(Instant::now);
        let (this, key) = (self.clone(), key.clone());
        let produced = tokio::task::spawn_blocking(move || -> Result<Produced, BuildError> {
            let base_fee = this.spec.base_fee_after(&this.db.head().header);
            let mut best = BestAdapter {
                best: this.pool.best_transactions(base_fee),
                rejected: Vec::new(),
            };
            let own = OwnDeposits {
                book: &this.deposits,
                agreed_through: this.finalized.load(std::sync::atomic::Ordering::Relaxed),
                stake: &this.stake,
            };
            #[cfg(feature = "forge-deposits")]
            let forged = Forged(&this.deposits, key.address());
            #[cfg(feature = "forge-deposits")]
            let omitting = OwnDeposits {
                agreed_through: 0,
                ..own
            };
            #[cfg(feature = "forge-deposits")]
            let deposits: &dyn koma_producer::DepositSource = match this.forge_deposits {
                ForgeDeposits::No => &own,
                ForgeDeposits::Forge => &forged,
                ForgeDeposits::Omit => &omitting,
            };
            #[cfg(not(feature = "forge-deposits"))]
            let deposits: &dyn koma_producer::DepositSource = &own;
            let built = build_block_with(
                &this.spec,
                &this.db,
                &mut best,
                deposits,
                &this.elections,
                &key,
                timestamp,
                Some(deadline),
            );
            if !best.rejected.is_empty() {
                tracing::debug!(
                    count = best.rejected.len(),
                    "dropping transactions that failed at execution"
                );
                this.pool.remove_transactions(&best.rejected);
            }
            let built = built?;
            let mut encoded = Vec::with_capacity(built.block.length());
            built.block.encode(&mut encoded);
            let twin = this
                .double_seal_for_testing
                .then(|| twin_for_testing(&this.spec, &built.block, &key))
                .flatten();
            this.note_seal(&built.block.header);
            let produced = Produced {
                header: built.header.clone(),
                txs: built.block.body.transactions.len(),
                execution_ms: built.execution_ms,
                state_root_ms: built.state_root_ms,
                commit_ms: built.commit_ms,
                encoded,
                twin,
            };
            let body = StoredBody {
                transactions: built.block.body.transactions,
                senders: built.senders,
            };
            this.canonical(built.header, body, built.receipts);
            Ok(produced)
        })
        .await
        .map_err(|e| BuildError::Execution(format!("block production task failed: {e}")))??;
        Ok(Some(produced))
    }

    /// Reads a stored block back for announcing it.
    fn stored(
        &self,
        header: &SealedHeader,
    ) -> Result<(StoredBody, Vec<ReceiptEnvelope>), ImportError> {
        let body = self
            .db
            .body(header.hash)?
            .ok_or_else(|| ImportError::Internal(format!("body of {} missing", header.hash)))?;
        let receipts = self.db.receipts(header.hash)?.unwrap_or_default();
        Ok((body, receipts))
    }

    /// Applies fork choice to a block from a peer and announces the result.
    pub fn import(&self, block: &Block) -> Result<ImportOutcome, ImportError> {
        self.check_deposits(block)?;
        let known = PoolSenders(&self.pool);
        let started = std::time::Instant::now();
        let outcome = match koma_producer::import_with(
            &self.spec,
            &self.db,
            block,
            self.reorg_bound(true),
            &known,
            &self.elections,
        ) {
            // Heavier, but it leaves the block the validators build on: kept aside
            // (stored already) until they build on it.
            Err(ImportError::ReorgTooDeep { depth, .. }) if depth <= self.reorg_bound(false) => {
                let hash = block.header.hash_slow();
                let total_difficulty = self.db.total_difficulty(hash)?.unwrap_or_default();
                tracing::debug!(number = block.header.number, %hash, "heavier branch kept aside: the validators build on the canonical chain");
                ImportOutcome::SideChain {
                    hash,
                    total_difficulty,
                }
            }
            other => other?,
        };
        if !matches!(outcome, ImportOutcome::AlreadyKnown) {
            koma_metrics::metrics()
                .block_import
                .observe(started.elapsed().as_secs_f64());
            // stored: its seal was checked
            self.note_seal(&block.header);
        }
        self.track_tips(&outcome, block.header.parent_hash)?;
        self.announce(&outcome)?;
        Ok(outcome)
    }

    /// Records a checked seal; a second, different header the same producer sealed on
    /// the same parent is a double seal, handed to the L1 slasher.
    fn note_seal(&self, header: &koma_primitives::SignedHeader) {
        let key = (header.parent_hash, header.beneficiary);
        let mut seals = self.seals.lock();
        match seals.get(&key) {
            Some(first) if first.hash_slow() != header.hash_slow() => {
                tracing::warn!(
                    producer = %header.beneficiary,
                    number = header.number,
                    "a producer sealed two blocks on one parent: reporting it on L1"
                );
                self.stake.report_offence(crate::slashing::Report {
                    signer: header.beneficiary,
                    offence: crate::slashing::Offence::Seals {
                        a: first.clone(),
                        b: header.clone(),
                    },
                });
            }
            Some(_) => {}
            None => {
                if seals.len() >= SEALS_KEPT {
                    seals.clear();
                }
                seals.insert(key, header.clone());
            }
        }
    }

    /// The checks a gossiped block may have to wait on before its import: its deposits
    /// (ADR 0017) and whether its span's producers, elected on L1, are read here yet
    /// (ADR 0022).
    pub fn check_held(&self, block: &Block) -> Result<(), ImportError> {
        self.check_deposits(block)?;
        let parent_hash = block.header.parent_hash;
        let Some(parent) = self.db.header(parent_hash)? else {
            return Ok(()); // the import says the parent is unknown
        };
        let parent = SealedHeader {
            hash: parent_hash,
            header: parent,
        };
        match self
            .elections
            .producers_for(&self.spec, &self.db, &parent, block.header.number)
        {
            Err(e @ ImportError::ProducersNotRead { .. }) => Err(e),
            // anything else is the import's to say
            _ => Ok(()),
        }
    }

    /// The deposit checks that need this node's finality or L1 reading (ADR 0017); the
    /// ones that need neither are the import's (`koma_producer::check_applied_deposits`).
    /// - Every node holds back a block that applies deposits beyond the watermark of
    ///   its last final block (not agreed here yet), and one on its head that applies
    ///   none while an agreed deposit has waited [`OMISSION_GRACE_SECS`].
    /// - A node that reads L1 refuses a block announcing a watermark its reading
    ///   contradicts, and holds back one announcing a deposit it has not read yet.
    ///
    /// Blocks at or below the final one were agreed by the stakers already.
    pub fn check_deposits(&self, block: &Block) -> Result<(), ImportError> {
        let number = block.header.number;
        let finalized = self.finalized.load(std::sync::atomic::Ordering::Relaxed);
        if number <= finalized {
            return Ok(());
        }
        let applied = koma_producer::applied_deposits(&self.spec, block);
        koma_producer::check_deposit_order(&applied)
            .map_err(|reason| ImportError::Invalid { number, reason })?;
        let agreed = self
            .db
            .header_by_number(finalized)?
            .and_then(|h| Watermark::of(&h.header).ok())
            .unwrap_or_default();
        if let Some((last, _)) = applied.last()
            && *last > agreed.id
        {
            return Err(ImportError::DepositNotAgreed { number, id: *last });
        }
        if self.deposits.reads_l1()
            && let Some(parent) = self.db.header(block.header.parent_hash)?
            && let (Ok(previous), Ok(mark)) = (Watermark::of(&parent), Watermark::of(&block.header))
            && mark.id > previous.id
        {
            match self.deposits.verdict(&mark) {
                DepositVerdict::Confirmed | DepositVerdict::Seen | DepositVerdict::NoL1 => {}
                DepositVerdict::NotSeen => {
                    return Err(ImportError::DepositNotSeen {
                        number,
                        id: mark.id,
                    });
                }
                DepositVerdict::Conflicts => {
                    return Err(ImportError::Invalid {
                        number,
                        reason: format!(
                            "announces deposits up to {} that are not the ones confirmed on L1",
                            mark.id
                        ),
                    });
                }
            }
        }
        // Omission: a block on the head that applies none while the next deposit was
        // agreed here well before the block's time.
        if applied.is_empty() && block.header.parent_hash == self.db.head().hash {
            let last = self.db.storage(
                koma_primitives::bridge::L2_BRIDGE_ADDRESS,
                koma_primitives::bridge::LAST_STATE_ID_SLOT,
            )?;
            let next = u64::try_from(last).unwrap_or(u64::MAX).saturating_add(1);
            let overdue = self
                .agreed
                .lock()
                .iter()
                .find(|(id, _)| *id >= next)
                .is_some_and(|(_, since)| {
                    block.header.timestamp >= since.saturating_add(OMISSION_GRACE_SECS)
                });
            if overdue {
                return Err(ImportError::DepositOmitted { number, id: next });
            }
        }
        Ok(())
    }

    /// Notes the deposit watermark of the final block `header`: the time it was first
    /// agreed here (for the omission check), and a nudge to blocks held back for it.
    fn note_agreed(&self, header: &alloy::consensus::Header) {
        let Ok(mark) = Watermark::of(header) else {
            return;
        };
        let mut agreed = self.agreed.lock();
        if agreed.back().is_some_and(|(id, _)| *id >= mark.id) || mark.id == 0 {
            return;
        }
        let now = crate::clock::unix_now_ms() / 1000;
        agreed.push_back((mark.id, now));
        while agreed.len() > AGREED_KEPT {
            agreed.pop_front();
        }
        drop(agreed);
        self.deposits.notify();
    }

    /// How deep a reorg may go now: never below the last final block (at the node's
    /// threshold), with `follow_estimate` never below the validators' fork choice
    /// either, and never deeper than the configured bound. Both blocks are canonical
    /// (see [`ChainWriter::adopt_final`] and [`ChainWriter::follow_estimate`]), so
    /// every branch fork choice may switch to contains them: the canonical chain is
    /// the heaviest that contains what KoMaBFT builds on.
    fn reorg_bound(&self, follow_estimate: bool) -> u64 {
        let mut floor = self.finalized.load(std::sync::atomic::Ordering::Relaxed);
        if follow_estimate && let Some((number, _)) = *self.estimate.lock() {
            floor = floor.max(number);
        }
        self.max_reorg_depth
            .min(self.db.head().number().saturating_sub(floor))
    }

    /// Keeps [`ChainWriter::side_tips`] up to date after an import.
    fn track_tips(&self, outcome: &ImportOutcome, parent: B256) -> Result<(), ImportError> {
        let mut tips = self.side_tips.lock();
        match outcome {
            ImportOutcome::SideChain {
                hash,
                total_difficulty,
            } => {
                tips.remove(&parent);
                let number = self.db.header(*hash)?.map_or(0, |h| h.number);
                tips.insert(*hash, (number, *total_difficulty));
            }
            ImportOutcome::Reorged {
                unwound, applied, ..
            } => {
                // The old chain is a side branch now; the new one is not.
                if let Some((old_head, _)) = unwound.first() {
                    let td = self.db.total_difficulty(old_head.hash)?.unwrap_or_default();
                    tips.insert(old_head.hash, (old_head.number(), td));
                }
                for header in applied {
                    tips.remove(&header.hash);
                }
            }
            ImportOutcome::Extended(_) | ImportOutcome::AlreadyKnown => {}
        }
        if tips.len() > MAX_SIDE_TIPS {
            let finalized = self.finalized.load(std::sync::atomic::Ordering::Relaxed);
            tips.retain(|_, (number, _)| *number > finalized);
            while tips.len() > MAX_SIDE_TIPS {
                let lowest = tips.iter().min_by_key(|(_, (n, _))| *n).map(|(h, _)| *h);
                match lowest {
                    Some(h) => tips.remove(&h),
                    None => break,
                };
            }
        }
        Ok(())
    }

    /// The heaviest stored block that is `base` or descends from it on a side branch
    /// this node knows (`base` itself if none does).
    fn heaviest_descendant(&self, base: SealedHeader) -> Result<SealedHeader, ImportError> {
        let mut best = (
            self.db.total_difficulty(base.hash)?.unwrap_or_default(),
            base.clone(),
        );
        let tips: Vec<(B256, U256)> = self
            .side_tips
            .lock()
            .iter()
            .filter(|(_, (n, _))| *n > base.number())
            .map(|(h, (_, td))| (*h, *td))
            .collect();
        for (tip, td) in tips {
            if td <= best.0 {
                continue;
            }
            let Some(tip_header) = self.db.header(tip)? else {
                continue;
            };
            let mut cursor = (tip, tip_header.clone());
            while cursor.1.number > base.number() {
                let parent = cursor.1.parent_hash;
                match self.db.header(parent)? {
                    Some(h) => cursor = (parent, h),
                    None => break,
                }
            }
            if cursor.0 == base.hash {
                best = (
                    td,
                    SealedHeader {
                        hash: tip,
                        header: tip_header,
                    },
                );
            }
        }
        Ok(best.1)
    }

    /// Makes the stored block `hash` canonical, with the heaviest branch this node
    /// knows on top of it, if fork choice had left it; never unwinds a final block.
    /// Returns its number, or `None` if it is not stored (yet).
    fn switch_to(&self, hash: B256, why: &str) -> Result<Option<u64>, ImportError> {
        let Some(header) = self.db.header(hash)? else {
            return Ok(None);
        };
        let number = header.number;
        if !self.db.is_canonical(hash, number)? {
            let tip = self.heaviest_descendant(SealedHeader { hash, header })?;
            tracing::info!(number, %hash, tip = tip.number(), "{why}: switching to its branch");
            let parent = tip.header.parent_hash;
            let outcome = koma_producer::reorg_to(
                &self.spec,
                &self.db,
                tip,
                self.reorg_bound(false),
                &self.elections,
            )?;
            self.track_tips(&outcome, parent)?;
            self.announce(&outcome)?;
        }
        Ok(Some(number))
    }

    /// KoMaBFT finalized the stored block `hash` at the node's threshold: makes sure it
    /// is on the canonical chain (reorging to its branch if fork choice had left it),
    /// then records it as the floor of every later reorg.
    pub fn adopt_final(&self, hash: B256) -> Result<(), ImportError> {
        let number = self
            .switch_to(hash, "final block on a branch fork choice had left")?
            .ok_or_else(|| ImportError::Internal(format!("final block {hash} is not stored")))?;
        self.finalized
            .fetch_max(number, std::sync::atomic::Ordering::Relaxed);
        if let Some(header) = self.db.header(hash)? {
            self.note_agreed(&header);
        }
        Ok(())
    }

    /// The validators' fork choice now builds on the block `hash`: fork choice follows
    /// it (the heaviest chain containing it), as an execution client follows its
    /// consensus client. A block not stored yet is left for later (`Ok(false)`; the
    /// consensus task fetches it); one that conflicts with a final block is refused.
    pub fn follow_estimate(&self, hash: B256) -> Result<bool, ImportError> {
        let Some(number) = self.switch_to(hash, "the validators build on another branch")? else {
            return Ok(false);
        };
        *self.estimate.lock() = Some((number, hash));
        Ok(true)
    }

    /// [`ChainWriter::follow_estimate`] under the write lock, on a blocking thread.
    pub async fn follow_estimate_async(self: &Arc<Self>, hash: B256) -> Result<bool, ImportError> {
        let _guard = self.write.lock().await;
        let chain = self.clone();
        tokio::task::spawn_blocking(move || chain.follow_estimate(hash))
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?
    }

    /// Tells the pool, the subscriptions and the head watchers what an import did.
    fn announce(&self, outcome: &ImportOutcome) -> Result<(), ImportError> {
        match outcome {
            ImportOutcome::Extended(header) => {
                let (body, receipts) = self.stored(header)?;
                self.canonical(header.clone(), body, receipts);
            }
            ImportOutcome::Reorged {
                new_head,
                unwound,
                applied,
            } => {
                tracing::info!(
                    depth = unwound.len(),
                    applied = applied.len(),
                    number = new_head.number(),
                    hash = %new_head.hash,
                    "reorg"
                );
                for (header, body) in unwound {
                    let receipts = self.db.receipts(header.hash)?.unwrap_or_default();
                    let ev = ChainEvent {
                        header: header.clone(),
                        body: body.clone(),
                        receipts,
                        removed: true,
                    };
                    let _ = self.events.send(Arc::new(ev));
                }
                for header in applied {
                    let (body, receipts) = self.stored(header)?;
                    self.canonical(header.clone(), body, receipts);
                }
                if applied.is_empty() {
                    self.head.send_replace(new_head.clone());
                }
                // Unwound transactions the new chain did not include go back to the pool.
                let txs = unwound
                    .iter()
                    .flat_map(|(_, b)| b.transactions.iter().cloned())
                    .collect();
                let base_fee = self.spec.base_fee_after(&self.db.head().header);
                self.pool
                    .reinject(txs, &PoolStateView(self.db.clone()), base_fee);
            }
            ImportOutcome::AlreadyKnown | ImportOutcome::SideChain { .. } => {}
        }
        Ok(())
    }

    /// [`ChainWriter::adopt_final`] under the write lock, on a blocking thread.
    pub async fn adopt_final_async(self: &Arc<Self>, hash: B256) -> Result<(), ImportError> {
        let _guard = self.write.lock().await;
        let chain = self.clone();
        tokio::task::spawn_blocking(move || chain.adopt_final(hash))
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?
    }

    /// [`ChainWriter::import`] under the write lock, on a blocking thread.
    pub async fn import_async(
        self: &Arc<Self>,
        block: Block,
    ) -> Result<ImportOutcome, ImportError> {
        let _guard = self.write.lock().await;
        let chain = self.clone();
        tokio::task::spawn_blocking(move || chain.import(&block))
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?
    }

    /// Imports consecutive blocks (a sync batch) under one lock; stops at the first error.
    pub async fn import_many(self: &Arc<Self>, blocks: Vec<Block>) -> Result<(), ImportError> {
        let _guard = self.write.lock().await;
        let chain = self.clone();
        tokio::task::spawn_blocking(move || {
            for block in &blocks {
                chain.import(block)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| ImportError::Internal(e.to_string()))?
    }
}

/// `None` for what waits on an L1 reading.
fn known<T>(result: Result<T, ImportError>) -> Result<Option<T>, String> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(ImportError::ProducersNotRead { .. }) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `koma_producers` over the chain's elections.
#[derive(Debug)]
pub(crate) struct RpcProducers(pub Arc<ChainWriter>);

impl koma_rpc::ProducersApi for RpcProducers {
    fn producers_of_block(&self, number: u64) -> Result<Option<koma_rpc::SpanProducers>, String> {
        let chain = &self.0;
        let spec = &chain.spec;
        let head = chain.db.head();
        let span_len = spec.producers.span.max(1);
        let span = number.checked_div(span_len).unwrap_or(0);
        let (election, replacements, producers) = if number <= head.number().saturating_add(1) {
            let sprint = match number.checked_sub(1) {
                None => known(chain.elections.election(spec, &chain.db, &head, 0))
                    .map(|e| e.map(|election| (election.elected.clone(), election, Vec::new())))?,
                Some(parent_number) => {
                    let parent = if parent_number == head.number() {
                        head
                    } else {
                        chain
                            .db
                            .header_by_number(parent_number)
                            .map_err(|e| e.to_string())?
                            .ok_or_else(|| format!("block {parent_number} is not stored"))?
                    };
                    known(
                        chain
                            .elections
                            .producers_for(spec, &chain.db, &parent, number),
                    )?
                    .map(|p| {
                        (
                            p.producers.clone(),
                            p.election.clone(),
                            p.replacements.clone(),
                        )
                    })
                }
            };
            let Some((producers, election, replacements)) = sprint else {
                return Ok(None);
            };
            (election, replacements, producers)
        } else {
            // a later block: its span's election, once the source block is here
            let source = span.checked_sub(1).map(|s| s.saturating_mul(span_len));
            if source.is_some_and(|s| s > head.number()) {
                return Ok(None);
            }
            let Some(election) = known(chain.elections.election(spec, &chain.db, &head, span))?
            else {
                return Ok(None);
            };
            (election.clone(), Vec::new(), election.elected.clone())
        };
        let in_turn =
            koma_producer::ProducerSchedule::new(producers.clone(), spec.producers.sprint)
                .in_turn(number);
        let span_start = span.saturating_mul(span_len);
        Ok(Some(koma_rpc::SpanProducers {
            block_number: number,
            span,
            span_start,
            span_end: span_start.saturating_add(span_len.saturating_sub(1)),
            elected_by: if election.from_l1 { "l1" } else { "genesis" },
            source_block: election.source.map(|(n, _)| n),
            l1_block_hash: (!election.anchor.is_zero()).then_some(election.anchor),
            elected: election.elected.clone(),
            reserves: election.reserves.clone(),
            replacements: replacements
                .iter()
                .map(|r| koma_rpc::ProducerReplacement {
                    from_block: r.from_block,
                    replaced: r.replaced,
                    by: r.by,
                    sealed: r.sealed,
                })
                .collect(),
            producers,
            in_turn,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koma_primitives::bridge::{Deposit, KMC_TOKEN};
    use koma_primitives::dev;
    use koma_producer::test_utils::{VecDeposits, VecPool};

    fn deposit(amount: u64) -> alloy_primitives::Bytes {
        Deposit {
            token: KMC_TOKEN,
            from: Address::with_last_byte(0xaa),
            to: Address::with_last_byte(0xbb),
            amount: U256::from(amount),
            metadata: None,
        }
        .encode()
    }

    fn importer(book: Arc<DepositBook>) -> (ChainWriter, tempfile::TempDir) {
        let spec = Arc::new(ChainSpec::devnet());
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), &spec).unwrap();
        let pool = Arc::new(TxPool::new(koma_txpool::PoolConfig::default()));
        let writer = ChainWriter::new(
            spec,
            db,
            pool,
            broadcast::channel(16).0,
            64,
            book,
            Arc::new(crate::stake::StakeView::new(false)),
        );
        (writer, dir)
    }

    /// Another node's chain: blocks built on its own database.
    struct Producer {
        spec: ChainSpec,
        db: Database,
        _dir: tempfile::TempDir,
    }

    impl Producer {
        fn new() -> Self {
            let spec = ChainSpec::devnet();
            let dir = tempfile::tempdir().unwrap();
            let db = Database::open(dir.path(), &spec).unwrap();
            Self {
                spec,
                db,
                _dir: dir,
            }
        }

        /// The next block, stamped `timestamp`, with deposits from `source`.
        fn build(&self, source: &dyn koma_producer::DepositSource, timestamp: u64) -> Block {
            build_block_with(
                &self.spec,
                &self.db,
                &mut VecPool(Default::default()),
                source,
                &koma_producer::Elections::genesis(),
                &dev::dev_producer_key(0),
                timestamp,
                None,
            )
            .unwrap()
            .block
        }
    }

    /// Deposits confirmed, none agreed: blocks announce them and apply none.
    struct NoneAgreed(VecDeposits);

    impl koma_producer::DepositSource for NoneAgreed {
        fn confirmed_from(&self, first: u64, max: usize) -> Vec<alloy_primitives::Bytes> {
            self.0.confirmed_from(first, max)
        }
        fn agreed_through(&self) -> u64 {
            0
        }
    }

    fn genesis_time() -> u64 {
        ChainSpec::devnet().timestamp
    }

    #[test]
    fn a_block_announcing_deposits_is_checked_against_this_nodes_l1_reading() {
        let receiver = koma_primitives::bridge::L2_BRIDGE_ADDRESS;
        let read = |book: &DepositBook, amount: u64| {
            assert!(book.extend(vec![(1, deposit(amount), 10, B256::ZERO)], receiver));
        };
        let producer = Producer::new();
        let block = producer.build(&VecDeposits(vec![deposit(5)]), genesis_time() + 1);
        assert!(block.body.transactions.is_empty(), "announced only");

        // not read here yet: held back, not refused
        let book = Arc::new(DepositBook::new(true));
        book.set_confirmations(2);
        let (chain, _dir) = importer(book.clone());
        let err = chain.import(&block).unwrap_err();
        assert!(
            matches!(err, ImportError::DepositNotSeen { number: 1, id: 1 }),
            "{err}"
        );
        assert!(!err.is_invalid_block());
        // read one L1 block short of the confirmations (the producer may be one ahead)
        read(&book, 5);
        assert!(matches!(
            chain.import(&block).unwrap(),
            ImportOutcome::Extended(_)
        ));

        // an invented or altered deposit: L1 has deposit 1 with another amount
        let book = Arc::new(DepositBook::new(true));
        book.set_confirmations(2);
        let (chain, _dir) = importer(book.clone());
        read(&book, 6);
        // one block short, another amount: an L1 reorg may still change it, so wait
        let err = chain.import(&block).unwrap_err();
        assert!(matches!(err, ImportError::DepositNotSeen { .. }), "{err}");
        book.saw_head(12);
        let err = chain.import(&block).unwrap_err();
        assert!(err.is_invalid_block(), "{err}");
        assert!(
            err.to_string()
                .contains("announces deposits up to 1 that are not the ones confirmed on L1"),
            "{err}"
        );

        // a node that reads no L1 follows the stakers
        let (chain, _dir) = importer(Arc::new(DepositBook::new(false)));
        assert!(matches!(
            chain.import(&block).unwrap(),
            ImportOutcome::Extended(_)
        ));
    }

    #[test]
    fn deposits_are_imported_only_once_their_announcement_is_final_here() {
        let producer = Producer::new();
        let source = VecDeposits(vec![deposit(5), deposit(6)]);
        let announcing = producer.build(&source, genesis_time() + 1);
        let applying = producer.build(&source, genesis_time() + 2);
        assert_eq!(applying.body.transactions.len(), 2);

        // a node without an L1: what it checks is the stakers' agreement
        let book = Arc::new(DepositBook::new(false));
        let (chain, _dir) = importer(book.clone());
        let nudged = book.subscribe();
        chain.import(&announcing).unwrap();
        let err = chain.import(&applying).unwrap_err();
        assert!(
            matches!(err, ImportError::DepositNotAgreed { number: 2, id: 2 }),
            "{err}"
        );
        assert!(
            !err.is_invalid_block(),
            "not blamed: finality differs a little between nodes"
        );
        assert!(!nudged.has_changed().unwrap());
        chain.adopt_final(announcing.header.hash_slow()).unwrap();
        assert!(nudged.has_changed().unwrap(), "held blocks are retried");
        assert!(matches!(
            chain.import(&applying).unwrap(),
            ImportOutcome::Extended(_)
        ));
    }

    #[test]
    fn a_block_on_the_head_that_omits_an_overdue_deposit_is_not_imported() {
        let producer = Producer::new();
        let source = VecDeposits(vec![deposit(5)]);
        let announcing = producer.build(&source, genesis_time() + 1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // three children of the announcing block: two that apply nothing, stamped a
        // minute and a second after now, and one that applies the deposit
        let child = |source: &dyn koma_producer::DepositSource, timestamp: u64| {
            let p = Producer::new();
            koma_producer::import_block(&p.spec, &p.db, &announcing).unwrap();
            p.build(source, timestamp)
        };
        let late = child(&NoneAgreed(source.clone()), now + 60);
        let early = child(&NoneAgreed(source.clone()), now + 1);
        let applying = child(&source, now + 60);
        assert_eq!(applying.body.transactions.len(), 1);

        let importer_agreeing_now = || {
            let (chain, dir) = importer(Arc::new(DepositBook::new(false)));
            chain.import(&announcing).unwrap();
            chain.adopt_final(announcing.header.hash_slow()).unwrap();
            (chain, dir)
        };
        let (chain, _dir) = importer_agreeing_now();
        let err = chain.import(&late).unwrap_err();
        assert!(
            matches!(err, ImportError::DepositOmitted { number: 2, id: 1 }),
            "{err}"
        );
        assert!(
            !err.is_invalid_block(),
            "not blamed: the producer may have seen finality late"
        );
        // within the grace: imported
        let (chain, _dir) = importer_agreeing_now();
        assert!(matches!(
            chain.import(&early).unwrap(),
            ImportOutcome::Extended(_)
        ));
        // applying it: imported
        let (chain, _dir) = importer_agreeing_now();
        assert!(matches!(
            chain.import(&applying).unwrap(),
            ImportOutcome::Extended(_)
        ));
    }
}
