//! Protocol types shared by every KOMA component.
//!
//! - [`ChainSpec`]: the chain's rules and genesis (chain id, gas limit, EIP-1559
//!   parameters, block time, hardfork, per-transaction gas cap, block compute limit,
//!   producer set, initial allocation), loaded from JSON. Everything a node needs to agree with its peers
//!   lives here; nothing is a hidden default.
//! - [`Block`], [`SealedHeader`]: Ethereum-shaped blocks (alloy types) so that block
//!   hashes and `eth_getBlockBy*` are standard. The header is unsigned (`extra_data`
//!   at most 32 bytes); the producer's secp256k1 seal over the block hash travels
//!   beside it in [`SignedHeader`], see [`seal`].
//! - [`compute`]: the compute meter, gas weighted by its measured time, bounded per
//!   block beside gas (ADR 0011).
//! - [`bridge`]: the bridge's deposit and withdrawal messages, and the header's
//!   `withdrawalsRoot` over a block's withdrawals.
//! - [`merkle`]: the binary Merkle tree of the checkpoint and withdrawal formats.
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

pub mod bridge;
pub mod chainspec;
pub mod compute;
pub mod dev;
pub mod merkle;
pub mod seal;
pub mod transfer_log;

pub use alloy::consensus::{Header, ReceiptEnvelope, TxEnvelope};
pub use alloy_primitives::{Address, B256, Bloom, Bytes, U256, address, b256};
pub use chainspec::{ChainSpec, ChainSpecError, DEFAULT_MAX_TX_GAS, GenesisAccount};

pub use seal::{Seal, SignedHeader};

/// A block as gossiped and synced: a standard header with its producer's seal beside
/// it, plus EIP-2718 transactions. `block.header` dereferences to the [`Header`].
pub type Block = alloy::consensus::Block<TxEnvelope, SignedHeader>;

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
