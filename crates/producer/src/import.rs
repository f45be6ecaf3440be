use crate::{Elections, ProducerSchedule, next_prevrandao};
use alloy::consensus::Transaction;
use alloy::consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy_primitives::{Address, B256, Bloom, Bytes};
use koma_evm::{BlockEnvInput, BlockExecutor, ExecutedBlock, TxError};
use koma_primitives::bridge::{self, Watermark};
use koma_primitives::seal::MAX_EXTRA_DATA;
use koma_primitives::{Block, ChainSpec, SealedHeader};
use koma_storage::{Database, StateReader, StorageError};

/// Why a block is rejected.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("block {number}: {what} mismatch: header {header}, computed {computed}")]
    Mismatch {
        number: u64,
        what: &'static str,
        header: String,
        computed: String,
    },
    #[error("block {number}: transaction {index} is not includable: {reason}")]
    BadTransaction {
        number: u64,
        index: usize,
        reason: String,
    },
    /// A transaction's gas limit is above the chain's per-transaction cap
    /// (`ChainSpec::max_tx_gas`, EIP-7825): no valid block contains one.
    #[error(
        "block {number}: transaction {index} has gas limit {gas_limit}, above the per-transaction cap {cap}"
    )]
    TxGasLimitTooHigh {
        number: u64,
        index: usize,
        gas_limit: u64,
        cap: u64,
    },
    /// The block's transactions use more compute units than the chain's compute
    /// limit (ADR 0011): counted while re-executing, `index` is the first that does
    /// not fit.
    #[error(
        "block {number}: transaction {index} takes the block over its compute limit {limit} ({units} units with {remaining} left)"
    )]
    ComputeLimitExceeded {
        number: u64,
        index: usize,
        units: u64,
        remaining: u64,
        limit: u64,
    },
    #[error("block {number}: bad seal: {reason}")]
    BadSeal { number: u64, reason: String },
    #[error("block {number}: transaction {index} has an invalid signature")]
    BadSignature { number: u64, index: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("block {number}: parent {parent} is unknown")]
    UnknownParent { number: u64, parent: B256 },
    #[error("reorg of {depth} blocks exceeds the maximum depth {max}")]
    ReorgTooDeep { depth: u64, max: u64 },
    #[error("block {number}: {reason}")]
    Invalid { number: u64, reason: String },
    /// The importer itself failed (a task panicked or was cancelled).
    #[error("import failed: {0}")]
    Internal(String),
    /// The block announces deposits up to `id`, which this node has not read on L1 yet:
    /// held back, not refused (its reading of L1 may lag the producer's).
    #[error("block {number}: deposit {id} is not on L1 as this node reads it (yet)")]
    DepositNotSeen { number: u64, id: u64 },
    /// The block applies deposits up to `id`, announced by a block this node does not
    /// know to be final yet: not imported until it is, not blamed (the producer may
    /// have seen finality first).
    #[error("block {number}: applies deposits up to {id}, not agreed by the stakers here yet")]
    DepositNotAgreed { number: u64, id: u64 },
    /// The block applies no deposit although deposit `id` had been agreed, as this
    /// node saw finality, a while before the block's time: not imported, not blamed
    /// (the producer may have seen finality late).
    #[error("block {number}: applies no deposit, but deposit {id} was agreed well before it")]
    DepositOmitted { number: u64, id: u64 },
    /// The producers of the block's span were elected at L1 block `anchor`, whose
    /// candidate ranking this node has not read yet: held back, not refused.
    #[error(
        "block {number}: its span's producers (elected at L1 block {anchor}) are not read here yet"
    )]
    ProducersNotRead { number: u64, anchor: B256 },
}

impl ImportError {
    /// Whether the block itself breaks the chain rules (so whoever sent it is to
    /// blame), as opposed to a gap, a too-deep reorg or a local failure.
    pub fn is_invalid_block(&self) -> bool {
        !matches!(
            self,
            Self::Storage(_)
                | Self::UnknownParent { .. }
                | Self::ReorgTooDeep { .. }
                | Self::Internal(_)
                | Self::DepositNotSeen { .. }
                | Self::DepositNotAgreed { .. }
                | Self::DepositOmitted { .. }
                | Self::ProducersNotRead { .. }
        )
    }
}

fn mismatch<T: std::fmt::Display>(
    number: u64,
    what: &'static str,
    header: T,
    computed: T,
) -> ImportError {
    ImportError::Mismatch {
        number,
        what,
        header: header.to_string(),
        computed: computed.to_string(),
    }
}

/// Checks the rules that do not need execution: parent link, number, seal by a
/// producer with the right difficulty, timestamp, gas limit, base fee, transactions
/// root, and every transaction's gas limit against the per-transaction cap.
pub fn verify_header(
    spec: &ChainSpec,
    schedule: &ProducerSchedule,
    parent: &SealedHeader,
    block: &Block,
) -> Result<Address, ImportError> {
    let h = &block.header;
    let number = h.number;
    let invalid = |reason: String| ImportError::Invalid { number, reason };
    if h.parent_hash != parent.hash || Some(number) != parent.number().checked_add(1) {
        return Err(invalid(format!(
            "does not extend {} ({})",
            parent.hash,
            parent.number()
        )));
    }
    if h.extra_data.len() > MAX_EXTRA_DATA {
        return Err(invalid(format!(
            "extra data is {} bytes, at most {MAX_EXTRA_DATA} are allowed",
            h.extra_data.len()
        )));
    }
    let watermark = Watermark::of(h).map_err(invalid)?;
    Watermark::of(&parent.header)
        .and_then(|previous| previous.check_successor(&watermark, bridge::announcement_cap(spec)))
        .map_err(invalid)?;
    let producer = h
        .recover_producer(spec.chain_id, h.hash_slow())
        .map_err(|e| ImportError::BadSeal {
            number,
            reason: e.to_string(),
        })?;
    let difficulty = schedule
        .difficulty(number, producer)
        .ok_or_else(|| ImportError::BadSeal {
            number,
            reason: format!("{producer} is not a producer"),
        })?;
    if h.difficulty != difficulty {
        return Err(mismatch(number, "difficulty", h.difficulty, difficulty));
    }
    if h.beneficiary != producer {
        return Err(invalid(format!(
            "coinbase {} is not the sealer {producer}",
            h.beneficiary
        )));
    }
    let distance = schedule.distance(number, producer).unwrap_or_default();
    let earliest = crate::earliest_timestamp(spec, parent.header.timestamp, distance);
    if h.timestamp < earliest {
        return Err(invalid(format!(
            "timestamp {} is too early: a producer at distance {distance} may seal from {earliest}",
            h.timestamp
        )));
    }
    if h.gas_limit != spec.gas_limit || h.gas_used > h.gas_limit {
        return Err(invalid(format!(
            "gas limit {} / used {} breaks the chain rules",
            h.gas_limit, h.gas_used
        )));
    }
    let expected_base_fee = spec.base_fee_after(&parent.header);
    if h.base_fee_per_gas != Some(expected_base_fee) {
        return Err(mismatch(
            number,
            "base fee",
            h.base_fee_per_gas.unwrap_or_default(),
            expected_base_fee,
        ));
    }
    let randao = next_prevrandao(parent.header.mix_hash, number);
    if h.mix_hash != randao {
        return Err(mismatch(number, "mix hash", h.mix_hash, randao));
    }
    let tx_root = calculate_transaction_root(&block.body.transactions);
    if h.transactions_root != tx_root {
        return Err(mismatch(
            number,
            "transactions root",
            h.transactions_root,
            tx_root,
        ));
    }
    let cap = spec.max_tx_gas();
    for (index, tx) in block.body.transactions.iter().enumerate() {
        let gas_limit = Transaction::gas_limit(tx);
        if gas_limit > cap {
            return Err(ImportError::TxGasLimitTooHigh {
                number,
                index,
                gas_limit,
                cap,
            });
        }
    }
    Ok(producer)
}

/// Re-executes `block` on `state` (the parent's state) and checks every
/// execution-derived header field and the compute limit. Returns the executed block for committing; the
/// caller checks the state root after preparing the state write.
pub fn execute_block<S: StateReader>(
    spec: &ChainSpec,
    state: S,
    block: &Block,
    senders: &[Address],
) -> Result<ExecutedBlock, ImportError> {
    let h = &block.header;
    let number = h.number;
    if senders.len() != block.body.transactions.len() {
        return Err(ImportError::Invalid {
            number,
            reason: "senders do not match transactions".into(),
        });
    }
    let env = BlockEnvInput {
        number,
        timestamp: h.timestamp,
        beneficiary: h.beneficiary,
        gas_limit: h.gas_limit,
        base_fee: h.base_fee_per_gas.unwrap_or_default(),
        prevrandao: h.mix_hash,
    };
    let mut exec = BlockExecutor::new(spec, state, env);
    // Deposits come first, each exactly the system transaction built for its id and
    // data (the L2 bridge applies them only in id order, once each).
    let mut in_deposits = true;
    for (index, (tx, sender)) in block.body.transactions.iter().zip(senders).enumerate() {
        let system = *sender == bridge::SYSTEM_ADDRESS;
        if system {
            let reason = if !in_deposits {
                Some("a deposit transaction after a user transaction")
            } else if bridge::deposit_of_tx(spec.chain_id, tx).is_none() {
                Some("a system transaction that is not a deposit transaction")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(ImportError::BadTransaction {
                    number,
                    index,
                    reason: reason.into(),
                });
            }
        }
        in_deposits &= system;
        let outcome = if system {
            exec.execute_system(tx.clone(), *sender)
        } else {
            exec.execute(tx.clone(), *sender)
        };
        let executed = outcome.map_err(|e| match e {
            TxError::ComputeLimitExceeded { units, remaining } => {
                ImportError::ComputeLimitExceeded {
                    number,
                    index,
                    units,
                    remaining,
                    limit: spec.compute_limit(),
                }
            }
            e => ImportError::BadTransaction {
                number,
                index,
                reason: e.to_string(),
            },
        })?;
        if system && !executed.success {
            // never the case for a deposit in order: the bridge credits or keeps the
            // amount claimable, it does not revert
            return Err(ImportError::BadTransaction {
                number,
                index,
                reason: "a deposit transaction that reverted (out of order or applied twice)"
                    .into(),
            });
        }
    }
    let executed = exec.finish();
    if executed.gas_used != h.gas_used {
        return Err(mismatch(number, "gas used", h.gas_used, executed.gas_used));
    }
    let receipts_root = calculate_receipt_root(&executed.receipts);
    if receipts_root != h.receipts_root {
        return Err(mismatch(
            number,
            "receipts root",
            h.receipts_root,
            receipts_root,
        ));
    }
    // the bridge's withdrawals, which exits on L1 prove against this root
    let withdrawals_root = koma_primitives::bridge::block_withdrawals_root(&executed.receipts);
    if h.withdrawals_root != Some(withdrawals_root) {
        return Err(mismatch(
            number,
            "withdrawals root",
            h.withdrawals_root.unwrap_or_default(),
            withdrawals_root,
        ));
    }
    if executed.logs_bloom != h.logs_bloom {
        return Err(mismatch::<Bloom>(
            number,
            "logs bloom",
            h.logs_bloom,
            executed.logs_bloom,
        ));
    }
    Ok(executed)
}

/// Compares a computed state root with the header's.
pub fn check_state_root(number: u64, header: B256, computed: B256) -> Result<(), ImportError> {
    if header == computed {
        Ok(())
    } else {
        Err(mismatch(number, "state root", header, computed))
    }
}

/// Imports `block`, which must extend the current head: checks the header rules and
/// the seal, recovers every sender, re-executes the transactions, checks gas used,
/// receipts root, bloom and state root, then commits atomically. On any error
/// nothing is written and the head is unchanged.
pub fn import_block(
    spec: &ChainSpec,
    db: &Database,
    block: &Block,
) -> Result<SealedHeader, ImportError> {
    import_block_with(spec, db, block, &NoKnownSenders, &Elections::genesis())
}

/// Senders some other component already recovered, by transaction hash (the pool
/// has them for every transaction it holds). A hash commits to the signature, so a
/// sender found this way is the one recovery would give.
pub trait KnownSenders {
    fn sender(&self, tx: &B256) -> Option<Address>;
}

/// No senders known: recover them all.
#[derive(Debug, Clone, Copy)]
pub struct NoKnownSenders;

impl KnownSenders for NoKnownSenders {
    fn sender(&self, _: &B256) -> Option<Address> {
        None
    }
}

/// [`import_block`] that takes the senders it can from `known`.
pub fn import_block_with(
    spec: &ChainSpec,
    db: &Database,
    block: &Block,
    known: &dyn KnownSenders,
    elections: &Elections,
) -> Result<SealedHeader, ImportError> {
    let number = block.header.number;
    let parent = db.head();
    let schedule = elections
        .producers_for(spec, db, &parent, number)?
        .schedule(spec);
    verify_header(spec, &schedule, &parent, block)?;
    check_applied_deposits(spec, db, &parent, block)?;
    let senders = recover_senders(block, known)?;
    let executed = execute_block(spec, db.latest(), block, &senders)?;
    let prepared = db.prepare_state(&executed.changes)?;
    check_state_root(number, block.header.state_root, prepared.state_root)?;
    Ok(db.commit_block(block, &executed.senders, &executed.receipts, prepared)?)
}

/// The deposits `block` applies, in order: its leading system transactions that are
/// deposit transactions (`(id, data)`).
pub fn applied_deposits(spec: &ChainSpec, block: &Block) -> Vec<(u64, Bytes)> {
    block
        .body
        .transactions
        .iter()
        .take_while(|tx| bridge::is_system_tx(tx))
        .map_while(|tx| bridge::deposit_of_tx(spec.chain_id, tx))
        .collect()
}

/// Whether the deposits a block applies ([`applied_deposits`]) have consecutive ids;
/// the error names the first pair that does not. Needs no state.
pub fn check_deposit_order(deposits: &[(u64, Bytes)]) -> Result<(), String> {
    for (before, after) in deposits.iter().zip(deposits.iter().skip(1)) {
        if Some(after.0) != before.0.checked_add(1) {
            return Err(format!(
                "applies deposit {} after deposit {}",
                after.0, before.0
            ));
        }
    }
    Ok(())
}

/// The deposit rule every importer checks without an L1 (ADR 0017): a block applies
/// deposits from the one after the L2 bridge's `lastStateId` (the head's state) up to
/// exactly a watermark an ancestor announced, and their hash chain is that watermark's.
/// Whether that ancestor is final yet is the node's check (it knows finality).
pub fn check_applied_deposits(
    spec: &ChainSpec,
    db: &Database,
    parent: &SealedHeader,
    block: &Block,
) -> Result<(), ImportError> {
    let number = block.header.number;
    let invalid = |reason: String| ImportError::Invalid { number, reason };
    let deposits = applied_deposits(spec, block);
    let Some((last, _)) = deposits.last() else {
        return Ok(());
    };
    let state = db.latest();
    let applied = state.storage(bridge::L2_BRIDGE_ADDRESS, bridge::LAST_STATE_ID_SLOT)?;
    let hash = state.storage(bridge::L2_BRIDGE_ADDRESS, bridge::LAST_STATE_HASH_SLOT)?;
    let from = Watermark {
        id: u64::try_from(applied).map_err(|_| invalid("lastStateId out of range".into()))?,
        hash: B256::from(hash),
    };
    if let Some((first, _)) = deposits.first()
        && Some(*first) != from.id.checked_add(1)
    {
        return Err(invalid(format!(
            "applies deposit {first} after deposit {}",
            from.id
        )));
    }
    check_deposit_order(&deposits).map_err(invalid)?;
    let at = from.extend(deposits.iter().map(|(_, data)| data));
    // The ancestors' watermarks only grow: the first one at or below `last`, walking
    // back, is the one announcing it, if any does.
    let mut cursor = parent.header.clone();
    loop {
        let mark = Watermark::of(&cursor).map_err(invalid)?;
        if mark.id < *last {
            return Err(invalid(format!(
                "applies deposits up to {last}, which no ancestor announced"
            )));
        }
        if mark.id == *last {
            if mark.hash != at.hash {
                return Err(invalid(format!(
                    "the deposits up to {last} are not the ones announced (hash chain {} instead of {})",
                    at.hash, mark.hash
                )));
            }
            return Ok(());
        }
        cursor = db.header(cursor.parent_hash)?.ok_or_else(|| {
            ImportError::Internal(format!(
                "ancestor {} of block {number} missing",
                cursor.parent_hash
            ))
        })?;
    }
}

/// Below this many unknown senders, recovery stays on the calling thread.
const PARALLEL_RECOVERY_MIN: usize = 16;

/// The sender of every transaction of `block`: from `known` where possible, the rest
/// recovered from the signatures (on two threads for large blocks).
pub(crate) fn recover_senders(
    block: &Block,
    known: &dyn KnownSenders,
) -> Result<Vec<Address>, ImportError> {
    let number = block.header.number;
    let txs = &block.body.transactions;
    // a system transaction's all-zero signature names no key: its sender is the system
    let mut senders: Vec<Option<Address>> = txs
        .iter()
        .map(|tx| {
            if bridge::is_system_tx(tx) {
                Some(bridge::SYSTEM_ADDRESS)
            } else {
                known.sender(tx.tx_hash())
            }
        })
        .collect();
    let missing: Vec<usize> = senders
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| i)
        .collect();
    let recover = |indices: &[usize]| -> Result<Vec<(usize, Address)>, ImportError> {
        indices
            .iter()
            .map(|&index| {
                let tx = txs
                    .get(index)
                    .ok_or_else(|| ImportError::Internal(format!("no transaction {index}")))?;
                koma_evm::recover_sender(tx)
                    .map(|a| (index, a))
                    .map_err(|_| ImportError::BadSignature { number, index })
            })
            .collect()
    };
    let recovered = if missing.len() >= PARALLEL_RECOVERY_MIN {
        let (a, b) = missing.split_at(missing.len() / 2);
        std::thread::scope(|s| {
            let other = s.spawn(|| recover(b));
            let mine = recover(a);
            let other = other
                .join()
                .map_err(|_| ImportError::Internal("sender recovery panicked".into()))?;
            let mut all = mine?;
            all.extend(other?);
            Ok::<_, ImportError>(all)
        })?
    } else {
        recover(&missing)?
    };
    for (index, sender) in recovered {
        if let Some(slot) = senders.get_mut(index) {
            *slot = Some(sender);
        }
    }
    senders
        .into_iter()
        .enumerate()
        .map(|(index, s)| s.ok_or(ImportError::BadSignature { number, index }))
        .collect()
}
