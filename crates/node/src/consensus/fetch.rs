//! Fetching from peers: missing units of the DAG, and the L2 blocks (with their
//! branch) that proposals name.

use super::ConsensusInput;
use super::codec::ConsensusMessage;
use super::task::ConsensusTask;
use crate::chain::ChainWriter;
use alloy_primitives::B256;
use koma_consensus::SignedUnit;
use koma_network::{Misbehaviour, NetworkHandle, PeerId, SyncRequest, SyncResponse};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Most blocks fetched back from a proposed block to one this node has.
const MAX_VALUE_BRANCH: usize = 1024;

/// Fetches block `value` and its ancestors back to a stored block, then imports them
/// oldest first. Returns how many were imported (0: `value` is here already).
async fn fetch_branch(
    chain: &Arc<ChainWriter>,
    net: &NetworkHandle,
    value: B256,
    from: Option<PeerId>,
) -> Result<usize, String> {
    use alloy_rlp::Decodable;
    let mut peers = net.peers();
    if let Some(f) = from {
        peers.retain(|p| *p != f);
        peers.insert(0, f);
    }
    let mut branch: Vec<koma_primitives::Block> = Vec::new();
    let mut next = value;
    while chain.db.header(next).map_err(|e| e.to_string())?.is_none() {
        if branch.len() >= MAX_VALUE_BRANCH.min(chain.max_reorg_depth as usize) {
            return Err(format!("no stored ancestor within {} blocks", branch.len()));
        }
        let mut found = None;
        for peer in &peers {
            let Ok(SyncResponse::Blocks(items)) =
                net.request(*peer, SyncRequest::BlockByHash(next)).await
            else {
                continue;
            };
            let Some(raw) = items.first() else { continue };
            match koma_primitives::Block::decode(&mut raw.as_slice()) {
                Ok(block) if block.header.hash_slow() == next => {
                    found = Some(block);
                    break;
                }
                _ => net.report(*peer, Misbehaviour::InvalidResponse),
            }
        }
        let block = found.ok_or_else(|| format!("no peer has block {next}"))?;
        next = block.header.parent_hash;
        branch.push(block);
    }
    let count = branch.len();
    for block in branch.into_iter().rev() {
        match chain.import_async(block).await {
            Ok(_) => {}
            // Stored as a side block even though fork choice may not switch to it
            // (e.g. heavier, but below the final block): that is all a proposal needs.
            Err(koma_producer::ImportError::ReorgTooDeep { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(count)
}

impl ConsensusTask {
    /// A proposal names an L2 block this node does not have (typically one of a
    /// branch its fork choice left, e.g. the other side's during a partition):
    /// fetches it and its missing ancestors from peers (first the one that sent the
    /// proposal), imports them through fork choice (stored as a side branch unless
    /// heavier), then has the core check the waiting proposals again.
    pub(super) fn fetch_value(&self, value: B256, from: Option<PeerId>) {
        let Some(net) = self.net.clone() else { return };
        if !self.fetching.lock().insert(value) {
            return;
        }
        let chain = self.chain.clone();
        let input = self.input.clone();
        let fetching = self.fetching.clone();
        tokio::spawn(async move {
            let result = fetch_branch(&chain, &net, value, from).await;
            fetching.lock().remove(&value);
            match result {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(%value, blocks = n, "fetched the branch of a proposed block");
                    let _ = input.send(ConsensusInput::ValuesArrived).await;
                }
                Err(e) => tracing::debug!(%value, error = %e, "cannot fetch a proposed block yet"),
            }
        });
    }

    /// Feeds units a peer sent back into the task.
    async fn feed(input: &mpsc::Sender<ConsensusInput>, items: Vec<Vec<u8>>, peer: PeerId) {
        for raw in items {
            if let Ok(unit) = SignedUnit::from_bytes(&raw) {
                let message = ConsensusInput::Message {
                    message: ConsensusMessage::Unit(unit),
                    from: Some(peer),
                    validation: None,
                };
                let _ = input.send(message).await;
            }
        }
    }

    /// Fetches missing units, in one request per batch, from the peer that sent us
    /// their dependent (or else another peer). Their own missing dependencies come
    /// back as the next batch, so catching up on the DAG takes one round trip per
    /// layer of units missed.
    pub(super) fn request(&self, hashes: Vec<B256>, from: Option<PeerId>) {
        let Some(net) = self.net.clone() else { return };
        let input = self.input.clone();
        tokio::spawn(async move {
            let mut peers = net.peers();
            if let Some(f) = from {
                peers.retain(|p| *p != f);
                peers.insert(0, f);
            }
            for chunk in hashes.chunks(koma_network::MAX_SYNC_ITEMS as usize) {
                for peer in peers.iter().take(3) {
                    let Ok(SyncResponse::Units(items)) =
                        net.request(*peer, SyncRequest::Units(chunk.to_vec())).await
                    else {
                        continue;
                    };
                    if items.is_empty() {
                        continue;
                    }
                    Self::feed(&input, items, *peer).await;
                    break;
                }
            }
        });
    }

    /// This node is behind (it saw units of a later era): asks a few peers for the
    /// latest units of its current era, whose dependencies then follow by request.
    pub(super) fn request_latest(&self, instance: B256) {
        let Some(net) = self.net.clone() else { return };
        let input = self.input.clone();
        tokio::spawn(async move {
            for peer in net.peers().into_iter().take(3) {
                if let Ok(SyncResponse::Units(items)) =
                    net.request(peer, SyncRequest::LatestUnits(instance)).await
                {
                    Self::feed(&input, items, peer).await;
                }
            }
        });
    }
}
