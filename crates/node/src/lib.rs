//! Wiring of a KOMA node: storage, pool, producer loop and RPC server.
//!
//! [`Node::launch`] opens (or initialises) the database, starts the JSON-RPC server
//! and, if the node holds a producer key, the block production loop. Blocks are built
//! on a blocking thread (execution and state root are CPU work), committed atomically,
//! then announced: the pool drops what was mined and the RPC subscriptions receive a
//! [`ChainEvent`].
//!
//! Shutdown ([`Node::shutdown`]) stops producing after the block in progress is
//! committed, stops the RPC server and flushes the database.

use alloy::consensus::TxEnvelope;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256};
use koma_primitives::{ChainSpec, SealedHeader};
use koma_producer::{BuiltBlock, ImportOutcome, PoolAccess, build_block};
use koma_rpc::{ApiConfig, ChainEvent, FilterStore, PoolStateView, RpcState, ServerSettings};
use koma_storage::{Database, StoredBody};
use koma_txpool::{BestTransactions, PoolConfig, TxPool};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// Everything a node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub spec: ChainSpec,
    pub datadir: PathBuf,
    pub rpc: ServerSettings,
    pub api: ApiConfig,
    /// Producer key; `None` runs a non-producing node.
    pub producer_key: Option<PrivateKeySigner>,
    /// Overrides the chain spec's block time (devnet convenience).
    pub block_time: Option<Duration>,
    pub pool: Option<PoolConfig>,
    /// Deepest reorg the node accepts (blocks unwound).
    pub max_reorg_depth: u64,
}

/// Default bound on reorg depth.
pub const DEFAULT_MAX_REORG_DEPTH: u64 = 256;

/// A running node.
#[derive(Debug)]
pub struct Node {
    pub db: Database,
    pub pool: Arc<TxPool>,
    pub spec: Arc<ChainSpec>,
    pub rpc_addr: SocketAddr,
    pub events: broadcast::Sender<Arc<ChainEvent>>,
    chain: Arc<ChainWriter>,
    rpc: jsonrpsee::server::ServerHandle,
    stop: watch::Sender<bool>,
    producer: Option<JoinHandle<()>>,
}

/// The pool settings that follow from a chain spec.
pub fn pool_config(spec: &ChainSpec) -> PoolConfig {
    PoolConfig {
        chain_id: spec.chain_id,
        block_gas_limit: spec.gas_limit,
        min_priority_fee: u128::from(spec.fees.min_priority_fee),
        min_base_fee: spec.fees.min_base_fee,
        ..PoolConfig::default()
    }
}

impl Node {
    pub async fn launch(config: NodeConfig) -> eyre::Result<Self> {
        let spec = Arc::new(config.spec);
        let db = {
            let spec = spec.clone();
            let dir = config.datadir.clone();
            tokio::task::spawn_blocking(move || Database::open(&dir, &spec)).await??
        };
        let head = db.head();
        tracing::info!(number = head.number(), hash = %head.hash, datadir = %config.datadir.display(), "database opened");
        let pool = Arc::new(TxPool::new(
            config.pool.unwrap_or_else(|| pool_config(&spec)),
        ));
        let (events, _) = broadcast::channel(1024);
        let state = Arc::new(RpcState {
            spec: spec.clone(),
            db: db.clone(),
            pool: pool.clone(),
            events: events.clone(),
            filters: FilterStore::default(),
            config: config.api,
        });
        let (rpc_addr, rpc) = koma_rpc::start(state, &config.rpc).await?;
        tracing::info!(%rpc_addr, "JSON-RPC listening (HTTP and WebSocket)");

        let chain = Arc::new(ChainWriter {
            spec: spec.clone(),
            db: db.clone(),
            pool: pool.clone(),
            events: events.clone(),
            write: tokio::sync::Mutex::new(()),
            max_reorg_depth: config.max_reorg_depth,
        });
        let (stop, stop_rx) = watch::channel(false);
        let producer = config.producer_key.map(|key| {
            let block_time = config
                .block_time
                .unwrap_or(Duration::from_millis(spec.block_time_ms));
            tracing::info!(producer = %key.address(), ?block_time, "producing blocks");
            tokio::spawn(produce_loop(chain.clone(), key, block_time, stop_rx))
        });
        Ok(Self {
            db,
            pool,
            spec,
            rpc_addr,
            events,
            chain,
            rpc,
            stop,
            producer,
        })
    }

    /// Stops producing (after the block in progress), stops RPC and flushes storage.
    pub async fn shutdown(mut self) -> eyre::Result<()> {
        let _ = self.stop.send(true);
        if let Some(p) = self.producer.take() {
            let _ = p.await;
        }
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush()).await??;
        tracing::info!("node stopped");
        Ok(())
    }
}

struct BestAdapter {
    best: BestTransactions,
    rejected: Vec<B256>,
}

impl PoolAccess for BestAdapter {
    fn next_best(&mut self) -> Option<(TxEnvelope, Address)> {
        self.best.next().map(|p| (p.tx.clone(), p.sender))
    }
    fn skip_sender(&mut self, sender: Address) {
        self.best.mark_invalid(sender);
    }
    fn reject(&mut self, tx: B256, sender: Address) {
        self.best.mark_invalid(sender);
        self.rejected.push(tx);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The single writer of the chain: the producer loop and block import both go through
/// it, one at a time, and it announces what changed to the pool and subscribers.
#[derive(Debug)]
struct ChainWriter {
    spec: Arc<ChainSpec>,
    db: Database,
    pool: Arc<TxPool>,
    events: broadcast::Sender<Arc<ChainEvent>>,
    write: tokio::sync::Mutex<()>,
    max_reorg_depth: u64,
}

impl ChainWriter {
    /// A block joined the canonical chain: the pool forgets its transactions, the
    /// subscriptions hear about it.
    fn canonical(
        &self,
        header: SealedHeader,
        body: StoredBody,
        receipts: Vec<alloy::consensus::ReceiptEnvelope>,
    ) {
        let mined: Vec<B256> = body.transactions.iter().map(|t| *t.tx_hash()).collect();
        let next_base_fee = self.spec.base_fee_after(&header.header);
        self.pool.on_canonical_block(
            &mined,
            &body.senders,
            &PoolStateView(self.db.clone()),
            next_base_fee,
        );
        let _ = self.events.send(Arc::new(ChainEvent {
            header,
            body,
            receipts,
            removed: false,
        }));
    }

    /// Reads a stored block back for announcing it.
    fn stored(
        &self,
        header: &SealedHeader,
    ) -> eyre::Result<(StoredBody, Vec<alloy::consensus::ReceiptEnvelope>)> {
        let body = self
            .db
            .body(header.hash)?
            .ok_or_else(|| eyre::eyre!("body of {} missing", header.hash))?;
        let receipts = self.db.receipts(header.hash)?.unwrap_or_default();
        Ok((body, receipts))
    }

    /// Applies fork choice to a block received from a peer and announces the result.
    fn import(&self, block: &koma_primitives::Block) -> eyre::Result<ImportOutcome> {
        let outcome = koma_producer::import(&self.spec, &self.db, block, self.max_reorg_depth)?;
        match &outcome {
            ImportOutcome::Extended(header) => {
                let (body, receipts) = self.stored(header)?;
                self.canonical(header.clone(), body, receipts);
            }
            ImportOutcome::Reorged {
                unwound, applied, ..
            } => {
                for (header, body) in unwound {
                    let receipts = self.db.receipts(header.hash)?.unwrap_or_default();
                    let ev = ChainEvent {
                        header: header.clone(),
                        body: body.clone(),
                        receipts,
                        removed: true,
                    };
                    let _ = self.events.send(Arc::new(ev));
                }
                for header in applied {
                    let (body, receipts) = self.stored(header)?;
                    self.canonical(header.clone(), body, receipts);
                }
                // Unwound transactions the new chain did not include go back to the pool.
                let txs = unwound
                    .iter()
                    .flat_map(|(_, b)| b.transactions.iter().cloned())
                    .collect();
                let base_fee = self.spec.base_fee_after(&self.db.head().header);
                self.pool
                    .reinject(txs, &PoolStateView(self.db.clone()), base_fee);
            }
            ImportOutcome::AlreadyKnown | ImportOutcome::SideChain { .. } => {}
        }
        Ok(outcome)
    }
}

impl Node {
    /// Imports a block received from a peer (fork choice, validation, re-execution),
    /// serialised with block production.
    pub async fn import_block(&self, block: koma_primitives::Block) -> eyre::Result<ImportOutcome> {
        let chain = self.chain.clone();
        let _guard = chain.write.lock().await;
        let chain2 = chain.clone();
        tokio::task::spawn_blocking(move || chain2.import(&block)).await?
    }
}

async fn produce_loop(
    chain: Arc<ChainWriter>,
    key: PrivateKeySigner,
    block_time: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(block_time);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let _guard = chain.write.lock().await;
        let (c, key2) = (chain.clone(), key.clone());
        let built = tokio::task::spawn_blocking(
            move || -> Result<BuiltBlock, koma_producer::BuildError> {
                let base_fee = c.spec.base_fee_after(&c.db.head().header);
                let mut best = BestAdapter {
                    best: c.pool.best_transactions(base_fee),
                    rejected: Vec::new(),
                };
                let built = build_block(&c.spec, &c.db, &mut best, &key2, unix_now());
                if !best.rejected.is_empty() {
                    tracing::debug!(
                        count = best.rejected.len(),
                        "dropping transactions that failed at execution"
                    );
                    c.pool.remove_transactions(&best.rejected);
                }
                built
            },
        )
        .await;
        let built = match built {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "block production failed");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "block production task failed");
                continue;
            }
        };
        tracing::info!(
            number = built.header.number(),
            hash = %built.header.hash,
            txs = built.block.body.transactions.len(),
            gas_used = built.header.header.gas_used,
            exec_ms = format_args!("{:.1}", built.execution_ms),
            root_ms = format_args!("{:.1}", built.state_root_ms),
            commit_ms = format_args!("{:.1}", built.commit_ms),
            "produced block"
        );
        let body = StoredBody {
            transactions: built.block.body.transactions,
            senders: built.senders,
        };
        let c = chain.clone();
        let (header, receipts) = (built.header, built.receipts);
        let _ = tokio::task::spawn_blocking(move || c.canonical(header, body, receipts)).await;
    }
}
