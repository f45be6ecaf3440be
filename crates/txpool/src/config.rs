//! Pool limits and fee floors.

use revm::primitives::hardfork::SpecId;

/// One gwei in wei.
pub const GWEI: u128 = 1_000_000_000;

/// Limits and fee floors of a [`crate::TxPool`].
///
/// The node fills `chain_id`, `block_gas_limit`, `max_tx_gas`, `min_base_fee` and `spec`
/// from its chain spec; the defaults of those are placeholders (Ethereum-like values) so
/// that tests and tools can start from `PoolConfig { chain_id, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Only transactions signed for this chain are accepted. Default: 1.
    pub chain_id: u64,
    /// Transactions with a larger `gas_limit` are rejected. Default: 30 000 000.
    pub block_gas_limit: u64,
    /// The chain's per-transaction gas cap (`ChainSpec::max_tx_gas`): transactions with a
    /// larger `gas_limit` are rejected. Default: 2^24 (EIP-7825).
    pub max_tx_gas: u64,
    /// Minimum priority fee (legacy/EIP-2930: gas price) in wei. Default: 1 gwei.
    pub min_priority_fee: u128,
    /// Minimum `max_fee_per_gas` (legacy/EIP-2930: gas price) in wei: the chain's base
    /// fee floor. Default: 1 gwei.
    pub min_base_fee: u64,
    /// Maximum EIP-2718 encoded size in bytes. Default: 128 KiB (geth's `txMaxSize`).
    pub max_tx_size: usize,
    /// Maximum pooled transactions per sender, and the largest accepted distance between
    /// the account nonce and a transaction nonce. Default: 256.
    pub max_per_sender: usize,
    /// Maximum executable (gap-free) transactions. Default: 200 000.
    pub max_pending: usize,
    /// Maximum future (nonce-gapped) transactions. Default: 50 000.
    pub max_queued: usize,
    /// A replacement must raise both fee cap and tip by at least this many percent.
    /// Default: 10 (geth's `--txpool.pricebump`).
    pub price_bump_percent: u128,
    /// Fork rules for intrinsic gas (EIP-7623 floor, EIP-7702 authorization cost,
    /// EIP-3860 init code). Default: Prague.
    pub spec: SpecId,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            chain_id: 1,
            block_gas_limit: 30_000_000,
            max_tx_gas: 1 << 24,
            min_priority_fee: GWEI,
            min_base_fee: 1_000_000_000,
            max_tx_size: 128 * 1024,
            max_per_sender: 256,
            max_pending: 200_000,
            max_queued: 50_000,
            price_bump_percent: 10,
            spec: SpecId::PRAGUE,
        }
    }
}
