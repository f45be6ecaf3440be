//! Helpers for tests of block building and import (feature `test-utils`).

use crate::PoolAccess;
use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::network::TxSignerSync;
use alloy_primitives::{Address, TxKind, U256};
use koma_primitives::{ChainSpec, dev};
use std::collections::VecDeque;

/// A pool that yields a fixed list of transactions in order.
#[derive(Debug, Default)]
pub struct VecPool(pub VecDeque<(TxEnvelope, Address)>);

impl PoolAccess for VecPool {
    fn next_best(&mut self) -> Option<(TxEnvelope, Address)> {
        self.0.pop_front()
    }
    fn skip_sender(&mut self, _: Address) {}
}

/// Deposits "confirmed on L1": `0[i]` is the data of deposit `i + 1`; every block
/// counts as final, so what a block announces its child applies.
#[derive(Debug, Default, Clone)]
pub struct VecDeposits(pub Vec<alloy_primitives::Bytes>);

impl crate::DepositSource for VecDeposits {
    fn confirmed_from(&self, first: u64, max: usize) -> Vec<alloy_primitives::Bytes> {
        let skip = usize::try_from(first.saturating_sub(1)).unwrap_or(usize::MAX);
        self.0.iter().skip(skip).take(max).cloned().collect()
    }
    fn agreed_through(&self) -> u64 {
        u64::MAX
    }
}

/// The devnet spec with two producers (dev producer keys 0 and 1) alternating every
/// block, so tests can build competing chains.
pub fn two_producer_spec() -> ChainSpec {
    let mut spec = ChainSpec::devnet();
    spec.producers.producers = vec![
        dev::dev_producer_key(0).address(),
        dev::dev_producer_key(1).address(),
    ];
    spec.producers.sprint = 1;
    spec.producers.span = 2;
    spec
}

/// An EIP-1559 transfer on the devnet signed by dev account `account`, with its sender.
pub fn signed_transfer(
    account: u32,
    nonce: u64,
    to: Address,
    value: U256,
) -> (TxEnvelope, Address) {
    signed_call(account, nonce, to, value, 21_000)
}

/// An EIP-1559 transaction on the devnet with no input and the given gas limit, signed
/// by dev account `account`, with its sender.
pub fn signed_call(
    account: u32,
    nonce: u64,
    to: Address,
    value: U256,
    gas_limit: u64,
) -> (TxEnvelope, Address) {
    let (from, key) = dev::dev_accounts(account.saturating_add(1)).remove(account as usize);
    let mut tx = TxEip1559 {
        chain_id: 42424,
        nonce,
        gas_limit,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value,
        ..Default::default()
    };
    // Dev keys always sign.
    #[allow(clippy::expect_used)]
    let sig = key.sign_transaction_sync(&mut tx).expect("dev key signs");
    (tx.into_signed(sig).into(), from)
}
