//! What the RPC server needs from the node's peer-to-peer side, and the `admin_*`
//! namespace (off unless the operator enables it).

use crate::error::invalid_params;
use crate::state::RpcState;
use alloy_primitives::{Bytes, U64};
use futures::future::BoxFuture;
use jsonrpsee::core::{RpcResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use koma_primitives::SyncProgress;
use serde::Serialize;
use std::sync::Arc;

/// `admin_nodeInfo`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// libp2p peer id.
    pub id: String,
    /// Addresses other nodes can put in `--bootnodes` (`.../p2p/<id>`).
    pub listen_addrs: Vec<String>,
}

/// The network as the RPC handlers see it. Implemented by the node.
pub trait NetworkApi: Send + Sync + std::fmt::Debug {
    fn peer_count(&self) -> usize;
    /// `None` when the node is at the head of its peers' chain.
    fn sync_progress(&self) -> Option<SyncProgress>;
    /// A transaction the pool accepted over RPC: announce it to peers.
    fn broadcast_transaction(&self, raw: Bytes);
    fn node_info(&self) -> NodeInfo;
    fn peers(&self) -> Vec<String>;
    /// Dials `addr` (a multiaddr, ideally ending in `/p2p/<id>`).
    fn add_peer(&self, addr: String) -> BoxFuture<'static, Result<(), String>>;
    /// Disconnects and refuses `peer` (or lifts that) until told otherwise.
    fn set_blocked(&self, peer: String, blocked: bool) -> BoxFuture<'static, Result<(), String>>;
}

#[rpc(server, namespace = "admin")]
pub trait AdminApi {
    #[method(name = "nodeInfo")]
    fn node_info(&self) -> RpcResult<NodeInfo>;
    #[method(name = "peers")]
    fn peers(&self) -> RpcResult<Vec<String>>;
    #[method(name = "peerCount")]
    fn peer_count(&self) -> RpcResult<U64>;
    #[method(name = "addPeer")]
    async fn add_peer(&self, addr: String) -> RpcResult<bool>;
    #[method(name = "blockPeer")]
    async fn block_peer(&self, peer: String) -> RpcResult<bool>;
    #[method(name = "unblockPeer")]
    async fn unblock_peer(&self, peer: String) -> RpcResult<bool>;
}

/// The `admin_*` handlers.
#[derive(Debug, Clone)]
pub struct Admin {
    network: Arc<dyn NetworkApi>,
}

impl Admin {
    pub fn new(state: &RpcState) -> Option<Self> {
        state.network.clone().map(|network| Self { network })
    }
}

#[async_trait]
impl AdminApiServer for Admin {
    fn node_info(&self) -> RpcResult<NodeInfo> {
        Ok(self.network.node_info())
    }
    fn peers(&self) -> RpcResult<Vec<String>> {
        Ok(self.network.peers())
    }
    fn peer_count(&self) -> RpcResult<U64> {
        Ok(U64::from(self.network.peer_count()))
    }
    async fn add_peer(&self, addr: String) -> RpcResult<bool> {
        self.network.add_peer(addr).await.map_err(invalid_params)?;
        Ok(true)
    }
    async fn block_peer(&self, peer: String) -> RpcResult<bool> {
        self.network
            .set_blocked(peer, true)
            .await
            .map_err(invalid_params)?;
        Ok(true)
    }
    async fn unblock_peer(&self, peer: String) -> RpcResult<bool> {
        self.network
            .set_blocked(peer, false)
            .await
            .map_err(invalid_params)?;
        Ok(true)
    }
}
