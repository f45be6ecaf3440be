//! Protocol types shared by every KOMA component.
//!
//! - [`ChainSpec`]: the chain's rules and genesis (chain id, gas limit, EIP-1559
//!   parameters, block time, hardfork, per-transaction gas cap, block compute limit,
//!   producer set, initial allocation), loaded from JSON. Everything a node needs to agree with its peers
//!   lives here; nothing is a hidden default.
//! - [`Block`], [`SealedHeader`]: Ethereum-shaped blocks (alloy types) so that block
//!   hashes and `eth_getBlockBy*` are standard. The producer's secp256k1 seal lives in
//!   the last 65 bytes of `extra_data` (Clique/Bor style), see [`seal`].
//! - [`compute`]: the compute meter, gas weighted by its measured time, bounded per
//!   block beside gas (ADR 0011).
//! - [`transfer_log`]: the synthetic `LogTransfer` / `LogFeeTransfer` events emitted
//!   from `0x…1010` for every native value movement.
//!
//! Invariant: every encoding here is canonical (RLP / EIP-2718 as Ethereum defines
//! it), so two honest nodes always derive the same hashes and roots.

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

pub mod chainspec;
pub mod compute;
pub mod dev;
pub mod seal;
pub mod transfer_log;

pub use alloy::consensus::{Header, ReceiptEnvelope, TxEnvelope};
pub use alloy_primitives::{Address, B256, Bloom, Bytes, U256, address, b256};
pub use chainspec::{ChainSpec, ChainSpecError, DEFAULT_MAX_TX_GAS, GenesisAccount};

/// A block as stored and gossiped: standard header plus EIP-2718 transactions.
pub type Block = alloy::consensus::Block<TxEnvelope>;

/// A header together with its (cached) hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedHeader {
    pub hash: B256,
    pub header: Header,
}

impl SealedHeader {
    /// Hashes `header` and keeps the result.
    pub fn seal(header: Header) -> Self {
        Self {
            hash: header.hash_slow(),
            header,
        }
    }

    pub fn number(&self) -> u64 {
        self.header.number
    }
}

/// How far a syncing node is (`eth_syncing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    pub starting_block: u64,
    pub current_block: u64,
    pub highest_block: u64,
}

/// Root of an empty Merkle-Patricia trie.
pub const EMPTY_ROOT_HASH: B256 = alloy_trie::EMPTY_ROOT_HASH;
/// keccak256 of empty bytes (the code hash of an account without code).
pub const KECCAK_EMPTY: B256 = alloy_primitives::KECCAK256_EMPTY;
