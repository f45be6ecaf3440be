//! `eth_call` and `eth_estimateGas`: execution against a state without committing.

use crate::db::{DbError, StateDb};
use crate::executor::BlockEnvInput;
use alloy::rpc::types::TransactionRequest;
use alloy::rpc::types::state::StateOverride;
use alloy_primitives::{Bytes, TxKind, U256};
use koma_primitives::ChainSpec;
use koma_storage::StateReader;
use revm::bytecode::Bytecode;
use revm::context::result::{EVMError, ExecutionResult};
use revm::context::{BlockEnv, TxEnv};
use revm::database::CacheDB;
use revm::database_interface::WrapDatabaseRef;
use revm::handler::{ExecuteEvm, MainBuilder, MainContext};
use revm::state::AccountInfo;
use revm::{Context, DatabaseRef};

/// Result of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    Success { output: Bytes, gas_used: u64 },
    Revert { output: Bytes, gas_used: u64 },
    Halt { reason: String, gas_used: u64 },
}

/// Why a call could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The transaction is invalid (e.g. insufficient funds, bad nonce, gas too low).
    #[error("{0}")]
    Invalid(String),
    #[error("state override: {0}")]
    Override(String),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Gas used by a plain value transfer; the lower bound of every estimate.
const MIN_TX_GAS: u64 = 21_000;

/// Runs calls for one block environment.
#[derive(Debug)]
pub struct Caller<'a> {
    pub spec: &'a ChainSpec,
    pub env: BlockEnvInput,
    /// Upper bound for `gas` when the request does not give one.
    pub gas_cap: u64,
}

impl Caller<'_> {
    fn tx_env(&self, req: &TransactionRequest, gas: u64, nonce: u64) -> TxEnv {
        let (tx_type, gas_price, tip) = if let Some(max_fee) = req.max_fee_per_gas {
            (
                2,
                max_fee,
                Some(req.max_priority_fee_per_gas.unwrap_or(0).min(max_fee)),
            )
        } else if let Some(p) = req.gas_price {
            (if req.access_list.is_some() { 1 } else { 0 }, p, None)
        } else {
            (if req.access_list.is_some() { 1 } else { 0 }, 0, None)
        };
        let mut tx = TxEnv {
            tx_type,
            caller: req.from.unwrap_or_default(),
            gas_limit: gas,
            gas_price,
            kind: req.to.unwrap_or(TxKind::Create),
            value: req.value.unwrap_or_default(),
            data: req.input.input().cloned().unwrap_or_default(),
            nonce,
            chain_id: Some(self.spec.chain_id),
            access_list: req.access_list.clone().unwrap_or_default(),
            gas_priority_fee: tip,
            ..Default::default()
        };
        if let Some(auths) = &req.authorization_list {
            tx.tx_type = 4;
            tx.authorization_list = auths
                .iter()
                .cloned()
                .map(revm::context::either::Either::Left)
                .collect();
        }
        tx
    }

    fn run<S: StateReader>(
        &self,
        db: &CacheDB<StateDb<S>>,
        req: &TransactionRequest,
        gas: u64,
    ) -> Result<CallResult, CallError> {
        let from = req.from.unwrap_or_default();
        let nonce = match req.nonce {
            Some(n) => n,
            None => db.basic_ref(from)?.map(|a| a.nonce).unwrap_or_default(),
        };
        let spec_id = crate::spec_id(self.spec);
        let chain_id = self.spec.chain_id;
        let fee_given = req.gas_price.is_some() || req.max_fee_per_gas.is_some();
        let block = BlockEnv {
            number: U256::from(self.env.number),
            beneficiary: self.env.beneficiary,
            timestamp: U256::from(self.env.timestamp),
            gas_limit: self.env.gas_limit.max(gas),
            basefee: self.env.base_fee,
            difficulty: U256::ZERO,
            prevrandao: Some(self.env.prevrandao),
            ..Default::default()
        };
        let mut evm = Context::mainnet()
            .with_db(WrapDatabaseRef(db))
            .modify_cfg_chained(|c| {
                c.chain_id = chain_id;
                c.set_spec_and_mainnet_gas_params(spec_id);
                c.disable_nonce_check = true;
                // Like geth: a call without a fee runs at price zero.
                c.disable_base_fee = !fee_given;
                c.disable_block_gas_limit = true;
                c.tx_gas_limit_cap = Some(u64::MAX);
            })
            .with_block(block)
            .build_mainnet();
        let out = match evm.transact(self.tx_env(req, gas, nonce)) {
            Ok(out) => out,
            Err(EVMError::Database(e)) => return Err(CallError::Database(e)),
            Err(e) => return Err(CallError::Invalid(invalid_message(&e.to_string()))),
        };
        let gas_used = out.result.tx_gas_used();
        Ok(match out.result {
            ExecutionResult::Success { output, .. } => CallResult::Success {
                output: output.into_data(),
                gas_used,
            },
            ExecutionResult::Revert { output, .. } => CallResult::Revert { output, gas_used },
            ExecutionResult::Halt { reason, .. } => CallResult::Halt {
                reason: format!("{reason:?}"),
                gas_used,
            },
        })
    }

    fn prepare<S: StateReader>(
        state: S,
        overrides: Option<&StateOverride>,
    ) -> Result<CacheDB<StateDb<S>>, CallError> {
        let mut db = CacheDB::new(StateDb(state));
        let Some(overrides) = overrides else {
            return Ok(db);
        };
        for (address, o) in overrides {
            let mut info = db.basic_ref(*address)?.unwrap_or_default();
            if let Some(b) = o.balance {
                info.balance = b;
            }
            if let Some(n) = o.nonce {
                info.nonce = n;
            }
            if let Some(code) = &o.code {
                let bytecode = Bytecode::new_raw(code.clone());
                info.code_hash = bytecode.hash_slow();
                info.code = Some(bytecode);
            } else if info.code.is_none() {
                info.code = Some(db.code_by_hash_ref(info.code_hash)?);
            }
            db.insert_account_info(
                *address,
                AccountInfo {
                    account_id: None,
                    ..info
                },
            );
            if o.state.is_some() && o.state_diff.is_some() {
                return Err(CallError::Override(format!(
                    "account {address} has both 'state' and 'stateDiff'"
                )));
            }
            if let Some(state) = &o.state {
                let slots = state
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect();
                db.replace_account_storage(*address, slots)?;
            }
            if let Some(diff) = &o.state_diff {
                for (k, v) in diff {
                    db.insert_account_storage(*address, (*k).into(), (*v).into())?;
                }
            }
        }
        Ok(db)
    }

    /// `eth_call`.
    pub fn call<S: StateReader>(
        &self,
        state: S,
        req: &TransactionRequest,
        overrides: Option<&StateOverride>,
    ) -> Result<CallResult, CallError> {
        let db = Self::prepare(state, overrides)?;
        // Like geth's RPC gas cap: a request may ask for less, never for more.
        let gas = req.gas.unwrap_or(self.gas_cap).min(self.gas_cap);
        self.run(&db, req, gas)
    }

    /// `eth_estimateGas`: the smallest gas limit at which the call succeeds, found by
    /// binary search. A call that fails at the cap returns its failure. The search
    /// never goes above the chain's per-transaction cap ([`ChainSpec::max_tx_gas`],
    /// as geth does from Osaka): a larger estimate would name a transaction no pool
    /// accepts.
    pub fn estimate_gas<S: StateReader>(
        &self,
        state: S,
        req: &TransactionRequest,
        overrides: Option<&StateOverride>,
    ) -> Result<Result<u64, CallResult>, CallError> {
        let db = Self::prepare(state, overrides)?;
        let mut hi = req
            .gas
            .unwrap_or(self.gas_cap)
            .min(self.gas_cap)
            .min(self.spec.max_tx_gas());
        // With a fee, the sender's balance bounds the gas it can pay for.
        let price = req.max_fee_per_gas.or(req.gas_price).unwrap_or(0);
        if price > 0 {
            let from = req.from.unwrap_or_default();
            let balance = db.basic_ref(from)?.map(|a| a.balance).unwrap_or_default();
            let available = balance
                .saturating_sub(req.value.unwrap_or_default())
                .checked_div(U256::from(price))
                .unwrap_or_default();
            let affordable = u64::try_from(available).unwrap_or(u64::MAX);
            hi = hi.min(affordable);
        }
        let first = self.run(&db, req, hi)?;
        let used = match &first {
            CallResult::Success { gas_used, .. } => *gas_used,
            _ => return Ok(Err(first)),
        };
        // Plain transfers to accounts without code cost exactly what they used.
        let mut lo = used.saturating_sub(1).max(MIN_TX_GAS - 1);
        // A good first guess: what was used plus the 1/64 the EVM withholds per call.
        let guess = (used.saturating_mul(64) / 63).saturating_add(1);
        if guess < hi && matches!(self.run(&db, req, guess)?, CallResult::Success { .. }) {
            hi = guess;
        }
        while lo.saturating_add(1) < hi {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            match self.run(&db, req, mid) {
                Ok(CallResult::Success { .. }) => hi = mid,
                Ok(_) | Err(CallError::Invalid(_)) => lo = mid,
                Err(e) => return Err(e),
            }
        }
        Ok(Ok(hi))
    }
}

/// Maps revm's invalid-transaction text to the message Ethereum clients expect.
fn invalid_message(revm: &str) -> String {
    let lower = revm.to_lowercase();
    if lower.contains("lack of funds") || lower.contains("insufficient") {
        "insufficient funds for gas * price + value".into()
    } else if lower.contains("call gas cost") && lower.contains("exceeds the gas limit")
        || lower.contains("intrinsic")
    {
        "intrinsic gas too low".into()
    } else if lower.contains("gas price is less than basefee")
        || lower.contains("less than basefee")
    {
        "max fee per gas less than block base fee".into()
    } else {
        revm.to_string()
    }
}
