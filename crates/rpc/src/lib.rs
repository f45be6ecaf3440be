//! KOMA's JSON-RPC server (jsonrpsee): HTTP and WebSocket on one port.
//!
//! Namespaces: `eth_*` (state, blocks, transactions, receipts, logs, filters,
//! subscriptions, fees, calls), `net_*`, `web3_*`, `txpool_*`, and `admin_*` when the
//! operator enables it — see `docs/rpc.md`.
//! Handlers read storage directly (RocksDB is safe to share) and hand transactions to
//! the pool; new blocks arrive as [`ChainEvent`](koma_storage::ChainEvent)s on a broadcast channel and feed the
//! `newHeads` / `logs` subscriptions.
//!
//! Errors carry the codes and texts Ethereum clients expect (geth's): -32700 parse
//! error, -32600 invalid request, -32601 unknown method, -32602 invalid params, -32000
//! for transaction and state errors, 3 for a revert (with the revert data), -32005 for
//! limits.
//!
//! Protection of the node, which shares its async workers with block production,
//! import and consensus:
//! - storage- and CPU-heavy handlers run on a bounded blocking pool (`blocking.rs`),
//!   at most [`ApiConfig::max_blocking_tasks`] at once;
//! - every size a client chooses is bounded before anything is allocated for it
//!   (request body, batch, parameter lists, filters, fee history, log queries, pool
//!   content);
//! - a request reads one consistent snapshot of the chain;
//! - bound to 127.0.0.1 unless configured; request size, batch size, connection and
//!   subscription limits are always on.

// Input from RPC clients must never crash the node: no unwrap/expect/panic, no
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

mod api;
mod backend;
mod blocking;
mod convert;
mod envelope;
pub mod error;
mod filters;
mod finality;
mod http;
mod middleware;
mod p2p;
mod params;
mod state;
#[cfg(test)]
mod tests;

pub use api::{
    BlockSeal, DepositStatus, EthApiServer, KomaApi, KomaChainApiServer, NetApiServer,
    TxpoolApiServer, Web3ApiServer, WithdrawalFields, WithdrawalProof, event_logs,
};
pub use backend::{
    CheckpointApi, CheckpointInfo, ConsensusApi, DepositsApi, FinalBlock, NetworkApi, NodeInfo,
    ProducerReplacement, ProducersApi, SpanProducers, ThresholdStatus, ValidatorStatus,
};
pub use convert::{RpcReceipt, rpc_block, rpc_header, rpc_receipts, rpc_transaction};
pub use filters::FilterStore;
pub use finality::{KomaConsensus, KomaConsensusApiServer};
pub use p2p::{Admin, AdminApiServer};
pub use state::{ApiConfig, CheckpointTrees, FinalizedTag, RpcState, StateAt};

use jsonrpsee::RpcModule;
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// Server limits and exposure.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub addr: SocketAddr,
    /// Allowed CORS origins; `None` disables CORS headers, `["*"]` allows any.
    pub cors: Option<Vec<String>>,
    /// Largest HTTP request body or WebSocket message (413 / -32600 beyond).
    pub max_request_bytes: u32,
    /// Largest response (-32008 beyond).
    pub max_response_bytes: u32,
    /// Open connections (HTTP and WebSocket) at once.
    pub max_connections: u32,
    /// Most calls in one batch (-32600 `batch too large` beyond).
    pub max_batch: u32,
    pub max_subscriptions_per_connection: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8545)),
            cors: None,
            max_request_bytes: 5 * 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
            max_connections: 1_000,
            max_batch: 1_000,
            max_subscriptions_per_connection: 1_024,
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum RpcServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("rpc module: {0}")]
    Module(String),
}

/// All namespaces in one module.
pub fn module(state: Arc<RpcState>) -> Result<RpcModule<()>, RpcServerError> {
    let admin = if state.config.admin {
        Admin::new(&state)
    } else {
        None
    };
    let koma = KomaConsensus::new(state.clone());
    let api = KomaApi::new(state);
    let mut m = RpcModule::new(());
    let err = |e: jsonrpsee::core::RegisterMethodError| RpcServerError::Module(e.to_string());
    if let Some(koma) = koma {
        m.merge(KomaConsensusApiServer::into_rpc(koma))
            .map_err(|e| RpcServerError::Module(e.to_string()))?;
    }
    if let Some(admin) = admin {
        m.merge(AdminApiServer::into_rpc(admin)).map_err(err)?;
    }
    m.merge(EthApiServer::into_rpc(api.clone())).map_err(err)?;
    m.merge(KomaChainApiServer::into_rpc(api.clone()))
        .map_err(err)?;
    m.merge(NetApiServer::into_rpc(api.clone())).map_err(err)?;
    m.merge(Web3ApiServer::into_rpc(api.clone())).map_err(err)?;
    m.merge(TxpoolApiServer::into_rpc(api)).map_err(err)?;
    Ok(m)
}

/// Starts HTTP + WS on `settings.addr`; returns the bound address and the handle
/// that stops the server.
pub async fn start(
    state: Arc<RpcState>,
    settings: &ServerSettings,
) -> Result<(SocketAddr, ServerHandle), RpcServerError> {
    let cors = settings.cors.as_ref().map(|origins| {
        let layer = CorsLayer::new().allow_methods(Any).allow_headers(Any);
        if origins.iter().any(|o| o == "*") {
            layer.allow_origin(Any)
        } else {
            let list = origins
                .iter()
                .filter_map(|o| o.parse().ok())
                .collect::<Vec<_>>();
            layer.allow_origin(AllowOrigin::list(list))
        }
    });
    let middleware = tower::ServiceBuilder::new()
        .option_layer(cors)
        .layer(http::DrainBodyLayer {
            limit: settings.max_request_bytes as usize,
            max_batch: settings.max_batch as usize,
        });
    let max_response_bytes = settings.max_response_bytes as usize;
    let module = module(state)?;
    let rpc_metrics = koma_metrics::RpcMetrics::new(module.method_names());
    let rpc_middleware =
        jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer_fn(move |service| {
            middleware::Guard::new(service, max_response_bytes, rpc_metrics.clone())
        });
    // An HTTP batch whose calls carry ids jsonrpsee cannot echo is forwarded with
    // numeric ids, a few bytes longer per call than the client sent (the HTTP layer
    // enforces `max_request_bytes` on what the client sent).
    let rewrite_room = settings.max_batch.saturating_mul(32);
    let config = ServerConfig::builder()
        .max_request_body_size(settings.max_request_bytes.saturating_add(rewrite_room))
        .max_response_body_size(settings.max_response_bytes)
        .max_connections(settings.max_connections)
        .max_subscriptions_per_connection(settings.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(settings.max_batch))
        .set_id_provider(http::HexIdProvider)
        .build();
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .set_rpc_middleware(rpc_middleware)
        .build(settings.addr)
        .await
        .map_err(|source| RpcServerError::Bind {
            addr: settings.addr,
            source,
        })?;
    let addr = server.local_addr().map_err(|source| RpcServerError::Bind {
        addr: settings.addr,
        source,
    })?;
    let handle = server.start(module);
    Ok((addr, handle))
}
