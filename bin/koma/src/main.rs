//! `koma`: the KOMA node binary.
//!
//! - `koma devnet`: a local network (4 nodes by default) with embedded defaults.
//! - `koma node`: a node from a chain spec file.
//! - `koma keys`: producer keys in encrypted keystores (Web3 Secret Storage).
//! - `koma l1 deploy`: the root contracts and the bridge on an L1.
//! - `koma bridge`: withdraw from L2, exit on L1.
//! - `koma db verify`: re-executes a stopped node's chain and checks every root.
//! - `koma bench`: executor, state-root and end-to-end throughput benchmarks.

mod audit;
#[cfg(feature = "test-tools")]
mod bad_peer;
mod bench;
mod bench_net;
mod bridge;
mod cli;
mod config;
mod devnet;
mod l1;
mod producer;
mod staker;
mod stats;
mod verify;

use cli::{Cli, Command};
use eyre::WrapErr;
use koma_node::{Node, NodeConfig};
use koma_primitives::ChainSpec;
use koma_rpc::ServerSettings;
use std::net::SocketAddr;

fn init_tracing(verbosity: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(verbosity));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> std::process::ExitCode {
    let cli = config::parse();
    init_tracing(&cli.log);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(eyre::Report::from)
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One clear line with its causes (each once), never a backtrace.
            let mut line = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if !line.contains(&cause) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&cause);
                }
            }
            eprintln!("error: {line}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> eyre::Result<()> {
    match cli.command {
        Command::Devnet(args) => devnet(args, &cli.log).await,
        Command::Node(args) => node(args).await,
        Command::Keys(cmd) => cli::keys(cmd),
        Command::L1(cmd) => l1::run(cmd).await,
        Command::Db(cmd) => match cmd {
            cli::DbCommand::Verify { datadir, genesis } => {
                let spec = match genesis {
                    Some(path) => ChainSpec::from_file(&path)?,
                    None => koma_storage::Database::stored_spec(&datadir)?
                        .unwrap_or_else(ChainSpec::devnet),
                };
                tokio::task::spawn_blocking(move || verify::verify(&spec, &datadir)).await?
            }
        },
        Command::Bench(cmd) => bench::run(cmd).await,
        Command::Bridge(cmd) => bridge::run(cmd).await,
        Command::Staker(cmd) => staker::run(cmd).await,
        Command::Producer(cmd) => producer::run(cmd).await,
        #[cfg(feature = "test-tools")]
        Command::Debug(cli::DebugCommand::BadPeer(args)) => bad_peer::run(args).await,
    }
}

fn rpc_settings(rpc: &cli::RpcArgs) -> eyre::Result<ServerSettings> {
    let addr: SocketAddr = format!("{}:{}", rpc.http_addr, rpc.http_port)
        .parse()
        .wrap_err_with(|| {
            format!(
                "invalid --http-addr/--http-port {}:{}",
                rpc.http_addr, rpc.http_port
            )
        })?;
    Ok(ServerSettings {
        addr,
        cors: rpc.http_corsdomain.clone(),
        max_request_bytes: rpc.rpc_max_request_size,
        max_connections: rpc.rpc_max_connections,
        ..ServerSettings::default()
    })
}

pub(crate) async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn devnet(args: cli::DevnetArgs, log: &str) -> eyre::Result<()> {
    let mut spec = ChainSpec::devnet_with_producers(args.nodes);
    if let Some(limit) = args.gas_limit {
        spec.gas_limit = limit;
    }
    if let Some(ms) = args.block_time_ms {
        spec.block_time_ms = ms;
    }
    if let Some(sprint) = args.sprint {
        spec.producers.sprint = sprint;
    }
    if let Some(span) = args.span {
        spec.producers.span = span;
    }
    if let Some(m) = args.producers {
        eyre::ensure!(
            m >= 1 && m <= args.nodes,
            "--producers must be between 1 and --nodes ({})",
            args.nodes
        );
        spec.producers.producers.truncate(usize::try_from(m)?);
        spec.producers.elected = u64::from(m);
    }
    spec.checkpoint_interval = Some(args.checkpoint_interval);
    if let (Some(blocks), Some(c)) = (args.era_blocks, spec.consensus.as_mut()) {
        c.era_blocks = blocks;
    }
    if let (Some(k), Some(c)) = (args.stakers, spec.consensus.as_mut()) {
        eyre::ensure!(
            k >= 1 && k <= args.nodes,
            "--stakers must be between 1 and --nodes ({})",
            args.nodes
        );
        c.stakers.truncate(usize::try_from(k)?);
    }
    spec.validate()?;
    let (datadir, _tmp) = match &args.datadir {
        Some(d) => (d.clone(), None),
        None => {
            let tmp = tempfile::Builder::new().prefix("koma-devnet-").tempdir()?;
            (tmp.path().to_path_buf(), Some(tmp))
        }
    };
    if args.nodes > 1 || args.init_only {
        let log = std::env::var("RUST_LOG").unwrap_or_else(|_| log.to_string());
        let manifest = devnet::prepare(&args, &spec, &datadir, &log)?;
        if args.init_only {
            println!("{}", datadir.join("devnet.json").display());
            return Ok(());
        }
        let urls: Vec<String> = manifest.nodes.iter().map(|n| n.rpc_url.clone()).collect();
        let metrics: Vec<String> = manifest
            .nodes
            .iter()
            .filter_map(|n| n.metrics_url.clone())
            .collect();
        print_banner(&spec, &urls, &metrics, &datadir);
        return devnet::run(&manifest).await;
    }
    let key = koma_primitives::dev::dev_producer_key(0);
    let config = NodeConfig {
        spec: spec.clone(),
        datadir: datadir.clone(),
        rpc: rpc_settings(&args.rpc)?,
        api: args.rpc.api_config(args.admin_rpc),
        producer_key: Some(key.clone()),
        staker_key: Some(key),
        equivocate: false,
        forge_deposits: koma_node::ForgeDeposits::No,
        double_seal: false,
        pool: Some(args.pool.apply(koma_node::pool_config(&spec))),
        admission: args.pool.admission(),
        max_reorg_depth: koma_node::DEFAULT_MAX_REORG_DEPTH,
        network: None,
        checkpoint: None,
    };
    let mut node = Node::launch(config).await?;
    let mut metrics = Vec::new();
    if let Some(port) = args.metrics_port {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let bound = node.serve_metrics(addr).await?;
        metrics.push(format!("http://{bound}/metrics"));
    }
    print_banner(
        &spec,
        &[format!("http://{}", node.rpc_addr)],
        &metrics,
        &datadir,
    );
    let failure = tokio::select! {
        _ = wait_for_shutdown() => None,
        failure = node.failed() => Some(failure),
    };
    stop_node(node, failure).await
}

/// Shuts `node` down; after a critical task's failure the result is that failure
/// (so the process exits non-zero with it as its last line).
async fn stop_node(node: Node, failure: Option<String>) -> eyre::Result<()> {
    match failure {
        None => {
            tracing::info!("shutting down");
            node.shutdown().await
        }
        Some(failure) => {
            tracing::error!("{failure}; stopping the node");
            if let Err(e) = node.shutdown().await {
                tracing::error!(error = %e, "shutdown after the failure failed too");
            }
            Err(eyre::eyre!(failure))
        }
    }
}

fn print_banner(
    spec: &ChainSpec,
    rpc_urls: &[String],
    metrics_urls: &[String],
    datadir: &std::path::Path,
) {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "\nKOMA devnet\n===========\n");
    let _ = writeln!(s, "Chain ID:     {}", spec.chain_id);
    for (i, url) in rpc_urls.iter().enumerate() {
        let ws = url.replacen("http://", "ws://", 1);
        let _ = write!(s, "Node {i}:       RPC {url}   WebSocket {ws}");
        match metrics_urls.get(i) {
            Some(metrics) => {
                let _ = writeln!(s, "   Metrics {metrics}");
            }
            None => {
                let _ = writeln!(s);
            }
        }
    }
    let _ = writeln!(s, "Producers:    {}", spec.producers.producers.len());
    let _ = writeln!(s, "Block time:   {} ms", spec.block_time_ms);
    let _ = writeln!(s, "Gas limit:    {}", spec.gas_limit);
    let _ = writeln!(s, "Compute limit: {} units", spec.compute_limit());
    let _ = writeln!(s, "Data dir:     {}", datadir.display());
    let _ = writeln!(
        s,
        "\nAvailable Accounts (10,000 ETH each)\n===================================="
    );
    let accounts = koma_primitives::dev::dev_accounts(10);
    for (i, (addr, _)) in accounts.iter().enumerate() {
        let _ = writeln!(s, "({i}) {addr}");
    }
    let _ = writeln!(s, "\nPrivate Keys\n============");
    for (i, (_, key)) in accounts.iter().enumerate() {
        let _ = writeln!(s, "({i}) 0x{}", hex::encode(key.to_bytes()));
    }
    let _ = writeln!(s, "\nMnemonic:     {}", koma_primitives::dev::DEV_MNEMONIC);
    let _ = writeln!(s, "Derivation:   m/44'/60'/0'/0/<index>\n");
    let _ = writeln!(
        s,
        "These keys are public: never use them on a network that holds value."
    );
    if let Some(first) = rpc_urls.first() {
        let _ = writeln!(s, "Listening on {}", first.trim_start_matches("http://"));
    }
    println!("{s}");
}

async fn node(args: cli::NodeArgs) -> eyre::Result<()> {
    let spec = ChainSpec::from_file(&args.genesis)?;
    let producer_key = match (&args.producer_keystore, &args.password_file) {
        (Some(ks), Some(pw)) => Some(cli::load_keystore(ks, pw)?),
        (Some(_), None) => eyre::bail!("--producer-keystore needs --password-file"),
        (None, _) => None,
    };
    let staker_key = match (&args.staker_keystore, &args.password_file) {
        (Some(ks), Some(pw)) => Some(cli::load_keystore(ks, pw)?),
        (Some(_), None) => eyre::bail!("--staker-keystore needs --password-file"),
        // The producer key stakes too unless a staker key is given (devnet: both).
        (None, _) => producer_key.clone(),
    };
    let pool = args.pool.apply(koma_node::pool_config(&spec));
    let checkpoint =
        args.checkpoint
            .config(&spec, args.password_file.as_deref(), staker_key.clone())?;
    #[cfg(feature = "test-tools")]
    let checkpoint = checkpoint.map(|mut c| {
        c.double_sign_for_testing = args.double_sign_checkpoints_for_testing;
        c
    });
    let config = NodeConfig {
        spec,
        datadir: args.datadir,
        rpc: rpc_settings(&args.rpc)?,
        api: koma_rpc::ApiConfig {
            finalized_tag: args.checkpoint.finalized_tag.tag(),
            ..args.rpc.api_config(args.admin_rpc)
        },
        producer_key,
        staker_key,
        #[cfg(feature = "test-tools")]
        equivocate: args.equivocate_for_testing,
        #[cfg(not(feature = "test-tools"))]
        equivocate: false,
        #[cfg(feature = "test-tools")]
        forge_deposits: match (
            args.forge_deposits_for_testing,
            args.omit_deposits_for_testing,
        ) {
            (true, _) => koma_node::ForgeDeposits::Forge,
            (false, true) => koma_node::ForgeDeposits::Omit,
            (false, false) => koma_node::ForgeDeposits::No,
        },
        #[cfg(not(feature = "test-tools"))]
        forge_deposits: koma_node::ForgeDeposits::No,
        #[cfg(feature = "test-tools")]
        double_seal: args.double_seal_for_testing,
        #[cfg(not(feature = "test-tools"))]
        double_seal: false,
        pool: Some(pool),
        admission: args.pool.admission(),
        max_reorg_depth: args.max_reorg_depth,
        network: args.p2p.settings()?,
        checkpoint,
    };
    let mut node = Node::launch(config).await?;
    if let Some(addr) = args.metrics {
        node.serve_metrics(addr).await?;
    }
    let parent = async {
        if args.exit_with_parent {
            parent_exit().await;
            tracing::warn!("parent process exited");
        } else {
            std::future::pending::<()>().await;
        }
    };
    let failure = tokio::select! {
        _ = wait_for_shutdown() => None,
        _ = parent => None,
        failure = node.failed() => Some(failure),
    };
    stop_node(node, failure).await
}

/// Resolves once this process is re-parented (its parent died).
async fn parent_exit() {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if std::os::unix::process::parent_id() != parent {
                return;
            }
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}
