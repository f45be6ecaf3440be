use crate::{Elections, next_prevrandao};
use alloy::consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy::consensus::{BlockBody, EMPTY_OMMER_ROOT_HASH, Header, Transaction, TxEnvelope};
use alloy::eips::eip4895::Withdrawals;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes};
use koma_evm::{BlockEnvInput, BlockExecutor, TxError};
use koma_primitives::bridge::{self, DEPOSIT_TX_GAS, Watermark};
use koma_primitives::compute::{MIN_TX_COMPUTE_UNITS, max_tx_compute_units};
use koma_primitives::{Block, ChainSpec, SealedHeader, SignedHeader};
use koma_storage::StateReader as _;
use koma_storage::{Database, StorageError};
use std::time::Instant;

/// Gas after which the builder reads the clock even within a run of 256 transactions:
/// at least ~20 us of execution at the fastest rates measured (docs/benchmarks.md), so
/// the clock costs nothing noticeable, and a heavy transaction is followed by a check.
const CLOCK_EVERY_GAS: u64 = 100_000;

/// What the block builder needs from the transaction pool.
pub trait PoolAccess {
    /// Executable transactions, best first; `skip_sender` drops the rest of a sender's.
    fn next_best(&mut self) -> Option<(TxEnvelope, Address)>;
    fn skip_sender(&mut self, sender: Address);
    /// `tx` failed validation at execution (e.g. its nonce was used, its sender can no
    /// longer pay): it will never be includable as it is and should leave the pool.
    fn reject(&mut self, tx: B256, sender: Address) {
        let _ = tx;
        self.skip_sender(sender);
    }
}

/// The most deposits one block applies; the rest wait for the next block.
pub const MAX_DEPOSITS_PER_BLOCK: usize = 256;

/// Where the builder takes deposits from: the node's reading of the L1 bridge, past its
/// confirmations, and how far the stakers agreed (docs/bridge.md, ADR 0017).
pub trait DepositSource {
    /// The data of deposits `first, first + 1, ...` in id order, as many as are
    /// confirmed (at most `max`); empty if `first` is not confirmed yet.
    fn confirmed_from(&self, first: u64, max: usize) -> Vec<Bytes>;
    /// The number of the last canonical block the stakers finalized: the deposit
    /// watermarks announced at or below it are agreed, and only those are applied.
    fn agreed_through(&self) -> u64;
    /// The L1 block a new block names in `parentBeaconBlockRoot` (its *L1 anchor*, the
    /// block whose staker set a later era may take), given its parent's: never an
    /// older one. By default the parent's, carried over.
    fn l1_anchor(&self, parent: B256) -> B256 {
        parent
    }
}

/// No L1: no deposits.
#[derive(Debug, Clone, Copy)]
pub struct NoDeposits;

impl DepositSource for NoDeposits {
    fn confirmed_from(&self, _: u64, _: usize) -> Vec<Bytes> {
        Vec::new()
    }
    fn agreed_through(&self) -> u64 {
        0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("execution failed: {0}")]
    Execution(String),
    #[error("sealing failed: {0}")]
    Seal(#[from] koma_primitives::seal::SealError),
    #[error("{0} is not a producer of this chain")]
    NotProducer(Address),
    /// The span's producers are not known here (yet).
    #[error("{0}")]
    Producers(String),
}

/// A committed block with timings for metrics and benchmarks.
#[derive(Debug, Clone)]
pub struct BuiltBlock {
    pub header: SealedHeader,
    pub block: Block,
    pub senders: Vec<Address>,
    pub receipts: Vec<alloy::consensus::ReceiptEnvelope>,
    /// Transactions the pool offered that could not be included.
    pub skipped: usize,
    /// Compute units (ADR 0011) the block's transactions used.
    pub compute_used: u64,
    pub execution_ms: f64,
    pub state_root_ms: f64,
    pub commit_ms: f64,
}

/// The watermark this block announces: the parent's, extended by the deposits confirmed
/// in this producer's reading after it (at most [`bridge::announcement_cap`]).
fn announce(spec: &ChainSpec, parent: &SealedHeader, deposits: &dyn DepositSource) -> Watermark {
    let Ok(previous) = Watermark::of(&parent.header) else {
        return Watermark::default(); // never for a block this node imported or built
    };
    let max = usize::try_from(bridge::announcement_cap(spec)).unwrap_or(usize::MAX);
    previous.extend(&deposits.confirmed_from(previous.id.saturating_add(1), max))
}

/// The agreed watermarks after `applied` (the L2 bridge's last applied deposit), lowest
/// first: the distinct watermarks the canonical blocks up to `agreed_through` announced.
fn agreed_watermarks(
    db: &Database,
    agreed_through: u64,
    applied: u64,
) -> Result<Vec<Watermark>, BuildError> {
    let mut found: Vec<Watermark> = Vec::new();
    let mut number = agreed_through;
    while let Some(header) = db.header_by_number(number)? {
        let Ok(mark) = Watermark::of(&header.header) else {
            break;
        };
        if mark.id <= applied {
            break;
        }
        if found.last().is_none_or(|last| last.id != mark.id) {
            found.push(mark);
        }
        let Some(previous) = number.checked_sub(1) else {
            break;
        };
        number = previous;
    }
    found.reverse();
    Ok(found)
}

/// Applies the agreed deposits after the L2 bridge's `lastStateId`, up to exactly an
/// agreed watermark (whole announcements only, at most [`MAX_DEPOSITS_PER_BLOCK`]), as
/// system transactions, with this producer's confirmed data checked against the
/// agreed hash chain first. A reverted deposit, which the bridge never does for a
/// message L1's bridge sent, fails the build, since every importer would refuse the
/// block.
fn apply_deposits<S: koma_storage::StateReader>(
    spec: &ChainSpec,
    db: &Database,
    deposits: &dyn DepositSource,
    exec: &mut BlockExecutor<S>,
) -> Result<(), BuildError> {
    let latest = db.latest();
    let last = latest.storage(bridge::L2_BRIDGE_ADDRESS, bridge::LAST_STATE_ID_SLOT)?;
    let Ok(applied) = u64::try_from(last) else {
        return Ok(());
    };
    let hash = latest.storage(bridge::L2_BRIDGE_ADDRESS, bridge::LAST_STATE_HASH_SLOT)?;
    let through = deposits.agreed_through().min(db.head().number());
    let agreed = agreed_watermarks(db, through, applied)?;
    let Some(highest) = agreed.last() else {
        return Ok(());
    };
    let first = applied.saturating_add(1);
    let wanted = usize::try_from(highest.id.saturating_sub(applied))
        .unwrap_or(usize::MAX)
        .min(MAX_DEPOSITS_PER_BLOCK);
    let data = deposits.confirmed_from(first, wanted);
    let mut at = Watermark {
        id: applied,
        hash: B256::from(hash),
    };
    let mut next = data.iter();
    for mark in agreed {
        let count = mark.id.saturating_sub(at.id);
        let step: Vec<Bytes> = next
            .by_ref()
            .take(usize::try_from(count).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        if u64::try_from(step.len()).ok() != Some(count) {
            break; // not confirmed here yet, or past this block's share
        }
        if at.extend(&step) != mark {
            tracing::error!(
                id = mark.id,
                "the deposits confirmed here are not the ones the stakers agreed on: not applying them"
            );
            break;
        }
        // room for the worst case: an announcement always fits an empty block
        if exec.gas_remaining() < DEPOSIT_TX_GAS.saturating_mul(count)
            || exec.compute_remaining()
                < max_tx_compute_units(DEPOSIT_TX_GAS)
                    .saturating_mul(count)
                    .saturating_add(MIN_TX_COMPUTE_UNITS)
        {
            break; // the rest in the next block
        }
        for (id, data) in (at.id.saturating_add(1)..).zip(step) {
            let tx = bridge::deposit_tx(spec.chain_id, id, data);
            let hash = *tx.tx_hash();
            match exec.execute_system(tx, bridge::SYSTEM_ADDRESS) {
                Ok(done) if done.success => {}
                Ok(_) => {
                    tracing::error!(id, %hash, "deposit transaction reverted");
                    return Err(BuildError::Execution(format!("deposit {id} reverted")));
                }
                Err(TxError::Database(e)) => return Err(BuildError::Execution(e.to_string())),
                Err(e) => {
                    // a whole announcement fits an empty block: never expected
                    return Err(BuildError::Execution(format!(
                        "deposit {id} not includable: {e}"
                    )));
                }
            }
        }
        at = mark;
    }
    Ok(())
}

/// Builds, seals and commits the next block on the current head. The block's
/// timestamp is `timestamp`, raised to the earliest the producer's slot allows.
pub fn build_block(
    spec: &ChainSpec,
    db: &Database,
    pool: &mut dyn PoolAccess,
    key: &PrivateKeySigner,
    timestamp: u64,
) -> Result<BuiltBlock, BuildError> {
    build_block_until(spec, db, pool, key, timestamp, None)
}

/// [`build_block`] that stops adding transactions at `deadline`, so that under load a
/// block still comes out on time (the rest wait for the next one) instead of making
/// its slot late enough for backup producers to step in.
pub fn build_block_until(
    spec: &ChainSpec,
    db: &Database,
    pool: &mut dyn PoolAccess,
    key: &PrivateKeySigner,
    timestamp: u64,
    deadline: Option<Instant>,
) -> Result<BuiltBlock, BuildError> {
    build_block_with(
        spec,
        db,
        pool,
        &NoDeposits,
        &Elections::genesis(),
        key,
        timestamp,
        deadline,
    )
}

/// [`build_block_until`] with the producers `elections` gives, that first applies the
/// deposits `deposits` has confirmed, in id order from the one after the L2 bridge's
/// `lastStateId`.
pub fn build_block_with(
    spec: &ChainSpec,
    db: &Database,
    pool: &mut dyn PoolAccess,
    deposits: &dyn DepositSource,
    elections: &Elections,
    key: &PrivateKeySigner,
    timestamp: u64,
    deadline: Option<Instant>,
) -> Result<BuiltBlock, BuildError> {
    let parent = db.head();
    let number = parent.number().saturating_add(1);
    let schedule = elections
        .producers_for(spec, db, &parent, number)
        .map_err(|e| BuildError::Producers(e.to_string()))?
        .schedule(spec);
    let distance = schedule
        .distance(number, key.address())
        .ok_or(BuildError::NotProducer(key.address()))?;
    let difficulty = schedule
        .difficulty(number, key.address())
        .ok_or(BuildError::NotProducer(key.address()))?;
    let earliest = crate::earliest_timestamp(spec, parent.header.timestamp, distance);
    let base_fee = spec.base_fee_after(&parent.header);
    let env = BlockEnvInput {
        number,
        timestamp: timestamp.max(earliest),
        beneficiary: key.address(),
        gas_limit: spec.gas_limit,
        base_fee,
        prevrandao: next_prevrandao(parent.header.mix_hash, number),
    };

    let started = Instant::now();
    let max_tx_gas = spec.max_tx_gas();
    let mut exec = BlockExecutor::new(spec, db.latest(), env);
    let mut skipped = 0usize;
    let mut executed_count = 0usize;
    // Gas executed since the clock was last read.
    let mut gas_unclocked = 0u64;
    // Set once a transaction did not fit the compute left: from then on only those
    // that fit whatever they execute are tried, so that at most one transaction's
    // execution is spent on a transaction left out.
    let mut compute_full = false;
    apply_deposits(spec, db, deposits, &mut exec)?;
    let watermark = announce(spec, &parent, deposits);
    while let Some((tx, sender)) = pool.next_best() {
        if exec.gas_remaining() < 21_000 || exec.compute_remaining() < MIN_TX_COMPUTE_UNITS {
            break;
        }
        // The clock is read every 256 transactions, or sooner once they have used
        // CLOCK_EVERY_GAS: cheap transfers keep its cost out of the loop, heavy
        // transactions cannot run long past the deadline.
        executed_count = executed_count.saturating_add(1);
        if let Some(deadline) = deadline
            && (executed_count.is_multiple_of(256) || gas_unclocked >= CLOCK_EVERY_GAS)
        {
            gas_unclocked = 0;
            if Instant::now() >= deadline {
                break;
            }
        }
        if tx.gas_limit() > max_tx_gas {
            // Above the chain's per-transaction cap: never includable (the pool
            // refuses these; this guards against any other source).
            tracing::debug!(%sender, hash = %tx.tx_hash(), gas = tx.gas_limit(), cap = max_tx_gas, "transaction above the gas cap");
            pool.reject(*tx.tx_hash(), sender);
            skipped = skipped.saturating_add(1);
            continue;
        }
        if tx.gas_limit() > exec.gas_remaining() {
            // Too big for what is left; later (smaller) ones may still fit. The
            // sender's later nonces cannot run before this one.
            pool.skip_sender(sender);
            skipped = skipped.saturating_add(1);
            continue;
        }
        if compute_full && max_tx_compute_units(tx.gas_limit()) > exec.compute_remaining() {
            pool.skip_sender(sender);
            skipped = skipped.saturating_add(1);
            continue;
        }
        let hash = *tx.tx_hash();
        let tx_gas = tx.gas_limit();
        match exec.execute(tx, sender) {
            Ok(done) => gas_unclocked = gas_unclocked.saturating_add(done.gas_used),
            Err(TxError::Database(e)) => return Err(BuildError::Execution(e.to_string())),
            Err(e @ TxError::ComputeLimitExceeded { .. }) => {
                // Executed (or stopped) without effect: its gas was spent all the same.
                gas_unclocked = gas_unclocked.saturating_add(tx_gas);
                skipped = skipped.saturating_add(1);
                if exec.compute_used() == 0 {
                    // Too heavy even for an empty block: never includable. (The chain
                    // spec's validation rules this out for any transaction within the
                    // gas cap; this guards against any other spec.)
                    tracing::debug!(%sender, %hash, error = %e, "transaction above the compute limit");
                    pool.reject(hash, sender);
                } else {
                    // It may fit the next block: it stays in the pool.
                    tracing::trace!(%sender, %hash, error = %e, "transaction left for the next block");
                    pool.skip_sender(sender);
                    compute_full = true;
                }
            }
            Err(e) => {
                tracing::debug!(%sender, %hash, error = %e, "transaction not includable");
                pool.reject(hash, sender);
                skipped = skipped.saturating_add(1);
            }
        }
    }
    let executed = exec.finish();
    let execution_ms = started.elapsed().as_secs_f64() * 1e3;

    // The state root (storage reads and trie hashing) and the transactions/receipts
    // roots are independent: compute them on two cores at once.
    let started = Instant::now();
    let (prepared, roots) = std::thread::scope(|s| {
        let roots = s.spawn(|| {
            (
                calculate_transaction_root(&executed.transactions),
                calculate_receipt_root(&executed.receipts),
            )
        });
        let prepared = db.prepare_state(&executed.changes);
        let roots = roots
            .join()
            .map_err(|_| BuildError::Execution("root computation panicked".into()));
        (prepared, roots)
    });
    let prepared = prepared?;
    let (transactions_root, receipts_root) = roots?;
    let state_root_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut header = Header {
        parent_hash: parent.hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: key.address(),
        state_root: prepared.state_root,
        transactions_root,
        receipts_root,
        logs_bloom: executed.logs_bloom,
        difficulty,
        number,
        gas_limit: env.gas_limit,
        gas_used: executed.gas_used,
        timestamp: env.timestamp,
        mix_hash: env.prevrandao,
        base_fee_per_gas: Some(base_fee),
        withdrawals_root: Some(koma_primitives::bridge::block_withdrawals_root(
            &executed.receipts,
        )),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(
            deposits.l1_anchor(parent.header.parent_beacon_block_root.unwrap_or_default()),
        ),
        requests_hash: Some(alloy::eips::eip7685::EMPTY_REQUESTS_HASH),
        ..Default::default()
    };
    watermark.write(&mut header);
    let block = Block {
        header: SignedHeader::sign(header, spec.chain_id, key)?,
        body: BlockBody {
            transactions: executed.transactions,
            ommers: Vec::new(),
            withdrawals: Some(Withdrawals::default()),
        },
    };
    let started = Instant::now();
    let sealed = db.commit_block(&block, &executed.senders, &executed.receipts, prepared)?;
    let commit_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(BuiltBlock {
        header: sealed,
        block,
        senders: executed.senders,
        receipts: executed.receipts,
        skipped,
        compute_used: executed.compute_used,
        execution_ms,
        state_root_ms,
        commit_ms,
    })
}
