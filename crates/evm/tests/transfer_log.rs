//! The transfer log as receipts carry it: every native value movement, in execution
//! order, with balances that chain like spent outputs; nothing for reverted frames.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::network::TxSignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::{SolCall, SolEvent};
use alloy_primitives::{Address, B256, Bytes, Log, TxKind, U256, keccak256};
use alloy_trie::TrieAccount;
use koma_evm::{BlockEnvInput, BlockExecutor};
use koma_primitives::transfer_log::{
    BURN_ADDRESS, LogFeeTransfer, LogTransfer, TRANSFER_LOG_ADDRESS,
};
use koma_primitives::{ChainSpec, EMPTY_ROOT_HASH, KECCAK_EMPTY};
use koma_storage::{StateReader, StorageError};
use std::collections::HashMap;

sol! {
    function forward(address to) external payable;
    event Forwarded(address indexed from, address indexed to, uint256 amount);
}

#[derive(Default)]
struct MemState {
    accounts: HashMap<Address, TrieAccount>,
    code: HashMap<B256, Bytes>,
}

impl MemState {
    fn fund(&mut self, a: Address, wei: u64) {
        self.accounts.insert(
            a,
            TrieAccount {
                nonce: 0,
                balance: U256::from(wei),
                storage_root: EMPTY_ROOT_HASH,
                code_hash: KECCAK_EMPTY,
            },
        );
    }
    fn deploy(&mut self, a: Address, code: Bytes, wei: u64) {
        let code_hash = keccak256(&code);
        self.code.insert(code_hash, code);
        self.accounts.insert(
            a,
            TrieAccount {
                nonce: 1,
                balance: U256::from(wei),
                storage_root: EMPTY_ROOT_HASH,
                code_hash,
            },
        );
    }
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

const ETH: u64 = 1_000_000_000_000_000_000;
const BASE_FEE: u64 = 1_000_000_000;
const COINBASE: Address = Address::new([0xcb; 20]);

fn executor(state: MemState) -> BlockExecutor<MemState> {
    let env = BlockEnvInput {
        number: 1,
        timestamp: 1,
        beneficiary: COINBASE,
        gas_limit: 30_000_000,
        base_fee: BASE_FEE,
        prevrandao: B256::ZERO,
    };
    BlockExecutor::new(&ChainSpec::devnet(), state, env)
}

fn key() -> PrivateKeySigner {
    koma_primitives::dev::dev_accounts(1).remove(0).1
}

fn tx(nonce: u64, to: TxKind, value: u64, input: Bytes, gas: u64) -> TxEnvelope {
    let mut t = TxEip1559 {
        chain_id: 42424,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 3 * u128::from(BASE_FEE),
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        value: U256::from(value),
        access_list: Default::default(),
        input,
    };
    let sig = key().sign_transaction_sync(&mut t).unwrap();
    t.into_signed(sig).into()
}

fn transfers(logs: &[Log]) -> Vec<LogTransfer> {
    logs.iter()
        .filter(|l| {
            l.address == TRANSFER_LOG_ADDRESS && l.topics()[0] == LogTransfer::SIGNATURE_HASH
        })
        .map(|l| LogTransfer::decode_log_data(&l.data).unwrap())
        .collect()
}

fn fees(logs: &[Log]) -> Vec<LogFeeTransfer> {
    logs.iter()
        .filter(|l| {
            l.address == TRANSFER_LOG_ADDRESS && l.topics()[0] == LogFeeTransfer::SIGNATURE_HASH
        })
        .map(|l| LogFeeTransfer::decode_log_data(&l.data).unwrap())
        .collect()
}

fn forwarder_code() -> Bytes {
    let artifact: serde_json::Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/artifacts/Forwarder.json"
    ))
    .unwrap();
    artifact["deployedBytecode"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn plain_transfer_and_fees_chain_balances() {
    let sender = key().address();
    let to = Address::repeat_byte(0x42);
    let mut state = MemState::default();
    state.fund(sender, 10 * ETH);
    state.fund(to, 3);
    let mut exec = executor(state);
    let out = exec
        .execute(tx(0, TxKind::Call(to), ETH, Bytes::new(), 21_000), sender)
        .unwrap();
    assert!(out.success);
    let sender_final = exec.balance(sender).unwrap();
    let coinbase_final = exec.balance(COINBASE).unwrap();
    let block = exec.finish();
    let logs = block.receipts[0].logs();
    let t = transfers(logs);
    assert_eq!(t.len(), 1);
    let t = &t[0];
    assert_eq!(
        (t.token, t.from, t.to, t.amount),
        (TRANSFER_LOG_ADDRESS, sender, to, U256::from(ETH))
    );
    assert_eq!(t.input1, U256::from(10 * ETH));
    assert_eq!(t.output1, U256::from(9 * ETH));
    assert_eq!((t.input2, t.output2), (U256::from(3), U256::from(ETH + 3)));

    let f = fees(logs);
    assert_eq!(f.len(), 2, "tip and burn");
    let (tip, burn) = (&f[0], &f[1]);
    assert_eq!(tip.to, COINBASE);
    assert_eq!(burn.to, BURN_ADDRESS);
    assert_eq!(tip.amount, U256::from(21_000u64 * 1_000_000_000));
    assert_eq!(burn.amount, U256::from(21_000u64 * BASE_FEE));
    // Outputs chain into the next inputs, ending at the real balances.
    assert_eq!(tip.input1, t.output1);
    assert_eq!(burn.input1, tip.output1);
    assert_eq!(burn.output1, sender_final);
    assert_eq!(tip.output2, coinbase_final);
    assert_eq!(sender_final, U256::from(9 * ETH) - tip.amount - burn.amount);
}

#[test]
fn internal_transfers_are_logged_in_execution_order() {
    let sender = key().address();
    let fwd = Address::repeat_byte(0xf0);
    let to = Address::repeat_byte(0x77);
    let mut state = MemState::default();
    state.fund(sender, 10 * ETH);
    state.deploy(fwd, forwarder_code(), 0);
    let mut exec = executor(state);
    let input: Bytes = forwardCall { to }.abi_encode().into();
    let out = exec
        .execute(tx(0, TxKind::Call(fwd), 5, input, 200_000), sender)
        .unwrap();
    assert!(out.success);
    let block = exec.finish();
    let logs = block.receipts[0].logs();
    let t = transfers(logs);
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].from, t[0].to, t[0].amount),
        (sender, fwd, U256::from(5))
    );
    assert_eq!((t[1].from, t[1].to, t[1].amount), (fwd, to, U256::from(5)));
    // The forwarder's output of the first transfer is the input of the second.
    assert_eq!(t[0].output2, t[1].input1);
    assert_eq!(t[1].output1, U256::ZERO);
    assert_eq!(t[1].output2, U256::from(5));
    // Order: both transfers, then the contract's own event, then the fees.
    let topics: Vec<B256> = logs.iter().map(|l| l.topics()[0]).collect();
    assert_eq!(topics[0], LogTransfer::SIGNATURE_HASH);
    assert_eq!(topics[1], LogTransfer::SIGNATURE_HASH);
    assert_eq!(topics[2], Forwarded::SIGNATURE_HASH);
    assert_eq!(topics[3], LogFeeTransfer::SIGNATURE_HASH);
}

#[test]
fn reverted_transfers_leave_no_log() {
    let sender = key().address();
    let reverter = Address::repeat_byte(0xee);
    let caller = Address::repeat_byte(0xca);
    // PUSH1 0 PUSH1 0 REVERT
    let reverting: Bytes = vec![0x60, 0x00, 0x60, 0x00, 0xfd].into();
    // CALL(gas, reverter, 1 wei, 0, 0, 0, 0); POP; STOP — ignores the failure.
    let mut code = vec![
        0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x01, 0x73,
    ];
    code.extend_from_slice(reverter.as_slice());
    code.extend_from_slice(&[0x5a, 0xf1, 0x50, 0x00]);
    let mut state = MemState::default();
    state.fund(sender, 10 * ETH);
    state.deploy(reverter, reverting, 0);
    state.deploy(caller, code.into(), 10);
    let mut exec = executor(state);
    // Inner call reverts, outer succeeds: no transfer logged.
    let out = exec
        .execute(
            tx(0, TxKind::Call(caller), 0, Bytes::new(), 100_000),
            sender,
        )
        .unwrap();
    assert!(out.success);
    // Top-level call reverts: no transfer, but the fees are still paid and logged.
    let out = exec
        .execute(
            tx(1, TxKind::Call(reverter), ETH, Bytes::new(), 100_000),
            sender,
        )
        .unwrap();
    assert!(!out.success);
    let caller_balance = exec.balance(caller).unwrap();
    let block = exec.finish();
    assert!(transfers(block.receipts[0].logs()).is_empty());
    assert!(transfers(block.receipts[1].logs()).is_empty());
    assert_eq!(fees(block.receipts[1].logs()).len(), 2);
    assert_eq!(caller_balance, U256::from(10));
}

#[test]
fn create_with_value_logs_the_new_contract_as_receiver() {
    let sender = key().address();
    let mut state = MemState::default();
    state.fund(sender, 10 * ETH);
    let mut exec = executor(state);
    // Init code: return empty runtime code (PUSH1 0 PUSH1 0 RETURN).
    let init: Bytes = vec![0x60, 0x00, 0x60, 0x00, 0xf3].into();
    let out = exec
        .execute(tx(0, TxKind::Create, 7, init, 100_000), sender)
        .unwrap();
    assert!(out.success);
    let created = out.contract_address.unwrap();
    assert_eq!(created, sender.create(0));
    let block = exec.finish();
    let t = transfers(block.receipts[0].logs());
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].from, t[0].to, t[0].amount),
        (sender, created, U256::from(7))
    );
    assert_eq!((t[0].input2, t[0].output2), (U256::ZERO, U256::from(7)));
}

#[test]
fn sender_balances_chain_across_a_block() {
    let sender = key().address();
    let mut state = MemState::default();
    state.fund(sender, 10 * ETH);
    let mut exec = executor(state);
    for n in 0..5u64 {
        let to = Address::with_last_byte(n as u8 + 1);
        exec.execute(
            tx(n, TxKind::Call(to), 1000 + n, Bytes::new(), 21_000),
            sender,
        )
        .unwrap();
    }
    let final_balance = exec.balance(sender).unwrap();
    let block = exec.finish();
    let mut last_output: Option<U256> = None;
    for r in &block.receipts {
        for l in r.logs() {
            let ev = if l.topics()[0] == LogTransfer::SIGNATURE_HASH {
                let e = LogTransfer::decode_log_data(&l.data).unwrap();
                (e.from, e.input1, e.output1)
            } else {
                let e = LogFeeTransfer::decode_log_data(&l.data).unwrap();
                (e.from, e.input1, e.output1)
            };
            assert_eq!(ev.0, sender);
            if let Some(prev) = last_output {
                assert_eq!(ev.1, prev, "input must equal the previous output");
            }
            last_output = Some(ev.2);
        }
    }
    assert_eq!(last_output, Some(final_balance));
}

#[test]
fn invalid_transactions_do_not_change_the_block() {
    let sender = key().address();
    let mut state = MemState::default();
    state.fund(sender, ETH);
    let mut exec = executor(state);
    // Nonce 5 while the account is at 0.
    assert!(
        exec.execute(
            tx(5, TxKind::Call(Address::ZERO), 1, Bytes::new(), 21_000),
            sender
        )
        .is_err()
    );
    // More value than the balance.
    assert!(
        exec.execute(
            tx(
                0,
                TxKind::Call(Address::ZERO),
                2 * ETH,
                Bytes::new(),
                21_000
            ),
            sender
        )
        .is_err()
    );
    assert_eq!(exec.len(), 0);
    let block = exec.finish();
    assert!(block.changes.accounts.is_empty());
    assert_eq!(block.gas_used, 0);
}
