//! The compute meter: a second per-block limit beside gas (ADR 0011).
//!
//! Ethereum's gas schedule prices some work far above its time and some far below:
//! on the reference machine a plain transfer's 21,000 gas cost ~2.5 ns per gas of
//! whole block path, a loop of KECCAK256 ~9 ns, modexp with a 1024-byte modulus ~40 ns
//! (docs/benchmarks.md). A block gas limit that admits 600M gas of transfers would let
//! 600M gas of modexp run for ~20 s. Each transaction's *compute units* weight its gas
//! by kind of work, from the measured time per gas, and a block's units are bounded by
//! [`ChainSpec::compute_limit`](crate::ChainSpec::compute_limit):
//!
//! | gas | units per gas |
//! |---|---|
//! | the 21,000 base every transaction pays | [`BASE_WEIGHT`] = 1 |
//! | everything else outside precompiles (calldata, access lists, opcodes, storage) | [`EXECUTION_WEIGHT`] = 10 |
//! | gas used by precompile calls (any precompile, any depth, failed ones included) | [`PRECOMPILE_WEIGHT`] = 36 |
//!
//! Gas is counted before refunds (the EIP-7623 calldata floor when higher), since
//! refunds do not give time back. The units are a pure function of what the
//! transaction executed, so the producer and every importer count the same.

/// Gas of the base cost every transaction pays (EIP-2028's 21,000).
pub const BASE_GAS: u64 = 21_000;
/// Units per gas of the 21,000 base: one unit is about what a transfer's gas costs.
pub const BASE_WEIGHT: u64 = 1;
/// Units per gas of execution outside precompiles (and intrinsic gas beyond the base).
pub const EXECUTION_WEIGHT: u64 = 10;
/// Units per gas used by precompiles.
pub const PRECOMPILE_WEIGHT: u64 = 36;

/// The compute units of a transaction that spent `gas_spent` gas in total (before
/// refunds, at least the EIP-7623 floor), `precompile_gas` of it in precompile calls.
pub fn tx_compute_units(gas_spent: u64, precompile_gas: u64) -> u64 {
    let base = gas_spent.min(BASE_GAS);
    // base <= gas_spent and precompile <= gas_spent - base: neither subtraction wraps
    let precompile = precompile_gas.min(gas_spent.saturating_sub(base));
    let execution = gas_spent.saturating_sub(base).saturating_sub(precompile);
    base.saturating_mul(BASE_WEIGHT)
        .saturating_add(execution.saturating_mul(EXECUTION_WEIGHT))
        .saturating_add(precompile.saturating_mul(PRECOMPILE_WEIGHT))
}

/// The most units a transaction with gas limit `gas_limit` can use (all of its gas
/// beyond the base in precompiles).
pub fn max_tx_compute_units(gas_limit: u64) -> u64 {
    tx_compute_units(gas_limit, gas_limit)
}

/// The fewest units any transaction uses: a plain transfer's.
pub const MIN_TX_COMPUTE_UNITS: u64 = BASE_GAS * BASE_WEIGHT;

/// The default block compute limit for a per-transaction gas cap: a transaction at
/// the cap whose gas goes to precompiles fits a block alone (so the cap is not moot),
/// and no more precompile work than that fits in a block.
pub const fn default_compute_limit(max_tx_gas: u64) -> u64 {
    max_tx_gas.saturating_mul(PRECOMPILE_WEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_costs_its_gas() {
        assert_eq!(tx_compute_units(21_000, 0), 21_000);
        assert_eq!(MIN_TX_COMPUTE_UNITS, 21_000);
        // 600M gas of transfers fit the default limit of the devnet's cap.
        assert!(28_571 * tx_compute_units(21_000, 0) <= default_compute_limit(1 << 24));
    }

    #[test]
    fn execution_and_precompile_gas_are_weighted() {
        // A call spending 30,000 gas in opcodes and storage.
        assert_eq!(tx_compute_units(51_000, 0), 21_000 + 30_000 * 10);
        // 3,000 of them in ecrecover.
        assert_eq!(
            tx_compute_units(51_000, 3_000),
            21_000 + 27_000 * 10 + 3_000 * 36
        );
        // Precompile gas never counts more than the execution gas it is part of.
        assert_eq!(tx_compute_units(21_000, 5_000), 21_000);
        assert_eq!(tx_compute_units(0, 0), 0);
    }

    #[test]
    fn a_transaction_at_the_cap_fits_the_default_limit_alone() {
        let cap = 1 << 24;
        assert!(max_tx_compute_units(cap) <= default_compute_limit(cap));
        assert_eq!(default_compute_limit(cap), 603_979_776);
    }
}
