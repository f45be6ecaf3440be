//! Block production and import.
//!
//! - [`Elections`]: a span's producers, elected on L1 by stake votes, and the
//!   replacements within the span (docs/producers.md).
//! - [`ProducerSchedule`]: who is in turn for a block among them (sprints,
//!   docs/protocol.md) and the difficulty that encodes turn priority.
//! - [`slot_delay`] / [`earliest_timestamp`]: when a producer may seal: one block
//!   time after the parent when in turn, one more per step of distance otherwise.
//! - [`build_block`]: fills a block from the pool's best transactions by effective
//!   tip within the gas and compute limits (ADR 0011), executes it, computes the
//!   roots, seals it with the producer's key and commits it atomically.
//! - [`execute_block`]: re-executes a block (a peer's, or one read back from disk)
//!   and checks that it reproduces the header's state root, receipts root, bloom and
//!   gas used, and that it stays within the compute limit; used by import and by
//!   `koma db verify`.

// Blocks from peers and transactions from RPC clients must never crash the node: no
// unwrap/expect/panic, no unchecked indexing or arithmetic outside tests.
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

mod build;
mod election;
mod fork_choice;
mod import;
mod schedule;
#[cfg(feature = "test-utils")]
pub mod test_utils;

pub use build::{
    BuildError, BuiltBlock, DepositSource, MAX_DEPOSITS_PER_BLOCK, NoDeposits, PoolAccess,
    build_block, build_block_until, build_block_with,
};
pub use election::{
    Elections, GenesisProducers, ProducerRankings, Replacement, SpanElection, SprintProducers,
};
pub use fork_choice::{ImportOutcome, block_from, import, import_with, reorg_to};
pub use import::{
    ImportError, KnownSenders, NoKnownSenders, applied_deposits, check_applied_deposits,
    check_deposit_order, check_state_root, execute_block, import_block, import_block_with,
    verify_header,
};
pub use schedule::{ProducerSchedule, earliest_timestamp, slot_delay};

use alloy_primitives::{B256, keccak256};

/// PREVRANDAO of block `number`: a deterministic mix of the parent's value and the
/// height. (Unpredictable randomness comes with KoMaBFT; contracts must not rely on
/// it before then.)
pub fn next_prevrandao(parent_mix: B256, number: u64) -> B256 {
    let mut buf = [0u8; 40];
    buf[..32].copy_from_slice(parent_mix.as_slice());
    buf[32..].copy_from_slice(&number.to_be_bytes());
    keccak256(buf)
}
