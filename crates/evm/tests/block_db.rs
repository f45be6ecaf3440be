//! `BlockDb` reads each code and each block hash from storage once per block, however
//! often transactions ask for them (calls reload a contract's code every transaction;
//! `BLOCKHASH` costs 20 gas).

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::network::TxSignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_trie::TrieAccount;
use koma_evm::{BlockEnvInput, BlockExecutor};
use koma_primitives::{ChainSpec, EMPTY_ROOT_HASH, KECCAK_EMPTY};
use koma_storage::{StateReader, StorageError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// PUSH1 1, NUMBER, SUB, BLOCKHASH, PUSH0, SSTORE, CALLER, EXTCODESIZE, POP, STOP:
/// stores the parent's hash in slot 0.
const CODE: [u8; 12] = [
    0x60, 0x01, 0x43, 0x03, 0x40, 0x5f, 0x55, 0x33, 0x3b, 0x50, 0x00, 0x00,
];
const CONTRACTS: [Address; 2] = [Address::new([0x10; 20]), Address::new([0x11; 20])];
const PARENT_HASH: B256 = B256::repeat_byte(0xab);

#[derive(Default)]
struct CountingState {
    accounts: HashMap<Address, TrieAccount>,
    code: HashMap<B256, Bytes>,
    code_reads: AtomicUsize,
    hash_reads: AtomicUsize,
}

impl StateReader for CountingState {
    fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError> {
        Ok(self.accounts.get(&address).copied())
    }
    fn storage(&self, _: Address, _: U256) -> Result<U256, StorageError> {
        Ok(U256::ZERO)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError> {
        self.code_reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.code.get(&code_hash).cloned())
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        self.hash_reads.fetch_add(1, Ordering::Relaxed);
        Ok((number == 9).then_some(PARENT_HASH))
    }
}

fn key() -> PrivateKeySigner {
    koma_primitives::dev::dev_accounts(1).remove(0).1
}

fn call(nonce: u64, to: Address) -> TxEnvelope {
    let mut t = TxEip1559 {
        chain_id: 42424,
        nonce,
        gas_limit: 100_000,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        ..Default::default()
    };
    let sig = key().sign_transaction_sync(&mut t).unwrap();
    t.into_signed(sig).into()
}

#[test]
fn code_and_block_hashes_are_read_once_per_block() {
    let mut state = CountingState::default();
    state.accounts.insert(
        key().address(),
        TrieAccount {
            nonce: 0,
            balance: U256::from(10u64).pow(U256::from(20u64)),
            storage_root: EMPTY_ROOT_HASH,
            code_hash: KECCAK_EMPTY,
        },
    );
    let code = Bytes::from_static(&CODE);
    let code_hash = keccak256(&code);
    state.code.insert(code_hash, code);
    // Two contracts share one code.
    for c in CONTRACTS {
        state.accounts.insert(
            c,
            TrieAccount {
                nonce: 1,
                balance: U256::ZERO,
                storage_root: EMPTY_ROOT_HASH,
                code_hash,
            },
        );
    }
    let env = BlockEnvInput {
        number: 10,
        timestamp: 10,
        beneficiary: Address::new([0xcb; 20]),
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        prevrandao: B256::ZERO,
    };
    let mut exec = BlockExecutor::new(&ChainSpec::devnet(), &state, env);
    for nonce in 0..6 {
        let done = exec
            .execute(call(nonce, CONTRACTS[nonce as usize % 2]), key().address())
            .unwrap();
        assert!(done.success);
    }
    let block = exec.finish();
    // Both contracts stored the parent's hash.
    for c in CONTRACTS {
        let change = block
            .changes
            .accounts
            .iter()
            .find(|a| a.address == c)
            .unwrap();
        assert_eq!(
            change.storage,
            vec![(U256::ZERO, U256::from_be_bytes(PARENT_HASH.0))]
        );
    }
    assert_eq!(
        state.code_reads.load(Ordering::Relaxed),
        1,
        "one code, read once"
    );
    assert_eq!(
        state.hash_reads.load(Ordering::Relaxed),
        1,
        "one block hash, read once"
    );
}
