//! KoMaBFT: the Highway protocol (Kane et al., arXiv 2101.02159) as a sans-I/O core.
//!
//! Validators (stakers, weighted by stake) exchange signed units that form a DAG. A
//! round leader's unit proposes a value (an L2 milestone); the others confirm it and
//! then witness; each unit votes, by GHOST over stake, for a chain of proposals. A
//! block is final at fault tolerance `t` once a summit of sufficient quorum forms
//! above it, and several thresholds are tracked at once, so every block has a
//! confidence: the weight that would have to equivocate to revert it.
//!
//! - [`types`]: validators, weights, thresholds, quorums, the leader draw.
//! - [`unit`]: units, signatures, equivocation evidence.
//! - [`state`]: validation rules, the DAG, fork choice, equivocation detection.
//! - [`finality`]: the summit finality detector.
//! - [`round_meter`]: adaptive round lengths.
//! - [`Highway`]: the driver of one era: units, evidence and time in; units to
//!   persist and broadcast, timers, requests, finalized blocks and evidence out.
//! - [`Eras`]: one `Highway` per era, the switch between eras, and what stays open.
//!
//! No I/O, no clock, no randomness: the same inputs give the same outputs, which is
//! what the seeded simulations in `tests/` rely on.

// Input from the network must never crash the node: no unwrap/expect/panic, no
// unchecked indexing or arithmetic outside tests.
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

pub mod era;
pub mod finality;
mod highway;
pub mod round_meter;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
pub mod types;
pub mod unit;

pub use era::{EraSets, Eras, ErasConfig, NextSet, SameSet};
pub use finality::FinalityDetector;
pub use highway::{Config, Effect, Highway};
pub use round_meter::RoundMeter;
pub use state::{AnyValue, EraBase, State, UnitError, Validity, ValueCheck};
pub use types::{
    EraRecord, Params, SetSource, Threshold, Timestamp, ValidatorIndex, Validators, quorum,
    round_id,
};
pub use unit::{
    Evidence, Observation, Secp256k1Verifier, SignedUnit, Unit, UnitSigner, UnitVerifier,
};
