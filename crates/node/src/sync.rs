//! Catching up with peers: ask every peer for its head ([`SyncRequest::Status`]), and
//! while one has a heavier chain, find the common ancestor (headers by range, walking
//! back no deeper than the reorg bound), then fetch the blocks after it in batches and
//! import them through fork choice. Progress feeds `eth_syncing` and a log line; while
//! far behind, the node does not produce.

use crate::chain::ChainWriter;
use alloy::consensus::Header;
use alloy_rlp::Decodable;
use koma_network::{
    ChainStatus, MAX_SYNC_ITEMS, Misbehaviour, NetworkError, NetworkHandle, PeerId, SyncRequest,
    SyncResponse,
};
use koma_primitives::Block;
use koma_primitives::SyncProgress;
use koma_producer::ImportError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Blocks per range request (the server trims big blocks to its response size limit).
const BLOCK_BATCH: u64 = 128;
/// Headers per request while looking for the common ancestor.
const HEADER_BATCH: u64 = 128;
/// Behind by more than this many blocks counts as syncing (no producing, `eth_syncing`).
const SYNCING_GAP: u64 = 2;
/// How often peers are asked for their head.
const STATUS_INTERVAL: Duration = Duration::from_secs(2);

/// Shared view of the sync for RPC and the producer.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    syncing: AtomicBool,
    progress: Mutex<Option<SyncProgress>>,
}

impl SyncState {
    pub fn is_syncing(&self) -> bool {
        self.syncing.load(Ordering::Relaxed)
    }
    pub fn progress(&self) -> Option<SyncProgress> {
        *self.progress.lock()
    }
    fn set(&self, progress: Option<SyncProgress>) {
        self.syncing.store(progress.is_some(), Ordering::Relaxed);
        *self.progress.lock() = progress;
    }
}

/// What the rest of the node tells the sync driver.
#[derive(Debug)]
pub(crate) enum SyncHint {
    Connected(PeerId),
    Disconnected(PeerId),
    /// The peer sent a block whose parent we do not have.
    Behind(PeerId),
}

#[derive(Debug, thiserror::Error)]
enum SyncFailure {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error("peer misbehaved: {0}")]
    Peer(&'static str),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Storage(#[from] koma_storage::StorageError),
    #[error("no common ancestor within the last {0} blocks")]
    NoAncestor(u64),
}

pub(crate) struct Syncer {
    pub chain: Arc<ChainWriter>,
    pub net: NetworkHandle,
    pub state: Arc<SyncState>,
    pub peers: HashMap<PeerId, ChainStatus>,
}

impl Syncer {
    pub async fn run(
        mut self,
        mut hints: mpsc::Receiver<SyncHint>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut poll = tokio::time::interval(STATUS_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    let peers = self.net.peers();
                    self.peers.retain(|p, _| peers.contains(p));
                    for peer in peers {
                        self.refresh(peer).await;
                    }
                }
                hint = hints.recv() => match hint {
                    Some(SyncHint::Connected(peer) | SyncHint::Behind(peer)) => self.refresh(peer).await,
                    Some(SyncHint::Disconnected(peer)) => { self.peers.remove(&peer); }
                    None => break,
                },
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            self.catch_up().await;
        }
        self.state.set(None);
    }

    async fn refresh(&mut self, peer: PeerId) {
        match self.net.request(peer, SyncRequest::Status).await {
            Ok(SyncResponse::Status(status)) => {
                self.peers.insert(peer, status);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(%peer, error = %e, "status request failed");
                self.peers.remove(&peer);
            }
        }
    }

    /// Syncs from the heaviest peer until no peer is heavier than us.
    async fn catch_up(&mut self) {
        loop {
            let head = self.chain.db.head();
            let our_td = self
                .chain
                .db
                .total_difficulty(head.hash)
                .ok()
                .flatten()
                .unwrap_or_default();
            // A peer whose head is stored here has nothing to send: fork choice
            // keeps a heavier branch aside while the validators build on another.
            let best = self
                .peers
                .iter()
                .filter(|(_, s)| s.total_difficulty > our_td)
                .filter(|(_, s)| !matches!(self.chain.db.header(s.hash), Ok(Some(_))))
                .max_by_key(|(_, s)| s.total_difficulty)
                .map(|(p, s)| (*p, *s));
            let Some((peer, status)) = best else {
                self.state.set(None);
                return;
            };
            // Whatever happens, ask again before trusting this status.
            self.peers.remove(&peer);
            if let Err(e) = self.sync_from(peer, status).await {
                tracing::warn!(%peer, error = %e, "sync from peer failed");
                if let SyncFailure::Peer(_) = e {
                    self.net.report(peer, Misbehaviour::InvalidResponse);
                }
                self.state.set(None);
                return;
            }
            self.refresh(peer).await;
        }
    }

    async fn sync_from(&self, peer: PeerId, status: ChainStatus) -> Result<(), SyncFailure> {
        let head = self.chain.db.head();
        let ancestor = self.common_ancestor(peer, &status).await?;
        let starting = head.number();
        let far = status.number > starting.saturating_add(SYNCING_GAP);
        if far {
            tracing::info!(%peer, from = ancestor.saturating_add(1), to = status.number, "syncing");
        }
        let progress = |current| SyncProgress {
            starting_block: starting,
            current_block: current,
            highest_block: status.number,
        };
        if far {
            self.state.set(Some(progress(starting)));
        }
        let started = Instant::now();
        let mut last_log = Instant::now();
        let mut next = ancestor.saturating_add(1);
        let mut imported = 0u64;
        let mut gas = 0u64;
        while next <= status.number {
            let count = status
                .number
                .saturating_sub(next)
                .saturating_add(1)
                .min(BLOCK_BATCH);
            let response = self
                .net
                .request(peer, SyncRequest::BlocksByRange { start: next, count })
                .await?;
            let SyncResponse::Blocks(items) = response else {
                return Err(SyncFailure::Peer("wrong response kind"));
            };
            if items.is_empty() {
                break;
            }
            let mut blocks = Vec::with_capacity(items.len());
            for raw in items {
                let Ok(block) = Block::decode(&mut raw.as_slice()) else {
                    self.net.report(peer, Misbehaviour::Undecodable);
                    return Err(SyncFailure::Peer("undecodable block"));
                };
                if block.header.number != next.saturating_add(blocks.len() as u64) {
                    return Err(SyncFailure::Peer("block out of range"));
                }
                if crate::net::is_from_future(&block.header) {
                    return Err(SyncFailure::Peer("block stamped in the future"));
                }
                gas = gas.saturating_add(block.header.gas_used);
                blocks.push(block);
            }
            let n = blocks.len() as u64;
            match self.chain.import_many(blocks).await {
                Ok(()) => {}
                Err(e) if e.is_invalid_block() => {
                    self.net.report(peer, Misbehaviour::InvalidBlock);
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
            next = next.saturating_add(n);
            imported = imported.saturating_add(n);
            let current = self.chain.db.head().number();
            if far {
                self.state.set(Some(progress(current)));
                if last_log.elapsed() >= Duration::from_secs(2) {
                    last_log = Instant::now();
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    tracing::info!(
                        current,
                        highest = status.number,
                        blocks_per_sec = format_args!("{:.0}", imported as f64 / secs),
                        mgas_per_sec = format_args!("{:.1}", gas as f64 / secs / 1e6),
                        "sync progress"
                    );
                }
            }
        }
        if far {
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            tracing::info!(
                head = self.chain.db.head().number(),
                imported,
                secs = format_args!("{secs:.1}"),
                blocks_per_sec = format_args!("{:.0}", imported as f64 / secs),
                mgas_per_sec = format_args!("{:.1}", gas as f64 / secs / 1e6),
                "sync finished"
            );
        }
        Ok(())
    }

    /// The highest block of the peer's canonical chain that we also have (canonical or
    /// side), looking back at most the reorg bound from our head.
    async fn common_ancestor(
        &self,
        peer: PeerId,
        status: &ChainStatus,
    ) -> Result<u64, SyncFailure> {
        let ours = self.chain.db.head().number();
        let floor = ours.saturating_sub(self.chain.max_reorg_depth);
        let mut top = ours.min(status.number);
        loop {
            let start = top.saturating_sub(HEADER_BATCH - 1).max(floor);
            let count = top
                .saturating_sub(start)
                .saturating_add(1)
                .min(MAX_SYNC_ITEMS);
            let response = self
                .net
                .request(peer, SyncRequest::HeadersByRange { start, count })
                .await?;
            let SyncResponse::Headers(items) = response else {
                return Err(SyncFailure::Peer("wrong response kind"));
            };
            if items.is_empty() {
                return Err(SyncFailure::Peer("no headers for its own chain"));
            }
            for (i, raw) in items.iter().enumerate().rev() {
                let header = Header::decode(&mut raw.as_slice())
                    .map_err(|_| SyncFailure::Peer("undecodable header"))?;
                if header.number != start.saturating_add(i as u64) {
                    return Err(SyncFailure::Peer("header out of range"));
                }
                if self.chain.db.header(header.hash_slow())?.is_some() {
                    return Ok(header.number);
                }
            }
            if start <= floor {
                return Err(SyncFailure::NoAncestor(self.chain.max_reorg_depth));
            }
            top = start.saturating_sub(1);
        }
    }
}
