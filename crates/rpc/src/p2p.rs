//! The `admin_*` namespace over the node's peer-to-peer side (off unless the operator
//! enables it).

use crate::backend::{NetworkApi, NodeInfo};
use crate::error::invalid_params;
use crate::state::RpcState;
use alloy_primitives::U64;
use jsonrpsee::core::{RpcResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use std::sync::Arc;

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
