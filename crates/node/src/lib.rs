//! Wiring of a KOMA node: storage, pool, chain writer, producer loop, peer-to-peer
//! network, sync and RPC server.
//!
//! [`Node::launch`] opens (or initialises) the database, starts the libp2p network (if
//! configured), the JSON-RPC server and, if the node holds a producer key, the block
//! production loop. Blocks are built or imported on a blocking thread (execution and
//! state root are CPU work) by the single chain writer, committed atomically, then
//! announced: the pool drops what was mined, RPC subscriptions receive a
//! [`ChainEvent`], and produced blocks are gossiped.
//!
//! Every long-lived task is critical ([`tasks`]): if one panics or stops, the node
//! reports it through [`Node::failed`] and must be stopped; it never lingers
//! half-alive.
//!
//! Shutdown ([`Node::shutdown`]) stops producing after the block in progress is
//! committed, stops the network and RPC server and flushes the database.

// Input from peers and RPC clients must never crash the node: no unwrap/expect/panic,
// no unchecked indexing or arithmetic outside tests.
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

mod chain;
mod checkpoint;
pub use chain::ForgeDeposits;
pub use checkpoint::{CheckpointConfig, Vote as CheckpointVote};
mod clock;
mod consensus;
mod deposits;
pub use consensus::LibSecp256k1Verifier;
mod metrics;
mod net;
mod produce;
mod slashing;
mod stake;
mod sync;
mod tasks;

use alloy::signers::local::PrivateKeySigner;
use chain::ChainWriter;
use koma_network::{Multiaddr, Network, NetworkConfig, NetworkHandle};
use koma_primitives::ChainSpec;
use koma_producer::{ImportError, ImportOutcome};
use koma_rpc::{ApiConfig, FilterStore, RpcState, ServerSettings};
use koma_storage::{ChainEvent, Database};
use koma_txpool::{Admission, AdmissionConfig, PoolConfig, TxPool};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use sync::{SyncState, Syncer};
use tasks::TaskSpawner;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

/// Peer-to-peer settings of a node.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub listen_addrs: Vec<Multiaddr>,
    /// Static peers (`.../p2p/<peer id>`).
    pub bootnodes: Vec<Multiaddr>,
    /// Kademlia discovery beyond the bootnodes.
    pub discovery: bool,
    pub max_peers: u32,
}

/// Everything a node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub spec: ChainSpec,
    pub datadir: PathBuf,
    pub rpc: ServerSettings,
    pub api: ApiConfig,
    /// Producer key; `None` runs a non-producing node.
    pub producer_key: Option<PrivateKeySigner>,
    /// Staker key for KoMaBFT; `None` follows finality without voting.
    pub staker_key: Option<PrivateKeySigner>,
    /// Test only: sign a second, conflicting version of every own unit (equivocate),
    /// to exercise detection and evidence on a real network.
    pub equivocate: bool,
    /// Test only: as a producer, forge or omit deposits, to exercise the importers'
    /// refusal on a real network.
    pub forge_deposits: ForgeDeposits,
    /// Test only: as a producer, seal a second block on every parent and gossip both, to
    /// exercise the double-seal evidence on a real network.
    pub double_seal: bool,
    pub pool: Option<PoolConfig>,
    /// How transactions from RPC clients and peers are validated (threads, priority).
    pub admission: AdmissionConfig,
    /// Deepest reorg the node accepts (blocks unwound).
    pub max_reorg_depth: u64,
    /// `None` runs a node without peers (a single-node devnet).
    pub network: Option<NetworkSettings>,
    /// Checkpoints on L1 (`None`: the node does not follow an L1).
    pub checkpoint: Option<CheckpointConfig>,
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
    /// The peer-to-peer service, if the node has one.
    pub network: Option<NetworkHandle>,
    chain: Arc<ChainWriter>,
    rpc: jsonrpsee::server::ServerHandle,
    stop: watch::Sender<bool>,
    producer: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    spawner: TaskSpawner,
    failures: mpsc::UnboundedReceiver<String>,
    metrics: Arc<metrics::MetricsSource>,
}

/// The pool settings that follow from a chain spec.
pub fn pool_config(spec: &ChainSpec) -> PoolConfig {
    PoolConfig {
        chain_id: spec.chain_id,
        block_gas_limit: spec.gas_limit,
        max_tx_gas: spec.max_tx_gas(),
        spec: koma_evm::spec_id(spec),
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
        let admission = Admission::start(&config.admission)?;
        let (events, _) = broadcast::channel(1024);
        let (stop, stop_rx) = watch::channel(false);
        let (spawner, failures) = TaskSpawner::new(stop_rx.clone());
        let deposits = Arc::new(deposits::DepositBook::new(config.checkpoint.is_some()));
        let stake = Arc::new(stake::StakeView::new(config.checkpoint.is_some()));
        #[cfg(not(feature = "forge-deposits"))]
        eyre::ensure!(
            config.forge_deposits == ForgeDeposits::No,
            "this build cannot forge deposits (built without the `forge-deposits` feature)"
        );
        let mut writer = ChainWriter::new(
            spec.clone(),
            db.clone(),
            pool.clone(),
            events.clone(),
            config.max_reorg_depth,
            deposits.clone(),
            stake.clone(),
        );
        writer.forge_deposits = config.forge_deposits;
        writer.double_seal_for_testing = config.double_seal;
        let chain = Arc::new(writer);
        let sync_state = Arc::new(SyncState::default());
        let mut tasks = Vec::new();

        let (network, events_rx) = match &config.network {
            None => (None, None),
            Some(settings) => {
                let keypair = koma_network::load_or_create_identity(&config.datadir)?;
                let mut net_config = NetworkConfig::new(spec.chain_id, keypair);
                net_config.listen_addrs = settings.listen_addrs.clone();
                net_config.bootnodes = settings.bootnodes.clone();
                net_config.discovery = settings.discovery;
                net_config.max_peers = settings.max_peers;
                // Short enough that a restarted or partitioned node rejoins quickly.
                net_config.bootnode_redial_interval = std::time::Duration::from_secs(2);
                let (handle, events_rx) = Network::start(net_config).await?;
                for addr in handle.bootnode_addrs() {
                    tracing::info!(%addr, "p2p address");
                }
                (Some(handle), Some(events_rx))
            }
        };
        let consensus = consensus::start(
            chain.clone(),
            &spec,
            config.staker_key.clone(),
            network.clone(),
            stop_rx.clone(),
            config.equivocate,
            &spawner,
        )?;
        #[cfg(not(feature = "equivocation"))]
        eyre::ensure!(
            !config
                .checkpoint
                .as_ref()
                .is_some_and(|c| c.double_sign_for_testing),
            "this build cannot double-sign checkpoints (built without the `equivocation` feature)"
        );
        let ledger = config
            .checkpoint
            .as_ref()
            .map(|_| Arc::new(parking_lot::RwLock::new(checkpoint::Ledger::default())));
        let (checkpoint_votes, checkpoint_rx) = match &config.checkpoint {
            Some(_) => {
                let (tx, rx) = mpsc::channel(4096);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        if let Some(c) = &config.checkpoint {
            let watch = deposits::WatchConfig {
                l1_rpc: c.l1_rpc.clone(),
                contracts_file: c.contracts_file.clone(),
                confirmations: c.confirmations,
                poll: c.poll,
            };
            tasks.push(spawner.critical(
                "L1 deposits",
                deposits::watch_l1(deposits.clone(), watch.clone(), stop_rx.clone()),
            ));
            tasks.push(spawner.critical(
                "L1 staking",
                stake::watch_l1(stake.clone(), watch, stop_rx.clone()),
            ));
            if let (Some(l1_key), Some(reports)) = (c.l1_key.clone(), stake.take_reports()) {
                let slash = slashing::SlashConfig {
                    l1_rpc: c.l1_rpc.clone(),
                    contracts_file: c.contracts_file.clone(),
                    l1_key,
                    consensus_chain: spec.digest(),
                };
                tasks.push(spawner.critical(
                    "L1 slashing",
                    slashing::run(reports, slash, stop_rx.clone()),
                ));
            }
        }
        if let (Some(checkpoint), Some(votes), Some(ledger)) =
            (config.checkpoint.clone(), checkpoint_rx, ledger.clone())
        {
            tasks.push(spawner.critical(
                "checkpoints",
                checkpoint::run(
                    chain.clone(),
                    checkpoint,
                    network.clone(),
                    votes,
                    ledger,
                    stop_rx.clone(),
                ),
            ));
        }
        if let (Some(handle), Some(events_rx)) = (&network, events_rx) {
            let (hints_tx, hints_rx) = mpsc::channel(256);
            let ctx = net::NetContext {
                chain: chain.clone(),
                handle: handle.clone(),
                hints: hints_tx,
                consensus: consensus
                    .as_ref()
                    .map(|(view, input, _)| (view.clone(), input.clone())),
                checkpoint_votes,
                spawner: spawner.clone(),
                admission: admission.clone(),
            };
            tasks.push(spawner.critical(
                "gossip event loop",
                net::event_loop(ctx, events_rx, stop_rx.clone()),
            ));
            let syncer = Syncer {
                chain: chain.clone(),
                net: handle.clone(),
                state: sync_state.clone(),
                peers: Default::default(),
            };
            tasks.push(spawner.critical("chain sync", syncer.run(hints_rx, stop_rx.clone())));
        }
        let finalized = match &consensus {
            Some((view, _, _)) => view.finalized.clone(),
            None => broadcast::channel(1).0,
        };
        let consensus_api = consensus
            .as_ref()
            .map(|(view, _, _)| view.clone() as Arc<dyn koma_rpc::ConsensusApi>);
        if let Some(c) = &spec.consensus {
            metrics::set_round_exp(&spec, c.round_exp);
        }
        let metrics = Arc::new(metrics::MetricsSource {
            db: db.clone(),
            pool: pool.clone(),
            consensus: consensus_api.clone(),
            network: network.clone(),
            sync: sync_state.clone(),
        });
        if let Some((_, _, task)) = consensus {
            tasks.push(task);
        }
        let rpc_network = match &network {
            Some(handle) => {
                let (txs_tx, txs_rx) = mpsc::channel(65_536);
                tasks.push(spawner.critical(
                    "transaction broadcaster",
                    net::broadcast_txs(handle.clone(), txs_rx),
                ));
                Some(Arc::new(net::RpcNetwork {
                    handle: handle.clone(),
                    sync: sync_state.clone(),
                    txs: txs_tx,
                }) as Arc<dyn koma_rpc::NetworkApi>)
            }
            None => None,
        };

        let state = Arc::new(RpcState {
            spec: spec.clone(),
            db: db.clone(),
            pool: pool.clone(),
            admission,
            events: events.clone(),
            filters: FilterStore::default(),
            config: config.api,
            network: rpc_network,
            consensus: consensus_api,
            finalized,
            checkpoints: ledger.map(|l| {
                Arc::new(checkpoint::CheckpointView(l)) as Arc<dyn koma_rpc::CheckpointApi>
            }),
            checkpoint_trees: Default::default(),
            deposits: config
                .checkpoint
                .as_ref()
                .map(|_| deposits.clone() as Arc<dyn koma_rpc::DepositsApi>),
            producers: Some(Arc::new(chain::RpcProducers(chain.clone()))),
        });
        let (rpc_addr, rpc) = koma_rpc::start(state, &config.rpc).await?;
        tracing::info!(%rpc_addr, "JSON-RPC listening (HTTP and WebSocket)");
        let server = rpc.clone();
        tasks.push(spawner.critical("JSON-RPC server", server.stopped()));

        let producer = config.producer_key.map(|key| {
            tracing::info!(producer = %key.address(), block_time_ms = spec.block_time_ms, "producing blocks");
            spawner.critical(
                "block producer",
                produce::produce_loop(
                    chain.clone(),
                    key,
                    network.clone(),
                    sync_state.clone(),
                    stop_rx.clone(),
                ),
            )
        });
        Ok(Self {
            db,
            pool,
            spec,
            rpc_addr,
            events,
            network,
            chain,
            rpc,
            stop,
            producer,
            tasks,
            spawner,
            failures,
            metrics,
        })
    }

    /// Serves the Prometheus metrics (`GET /metrics`) on `addr` as a critical task;
    /// returns the bound address.
    pub async fn serve_metrics(&mut self, addr: SocketAddr) -> eyre::Result<SocketAddr> {
        let source = self.metrics.clone();
        let (bound, server) = koma_metrics::serve(addr, Arc::new(move || source.refresh()))
            .await
            .map_err(|e| eyre::eyre!("cannot listen on {addr} for metrics: {e}"))?;
        tracing::info!(addr = %bound, "metrics listening (Prometheus: GET /metrics)");
        self.spawn_critical("metrics server", server);
        Ok(bound)
    }

    /// Runs `task` as one of the node's critical tasks: if it panics, or returns
    /// before the node stops, [`Node::failed`] reports it and the node must stop. For
    /// services that embed the node (and for tests of this very promise).
    pub fn spawn_critical(
        &mut self,
        name: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let handle = self.spawner.critical(name, task);
        self.tasks.push(handle);
    }

    /// Resolves when a critical task has failed, with one line saying which and why.
    /// The node is then broken and must be shut down (the binary exits non-zero).
    pub async fn failed(&mut self) -> String {
        match self.failures.recv().await {
            Some(failure) => failure,
            // Every spawner is gone: nothing can fail any more.
            None => std::future::pending().await,
        }
    }

    /// Imports a block received from a peer (fork choice, validation, re-execution),
    /// serialised with block production.
    pub async fn import_block(
        &self,
        block: koma_primitives::Block,
    ) -> Result<ImportOutcome, ImportError> {
        self.chain.import_async(block).await
    }

    /// Stops producing (after the block in progress), stops the network and RPC, and
    /// flushes storage.
    pub async fn shutdown(mut self) -> eyre::Result<()> {
        self.stop.send_replace(true);
        if let Some(p) = self.producer.take() {
            let _ = p.await;
        }
        // Wait for an import in progress to commit before anything else stops.
        self.chain.quiesce().await;
        let _ = self.rpc.stop();
        self.rpc.stopped().await;
        if let Some(network) = &self.network {
            let _ = network.shutdown().await;
        }
        // Every task saw the stop signal: each gets a moment to finish what it is
        // doing (a storage write in flight, say) and is aborted after that. Either
        // way it is awaited, so its state (its database handle among it) is gone
        // before shutdown returns and the data directory can be reopened at once.
        let deadline = tokio::time::Instant::now()
            .checked_add(std::time::Duration::from_secs(3))
            .unwrap_or_else(tokio::time::Instant::now);
        for mut task in self.tasks.drain(..) {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush()).await??;
        tracing::info!("node stopped");
        Ok(())
    }
}
