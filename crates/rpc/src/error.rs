//! JSON-RPC errors with the codes and messages Ethereum clients expect.

use alloy_primitives::Bytes;
use jsonrpsee::types::ErrorObjectOwned;

/// Invalid params (-32602).
pub const INVALID_PARAMS: i32 = -32602;
/// Internal error (-32603).
pub const INTERNAL_ERROR: i32 = -32603;
/// Server error used by geth for transaction and state problems (-32000).
pub const SERVER_ERROR: i32 = -32000;
/// Execution reverted, with the revert data in `data` (3).
pub const EXECUTION_REVERTED: i32 = 3;
/// Limit exceeded (-32005).
pub const LIMIT_EXCEEDED: i32 = -32005;

pub fn invalid_params(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, msg.into(), None::<()>)
}

pub fn internal(msg: impl std::fmt::Display) -> ErrorObjectOwned {
    tracing::warn!(error = %msg, "internal RPC error");
    ErrorObjectOwned::owned(INTERNAL_ERROR, format!("internal error: {msg}"), None::<()>)
}

pub fn server(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(SERVER_ERROR, msg.into(), None::<()>)
}

pub fn limit(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(LIMIT_EXCEEDED, msg.into(), None::<()>)
}

pub fn header_not_found() -> ErrorObjectOwned {
    server("header not found")
}

/// `execution reverted[: reason]` with the raw revert data, as geth reports it.
pub fn reverted(output: &Bytes) -> ErrorObjectOwned {
    let message = match decode_revert_reason(output) {
        Some(reason) => format!("execution reverted: {reason}"),
        None => "execution reverted".to_string(),
    };
    ErrorObjectOwned::owned(EXECUTION_REVERTED, message, Some(output.to_string()))
}

/// Decodes `Error(string)` and `Panic(uint256)` revert payloads.
pub fn decode_revert_reason(output: &[u8]) -> Option<String> {
    use alloy::sol_types::{Panic, Revert, SolError};
    if let Ok(r) = Revert::abi_decode(output) {
        return Some(r.reason);
    }
    if let Ok(p) = Panic::abi_decode(output) {
        return Some(format!("panic: {:#x}", p.code));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::{Revert, SolError};

    #[test]
    fn revert_reason_is_decoded_and_data_kept() {
        let data: Bytes = Revert::from("nope").abi_encode().into();
        let e = reverted(&data);
        assert_eq!(e.code(), 3);
        assert_eq!(e.message(), "execution reverted: nope");
        assert!(e.data().unwrap().get().contains(&data.to_string()[2..]));
        let custom = Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(reverted(&custom).message(), "execution reverted");
    }
}
