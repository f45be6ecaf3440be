//! The checkpoint format and its BLS12-381 signatures, byte for byte as the L1 contracts
//! (`contracts/src/RootChain.sol`, `StakeManager.sol`, `lib/CheckpointTree.sol`,
//! `lib/BLS.sol`) compute them.
//!
//! A checkpoint commits to a contiguous range of L2 blocks: each block becomes a
//! [`BlockLeaf`], the leaves a [`MerkleTree`] (padded with zero hashes to a power of two),
//! and the root, with the range and the checkpoint number, a [`CheckpointHeader`]. The
//! stakers BLS-sign the header's digest under a [`Domain`] (L1 chain, root contract, L2
//! chain) and the active set id; the contract checks one aggregate signature against the
//! set's aggregate key less the keys of the absent stakers ([`absent_list`]).
//!
//! - [`format`](mod@format): leaves, the tree and its proofs, the header digest, the proof-of-possession
//!   message, the set commitment, stake weights, the absent list and the range rule.
//! - [`bls`]: min_sig BLS over `blst` (signatures in G1, keys in G2) with the IETF
//!   proof-of-possession ciphersuite, in the compressed ZCash encoding and in the EIP-2537
//!   encoding the contracts use.
//! - [`keystore`]: EIP-2335 keystores ([`Keystore`]) holding a [`SecretKey`] under a
//!   password, with scrypt or PBKDF2 ([`Kdf`]); `pubkey` is the 96-byte G2 key.
//!
//! Invariants: a [`PublicKey`] or [`Signature`] is always a point of the prime-order
//! subgroup other than the point at infinity (every constructor checks it), so verifying
//! never needs to re-check. Nothing here does I/O, reads a clock or spawns a thread; the
//! only randomness is the RNG a caller passes to [`SecretKey::random`] or
//! [`keystore::encrypt`].
//!
//! The shared vectors in `tests/vectors/` (made with JS noble, independent of this crate
//! and of the contracts) hold all three implementations to the same bytes.

// Peers and L1 hand us these bytes: no unwrap/expect/panic, no unchecked indexing or
// arithmetic outside tests.
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

pub mod bls;
pub mod format;
pub mod keystore;

pub use bls::{
    BlsError, POP_DST, PointKind, PublicKey, SIG_DST, SecretKey, Signature, aggregate_signatures,
    fast_aggregate_verify,
};
pub use format::{
    BadProofIndex, BlockLeaf, CheckpointHeader, Domain, FormatError, MerkleTree, absent_list,
    next_range, parse_absent_list, pop_message, process_proof, set_commit, verify_proof, weight_of,
};
pub use keystore::{Kdf, Keystore, KeystoreError};
