//! `eth_subscribe`: `newHeads`, `logs`, `newPendingTransactions`, `finalized` and
//! `checkpoints`.
//!
//! Each subscription is one task that forwards chain events to its socket; the `logs`
//! filter is bounded like `eth_getLogs`'s, and jsonrpsee bounds the subscriptions per
//! connection.

use super::KomaApi;
use crate::convert::{rpc_header, rpc_receipts, rpc_transaction};
use crate::error::invalid_params;
use crate::params::LogFilter;
use alloy::rpc::types::{Filter, Header as RpcHeader, Log};
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage};
use koma_storage::ChainEvent;
use serde_json::value::RawValue;
use tokio::sync::broadcast::error::RecvError;

impl KomaApi {
    pub(super) async fn subscribe_to(
        &self,
        pending: PendingSubscriptionSink,
        kind: &str,
        params: Option<Box<RawValue>>,
    ) -> SubscriptionResult {
        match kind {
            "finalized" => {
                let sink = pending.accept().await?;
                tokio::spawn(forward(sink, self.state.finalized.subscribe()));
                Ok(())
            }
            "checkpoints" => {
                let Some(checkpoints) = &self.state.checkpoints else {
                    pending
                        .reject(crate::error::server(
                            "this node follows no L1 (start it with --l1-rpc and --l1-contracts)",
                        ))
                        .await;
                    return Ok(());
                };
                let rx = checkpoints.subscribe();
                let sink = pending.accept().await?;
                tokio::spawn(forward(sink, rx));
                Ok(())
            }
            "newHeads" => {
                let sink = pending.accept().await?;
                let mut rx = self.state.events.subscribe();
                tokio::spawn(async move {
                    loop {
                        let ev = match rx.recv().await {
                            Ok(ev) => ev,
                            Err(RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        };
                        if ev.removed {
                            continue;
                        }
                        let header: RpcHeader = rpc_header(&ev.header, None);
                        let Ok(msg) = SubscriptionMessage::new(
                            sink.method_name(),
                            sink.subscription_id(),
                            &header,
                        ) else {
                            break;
                        };
                        if sink.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
                Ok(())
            }
            "logs" => {
                let filter = match params.as_deref().map(|p| p.get()) {
                    None | Some("null") => Ok(Filter::default()),
                    Some(p) => serde_json::from_str::<LogFilter>(p)
                        .map_err(|e| invalid_params(format!("invalid logs filter: {e}")))
                        .and_then(LogFilter::into_filter),
                };
                let filter = match filter {
                    Ok(f) => f,
                    Err(e) => {
                        pending.reject(e).await;
                        return Ok(());
                    }
                };
                let sink = pending.accept().await?;
                let mut rx = self.state.events.subscribe();
                tokio::spawn(async move {
                    loop {
                        let ev = match rx.recv().await {
                            Ok(ev) => ev,
                            Err(RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        };
                        for log in event_logs(&ev, &filter) {
                            let Ok(msg) = SubscriptionMessage::new(
                                sink.method_name(),
                                sink.subscription_id(),
                                &log,
                            ) else {
                                return;
                            };
                            if sink.send(msg).await.is_err() {
                                return;
                            }
                        }
                    }
                });
                Ok(())
            }
            "newPendingTransactions" => {
                let full = params.as_deref().is_some_and(|p| p.get().trim() == "true");
                let sink = pending.accept().await?;
                let mut rx = self.state.pool.subscribe();
                let pool = self.state.pool.clone();
                tokio::spawn(async move {
                    loop {
                        let hash = match rx.recv().await {
                            Ok(h) => h,
                            Err(RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        };
                        let msg = if full {
                            let Some(p) = pool.get(&hash) else { continue };
                            SubscriptionMessage::new(
                                sink.method_name(),
                                sink.subscription_id(),
                                &rpc_transaction(&p.tx, p.sender, None),
                            )
                        } else {
                            SubscriptionMessage::new(
                                sink.method_name(),
                                sink.subscription_id(),
                                &hash,
                            )
                        };
                        let Ok(msg) = msg else { break };
                        if sink.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
                Ok(())
            }
            other => {
                pending
                    .reject(invalid_params(format!(
                        "unsupported subscription type: {other}"
                    )))
                    .await;
                Ok(())
            }
        }
    }
}

/// Logs of a chain event that match `filter`, flagged `removed` for reorged blocks.
pub fn event_logs(ev: &ChainEvent, filter: &Filter) -> Vec<Log> {
    if !filter.matches_bloom(ev.header.header.logs_bloom) {
        return Vec::new();
    }
    rpc_receipts(&ev.header, &ev.body, &ev.receipts)
        .into_iter()
        .flat_map(|r| r.inner.logs().to_vec())
        .filter(|l| filter.matches(&l.inner))
        .map(|mut l| {
            l.removed = ev.removed;
            l
        })
        .collect()
}

/// Sends each item of `rx` to `sink` until either closes (a lagging subscriber skips
/// what it missed).
async fn forward<T: Clone + serde::Serialize>(
    sink: jsonrpsee::SubscriptionSink,
    mut rx: tokio::sync::broadcast::Receiver<T>,
) {
    loop {
        let item = match rx.recv().await {
            Ok(item) => item,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        };
        let Ok(msg) = SubscriptionMessage::new(sink.method_name(), sink.subscription_id(), &item)
        else {
            break;
        };
        if sink.send(msg).await.is_err() {
            break;
        }
    }
}
