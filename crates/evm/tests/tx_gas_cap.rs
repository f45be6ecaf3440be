//! The chain's per-transaction gas cap (`ChainSpec::max_tx_gas`, EIP-7825) in the
//! executor and in gas estimation.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::network::TxSignerSync;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_trie::TrieAccount;
use koma_evm::call::{CallResult, Caller};
use koma_evm::{BlockEnvInput, BlockExecutor, TxError};
use koma_primitives::chainspec::Hardfork;
use koma_primitives::{ChainSpec, DEFAULT_MAX_TX_GAS, EMPTY_ROOT_HASH, KECCAK_EMPTY};
use koma_storage::{StateReader, StorageError};
use std::collections::HashMap;

/// JUMPDEST PUSH0 JUMP: loops until it runs out of gas.
const LOOP_CODE: [u8; 3] = [0x5b, 0x5f, 0x56];
const LOOP: Address = Address::new([0x10; 20]);
const BASE_FEE: u64 = 1_000_000_000;

#[derive(Default)]
struct MemState {
    accounts: HashMap<Address, TrieAccount>,
    code: HashMap<B256, Bytes>,
}

impl StateReader for MemState {
    fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError> {
        Ok(self.accounts.get(&address).copied())
    }
    fn storage(&self, _: Address, _: U256) -> Result<U256, StorageError> {
        Ok(U256::ZERO)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError> {
        Ok(self.code.get(&code_hash).cloned())
    }
    fn block_hash(&self, _: u64) -> Result<Option<B256>, StorageError> {
        Ok(None)
    }
}

fn key() -> PrivateKeySigner {
    koma_primitives::dev::dev_accounts(1).remove(0).1
}

fn state() -> MemState {
    let mut s = MemState::default();
    s.accounts.insert(
        key().address(),
        TrieAccount {
            nonce: 0,
            balance: U256::from(10u64).pow(U256::from(20u64)),
            storage_root: EMPTY_ROOT_HASH,
            code_hash: KECCAK_EMPTY,
        },
    );
    let code = Bytes::from_static(&LOOP_CODE);
    let code_hash = keccak256(&code);
    s.code.insert(code_hash, code);
    s.accounts.insert(
        LOOP,
        TrieAccount {
            nonce: 1,
            balance: U256::ZERO,
            storage_root: EMPTY_ROOT_HASH,
            code_hash,
        },
    );
    s
}

fn env() -> BlockEnvInput {
    BlockEnvInput {
        number: 1,
        timestamp: 1,
        beneficiary: Address::new([0xcb; 20]),
        gas_limit: 60_000_000,
        base_fee: BASE_FEE,
        prevrandao: B256::ZERO,
    }
}

fn call_loop(nonce: u64, gas: u64) -> TxEnvelope {
    let mut t = TxEip1559 {
        chain_id: 42424,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 3 * u128::from(BASE_FEE),
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(LOOP),
        ..Default::default()
    };
    let sig = key().sign_transaction_sync(&mut t).unwrap();
    t.into_signed(sig).into()
}

#[test]
fn executor_refuses_transactions_above_the_cap_and_runs_one_at_the_cap() {
    let spec = ChainSpec::devnet();
    let mut exec = BlockExecutor::new(&spec, state(), env());
    assert_eq!(exec.max_tx_gas(), DEFAULT_MAX_TX_GAS);
    let sender = key().address();
    let err = exec
        .execute(call_loop(0, DEFAULT_MAX_TX_GAS + 1), sender)
        .unwrap_err();
    assert!(
        matches!(
            err,
            TxError::GasLimitTooHigh {
                cap: DEFAULT_MAX_TX_GAS,
                gas_limit
            } if gas_limit == DEFAULT_MAX_TX_GAS + 1
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "transaction gas limit too high (cap: 16777216, tx: 16777217)"
    );
    assert!(exec.is_empty(), "nothing added");

    // At the cap: included, and the loop burns every unit of gas.
    let done = exec
        .execute(call_loop(0, DEFAULT_MAX_TX_GAS), sender)
        .unwrap();
    assert!(!done.success);
    assert_eq!(done.gas_used, DEFAULT_MAX_TX_GAS);
    assert_eq!(exec.finish().gas_used, DEFAULT_MAX_TX_GAS);
}

#[test]
fn the_chains_cap_applies_whatever_the_hardfork() {
    // Osaka with a larger cap: revm's own EIP-7825 default (2^24) must not apply.
    let mut osaka = ChainSpec::devnet();
    osaka.hardfork = Hardfork::Osaka;
    osaka.max_tx_gas = Some(30_000_000);
    let mut exec = BlockExecutor::new(&osaka, state(), env());
    let done = exec
        .execute(call_loop(0, 20_000_000), key().address())
        .unwrap();
    assert_eq!(done.gas_used, 20_000_000);

    // Prague with a small cap: enforced although Prague predates EIP-7825.
    let mut small = ChainSpec::devnet();
    small.max_tx_gas = Some(100_000);
    let mut exec = BlockExecutor::new(&small, state(), env());
    let err = exec
        .execute(call_loop(0, 100_001), key().address())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "transaction gas limit too high (cap: 100000, tx: 100001)"
    );
    let done = exec
        .execute(call_loop(0, 100_000), key().address())
        .unwrap();
    assert_eq!(done.gas_used, 100_000);
}

#[test]
fn gas_estimation_never_searches_above_the_cap() {
    let spec = ChainSpec::devnet();
    let caller = Caller {
        spec: &spec,
        env: env(),
        gas_cap: 50_000_000,
    };
    let req = |gas: Option<u64>| TransactionRequest {
        from: Some(key().address()),
        to: Some(TxKind::Call(LOOP)),
        gas,
        ..Default::default()
    };
    // The loop never succeeds: the estimate fails at the cap, not at the RPC gas cap.
    for gas in [None, Some(40_000_000)] {
        let out = caller.estimate_gas(state(), &req(gas), None).unwrap();
        match out {
            Err(CallResult::Halt { gas_used, .. }) => assert_eq!(gas_used, DEFAULT_MAX_TX_GAS),
            other => panic!("expected an out-of-gas halt, got {other:?}"),
        }
    }
    // eth_call keeps the RPC gas cap (as geth: calls are not transactions).
    match caller.call(state(), &req(None), None).unwrap() {
        CallResult::Halt { gas_used, .. } => assert_eq!(gas_used, 50_000_000),
        other => panic!("expected an out-of-gas halt, got {other:?}"),
    }
    // A plain transfer still estimates at 21000.
    let transfer = TransactionRequest {
        from: Some(key().address()),
        to: Some(TxKind::Call(Address::new([0x99; 20]))),
        value: Some(U256::from(1)),
        ..Default::default()
    };
    assert_eq!(
        caller
            .estimate_gas(state(), &transfer, None)
            .unwrap()
            .unwrap(),
        21_000
    );
}
