//! The JSON-RPC middleware every call passes through, over HTTP and WebSocket, so that
//! the answers are geth's where jsonrpsee's differ:
//!
//! - more positional parameters than the method takes: -32602 `too many arguments,
//!   want at most N` (jsonrpsee ignores the surplus); parameters that are neither an
//!   array nor `null`: -32602 `non-array args`;
//! - an unknown method: -32601 `the method X does not exist/is not available`;
//! - a notification (a request without `id`) is executed and not answered (jsonrpsee
//!   drops it unexecuted);
//! - calls inside a batch get the same treatment.

use crate::error::INVALID_PARAMS;
use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::server::{BatchResponseBuilder, MethodResponse};
use jsonrpsee::types::{ErrorObjectOwned, Id, Request, TwoPointZero};
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use std::fmt;
use std::future::Future;

/// Method not found (-32601).
pub const METHOD_NOT_FOUND: i32 = -32601;

/// Most positional parameters of every method the server registers (a unit test keeps
/// this in step with the registered methods).
pub fn max_params(method: &str) -> Option<usize> {
    Some(match method {
        "eth_chainId"
        | "eth_blockNumber"
        | "eth_syncing"
        | "eth_gasPrice"
        | "eth_maxPriorityFeePerGas"
        | "eth_blobBaseFee"
        | "eth_accounts"
        | "eth_coinbase"
        | "eth_mining"
        | "eth_newBlockFilter"
        | "eth_newPendingTransactionFilter"
        | "net_version"
        | "net_listening"
        | "net_peerCount"
        | "web3_clientVersion"
        | "txpool_status"
        | "txpool_content"
        | "koma_getMilestone"
        | "koma_validators"
        | "admin_nodeInfo"
        | "admin_peers"
        | "admin_peerCount" => 0,
        "eth_sendRawTransaction"
        | "eth_getTransactionByHash"
        | "eth_getTransactionReceipt"
        | "eth_getBlockReceipts"
        | "eth_getBlockTransactionCountByNumber"
        | "eth_getBlockTransactionCountByHash"
        | "eth_getUncleCountByBlockNumber"
        | "eth_getUncleCountByBlockHash"
        | "eth_getLogs"
        | "eth_newFilter"
        | "eth_getFilterChanges"
        | "eth_getFilterLogs"
        | "eth_uninstallFilter"
        | "eth_unsubscribe"
        | "web3_sha3"
        | "koma_getFinality"
        | "koma_getBlockSeal"
        | "koma_producers"
        | "koma_getCheckpoint"
        | "koma_getBlockProof"
        | "koma_getDeposit"
        | "admin_addPeer"
        | "admin_blockPeer"
        | "admin_unblockPeer" => 1,
        "eth_getBalance"
        | "eth_getTransactionCount"
        | "eth_getCode"
        | "eth_getTransactionByBlockHashAndIndex"
        | "eth_getTransactionByBlockNumberAndIndex"
        | "eth_getBlockByNumber"
        | "eth_getBlockByHash"
        | "eth_subscribe"
        | "koma_calcMoM"
        | "koma_getWithdrawalProof" => 2,
        "eth_feeHistory" | "eth_getStorageAt" | "eth_call" | "eth_estimateGas" => 3,
        _ => return None,
    })
}

/// Counts the elements of a JSON array without keeping any; `None` if `json` is no
/// array.
fn array_len(json: &str) -> Option<usize> {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0usize;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                n = n.saturating_add(1);
            }
            Ok(n)
        }
    }
    serde_json::Deserializer::from_str(json)
        .deserialize_seq(Count)
        .ok()
}

/// geth's checks of the parameter list of `method`.
pub fn check_params(method: &str, params: Option<&str>) -> Result<(), ErrorObjectOwned> {
    let Some(max) = max_params(method) else {
        return Ok(());
    };
    let Some(params) = params.map(str::trim).filter(|p| *p != "null") else {
        return Ok(());
    };
    match array_len(params) {
        None => Err(ErrorObjectOwned::owned(
            INVALID_PARAMS,
            "non-array args",
            None::<()>,
        )),
        Some(n) if n > max => Err(ErrorObjectOwned::owned(
            INVALID_PARAMS,
            format!("too many arguments, want at most {max}"),
            None::<()>,
        )),
        Some(_) => Ok(()),
    }
}

/// geth's text for an unknown method.
pub fn method_not_found(method: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        METHOD_NOT_FOUND,
        format!("the method {method} does not exist/is not available"),
        None::<()>,
    )
}

/// The middleware; one per connection (it holds nothing but the next service).
#[derive(Debug, Clone)]
pub struct Guard<S> {
    inner: S,
    max_response_bytes: usize,
    /// Calls and latency by method (every call, batched or not, once).
    metrics: koma_metrics::RpcMetrics,
}

impl<S> Guard<S> {
    pub fn new(inner: S, max_response_bytes: usize, metrics: koma_metrics::RpcMetrics) -> Self {
        Self {
            inner,
            max_response_bytes,
            metrics,
        }
    }
}

impl<S> RpcServiceT for Guard<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            NotificationResponse = MethodResponse,
            BatchResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        let metrics = self.metrics.clone();
        async move {
            let started = std::time::Instant::now();
            let method = request.method_name().to_string();
            let id = request.id();
            let response = match check_params(
                request.method_name(),
                request.params.as_deref().map(|p| p.get()),
            ) {
                Err(e) => MethodResponse::error(id, e),
                Ok(()) => {
                    let response = inner.call(request).await;
                    if response.as_error_code() == Some(METHOD_NOT_FOUND) {
                        MethodResponse::error(id, method_not_found(&method))
                    } else {
                        response
                    }
                }
            };
            metrics.record(
                &method,
                started.elapsed().as_secs_f64(),
                response.is_error(),
            );
            response
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            let mut answers = BatchResponseBuilder::new_with_limit(this.max_response_bytes);
            let mut notified = false;
            for entry in batch.into_iter() {
                let answer = match entry {
                    Ok(BatchEntry::Call(request)) => this.call(request).await,
                    Ok(BatchEntry::Notification(n)) => {
                        notified = true;
                        this.notification(n).await;
                        continue;
                    }
                    Err(e) => {
                        let (error, id) = e.into_parts();
                        MethodResponse::error(id, error)
                    }
                };
                if let Err(too_big) = answers.append(answer) {
                    return too_big;
                }
            }
            if answers.is_empty() && notified {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(answers.finish())
            }
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            // Like geth, a notification is executed; only its answer is dropped.
            let request = Request {
                jsonrpc: TwoPointZero,
                id: Id::Null,
                method: n.method,
                params: n.params,
                extensions: n.extensions,
            };
            let _ = this.call(request).await;
            MethodResponse::notification()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surplus_parameters_are_refused_like_geth() {
        assert!(check_params("eth_chainId", None).is_ok());
        assert!(check_params("eth_chainId", Some("[]")).is_ok());
        assert!(check_params("eth_chainId", Some("null")).is_ok());
        let e = check_params("eth_chainId", Some("[1]")).unwrap_err();
        assert_eq!(e.code(), -32602);
        assert_eq!(e.message(), "too many arguments, want at most 0");
        assert!(check_params("eth_getBalance", Some(r#"["0x00", "latest"]"#)).is_ok());
        let e = check_params(
            "eth_getBalance",
            Some(r#"["0x00", "latest", {"a": [1, 2]}]"#),
        )
        .unwrap_err();
        assert_eq!(e.message(), "too many arguments, want at most 2");
        let e = check_params("eth_getBalance", Some(r#"{"address": "0x00"}"#)).unwrap_err();
        assert_eq!((e.code(), e.message()), (-32602, "non-array args"));
        // Unknown methods are left to the router.
        assert!(check_params("eth_nope", Some("[1,2,3,4,5]")).is_ok());
        // Deep nesting is skipped without recursing.
        let deep = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        assert!(check_params("eth_getBalance", Some(&deep)).is_ok());
        // A long list is counted, not collected.
        let long = format!("[{}0]", "0,".repeat(1_000_000));
        assert!(check_params("eth_call", Some(&long)).is_err());
    }

    #[test]
    fn unknown_methods_get_geths_text() {
        let e = method_not_found("eth_foo");
        assert_eq!(e.code(), -32601);
        assert_eq!(
            e.message(),
            "the method eth_foo does not exist/is not available"
        );
    }
}
