//! `eth_call` and `eth_estimateGas`: executions on the state of one resolved block
//! (with the request's state overrides on top), on the blocking pool.

use super::KomaApi;
use crate::error::{internal, reverted, server};
use alloy::eips::BlockId;
use alloy::rpc::types::TransactionRequest;
use alloy::rpc::types::state::StateOverride;
use alloy_primitives::{Bytes, U64};
use jsonrpsee::core::RpcResult;
use jsonrpsee::types::ErrorObjectOwned;
use koma_evm::BlockEnvInput;
use koma_evm::call::{CallError, CallResult, Caller};
use koma_primitives::SealedHeader;

fn call_error(e: CallError) -> ErrorObjectOwned {
    match e {
        CallError::Invalid(m) | CallError::Override(m) => server(m),
        CallError::Database(e) => internal(e),
    }
}

fn call_result(r: CallResult) -> RpcResult<Bytes> {
    match r {
        CallResult::Success { output, .. } => Ok(output),
        CallResult::Revert { output, .. } => Err(reverted(&output)),
        CallResult::Halt { reason, .. } => Err(server(halt_message(&reason))),
    }
}

fn is_out_of_gas(reason: &str) -> bool {
    reason.contains("OutOfGas")
}

fn halt_message(reason: &str) -> String {
    if is_out_of_gas(reason) {
        "out of gas".into()
    } else {
        format!("execution halted: {reason}")
    }
}

/// geth's answer to an estimate whose call fails at the highest gas tried: the revert
/// (code 3, with its data), `gas required exceeds allowance (N)` when it ran out of gas
/// (a halt uses all of its gas, so `gas_used` is the allowance), or the halt.
fn estimate_failure(r: CallResult) -> ErrorObjectOwned {
    match r {
        CallResult::Halt {
            reason, gas_used, ..
        } if is_out_of_gas(&reason) => {
            server(format!("gas required exceeds allowance ({gas_used})"))
        }
        other => match call_result(other) {
            Err(e) => e,
            Ok(_) => internal("estimate failed without a failure"),
        },
    }
}

impl KomaApi {
    fn caller_for(&self, header: &SealedHeader) -> Caller<'_> {
        let h = &header.header;
        Caller {
            spec: &self.state.spec,
            env: BlockEnvInput {
                number: h.number,
                timestamp: h.timestamp,
                beneficiary: h.beneficiary,
                gas_limit: h.gas_limit,
                base_fee: h.base_fee_per_gas.unwrap_or_default(),
                prevrandao: h.mix_hash,
            },
            gas_cap: self.state.config.gas_cap,
        }
    }

    pub(super) fn call_at(
        &self,
        request: &TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<&StateOverride>,
    ) -> RpcResult<Bytes> {
        let snap = self.snapshot()?;
        let (header, state) = self.state_at(&snap, block)?;
        let result = self
            .caller_for(&header)
            .call(state, request, overrides)
            .map_err(call_error)?;
        call_result(result)
    }

    pub(super) fn estimate_at(
        &self,
        request: &TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<&StateOverride>,
    ) -> RpcResult<U64> {
        let snap = self.snapshot()?;
        let (header, state) = self.state_at(&snap, block)?;
        match self
            .caller_for(&header)
            .estimate_gas(state, request, overrides)
            .map_err(call_error)?
        {
            Ok(gas) => Ok(U64::from(gas)),
            Err(failure) => Err(estimate_failure(failure)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_failures_speak_geth() {
        let oog = CallResult::Halt {
            reason: "OutOfGas(Basic)".into(),
            gas_used: 30_000_000,
        };
        let e = estimate_failure(oog);
        assert_eq!(
            (e.code(), e.message()),
            (-32000, "gas required exceeds allowance (30000000)")
        );
        let revert = CallResult::Revert {
            output: Bytes::from_static(&[1, 2]),
            gas_used: 1,
        };
        assert_eq!(estimate_failure(revert).code(), 3);
        let halt = CallResult::Halt {
            reason: "InvalidFEOpcode".into(),
            gas_used: 5,
        };
        assert_eq!(
            estimate_failure(halt).message(),
            "execution halted: InvalidFEOpcode"
        );
        // eth_call keeps geth's "out of gas".
        let oog = CallResult::Halt {
            reason: "OutOfGas(Basic)".into(),
            gas_used: 1,
        };
        assert_eq!(call_result(oog).unwrap_err().message(), "out of gas");
    }
}
