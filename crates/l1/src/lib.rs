//! KOMA's L1 side, seen from the node: Rust bindings of the root contracts (`contracts/`)
//! with their committed bytecode, the file that tells a node where they are, deploying
//! them to any Ethereum node, registering stakers, and the chain spec of the development
//! L1 that `koma devnet` runs.
//!
//! The bytecode comes from `contracts/artifacts/*.json` (committed, built by
//! `contracts/build.js`), so building the node needs no Solidity compiler. A test checks
//! that every function, event and error declared here has the selector the artifact's
//! ABI gives it.

pub mod audit;
pub mod bindings;
pub mod contracts;
pub mod deploy;
pub mod dev;
pub mod revert;

pub use contracts::L1Contracts;
pub use deploy::{
    DeployParams, StakerRegistration, activate_genesis_set, approve, confirm, deploy, fund_rewards,
    genesis_supply, register_producer, register_staker, transfer_tokens, vote_producer,
};
pub use revert::{describe_revert, revert_reason};
