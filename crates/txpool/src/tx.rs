//! The pooled transaction and the account view the pool validates against.

use alloy::consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, B256, U256};

/// Nonce and balance of an account in the latest canonical state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountInfoLite {
    /// Next nonce the account may use.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
}

/// Read access to the latest canonical state. Missing accounts read as the default
/// (nonce 0, balance 0).
pub trait AccountReader {
    /// Nonce and balance of `address`.
    fn account(&self, address: Address) -> AccountInfoLite;
}

impl<F> AccountReader for F
where
    F: Fn(Address) -> AccountInfoLite,
{
    fn account(&self, address: Address) -> AccountInfoLite {
        self(address)
    }
}

/// A validated transaction in the pool: signature checked, sender recovered.
#[derive(Debug)]
pub struct PooledTx {
    /// Transaction hash (keccak of the EIP-2718 encoding).
    pub hash: B256,
    /// Recovered sender.
    pub sender: Address,
    /// The signed transaction.
    pub tx: TxEnvelope,
    /// Length of the EIP-2718 encoding in bytes.
    pub encoded_len: usize,
    /// Order of arrival; breaks ties between equally priced transactions (first come,
    /// first served) and among eviction candidates (newest goes first).
    pub sequence: u64,
    /// `value + gas_limit * max_fee_per_gas`, cached: it is summed per sender on every
    /// insert.
    cost: U256,
}

impl PooledTx {
    pub(crate) fn new(tx: TxEnvelope, sender: Address, encoded_len: usize, sequence: u64) -> Self {
        let cost = max_cost(&tx);
        Self {
            hash: *tx.tx_hash(),
            sender,
            tx,
            encoded_len,
            sequence,
            cost,
        }
    }

    /// Nonce of the transaction.
    pub fn nonce(&self) -> u64 {
        self.tx.nonce()
    }

    /// Gas limit of the transaction.
    pub fn gas_limit(&self) -> u64 {
        self.tx.gas_limit()
    }

    /// `max_fee_per_gas`; the gas price for legacy and EIP-2930 transactions.
    pub fn max_fee_per_gas(&self) -> u128 {
        self.tx.max_fee_per_gas()
    }

    /// `max_priority_fee_per_gas`; `None` for legacy and EIP-2930 transactions.
    pub fn max_priority_fee_per_gas(&self) -> Option<u128> {
        self.tx.max_priority_fee_per_gas()
    }

    /// Priority fee, or the gas price for legacy and EIP-2930 transactions: what the
    /// sender offers the producer on top of a zero base fee.
    pub fn tip_cap(&self) -> u128 {
        self.tx.priority_fee_or_price()
    }

    /// Tip per gas the producer receives at `base_fee`; `None` if the fee cap is below
    /// the base fee (the transaction cannot be included in such a block).
    pub fn effective_tip(&self, base_fee: u64) -> Option<u128> {
        self.tx.effective_tip_per_gas(base_fee)
    }

    /// Worst-case cost to the sender: `value + gas_limit * max_fee_per_gas`.
    pub fn cost(&self) -> U256 {
        self.cost
    }
}

/// `value + gas_limit * max_fee_per_gas`, saturating (a u64 times a u128 fits in 192 bits;
/// only the addition of the value can overflow).
pub(crate) fn max_cost(tx: &TxEnvelope) -> U256 {
    let gas = U256::from(tx.gas_limit()).saturating_mul(U256::from(tx.max_fee_per_gas()));
    gas.saturating_add(tx.value())
}
