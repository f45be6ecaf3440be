//! KOMA's block executor on revm.
//!
//! - [`BlockExecutor`] runs transactions one at a time on top of a [`StateReader`]
//!   (Prague rules: EIP-1559 fees with the base fee burned and the tip paid to the
//!   producer, EIP-2930 access lists, EIP-7702 delegations, the EIP-2537 BLS
//!   precompiles), produces Ethereum receipts, and hands storage the block's
//!   [`StateChanges`](koma_storage::StateChanges). The producer uses it to fill a
//!   block (skipping transactions that are not includable); import uses it to
//!   re-execute a peer's block.
//! - Every native value movement and fee payment is logged from `0x…1010` in the
//!   receipt ([`koma_primitives::transfer_log`]); see [`inspector`].
//! - The compute meter (ADR 0011): each transaction's compute units (gas weighted by
//!   its measured time, [`koma_primitives::compute`]) are counted as it executes
//!   (precompile gas by [`meter::MeteredPrecompiles`]) and a block's are bounded by
//!   the chain's compute limit, beside gas.
//! - [`call`] runs `eth_call` and `eth_estimateGas` without touching the chain.
//!
//! Invariant: execution is a pure function of (parent state, block environment,
//! transactions), so every honest node derives the same roots.

// Data from peers and clients reaches this crate: no unwrap/expect/panic, no unchecked
// indexing or arithmetic outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod call;
pub mod db;
mod executor;
pub mod inspector;
pub mod meter;
mod sender;

pub use db::{BlockDb, DbError, StateDb};
pub use executor::{BlockEnvInput, BlockExecutor, ExecutedBlock, ExecutedTx, TxError};
pub use sender::{InvalidSignature, recover_prehash, recover_sender};

use koma_primitives::ChainSpec;
use revm::primitives::hardfork::SpecId;

/// The revm spec for a chain.
pub fn spec_id(spec: &ChainSpec) -> SpecId {
    if spec.is_osaka() {
        SpecId::OSAKA
    } else {
        SpecId::PRAGUE
    }
}
