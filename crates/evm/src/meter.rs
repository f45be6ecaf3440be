//! The compute meter's precompile counter (ADR 0011): a [`PrecompileProvider`] that
//! runs Ethereum's precompiles and adds the gas each call used to a per-transaction
//! counter. Cheap (one addition per precompile call, nothing per opcode) and exact.
//!
//! It also stops a transaction before a precompile call whose units would take the
//! block over its compute limit (the call is first run with only the gas the block
//! still has room for; precompiles price their input before doing any work, so a call
//! that does not fit fails at once). The transaction then fails as a whole, with no
//! effect, as it would after execution anyway; so the producer never spends more than
//! the block's remaining compute in precompiles on a transaction it must leave out.

use koma_primitives::compute::PRECOMPILE_WEIGHT;
use revm::context::Cfg;
use revm::context_interface::ContextTr;
use revm::context_interface::cfg::gas::GasTracker;
use revm::handler::{EthPrecompiles, PrecompileProvider};
use revm::interpreter::{CallInputs, InterpreterResult};
use revm::primitives::AddressSet;

/// The error text a stopped transaction carries out of revm (never shown to users:
/// the executor reports [`crate::TxError::ComputeLimitExceeded`]).
pub(crate) const STOPPED: &str = "compute limit reached";

/// Ethereum's precompiles with a gas counter.
#[derive(Debug)]
pub struct MeteredPrecompiles {
    inner: EthPrecompiles,
    /// Gas used by precompile calls of the current transaction.
    pub(crate) gas: u64,
    /// Precompile gas the current transaction may still use before the block would
    /// exceed its compute limit (`None`: no bound, e.g. `eth_call`).
    pub(crate) allowance: Option<u64>,
    /// Set when a call was stopped for the compute limit.
    pub(crate) stopped: bool,
}

impl MeteredPrecompiles {
    pub fn new(inner: EthPrecompiles) -> Self {
        Self {
            inner,
            gas: 0,
            allowance: None,
            stopped: false,
        }
    }

    /// Resets the counter for a transaction that may spend `allowance_units` compute
    /// units in precompiles.
    pub(crate) fn begin(&mut self, allowance_units: Option<u64>) {
        self.gas = 0;
        self.stopped = false;
        self.allowance = allowance_units.map(|u| u / PRECOMPILE_WEIGHT);
    }
}

impl<CTX: ContextTr> PrecompileProvider<CTX> for MeteredPrecompiles {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: <CTX::Cfg as Cfg>::Spec) -> bool {
        <EthPrecompiles as PrecompileProvider<CTX>>::set_spec(&mut self.inner, spec)
    }

    fn run(
        &mut self,
        context: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<Option<InterpreterResult>, String> {
        let room = self
            .allowance
            .map(|a| a.saturating_sub(self.gas))
            .unwrap_or(u64::MAX);
        let result = if inputs.gas_limit <= room {
            self.inner.run(context, inputs)?
        } else {
            if !self.inner.contains(&inputs.bytecode_address) {
                return Ok(None);
            }
            // Run with only the gas there is room for. A call that fits gives the same
            // output and gas as with its full limit; one that does not fails before
            // any work, and the transaction's units would be over the limit anyway
            // (a failed call uses all of its gas).
            let mut capped = inputs.clone();
            capped.gas_limit = room;
            let Some(mut result) = self.inner.run(context, &capped)? else {
                return Ok(None);
            };
            if !(result.is_ok() || result.is_revert()) {
                self.stopped = true;
                return Err(STOPPED.into());
            }
            let spent = result.gas.total_gas_spent();
            let refunded = result.gas.refunded();
            let mut tracker = GasTracker::new_used_gas(inputs.gas_limit, spent, inputs.reservoir);
            tracker.set_refunded(refunded);
            *result.gas.tracker_mut() = tracker;
            Some(result)
        };
        if let Some(result) = &result {
            self.gas = self.gas.saturating_add(result.gas.total_gas_spent());
        }
        Ok(result)
    }

    fn warm_addresses(&self) -> &AddressSet {
        <EthPrecompiles as PrecompileProvider<CTX>>::warm_addresses(&self.inner)
    }

    fn contains(&self, address: &revm::primitives::Address) -> bool {
        <EthPrecompiles as PrecompileProvider<CTX>>::contains(&self.inner, address)
    }
}
