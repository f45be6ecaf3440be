//! `koma devnet --nodes N`: N real `koma node` processes on loopback.
//!
//! The data directory holds the chain spec (`genesis.json`, the devnet spec with the
//! first N devnet producer keys), a password file, and per node `node-<i>/` with its
//! database, libp2p identity and encrypted producer keystore. `devnet.json` records
//! each node's ports, peer id and exact command line, so tests and scripts can stop
//! and restart single nodes. Every node lists every other node as a bootnode, so the
//! full mesh forms again after a restart or a partition.
//!
//! The children's logs are relayed with a `[node-i]` prefix; Ctrl-C or SIGTERM stops
//! them all, and they stop by themselves if this process dies (`--exit-with-parent`).

use crate::cli::DevnetArgs;
use eyre::WrapErr;
use koma_primitives::ChainSpec;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The devnet's own password for its keystores. The devnet keys are public anyway;
/// the keystores exist so devnet nodes start exactly like real ones.
const DEVNET_PASSWORD: &str = "koma-devnet";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeEntry {
    pub index: u32,
    pub rpc_url: String,
    pub ws_url: String,
    /// `http://127.0.0.1:<port>/metrics` with `--metrics-port`.
    pub metrics_url: Option<String>,
    pub p2p_addr: String,
    pub peer_id: String,
    pub producer: String,
    pub datadir: PathBuf,
    /// Arguments of `koma` that start this node.
    pub args: Vec<String>,
}

/// The devnet's L1: the development L1 this process starts, or an external one.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct L1Entry {
    pub rpc_url: String,
    /// Arguments of `koma` that start the development L1; empty for an external L1.
    pub args: Vec<String>,
    /// Where the L1 deployment is recorded (written once the contracts are deployed).
    pub contracts_file: PathBuf,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub chain_id: u64,
    pub genesis: PathBuf,
    pub nodes: Vec<NodeEntry>,
    /// How many of the nodes (the first ones) are stakers from genesis.
    pub stakers: u32,
    /// None with `--no-l1`.
    pub l1: Option<L1Entry>,
}

/// Writes spec, keystores and identities into `base` and describes the nodes.
pub fn prepare(
    args: &DevnetArgs,
    spec: &ChainSpec,
    base: &Path,
    log: &str,
) -> eyre::Result<Manifest> {
    std::fs::create_dir_all(base).wrap_err_with(|| format!("cannot create {}", base.display()))?;
    let genesis = base.join("genesis.json");
    write_spec(
        &genesis,
        spec,
        "a different devnet (other --nodes, --block-time-ms, --gas-limit, --sprint, --era-blocks or --checkpoint-interval)",
    )?;
    let password = base.join("password");
    write_private(&password, DEVNET_PASSWORD)?;

    let keys: Vec<_> = (0..args.nodes)
        .map(koma_primitives::dev::dev_producer_key)
        .collect();
    let mut entries = Vec::new();
    let mut p2p = Vec::new();
    for i in 0..args.nodes {
        let dir = base.join(format!("node-{i}"));
        std::fs::create_dir_all(&dir)?;
        let identity = koma_network::load_or_create_identity(&dir)?;
        let peer_id = identity.public().to_peer_id();
        let port = port_plus(args.p2p_port, i)?;
        p2p.push(format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}"));
        let keystore = write_producer_keystore(&dir, &keys[i as usize])?;
        let bls = dir.join("bls.json");
        if !bls.exists() && !args.no_l1 {
            let key = koma_l1::dev::dev_bls_key(i);
            let mut rng = rand::rng();
            // PBKDF2 (about 0.1 s to open) rather than scrypt: these keys are public anyway
            let ks = koma_checkpoint::keystore::encrypt(
                &key,
                DEVNET_PASSWORD,
                &mut rng,
                koma_checkpoint::Kdf::PBKDF2,
            )
            .map_err(|e| eyre::eyre!("cannot encrypt the BLS key: {e}"))?;
            let json = ks
                .to_json()
                .map_err(|e| eyre::eyre!("cannot encode the BLS keystore: {e}"))?;
            write_private(&bls, &json)?;
        }
        entries.push((i, dir, peer_id, port, keystore));
    }
    let l1 = if args.no_l1 {
        None
    } else if let Some(url) = &args.l1_rpc {
        Some(L1Entry {
            rpc_url: url.clone(),
            args: Vec::new(),
            contracts_file: base.join("l1-contracts.json"),
        })
    } else {
        Some(prepare_l1(args, base, &password, log)?)
    };
    let nodes = entries
        .into_iter()
        .map(
            |(i, dir, peer_id, port, keystore)| -> eyre::Result<NodeEntry> {
                let http_port = port_plus(args.rpc.http_port, i)?;
                let others: Vec<&str> = p2p
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j as u32 != i)
                    .map(|(_, a)| a.as_str())
                    .collect();
                let mut argv =
                    node_args(log, &genesis, &dir, &keystore, &password, args, http_port);
                argv.extend([
                    "--p2p-addr".into(),
                    "127.0.0.1".into(),
                    "--p2p-port".into(),
                    port.to_string(),
                    "--no-discovery".into(),
                    "--exit-with-parent".into(),
                ]);
                argv.extend(args.rpc.limit_args());
                if let Some(l1) = &l1 {
                    argv.push("--l1-rpc".into());
                    argv.push(l1.rpc_url.clone());
                    argv.push("--l1-contracts".into());
                    argv.push(l1.contracts_file.display().to_string());
                    argv.push("--bls-keystore".into());
                    argv.push(dir.join("bls.json").display().to_string());
                }
                argv.extend(args.pool.to_args());
                let metrics = match args.metrics_port {
                    Some(base) => {
                        let addr = format!("127.0.0.1:{}", port_plus(base, i)?);
                        argv.push("--metrics".into());
                        argv.push(addr.clone());
                        Some(format!("http://{addr}/metrics"))
                    }
                    None => None,
                };
                if !others.is_empty() {
                    argv.push("--bootnodes".into());
                    argv.push(others.join(","));
                }
                if args.admin_rpc {
                    argv.push("--admin-rpc".into());
                }
                if let Some(cors) = &args.rpc.http_corsdomain {
                    argv.push("--http-corsdomain".into());
                    argv.push(cors.join(","));
                }
                Ok(NodeEntry {
                    index: i,
                    rpc_url: format!("http://{}:{http_port}", args.rpc.http_addr),
                    ws_url: format!("ws://{}:{http_port}", args.rpc.http_addr),
                    metrics_url: metrics,
                    p2p_addr: p2p[i as usize].clone(),
                    peer_id: peer_id.to_string(),
                    producer: keys[i as usize].address().to_string(),
                    datadir: dir,
                    args: argv,
                })
            },
        )
        .collect::<eyre::Result<Vec<_>>>()?;
    let stakers = spec.consensus.as_ref().map_or(args.nodes, |c| {
        u32::try_from(c.stakers.len()).unwrap_or(args.nodes)
    });
    let manifest = Manifest {
        chain_id: spec.chain_id,
        genesis,
        nodes,
        stakers,
        l1,
    };
    std::fs::write(
        base.join("devnet.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    Ok(manifest)
}

/// The development L1: its chain spec (the devnet stakers funded, so they pay their own
/// L1 gas), its producer's keystore and how to start it.
fn prepare_l1(args: &DevnetArgs, base: &Path, password: &Path, log: &str) -> eyre::Result<L1Entry> {
    let dir = base.join("l1");
    std::fs::create_dir_all(&dir)?;
    let producer = koma_primitives::dev::dev_producer_key(L1_PRODUCER_INDEX);
    let stakers: Vec<_> = (0..args.nodes)
        .map(|i| koma_primitives::dev::dev_producer_key(i).address())
        .collect();
    let spec = koma_l1::dev::dev_l1_spec(producer.address(), &stakers);
    let genesis = dir.join("genesis.json");
    write_spec(
        &genesis,
        &spec,
        "a different development L1 (other --nodes)",
    )?;
    let keystore = write_producer_keystore(&dir, &producer)?;
    let mut argv = node_args(
        log,
        &genesis,
        &dir,
        &keystore,
        password,
        args,
        args.l1_http_port,
    );
    argv.extend(["--no-p2p".into(), "--exit-with-parent".into()]);
    Ok(L1Entry {
        rpc_url: format!("http://{}:{}", args.rpc.http_addr, args.l1_http_port),
        args: argv,
        contracts_file: base.join("l1-contracts.json"),
    })
}

/// Derivation index (above the devnet producers') of the development L1's producer key.
const L1_PRODUCER_INDEX: u32 = 90;

/// The arguments of `koma` that start a producing node of the devnet (the L1's too).
fn node_args(
    log: &str,
    genesis: &Path,
    dir: &Path,
    keystore: &Path,
    password: &Path,
    args: &DevnetArgs,
    http_port: u16,
) -> Vec<String> {
    vec![
        "--log".to_string(),
        log.to_string(),
        "node".into(),
        "--genesis".into(),
        genesis.display().to_string(),
        "--datadir".into(),
        dir.display().to_string(),
        "--producer-keystore".into(),
        keystore.display().to_string(),
        "--password-file".into(),
        password.display().to_string(),
        "--http-addr".into(),
        args.rpc.http_addr.clone(),
        "--http-port".into(),
        http_port.to_string(),
    ]
}

/// Writes `spec` to `path`, or checks that the spec already there is the same (else the
/// data directory holds `what`).
fn write_spec(path: &Path, spec: &ChainSpec, what: &str) -> eyre::Result<()> {
    let json = serde_json::to_string_pretty(spec)?;
    match std::fs::read_to_string(path) {
        Ok(existing) if existing != json => eyre::bail!(
            "{} holds {what}; use another --datadir",
            path.parent().unwrap_or(path).display()
        ),
        Ok(_) => Ok(()),
        Err(_) => Ok(std::fs::write(path, &json)?),
    }
}

/// `dir/producer.json`, the encrypted keystore of `key` (written once).
fn write_producer_keystore(
    dir: &Path,
    key: &alloy::signers::local::PrivateKeySigner,
) -> eyre::Result<PathBuf> {
    let keystore = dir.join("producer.json");
    if !keystore.exists() {
        let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
        alloy::signers::local::LocalSigner::encrypt_keystore(
            dir,
            &mut rng,
            key.to_bytes(),
            DEVNET_PASSWORD,
            Some("producer.json"),
        )
        .map_err(|e| eyre::eyre!("cannot write keystore: {e}"))?;
    }
    Ok(keystore)
}

fn port_plus(base: u16, i: u32) -> eyre::Result<u16> {
    u16::try_from(u32::from(base) + i).map_err(|_| eyre::eyre!("port {base} + {i} is out of range"))
}

fn write_private(path: &Path, content: &str) -> eyre::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    Ok(())
}

fn spawn(label: &str, args: &[String]) -> eyre::Result<Child> {
    let exe = std::env::current_exe().wrap_err("cannot find the koma binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .wrap_err_with(|| format!("cannot start {label}"))?;
    if let Some(stderr) = child.stderr.take() {
        let prefix = format!("[{label}]");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{prefix} {line}");
            }
        });
    }
    Ok(child)
}

/// Starts the L1 (unless external) and the nodes; deploys the root contracts and registers
/// the stakers on the L1 (unless a former run did) while the nodes start; supervises them
/// all until Ctrl-C / SIGTERM. A process that dies, or an L1 that cannot be set up, stops
/// the devnet with an error.
pub async fn run(manifest: &Manifest) -> eyre::Result<()> {
    // (log prefix, name in messages, process)
    let mut children: Vec<(String, String, Child)> = Vec::new();
    if let Some(l1) = manifest.l1.as_ref().filter(|l1| !l1.args.is_empty()) {
        children.push(("l1".into(), "L1".into(), spawn("l1", &l1.args)?));
    }
    for entry in &manifest.nodes {
        let label = format!("node-{}", entry.index);
        let child = spawn(&label, &entry.args)?;
        children.push((label, format!("node {}", entry.index), child));
    }
    let setup = async {
        match &manifest.l1 {
            Some(l1) => set_up_l1(l1, manifest).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(setup);
    let mut waits = futures::future::select_all(
        children
            .iter_mut()
            .map(|(_, name, c)| Box::pin(async move { (name.clone(), c.wait().await) }))
            .collect::<Vec<_>>(),
    );
    let mut set_up = manifest.l1.is_none();
    let failure = loop {
        tokio::select! {
            _ = crate::wait_for_shutdown() => break None,
            ((name, status), _, _) = &mut waits => {
                let how = match &status {
                    Ok(s) => s.to_string(),
                    Err(e) => format!("cannot be watched: {e}"),
                };
                tracing::error!("devnet {name} died ({how}); stopping the devnet");
                let prefix = if name == "L1" { "l1".to_string() } else { name.replace(' ', "-") };
                break Some(eyre::eyre!(
                    "devnet {name} died ({how}); its log lines above, prefixed [{prefix}], say why"
                ));
            }
            result = &mut setup, if !set_up => {
                set_up = true;
                if let Err(e) = result {
                    tracing::error!("cannot set up the devnet's L1: {e:#}; stopping the devnet");
                    break Some(e.wrap_err("cannot set up the devnet's L1"));
                }
            }
        }
    };
    drop(waits);
    for (_, _, child) in &children {
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
    for (_, name, child) in &mut children {
        match tokio::time::timeout(std::time::Duration::from_secs(20), child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("devnet {name} did not stop in time; killing it");
                let _ = child.kill().await;
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The root contracts on the devnet's L1: read from the contracts file of a former run,
/// or deployed now with the devnet stakers registered as the first set. Prints where
/// they are.
async fn set_up_l1(l1: &L1Entry, manifest: &Manifest) -> eyre::Result<()> {
    let contracts = if l1.contracts_file.exists() {
        koma_l1::L1Contracts::from_file(&l1.contracts_file)?
    } else {
        let spec = ChainSpec::from_file(&manifest.genesis)?;
        let params = koma_l1::DeployParams::devnet(&spec);
        let stakers = manifest.stakers;
        let contracts = crate::l1::deploy_and_register(
            &l1.rpc_url,
            None,
            &params,
            stakers,
            &spec.producers.producers,
            std::time::Duration::from_secs(60),
        )
        .await?;
        contracts.write(&l1.contracts_file)?;
        contracts
    };
    println!(
        "\nL1 (root contracts, {} stakers)\n==============================",
        manifest.stakers
    );
    crate::l1::print_contracts(&l1.rpc_url, &contracts, Some(&l1.contracts_file));
    println!();
    Ok(())
}
