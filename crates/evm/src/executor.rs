use crate::db::{BlockDb, DbError};
use crate::inspector::{Item, TransferInspector};
use crate::meter::MeteredPrecompiles;
use alloy::consensus::{
    Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction, TxEnvelope, TxType,
};
use alloy_evm::FromRecoveredTx;
use alloy_primitives::{Address, B256, Bloom, Log, U256};
use koma_primitives::ChainSpec;
use koma_primitives::compute::{MIN_TX_COMPUTE_UNITS, tx_compute_units};
use koma_primitives::transfer_log::{BURN_ADDRESS, Transfer};
use koma_storage::{StateChanges, StateReader};
use revm::Context;
use revm::context::result::{EVMError, ExecutionResult, ResultAndState};
use revm::context::{BlockEnv, TxEnv};
use revm::context_interface::ContextTr;
use revm::database_interface::DatabaseCommit;
use revm::handler::instructions::EthInstructions;
use revm::handler::{EthFrame, MainBuilder, MainContext, MainnetContext};
use revm::inspector::InspectEvm;
use revm::interpreter::interpreter::EthInterpreter;

/// The environment a block executes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEnvInput {
    pub number: u64,
    pub timestamp: u64,
    pub beneficiary: Address,
    pub gas_limit: u64,
    pub base_fee: u64,
    pub prevrandao: B256,
}

/// Why a transaction could not be included. The block is unaffected.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error("transaction gas limit {gas_limit} exceeds the block's remaining gas {remaining}")]
    BlockGasExhausted { gas_limit: u64, remaining: u64 },
    /// The transaction's gas limit is above the chain's per-transaction cap
    /// ([`ChainSpec::max_tx_gas`], EIP-7825); worded as geth words it.
    #[error("transaction gas limit too high (cap: {cap}, tx: {gas_limit})")]
    GasLimitTooHigh { cap: u64, gas_limit: u64 },
    /// The transaction's compute units (ADR 0011) do not fit in what the block has
    /// left; it may fit a later block. `units` is what it used, or at least needed
    /// when it was stopped before a precompile call.
    #[error("transaction needs {units} compute units, the block has {remaining} left")]
    ComputeLimitExceeded { units: u64, remaining: u64 },
    #[error("invalid transaction: {0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Outcome of one included transaction.
#[derive(Debug, Clone)]
pub struct ExecutedTx {
    pub gas_used: u64,
    /// Compute units (ADR 0011) the transaction used.
    pub compute_units: u64,
    /// Gas used by precompile calls.
    pub precompile_gas: u64,
    pub success: bool,
    /// Return data (or revert data).
    pub output: alloy_primitives::Bytes,
    pub contract_address: Option<Address>,
}

/// A fully executed block, ready to be sealed (producer) or compared (import).
#[derive(Debug)]
pub struct ExecutedBlock {
    pub transactions: Vec<TxEnvelope>,
    pub senders: Vec<Address>,
    pub receipts: Vec<ReceiptEnvelope>,
    pub gas_used: u64,
    /// Compute units (ADR 0011) of all transactions.
    pub compute_used: u64,
    pub logs_bloom: Bloom,
    pub changes: StateChanges,
}

type Evm<S> = revm::context::Evm<
    MainnetContext<BlockDb<S>>,
    TransferInspector,
    EthInstructions<EthInterpreter, MainnetContext<BlockDb<S>>>,
    MeteredPrecompiles,
    EthFrame<EthInterpreter>,
>;

/// Executes the transactions of one block in order.
pub struct BlockExecutor<S: StateReader> {
    evm: Evm<S>,
    env: BlockEnvInput,
    max_tx_gas: u64,
    cumulative_gas: u64,
    compute_limit: u64,
    compute_used: u64,
    logs_bloom: Bloom,
    transactions: Vec<TxEnvelope>,
    senders: Vec<Address>,
    receipts: Vec<ReceiptEnvelope>,
}

impl<S: StateReader> std::fmt::Debug for BlockExecutor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockExecutor")
            .field("env", &self.env)
            .field("txs", &self.transactions.len())
            .finish()
    }
}

impl<S: StateReader> BlockExecutor<S> {
    pub fn new(spec: &ChainSpec, state: S, env: BlockEnvInput) -> Self {
        let spec_id = crate::spec_id(spec);
        let chain_id = spec.chain_id;
        let max_tx_gas = spec.max_tx_gas();
        let block = BlockEnv {
            number: U256::from(env.number),
            beneficiary: env.beneficiary,
            timestamp: U256::from(env.timestamp),
            gas_limit: env.gas_limit,
            basefee: env.base_fee,
            difficulty: U256::ZERO,
            prevrandao: Some(env.prevrandao),
            ..Default::default()
        };
        let evm = Context::mainnet()
            .with_db(BlockDb::new(state))
            .modify_cfg_chained(|c| {
                c.chain_id = chain_id;
                c.set_spec_and_mainnet_gas_params(spec_id);
                // EIP-7825 with the chain's cap, whatever the hardfork (revm applies
                // 2^24 from Osaka only when unset).
                c.tx_gas_limit_cap = Some(max_tx_gas);
            })
            .with_block(block)
            .build_mainnet_with_inspector(TransferInspector::default());
        // Ethereum's precompiles behind the compute meter's counter.
        let evm = revm::context::Evm {
            ctx: evm.ctx,
            inspector: evm.inspector,
            instruction: evm.instruction,
            precompiles: MeteredPrecompiles::new(evm.precompiles),
            frame_stack: evm.frame_stack,
        };
        Self {
            evm,
            env,
            max_tx_gas,
            cumulative_gas: 0,
            compute_limit: spec.compute_limit(),
            compute_used: 0,
            logs_bloom: Bloom::ZERO,
            transactions: Vec::new(),
            senders: Vec::new(),
            receipts: Vec::new(),
        }
    }

    /// Gas still available in the block.
    pub fn gas_remaining(&self) -> u64 {
        self.env.gas_limit.saturating_sub(self.cumulative_gas)
    }

    /// Compute units (ADR 0011) still available in the block.
    pub fn compute_remaining(&self) -> u64 {
        self.compute_limit.saturating_sub(self.compute_used)
    }

    /// Compute units used by the block so far.
    pub fn compute_used(&self) -> u64 {
        self.compute_used
    }

    /// Number of transactions executed so far.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// The chain's per-transaction gas cap this executor enforces.
    pub fn max_tx_gas(&self) -> u64 {
        self.max_tx_gas
    }

    /// Executes `tx` from `sender` and, if it is includable, adds it to the block.
    /// A transaction that reverts is included (and pays); one that is invalid
    /// (nonce, balance, fee, gas above the block's remaining gas or the chain's
    /// per-transaction cap, compute units above the block's remaining compute) is
    /// not, and leaves the state untouched.
    pub fn execute(&mut self, tx: TxEnvelope, sender: Address) -> Result<ExecutedTx, TxError> {
        if tx.gas_limit() > self.max_tx_gas {
            return Err(TxError::GasLimitTooHigh {
                cap: self.max_tx_gas,
                gas_limit: tx.gas_limit(),
            });
        }
        let remaining = self.gas_remaining();
        if tx.gas_limit() > remaining {
            return Err(TxError::BlockGasExhausted {
                gas_limit: tx.gas_limit(),
                remaining,
            });
        }
        let base_fee = self.env.base_fee;
        let price = tx.effective_gas_price(Some(base_fee));
        let prepaid = U256::from(tx.gas_limit()).saturating_mul(U256::from(price));
        let compute_remaining = self.compute_remaining();
        if compute_remaining < MIN_TX_COMPUTE_UNITS {
            return Err(TxError::ComputeLimitExceeded {
                units: MIN_TX_COMPUTE_UNITS,
                remaining: compute_remaining,
            });
        }
        let tx_env = TxEnv::from_recovered_tx(&tx, sender);
        self.evm.inspector.begin(sender, prepaid);
        // What precompiles may use: the block's remaining units less the base every
        // transaction pays.
        self.evm
            .precompiles
            .begin(Some(compute_remaining.saturating_sub(MIN_TX_COMPUTE_UNITS)));
        let outcome = self.evm.inspect_tx(tx_env);
        let precompile_gas = self.evm.precompiles.gas;
        let ResultAndState { result, state } = match outcome {
            Ok(out) => out,
            Err(_) if self.evm.precompiles.stopped => {
                self.evm.inspector.take_items();
                return Err(TxError::ComputeLimitExceeded {
                    // Stopped before a precompile call that would not fit: more
                    // than what is left, how much more is unknown.
                    units: compute_remaining.saturating_add(1),
                    remaining: compute_remaining,
                });
            }
            Err(EVMError::Database(e)) => return Err(TxError::Database(e)),
            Err(e) => return Err(TxError::Invalid(e.to_string())),
        };
        let items = self.evm.inspector.take_items();
        let gas = result.gas();
        // Gas spent before refunds (refunds give no time back), at least the floor.
        let gas_spent = gas.total_gas_spent().max(gas.floor_gas());
        let compute_units = tx_compute_units(gas_spent, precompile_gas);
        if compute_units > compute_remaining {
            // Not committed: the state is dropped and the block is unaffected.
            return Err(TxError::ComputeLimitExceeded {
                units: compute_units,
                remaining: compute_remaining,
            });
        }
        self.compute_used = self.compute_used.saturating_add(compute_units);
        let gas_used = result.tx_gas_used();
        let coinbase = self.env.beneficiary;
        let balance_of = |a: &Address| state.get(a).map(|acc| acc.info.balance).unwrap_or_default();
        let sender_final = balance_of(&sender);
        let coinbase_final = balance_of(&coinbase);
        self.evm.ctx.db_mut().commit(state);

        let success = result.is_success();
        let contract_address = result.created_address();
        let output = result.output().cloned().unwrap_or_default();
        let evm_logs = match result {
            ExecutionResult::Success { logs, .. } => logs,
            _ => Vec::new(),
        };
        let mut logs = interleave(items, evm_logs);
        logs.extend(fee_logs(
            sender,
            coinbase,
            sender_final,
            coinbase_final,
            gas_used,
            price,
            base_fee,
        ));

        self.cumulative_gas = self.cumulative_gas.saturating_add(gas_used);
        let receipt = Receipt {
            status: success.into(),
            cumulative_gas_used: self.cumulative_gas,
            logs,
        };
        let with_bloom = ReceiptWithBloom::from(receipt);
        self.logs_bloom.accrue_bloom(&with_bloom.logs_bloom);
        let envelope = match tx.tx_type() {
            TxType::Legacy => ReceiptEnvelope::Legacy(with_bloom),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(with_bloom),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(with_bloom),
            TxType::Eip4844 => ReceiptEnvelope::Eip4844(with_bloom),
            TxType::Eip7702 => ReceiptEnvelope::Eip7702(with_bloom),
        };
        self.receipts.push(envelope);
        self.transactions.push(tx);
        self.senders.push(sender);
        Ok(ExecutedTx {
            gas_used,
            compute_units,
            precompile_gas,
            success,
            output,
            contract_address,
        })
    }

    /// Executes a system transaction (a deposit, `koma_primitives::bridge::deposit_tx`)
    /// from `sender`: as [`Self::execute`], but at a base fee of zero, so its gas price
    /// of zero is valid and it pays nothing (the `BASEFEE` opcode reads 0 inside it).
    /// The caller decides that `tx` is a system transaction.
    pub fn execute_system(
        &mut self,
        tx: TxEnvelope,
        sender: Address,
    ) -> Result<ExecutedTx, TxError> {
        let base_fee = self.env.base_fee;
        self.env.base_fee = 0;
        self.evm.ctx.block.basefee = 0;
        let outcome = self.execute(tx, sender);
        self.env.base_fee = base_fee;
        self.evm.ctx.block.basefee = base_fee;
        outcome
    }

    /// Balance of `address` in the block's current state.
    pub fn balance(&mut self, address: Address) -> Result<U256, DbError> {
        self.evm.ctx.db_mut().balance(address)
    }

    /// Finishes the block.
    pub fn finish(self) -> ExecutedBlock {
        let db = self.evm.ctx.journaled_state.database;
        ExecutedBlock {
            transactions: self.transactions,
            senders: self.senders,
            receipts: self.receipts,
            gas_used: self.cumulative_gas,
            compute_used: self.compute_used,
            logs_bloom: self.logs_bloom,
            changes: db.into_changes(),
        }
    }
}

/// Merges the recorded transfers with the surviving contract logs, in execution order.
fn interleave(items: Vec<Item>, evm_logs: Vec<Log>) -> Vec<Log> {
    let mut out = Vec::with_capacity(items.len().max(evm_logs.len()));
    let mut contract_logs = evm_logs.into_iter();
    for item in items {
        match item {
            Item::ContractLog => {
                if let Some(l) = contract_logs.next() {
                    out.push(l);
                }
            }
            Item::Transfer(t) => out.push(t.value_log()),
        }
    }
    // Defensive: logs the inspector did not see (none expected) keep their order.
    out.extend(contract_logs);
    out
}

/// The tip to the producer and the burned base fee, as `LogFeeTransfer`s whose
/// balances chain: sender before fees -> after tip -> after burn (= final).
fn fee_logs(
    sender: Address,
    coinbase: Address,
    sender_final: U256,
    coinbase_final: U256,
    gas_used: u64,
    price: u128,
    base_fee: u64,
) -> Vec<Log> {
    let gas = U256::from(gas_used);
    let tip = gas.saturating_mul(U256::from(price.saturating_sub(u128::from(base_fee))));
    let burn = gas.saturating_mul(U256::from(base_fee));
    let mut logs = Vec::with_capacity(2);
    if !tip.is_zero() {
        let sender_before = sender_final.saturating_add(burn).saturating_add(tip);
        logs.push(
            Transfer {
                from: sender,
                to: coinbase,
                amount: tip,
                from_before: sender_before,
                to_before: coinbase_final.saturating_sub(tip),
                from_after: sender_before.saturating_sub(tip),
                to_after: coinbase_final,
            }
            .fee_log(),
        );
    }
    if !burn.is_zero() {
        logs.push(
            Transfer {
                from: sender,
                to: BURN_ADDRESS,
                amount: burn,
                from_before: sender_final.saturating_add(burn),
                to_before: U256::ZERO,
                from_after: sender_final,
                to_after: U256::ZERO,
            }
            .fee_log(),
        );
    }
    logs
}
