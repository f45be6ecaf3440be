//! Command-line interface.

use alloy::signers::local::PrivateKeySigner;
use clap::{Args, Parser, Subcommand};
use eyre::WrapErr;
use std::path::{Path, PathBuf};

/// KOMA: an EVM Layer-2 sidechain with a Proof-of-Stake checkpoint layer.
#[derive(Debug, Parser)]
#[command(name = "koma", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax, e.g. `info`, `debug,koma_rpc=trace`);
    /// RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info,libp2p_gossipsub=error")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local development chain with embedded defaults (chain id 42424, the 10
    /// standard dev accounts funded, a block every second, RPC on 127.0.0.1:8545).
    Devnet(DevnetArgs),
    /// Run a node of the chain described by a chain spec file.
    Node(NodeArgs),
    /// Manage producer keys (encrypted keystore files).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The L1 side: deploy the root contracts to an L1.
    #[command(subcommand)]
    L1(crate::l1::L1Command),
    /// Inspect or check a node's database (the node must be stopped).
    #[command(subcommand)]
    Db(DbCommand),
    /// The bridge: deposit from L1, withdraw from L2, exit on L1, follow either.
    #[command(subcommand)]
    Bridge(crate::bridge::BridgeCommand),
    /// Staking on L1: stake, unstake, withdraw, vote for a producer, status.
    #[command(subcommand)]
    Staker(crate::staker::StakerCommand),
    /// Block producer candidacy on L1: register, leave, withdraw the bond, status.
    #[command(subcommand)]
    Producer(crate::producer::ProducerCommand),
    /// Benchmarks: executor, state root, end-to-end load over JSON-RPC.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// Tools for testing a network's defences (built with the `test-tools` feature).
    #[cfg(feature = "test-tools")]
    #[command(subcommand, hide = true)]
    Debug(DebugCommand),
}

#[cfg(feature = "test-tools")]
#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Join a node and gossip bad messages until it disconnects us.
    BadPeer(crate::bad_peer::BadPeerArgs),
}

#[derive(Debug, Args)]
pub struct RpcArgs {
    /// Address the JSON-RPC server (HTTP and WebSocket) listens on. Loopback by
    /// default; expose it on purpose only.
    #[arg(long, default_value = "127.0.0.1")]
    pub http_addr: String,
    /// Port of the JSON-RPC server (HTTP and WebSocket share it).
    #[arg(long, default_value_t = 8545)]
    pub http_port: u16,
    /// Origins allowed by CORS (comma separated, `*` for any). Off by default.
    #[arg(long, value_delimiter = ',')]
    pub http_corsdomain: Option<Vec<String>>,
    /// Largest JSON-RPC request body accepted, in bytes.
    #[arg(long, default_value_t = 5 * 1024 * 1024)]
    pub rpc_max_request_size: u32,
    /// Most simultaneous RPC connections.
    #[arg(long, default_value_t = 1000)]
    pub rpc_max_connections: u32,
    /// Gas limit of `eth_call` and `eth_estimateGas` when the request gives none (as
    /// geth's `--rpc.gascap`). Default: 50,000,000.
    #[arg(long)]
    pub rpc_gascap: Option<u64>,
    /// Most blocks one `eth_getLogs` (or log filter poll) may scan. Default: 10,000.
    #[arg(long)]
    pub rpc_max_logs_range: Option<u64>,
    /// Most logs one `eth_getLogs` may return. Default: 10,000.
    #[arg(long)]
    pub rpc_max_logs: Option<usize>,
    /// Storage- and CPU-heavy RPC handlers running at once. Default: the number of
    /// cores, at least 2.
    #[arg(long)]
    pub rpc_max_blocking_tasks: Option<usize>,
    /// Of those, EVM executions (`eth_call`, `eth_estimateGas`) at once. Default: half
    /// the cores, at least 1.
    #[arg(long)]
    pub rpc_max_evm_tasks: Option<usize>,
    /// Heavy RPC handlers waiting for a slot; more are refused at once with -32005.
    /// Default: 1,024.
    #[arg(long)]
    pub rpc_max_queued_tasks: Option<usize>,
    /// Most transactions `txpool_content` returns. Default: 10,000.
    #[arg(long)]
    pub rpc_max_txpool_content: Option<usize>,
    /// Most filters installed at once (the longest idle is dropped). Default: 10,000.
    #[arg(long)]
    pub rpc_max_filters: Option<usize>,
}

impl RpcArgs {
    /// The API settings these flags give (defaults where a flag is absent).
    pub fn api_config(&self, admin: bool) -> koma_rpc::ApiConfig {
        let mut api = koma_rpc::ApiConfig {
            admin,
            ..koma_rpc::ApiConfig::default()
        };
        let set = |slot: &mut u64, v: Option<u64>| *slot = v.unwrap_or(*slot);
        let set_usize = |slot: &mut usize, v: Option<usize>| *slot = v.unwrap_or(*slot);
        set(&mut api.gas_cap, self.rpc_gascap);
        set(&mut api.max_logs_block_range, self.rpc_max_logs_range);
        set_usize(&mut api.max_logs, self.rpc_max_logs);
        set_usize(&mut api.max_blocking_tasks, self.rpc_max_blocking_tasks);
        set_usize(&mut api.max_evm_tasks, self.rpc_max_evm_tasks);
        set_usize(&mut api.max_queued_tasks, self.rpc_max_queued_tasks);
        set_usize(&mut api.max_txpool_content, self.rpc_max_txpool_content);
        set_usize(&mut api.max_filters, self.rpc_max_filters);
        api
    }

    /// The limit flags as `koma node` arguments, for the devnet's node processes.
    pub fn limit_args(&self) -> Vec<String> {
        let mut argv = vec![
            "--rpc-max-request-size".to_string(),
            self.rpc_max_request_size.to_string(),
            "--rpc-max-connections".to_string(),
            self.rpc_max_connections.to_string(),
        ];
        let optional: [(&str, Option<String>); 8] = [
            ("--rpc-gascap", self.rpc_gascap.map(|v| v.to_string())),
            (
                "--rpc-max-logs-range",
                self.rpc_max_logs_range.map(|v| v.to_string()),
            ),
            ("--rpc-max-logs", self.rpc_max_logs.map(|v| v.to_string())),
            (
                "--rpc-max-blocking-tasks",
                self.rpc_max_blocking_tasks.map(|v| v.to_string()),
            ),
            (
                "--rpc-max-evm-tasks",
                self.rpc_max_evm_tasks.map(|v| v.to_string()),
            ),
            (
                "--rpc-max-queued-tasks",
                self.rpc_max_queued_tasks.map(|v| v.to_string()),
            ),
            (
                "--rpc-max-txpool-content",
                self.rpc_max_txpool_content.map(|v| v.to_string()),
            ),
            (
                "--rpc-max-filters",
                self.rpc_max_filters.map(|v| v.to_string()),
            ),
        ];
        for (flag, value) in optional {
            if let Some(value) = value {
                argv.push(flag.to_string());
                argv.push(value);
            }
        }
        argv
    }
}

#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Number of nodes, each a separate `koma node` process with its own data
    /// directory, producer key, RPC port (`--http-port` + i) and p2p port
    /// (`--p2p-port` + i). With 1, a single node runs in this process without p2p.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub nodes: u32,
    /// Data directory (one `node-<i>` directory per node). If it already holds the
    /// devnet, the chain resumes from its head. Default: a fresh temporary directory
    /// removed at exit.
    #[arg(long)]
    pub datadir: Option<PathBuf>,
    /// Block time in milliseconds (default: the spec's 1000).
    #[arg(long)]
    pub block_time_ms: Option<u64>,
    /// Block gas limit (default: the spec's 600,000,000). The spec's compute limit
    /// (603,979,776 units, ADR 0011) bounds heavy execution whatever the gas limit.
    #[arg(long)]
    pub gas_limit: Option<u64>,
    /// Blocks per sprint, after which the next producer is in turn (default: the
    /// spec's 16).
    #[arg(long)]
    pub sprint: Option<u64>,
    /// Blocks per span, for which the producer set is elected (default: the spec's 256;
    /// a multiple of the sprint).
    #[arg(long)]
    pub span: Option<u64>,
    /// How many of the nodes (the first ones) are the genesis producers, and how many
    /// producers each span elects on L1 (default: all). The others run a producer key
    /// that stakers can vote in (`koma producer register`, `koma staker vote`).
    #[arg(long)]
    pub producers: Option<u32>,
    /// KoMaBFT milestones per era (default: the spec's 1000, about 9 minutes).
    #[arg(long)]
    pub era_blocks: Option<u64>,
    /// How many of the nodes (the first ones) are stakers from genesis, registered on
    /// the L1 at deployment (default: all). The others can join with `koma staker
    /// stake`.
    #[arg(long)]
    pub stakers: Option<u32>,
    /// First p2p port (node i listens on this + i, on 127.0.0.1).
    #[arg(long, default_value_t = 30303)]
    pub p2p_port: u16,
    /// Prepare the data directory (chain spec, keystores, identities) and write
    /// `devnet.json` describing how to start each node, then exit.
    #[arg(long)]
    pub init_only: bool,
    /// Serve the `admin_*` RPC namespace on every node (peer management).
    #[arg(long)]
    pub admin_rpc: bool,
    /// Run without an L1 (no root contracts, no checkpoints).
    #[arg(long, conflicts_with = "l1_rpc")]
    pub no_l1: bool,
    /// Use this Ethereum node as the L1 instead of starting the development L1 (a
    /// development chain, 1337 or 31337, such as anvil: the contracts are deployed and
    /// the devnet stakers registered with the public development keys).
    #[arg(long)]
    pub l1_rpc: Option<String>,
    /// Port of the development L1's JSON-RPC (on --http-addr).
    #[arg(long, default_value_t = 8645)]
    pub l1_http_port: u16,
    /// L2 blocks per checkpoint (written into the devnet's chain spec, which every
    /// staker reads).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub checkpoint_interval: u64,
    /// Serve Prometheus metrics: node i on 127.0.0.1:(this + i)/metrics. Off by default.
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// TOML file setting any of these flags (keys are the long flag names); flags on
    /// the command line win. See docs/config.md.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub rpc: RpcArgs,
    #[command(flatten)]
    pub pool: crate::config::PoolArgs,
}

#[derive(Debug, Args)]
pub struct P2pArgs {
    /// Address the p2p service listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub p2p_addr: String,
    /// TCP port of the p2p service (0 picks a free one).
    #[arg(long, default_value_t = 30303)]
    pub p2p_port: u16,
    /// Peers to connect to, as multiaddrs ending in `/p2p/<peer id>`
    /// (comma separated), e.g. `/ip4/127.0.0.1/tcp/30303/p2p/12D3Koo...`.
    #[arg(long, value_delimiter = ',')]
    pub bootnodes: Vec<String>,
    /// Only talk to the bootnodes (no Kademlia discovery).
    #[arg(long)]
    pub no_discovery: bool,
    /// Most peers.
    #[arg(long, default_value_t = 50)]
    pub max_peers: u32,
    /// Run without any p2p networking (a standalone node).
    #[arg(long)]
    pub no_p2p: bool,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Chain spec (genesis) JSON file, e.g. genesis/devnet.json.
    #[arg(long)]
    pub genesis: PathBuf,
    /// Data directory (created if missing).
    #[arg(long)]
    pub datadir: PathBuf,
    /// Producer keystore (Web3 Secret Storage JSON, see `koma keys new`). Without
    /// it the node follows the chain and serves RPC but does not produce.
    #[arg(long)]
    pub producer_keystore: Option<PathBuf>,
    /// File holding the keystore password (never pass secrets on the command line).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Staker keystore for KoMaBFT (default: the producer key also stakes, if it is in
    /// the staker set).
    #[arg(long)]
    pub staker_keystore: Option<PathBuf>,
    /// Deepest reorg (blocks unwound) the node follows.
    #[arg(long, default_value_t = koma_node::DEFAULT_MAX_REORG_DEPTH)]
    pub max_reorg_depth: u64,
    /// Serve the `admin_*` RPC namespace (peer management). Off by default.
    #[arg(long)]
    pub admin_rpc: bool,
    /// Shut down when the parent process exits (used by `koma devnet`).
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
    /// TEST ONLY: equivocate (sign two versions of every own consensus unit), so that
    /// the network's detection and evidence can be exercised. Never on a real network.
    #[cfg(feature = "test-tools")]
    #[arg(long, hide = true)]
    pub equivocate_for_testing: bool,
    /// TEST ONLY: as a staker, sign every checkpoint twice (the second time with another
    /// root) and gossip both, so that detection and the evidence on L1 can be exercised.
    /// Never on a real network.
    #[cfg(feature = "test-tools")]
    #[arg(long, hide = true)]
    pub double_sign_checkpoints_for_testing: bool,
    /// TEST ONLY: as a producer, seal a second block on every parent (stamped a second
    /// later) and gossip both, so that the double-seal evidence on L1 can be exercised.
    /// Never on a real network.
    #[cfg(feature = "test-tools")]
    #[arg(long, hide = true)]
    pub double_seal_for_testing: bool,
    /// TEST ONLY: as a producer, announce every new deposit with its amount doubled, or
    /// an invented one when none is pending, and apply it in the next block, so that the
    /// importers' refusal can be exercised.
    #[cfg(feature = "test-tools")]
    #[arg(long, hide = true, conflicts_with = "omit_deposits_for_testing")]
    pub forge_deposits_for_testing: bool,
    /// TEST ONLY: as a producer, never apply a deposit (announcing them honestly), so
    /// that the importers' omission check can be exercised.
    #[cfg(feature = "test-tools")]
    #[arg(long, hide = true)]
    pub omit_deposits_for_testing: bool,
    /// Serve Prometheus metrics (`GET /metrics`) on this address: `IP:PORT`, or a
    /// port alone for 127.0.0.1 (e.g. `9545`). Off by default.
    #[arg(long, value_parser = crate::config::parse_metrics_addr)]
    pub metrics: Option<std::net::SocketAddr>,
    /// TOML file setting any of these flags (keys are the long flag names, e.g.
    /// `http-port = 8545`); flags on the command line win. See docs/config.md.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub p2p: P2pArgs,
    #[command(flatten)]
    pub rpc: RpcArgs,
    #[command(flatten)]
    pub pool: crate::config::PoolArgs,
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
}

/// Checkpoints on L1.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// JSON-RPC URL of the L1 that holds the root contract. Without it the node follows
    /// no L1 and takes no part in checkpoints.
    #[arg(long, requires = "l1_contracts")]
    pub l1_rpc: Option<String>,
    /// The deployment's contracts file (`koma l1 deploy` writes it). It may appear after
    /// the node starts.
    #[arg(long, requires = "l1_rpc")]
    pub l1_contracts: Option<PathBuf>,
    /// The staker's BLS key (EIP-2335 keystore, `koma keys new-bls`), decrypted with
    /// --password-file. Without it the node follows checkpoints without signing.
    #[arg(long, requires = "l1_rpc")]
    pub bls_keystore: Option<PathBuf>,
    /// L1 blocks after which an accepted checkpoint counts as notarized and a deposit
    /// as confirmed (and is applied on L2).
    #[arg(long, default_value_t = 2)]
    pub l1_confirmations: u64,
    /// The highest max fee per gas a checkpoint submission offers on L1, in gwei (a
    /// submission not mined within 12 s is replaced with fees 25 % higher, up to this).
    #[arg(long, default_value_t = 500)]
    pub l1_max_fee_gwei: u64,
    /// What the `finalized` block tag stands for: `consensus`, the last block final in
    /// KoMaBFT, or `notarized`, the last block of the newest checkpoint notarized on L1
    /// (needs --l1-rpc). `safe` stands for KoMaBFT finality either way.
    #[arg(long, value_enum, default_value_t = FinalizedTagArg::Consensus)]
    pub finalized_tag: FinalizedTagArg,
}

/// `--finalized-tag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FinalizedTagArg {
    Consensus,
    Notarized,
}

impl FinalizedTagArg {
    pub fn tag(self) -> koma_rpc::FinalizedTag {
        match self {
            Self::Consensus => koma_rpc::FinalizedTag::Consensus,
            Self::Notarized => koma_rpc::FinalizedTag::Notarized,
        }
    }
}

impl CheckpointArgs {
    /// The checkpoint settings, with the chain's checkpoint interval, the BLS key
    /// decrypted and `l1_key` (the staker's key) paying for submissions.
    pub fn config(
        &self,
        spec: &koma_primitives::ChainSpec,
        password_file: Option<&Path>,
        l1_key: Option<PrivateKeySigner>,
    ) -> eyre::Result<Option<koma_node::CheckpointConfig>> {
        let (Some(rpc), Some(contracts)) = (&self.l1_rpc, &self.l1_contracts) else {
            if self.finalized_tag == FinalizedTagArg::Notarized {
                eyre::bail!("--finalized-tag notarized needs an L1 (--l1-rpc and --l1-contracts)");
            }
            return Ok(None);
        };
        let mut config = koma_node::CheckpointConfig::devnet(rpc.clone(), contracts.clone());
        config.interval = spec.checkpoint_interval();
        config.confirmations = self.l1_confirmations;
        config.max_fee_per_gas = u128::from(self.l1_max_fee_gwei).saturating_mul(1_000_000_000);
        if let Some(keystore) = &self.bls_keystore {
            let Some(password_file) = password_file else {
                eyre::bail!("--bls-keystore needs --password-file");
            };
            config.bls_key = Some(std::sync::Arc::new(load_bls_keystore(
                keystore,
                password_file,
            )?));
            config.l1_key = l1_key;
        }
        Ok(Some(config))
    }
}

/// Decrypts an EIP-2335 BLS keystore.
pub fn load_bls_keystore(
    keystore: &Path,
    password_file: &Path,
) -> eyre::Result<koma_checkpoint::SecretKey> {
    let pw = read_password(password_file)?;
    let text = std::fs::read_to_string(keystore)
        .wrap_err_with(|| format!("cannot read BLS keystore {}", keystore.display()))?;
    let ks = koma_checkpoint::Keystore::from_json(&text)
        .map_err(|e| eyre::eyre!("{} is not a BLS keystore: {e}", keystore.display()))?;
    koma_checkpoint::keystore::decrypt(&ks, &pw)
        .map_err(|e| eyre::eyre!("cannot decrypt BLS keystore {}: {e}", keystore.display()))
}

impl P2pArgs {
    /// The node's network settings, or `None` with `--no-p2p`.
    pub fn settings(&self) -> eyre::Result<Option<koma_node::NetworkSettings>> {
        if self.no_p2p {
            return Ok(None);
        }
        let ip: std::net::IpAddr = self
            .p2p_addr
            .parse()
            .wrap_err_with(|| format!("invalid --p2p-addr {}", self.p2p_addr))?;
        let proto = if ip.is_ipv4() { "ip4" } else { "ip6" };
        let listen = format!("/{proto}/{ip}/tcp/{}", self.p2p_port)
            .parse()
            .wrap_err("invalid p2p listen address")?;
        let bootnodes = self
            .bootnodes
            .iter()
            .filter(|b| !b.trim().is_empty())
            .map(|b| {
                let addr: koma_network::Multiaddr = b
                    .trim()
                    .parse()
                    .wrap_err_with(|| format!("invalid bootnode {b}"))?;
                koma_network::split_peer_addr(&addr)
                    .wrap_err_with(|| format!("invalid bootnode {b}"))?;
                Ok(addr)
            })
            .collect::<eyre::Result<Vec<_>>>()?;
        Ok(Some(koma_node::NetworkSettings {
            listen_addrs: vec![listen],
            bootnodes,
            discovery: !self.no_discovery,
            max_peers: self.max_peers,
        }))
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key and write it as an encrypted keystore file.
    New {
        /// Directory the keystore file is written to.
        #[arg(long)]
        keystore_dir: PathBuf,
        /// File holding the password that encrypts the key.
        #[arg(long)]
        password_file: PathBuf,
    },
    /// Generate a new BLS key for checkpoints and write it as an EIP-2335 keystore
    /// (`bls-<public key prefix>.json`); prints the public key.
    NewBls {
        /// Directory the keystore file is written to.
        #[arg(long)]
        keystore_dir: PathBuf,
        /// File holding the password that encrypts the key.
        #[arg(long)]
        password_file: PathBuf,
    },
    /// Decrypt a keystore and print its address (never the key).
    Show {
        #[arg(long)]
        keystore: PathBuf,
        #[arg(long)]
        password_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Re-execute every block from genesis in a scratch database and check each
    /// block's state root, receipts root, bloom and gas used, and the head.
    Verify {
        #[arg(long)]
        datadir: PathBuf,
        /// Chain spec of the database (default: the one stored in it).
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
}

fn read_password(path: &Path) -> eyre::Result<String> {
    let pw = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("cannot read password file {}", path.display()))?;
    let pw = pw.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        eyre::bail!("password file {} is empty", path.display());
    }
    Ok(pw)
}

/// Decrypts a producer keystore.
pub fn load_keystore(keystore: &Path, password_file: &Path) -> eyre::Result<PrivateKeySigner> {
    let pw = read_password(password_file)?;
    PrivateKeySigner::decrypt_keystore(keystore, pw)
        .map_err(|e| eyre::eyre!("cannot decrypt keystore {}: {e}", keystore.display()))
}

pub fn keys(cmd: KeysCommand) -> eyre::Result<()> {
    match cmd {
        KeysCommand::New {
            keystore_dir,
            password_file,
        } => {
            let pw = read_password(&password_file)?;
            std::fs::create_dir_all(&keystore_dir)?;
            let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
            let (signer, file) = PrivateKeySigner::new_keystore(&keystore_dir, &mut rng, pw, None)
                .map_err(|e| eyre::eyre!("cannot write keystore: {e}"))?;
            println!("address:  {}", signer.address());
            println!("keystore: {}", keystore_dir.join(file).display());
            Ok(())
        }
        KeysCommand::NewBls {
            keystore_dir,
            password_file,
        } => {
            let pw = read_password(&password_file)?;
            std::fs::create_dir_all(&keystore_dir)?;
            let mut rng = rand::rng();
            let key = koma_checkpoint::SecretKey::random(&mut rng);
            let ks = koma_checkpoint::keystore::encrypt(
                &key,
                &pw,
                &mut rng,
                koma_checkpoint::Kdf::SCRYPT,
            )
            .map_err(|e| eyre::eyre!("cannot encrypt the BLS key: {e}"))?;
            let pk = hex::encode(key.public_key().to_compressed());
            let path = keystore_dir.join(format!("bls-{}.json", &pk[..16]));
            let json = ks
                .to_json()
                .map_err(|e| eyre::eyre!("cannot encode the keystore: {e}"))?;
            std::fs::write(&path, json)
                .wrap_err_with(|| format!("cannot write {}", path.display()))?;
            println!("public key: 0x{pk}");
            println!("keystore:   {}", path.display());
            Ok(())
        }
        KeysCommand::Show {
            keystore,
            password_file,
        } => {
            let signer = load_keystore(&keystore, &password_file)?;
            println!("address: {}", signer.address());
            Ok(())
        }
    }
}

/// Without the `test-tools` feature (a release build), the test tools do not exist.
#[cfg(all(test, not(feature = "test-tools")))]
mod without_test_tools {
    use super::Cli;
    use clap::Parser;

    #[test]
    fn the_test_tools_are_not_built_in() {
        let refused = |args: &[&str]| Cli::try_parse_from(args).is_err();
        assert!(refused(&["koma", "debug", "bad-peer", "--help"]));
        assert!(refused(&["koma", "node", "--equivocate-for-testing"]));
        assert!(refused(&["koma", "node", "--forge-deposits-for-testing"]));
        assert!(refused(&["koma", "node", "--omit-deposits-for-testing"]));
        assert!(refused(&["koma", "node", "--double-seal-for-testing"]));
        assert!(refused(&["koma", "bench", "consensus"]));
        // while the same parser takes ordinary commands
        assert!(!refused(&["koma", "devnet", "--nodes", "2"]));
    }
}
