//! The node's side of the peer-to-peer network: gossip in (blocks to fork choice,
//! transactions to the pool, each forwarded only once valid), gossip out (produced
//! blocks, transactions received over RPC, batched), and answers to sync requests from
//! storage.

use crate::chain::ChainWriter;
use crate::sync::{SyncHint, SyncState};
use alloy_primitives::Bytes;
use alloy_rlp::{Decodable, Encodable};
use futures::future::BoxFuture;
use koma_network::{
    ChainStatus, GossipValidation, Misbehaviour, Multiaddr, NetworkEvent, NetworkHandle, PeerId,
    SyncError, SyncRequest, SyncResponder, SyncResponse, Topic,
};
use koma_primitives::Block;
use koma_primitives::SyncProgress;
use koma_producer::block_from;
use koma_producer::{ImportError, ImportOutcome};
use koma_rpc::{NetworkApi, NodeInfo};
use koma_storage::Database;
use koma_txpool::PoolStateView;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Blocks stamped further ahead of our clock than this are not accepted from gossip.
const MAX_FUTURE_DRIFT_MS: u64 = 3_000;
/// How long RPC transactions are collected before they are gossiped as one message.
const TX_BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Largest transaction batch message (below the network's transaction topic limit).
const TX_BATCH_BYTES: usize = 96 * 1024;
/// Gossip blocks waiting for import; beyond this they are dropped (sync catches up).
const BLOCK_QUEUE: usize = 256;
/// Transaction batches waiting for the pool.
const TX_QUEUE: usize = 1024;
/// Most bytes of blocks read for one range request (the service trims to its own limit).
const MAX_SERVE_BYTES: usize = 16 * 1024 * 1024;

/// Whether a header is stamped further ahead of the local clock than the allowed drift.
pub(crate) fn is_from_future(header: &alloy::consensus::Header) -> bool {
    header.timestamp.saturating_mul(1000)
        > crate::clock::unix_now_ms().saturating_add(MAX_FUTURE_DRIFT_MS)
}

/// The RPC server's view of the network.
#[derive(Debug)]
pub(crate) struct RpcNetwork {
    pub handle: NetworkHandle,
    pub sync: Arc<SyncState>,
    pub txs: mpsc::Sender<Bytes>,
}

impl NetworkApi for RpcNetwork {
    fn peer_count(&self) -> usize {
        self.handle.peers().len()
    }
    fn sync_progress(&self) -> Option<SyncProgress> {
        self.sync.progress()
    }
    fn broadcast_transaction(&self, raw: Bytes) {
        if self.txs.try_send(raw).is_err() {
            tracing::debug!("transaction broadcast queue full; peers get it from the block");
        }
    }
    fn node_info(&self) -> NodeInfo {
        NodeInfo {
            id: self.handle.local_peer_id().to_string(),
            listen_addrs: self
                .handle
                .bootnode_addrs()
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
    fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self
            .handle
            .peers()
            .iter()
            .map(ToString::to_string)
            .collect();
        peers.sort();
        peers
    }
    fn add_peer(&self, addr: String) -> BoxFuture<'static, Result<(), String>> {
        let handle = self.handle.clone();
        Box::pin(async move {
            let addr: Multiaddr = addr
                .parse()
                .map_err(|e| format!("invalid multiaddr: {e}"))?;
            handle.dial(addr).await.map_err(|e| e.to_string())
        })
    }
    fn set_blocked(&self, peer: String, blocked: bool) -> BoxFuture<'static, Result<(), String>> {
        let handle = self.handle.clone();
        Box::pin(async move {
            let peer: PeerId = peer.parse().map_err(|e| format!("invalid peer id: {e}"))?;
            let result = if blocked {
                handle.block_peer(peer).await
            } else {
                handle.unblock_peer(peer).await
            };
            result.map_err(|e| e.to_string())
        })
    }
}

/// Everything the network tasks share.
#[derive(Clone)]
pub(crate) struct NetContext {
    pub chain: Arc<ChainWriter>,
    pub handle: NetworkHandle,
    pub hints: mpsc::Sender<SyncHint>,
    /// KoMaBFT: units to answer requests with, and the task's input.
    pub consensus: Option<(
        Arc<crate::consensus::ConsensusView>,
        mpsc::Sender<crate::consensus::ConsensusInput>,
    )>,
    /// Checkpoint votes go to the checkpoint service (if it runs).
    pub checkpoint_votes: Option<mpsc::Sender<crate::checkpoint::GossipVote>>,
    /// Spawns the event loop's own long-lived workers (critical, like the loop).
    pub spawner: crate::tasks::TaskSpawner,
    /// Validates gossiped transactions at background priority.
    pub admission: koma_txpool::Admission,
}

struct GossipBlock {
    block: Block,
    from: PeerId,
    validation: GossipValidation,
}

struct GossipTxs {
    txs: Vec<Bytes>,
    from: PeerId,
    validation: GossipValidation,
}

/// Dispatches network events until the network stops or the node shuts down.
pub(crate) async fn event_loop(
    ctx: NetContext,
    mut events: mpsc::Receiver<NetworkEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let (block_tx, block_rx) = mpsc::channel(BLOCK_QUEUE);
    let (txs_tx, txs_rx) = mpsc::channel(TX_QUEUE);
    let importer = ctx
        .spawner
        .critical("gossip block import", import_blocks(ctx.clone(), block_rx));
    let pooler = ctx
        .spawner
        .critical("gossip transactions", pool_txs(ctx.clone(), txs_rx));
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = stop.changed() => break,
        };
        match event {
            NetworkEvent::Gossip {
                topic: Topic::Blocks,
                from,
                data,
                validation,
                ..
            } => {
                let Ok(block) = Block::decode(&mut data.as_slice()) else {
                    tracing::debug!(%from, "undecodable block gossip");
                    validation.reject();
                    ctx.handle.report(from, Misbehaviour::Undecodable);
                    continue;
                };
                if is_from_future(&block.header) {
                    tracing::debug!(%from, number = block.header.number, "block from the future ignored");
                    validation.ignore();
                    continue;
                }
                let item = GossipBlock {
                    block,
                    from,
                    validation,
                };
                if block_tx.try_send(item).is_err() {
                    tracing::debug!("block import queue full; dropping gossip");
                }
            }
            NetworkEvent::Gossip {
                topic: Topic::Txs,
                from,
                data,
                validation,
                ..
            } => {
                let Ok(txs) = Vec::<Bytes>::decode(&mut data.as_slice()) else {
                    validation.reject();
                    ctx.handle.report(from, Misbehaviour::Undecodable);
                    continue;
                };
                let item = GossipTxs {
                    txs,
                    from,
                    validation,
                };
                if txs_tx.try_send(item).is_err() {
                    tracing::debug!("transaction queue full; dropping gossip");
                }
            }
            NetworkEvent::Gossip {
                topic: Topic::Consensus,
                from,
                data,
                validation,
                ..
            } => {
                let Some((_, input)) = &ctx.consensus else {
                    validation.ignore();
                    continue;
                };
                let Ok(message) = crate::consensus::ConsensusMessage::decode(&data) else {
                    validation.reject();
                    ctx.handle.report(from, Misbehaviour::Undecodable);
                    continue;
                };
                let item = crate::consensus::ConsensusInput::Message {
                    message,
                    from: Some(from),
                    validation: Some(validation),
                };
                if input.try_send(item).is_err() {
                    tracing::debug!("consensus queue full; dropping gossip");
                }
            }
            NetworkEvent::Gossip {
                topic: Topic::Checkpoints,
                from,
                data,
                validation,
                ..
            } => {
                let Some(votes) = &ctx.checkpoint_votes else {
                    validation.ignore();
                    continue;
                };
                let item = crate::checkpoint::GossipVote {
                    data,
                    from,
                    validation,
                };
                if votes.try_send(item).is_err() {
                    tracing::debug!("checkpoint vote queue full; dropping gossip");
                }
            }
            NetworkEvent::Request {
                peer,
                request: SyncRequest::Units(hashes),
                responder,
            } => {
                let view = ctx.consensus.as_ref().map(|(view, _)| view.clone());
                tokio::spawn(async move {
                    // Read from storage on a blocking thread, not the event loop.
                    let items = tokio::task::spawn_blocking(move || {
                        view.map_or_else(Vec::new, |view| {
                            hashes.iter().filter_map(|h| view.unit_bytes(h)).collect()
                        })
                    })
                    .await
                    .unwrap_or_default();
                    if let Err(e) = responder.respond(SyncResponse::Units(items)).await {
                        tracing::debug!(%peer, error = %e, "unit response not sent");
                    }
                });
            }
            NetworkEvent::Request {
                peer,
                request: SyncRequest::LatestUnits(instance),
                responder,
            } => {
                let input = ctx.consensus.as_ref().map(|(_, input)| input.clone());
                tokio::spawn(async move {
                    let mut items = Vec::new();
                    if let Some(input) = input {
                        let (reply, answer) = tokio::sync::oneshot::channel();
                        let ask = crate::consensus::ConsensusInput::Latest { instance, reply };
                        if input.try_send(ask).is_ok() {
                            items = answer.await.unwrap_or_default();
                        }
                    }
                    if let Err(e) = responder.respond(SyncResponse::Units(items)).await {
                        tracing::debug!(%peer, error = %e, "unit response not sent");
                    }
                });
            }
            NetworkEvent::Request {
                peer,
                request,
                responder,
            } => {
                let db = ctx.chain.db.clone();
                tokio::spawn(serve(db, peer, request, responder));
            }
            NetworkEvent::PeerConnected(peer) => {
                tracing::debug!(%peer, "peer connected");
                let _ = ctx.hints.try_send(SyncHint::Connected(peer));
            }
            NetworkEvent::PeerDisconnected(peer) => {
                let _ = ctx.hints.try_send(SyncHint::Disconnected(peer));
            }
            NetworkEvent::PeerBanned(peer) => {
                tracing::warn!(%peer, "peer banned for misbehaviour");
            }
        }
    }
    importer.abort();
    pooler.abort();
}

/// Gossiped blocks held back until this node reads their deposit watermark or their
/// span's producer ranking on L1, or sees their deposits agreed, at most; the oldest
/// goes first (sync fetches it again if it is still needed).
const AWAITING_L1: usize = 64;

/// Whether a block waits for this node's L1 reading or finality to catch up.
fn waits_for_l1(result: &Result<(), ImportError>) -> bool {
    matches!(
        result,
        Err(ImportError::DepositNotSeen { .. }
            | ImportError::DepositNotAgreed { .. }
            | ImportError::ProducersNotRead { .. })
    )
}

async fn import_blocks(ctx: NetContext, mut queue: mpsc::Receiver<GossipBlock>) {
    let mut grew = ctx.chain.deposits.subscribe();
    let mut read = ctx.chain.stake.subscribe();
    let mut waiting: std::collections::VecDeque<(Block, PeerId)> = Default::default();
    loop {
        tokio::select! {
            next = queue.recv() => {
                let Some(GossipBlock { block, from, validation }) = next else { break };
                let checked = ctx.chain.check_held(&block);
                if waits_for_l1(&checked) {
                    if let Err(e) = checked {
                        tracing::debug!(number = block.header.number, error = %e, "block held back");
                    }
                    validation.ignore();
                    if waiting.len() >= AWAITING_L1 {
                        waiting.pop_front();
                    }
                    waiting.push_back((block, from));
                    continue;
                }
                match import_one(&ctx, block, from).await {
                    Some(true) => validation.accept(),
                    Some(false) => validation.reject(),
                    None => validation.ignore(),
                }
            }
            Ok(()) = async { tokio::select! { r = grew.changed() => r, r = read.changed() => r } }, if !waiting.is_empty() => {
                // deposits or a ranking were read, or deposits agreed: import what
                // waited on them, oldest first
                for (block, from) in std::mem::take(&mut waiting) {
                    if waits_for_l1(&ctx.chain.check_held(&block)) {
                        waiting.push_back((block, from));
                    } else {
                        import_one(&ctx, block, from).await;
                    }
                }
            }
        }
    }
}

/// Imports a block from peer `from`: `Some(true)` imported (to pass on), `Some(false)`
/// invalid (the peer is reported), `None` neither.
async fn import_one(ctx: &NetContext, block: Block, from: PeerId) -> Option<bool> {
    let number = block.header.number;
    match ctx.chain.import_async(block).await {
        Ok(ImportOutcome::AlreadyKnown) => None,
        Ok(outcome) => {
            if let ImportOutcome::Extended(h) = &outcome {
                tracing::info!(number = h.number(), hash = %h.hash, gas_used = h.header.gas_used, "imported block");
            }
            Some(true)
        }
        Err(ImportError::UnknownParent { .. }) => {
            let _ = ctx.hints.try_send(SyncHint::Behind(from));
            None
        }
        Err(e @ ImportError::DepositOmitted { .. }) => {
            tracing::warn!(%from, number, error = %e, "block not imported");
            None
        }
        Err(e) if e.is_invalid_block() => {
            tracing::warn!(%from, number, error = %e, "invalid block from peer");
            ctx.handle.report(from, Misbehaviour::InvalidBlock);
            Some(false)
        }
        Err(e) => {
            tracing::debug!(%from, number, error = %e, "block not imported");
            None
        }
    }
}

async fn pool_txs(ctx: NetContext, mut queue: mpsc::Receiver<GossipTxs>) {
    while let Some(GossipTxs {
        txs,
        from,
        validation,
    }) = queue.recv().await
    {
        let chain = ctx.chain.clone();
        let Ok(invalid) = ctx
            .admission
            .run(move || {
                let view = PoolStateView(chain.db.clone());
                let base_fee = chain.spec.base_fee_after(&chain.db.head().header);
                txs.iter()
                    .filter_map(|raw| chain.pool.add_raw(raw, &view, base_fee).err())
                    .find(|e| e.is_invalid_transaction())
            })
            .await
        else {
            validation.ignore();
            continue;
        };
        match invalid {
            Some(e) => {
                tracing::debug!(%from, error = %e, "invalid transaction from peer");
                validation.reject();
                ctx.handle.report(from, Misbehaviour::InvalidTransaction);
            }
            None => validation.accept(),
        }
    }
}

/// Gossips transactions accepted over RPC, in batches.
pub(crate) async fn broadcast_txs(handle: NetworkHandle, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(first) = rx.recv().await {
        let mut size = first.len();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now()
            .checked_add(TX_BATCH_WINDOW)
            .unwrap_or_else(tokio::time::Instant::now);
        while size < TX_BATCH_BYTES {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(raw)) => {
                    size = size.saturating_add(raw.len()).saturating_add(4);
                    batch.push(raw);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let mut encoded = Vec::with_capacity(size.saturating_add(8));
        batch.encode(&mut encoded);
        if let Err(e) = handle.publish(Topic::Txs, encoded).await {
            tracing::debug!(error = %e, txs = batch.len(), "cannot gossip transactions");
        }
    }
}

async fn serve(db: Database, peer: PeerId, request: SyncRequest, responder: SyncResponder) {
    let response = tokio::task::spawn_blocking(move || answer(&db, &request))
        .await
        .unwrap_or_else(|e| SyncResponse::Error(SyncError::Server(e.to_string())));
    if let Err(e) = responder.respond(response).await {
        tracing::debug!(%peer, error = %e, "sync response not sent");
    }
}

fn answer(db: &Database, request: &SyncRequest) -> SyncResponse {
    let result = (|| -> Result<SyncResponse, koma_storage::StorageError> {
        Ok(match *request {
            SyncRequest::Status => {
                let head = db.head();
                SyncResponse::Status(ChainStatus {
                    number: head.number(),
                    hash: head.hash,
                    total_difficulty: db.total_difficulty(head.hash)?.unwrap_or_default(),
                })
            }
            SyncRequest::HeadersByRange { start, count } => {
                let mut items = Vec::new();
                for number in start..start.saturating_add(count) {
                    let Some(header) = db.header_by_number(number)? else {
                        break;
                    };
                    let mut out = Vec::new();
                    header.header.encode(&mut out);
                    items.push(out);
                }
                SyncResponse::Headers(items)
            }
            SyncRequest::BlocksByRange { start, count } => {
                let mut items = Vec::new();
                let mut bytes = 0usize;
                for number in start..start.saturating_add(count) {
                    let Some(header) = db.header_by_number(number)? else {
                        break;
                    };
                    let Some(body) = db.body(header.hash)? else {
                        break;
                    };
                    let seal = db.seal(header.hash)?.unwrap_or_default();
                    let mut out = Vec::new();
                    block_from(&header, seal, &body).encode(&mut out);
                    bytes = bytes.saturating_add(out.len());
                    items.push(out);
                    if bytes >= MAX_SERVE_BYTES {
                        break;
                    }
                }
                SyncResponse::Blocks(items)
            }
            // Answered by the event loop from the consensus view.
            SyncRequest::Units(_) | SyncRequest::LatestUnits(_) => SyncResponse::Units(Vec::new()),
            SyncRequest::BlockByHash(hash) => {
                let mut items = Vec::new();
                if let (Some(header), Some(body)) = (db.header(hash)?, db.body(hash)?) {
                    let sealed = koma_primitives::SealedHeader { hash, header };
                    let seal = db.seal(hash)?.unwrap_or_default();
                    let mut out = Vec::new();
                    block_from(&sealed, seal, &body).encode(&mut out);
                    items.push(out);
                }
                SyncResponse::Blocks(items)
            }
        })
    })();
    result.unwrap_or_else(|e| SyncResponse::Error(SyncError::Server(e.to_string())))
}
