//! Network benchmarks and the chain generator they (and the sync tests) use.
//!
//! - `gen-chain`: writes a devnet chain of N blocks with real transfers into a data
//!   directory (each block sealed by its in-turn producer, one second apart from the
//!   genesis time), so a node can serve it to a newcomer.
//! - `sync`: a fresh node syncs such a chain from a serving node over libp2p on
//!   loopback; prints blocks/s and Mgas/s.
//! - `propagation`: subscribes to `newHeads` on every node of a running network and
//!   prints, per block, how long after the first node each other node had it.
//! - `finality`: block announced -> final at the node's threshold, optionally while
//!   an RPC flood (`--flood N` clients of heavy requests) hits the first node.
//! - `checkpoints`: block final -> its checkpoint accepted on L1 -> notarized, on a
//!   running devnet with an L1.
//! - `heal`: splits a running 4-node devnet 2+2 (admin RPC) again and again and
//!   prints how long after each heal every node finalized a new block.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::network::TxSignerSync;
use alloy_primitives::{Address, TxKind, U256};
use eyre::WrapErr;
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use koma_node::{NetworkSettings, Node, NodeConfig};
use koma_primitives::{ChainSpec, dev};
use koma_producer::{PoolAccess, ProducerSchedule, build_block};
use koma_rpc::{ApiConfig, ServerSettings};
use koma_storage::Database;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Senders of the generated load: the funded devnet accounts.
const SENDERS: u32 = 10;

struct Queue(VecDeque<(TxEnvelope, Address)>);

impl PoolAccess for Queue {
    fn next_best(&mut self) -> Option<(TxEnvelope, Address)> {
        self.0.pop_front()
    }
    fn skip_sender(&mut self, _: Address) {}
}

/// The chain spec and database directory of a generated chain under `dir`.
pub fn chain_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("genesis.json"), dir.join("node"))
}

/// Generates (or extends) a chain of `blocks` blocks with `txs_per_block` ETH
/// transfers each. Returns the spec.
pub fn gen_chain(
    dir: &Path,
    producers: u32,
    blocks: u64,
    txs_per_block: u64,
) -> eyre::Result<ChainSpec> {
    let (genesis, datadir) = chain_paths(dir);
    let spec = ChainSpec::devnet_with_producers(producers);
    std::fs::create_dir_all(dir)?;
    std::fs::write(&genesis, serde_json::to_string_pretty(&spec)?)?;
    let db = Database::open(&datadir, &spec)?;
    let schedule = ProducerSchedule::genesis(&spec);
    let keys: Vec<_> = (0..producers).map(dev::dev_producer_key).collect();
    let senders = dev::dev_accounts(SENDERS);
    let mut nonces: Vec<u64> = senders
        .iter()
        .map(|(a, _)| db.account(*a).map(|acc| acc.map_or(0, |a| a.nonce)))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let first = db.head().number() + 1;
    let mut gas = 0u64;
    for number in first..=blocks {
        let in_turn = schedule.in_turn(number);
        let key = keys
            .iter()
            .find(|k| k.address() == in_turn)
            .ok_or_else(|| eyre::eyre!("no key for producer {in_turn}"))?;
        let base_fee = spec.base_fee_after(&db.head().header);
        let mut txs = VecDeque::new();
        for i in 0..txs_per_block {
            let s = (i % u64::from(SENDERS)) as usize;
            let (from, signer) = &senders[s];
            let mut tx = TxEip1559 {
                chain_id: spec.chain_id,
                nonce: nonces[s],
                gas_limit: 21_000,
                max_fee_per_gas: u128::from(base_fee) * 2 + 1_000_000_000,
                max_priority_fee_per_gas: 1_000_000_000,
                to: TxKind::Call(Address::with_last_byte((number % 200) as u8 + 1)),
                value: U256::from(number),
                ..Default::default()
            };
            nonces[s] += 1;
            let sig = signer.sign_transaction_sync(&mut tx)?;
            txs.push_back((tx.into_signed(sig).into(), *from));
        }
        let built = build_block(&spec, &db, &mut Queue(txs), key, spec.timestamp)?;
        gas += built.header.header.gas_used;
        if number % 1000 == 0 {
            println!(
                "generated block {number} ({:.0} blocks/s)",
                (number - first + 1) as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    db.flush()?;
    println!(
        "chain of {} blocks in {} ({} new, {:.1} Mgas) in {:.1}s",
        db.head().number(),
        datadir.display(),
        blocks.saturating_sub(first - 1),
        gas as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(spec)
}

fn node_config(
    spec: &ChainSpec,
    datadir: &Path,
    bootnodes: Vec<koma_network::Multiaddr>,
) -> eyre::Result<NodeConfig> {
    Ok(NodeConfig {
        spec: spec.clone(),
        datadir: datadir.to_path_buf(),
        rpc: ServerSettings {
            addr: "127.0.0.1:0".parse()?,
            ..Default::default()
        },
        api: ApiConfig::default(),
        producer_key: None,
        equivocate: false,
        forge_deposits: koma_node::ForgeDeposits::No,
        double_seal: false,
        staker_key: None,
        pool: None,
        admission: Default::default(),
        max_reorg_depth: koma_node::DEFAULT_MAX_REORG_DEPTH,
        network: Some(NetworkSettings {
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            bootnodes,
            discovery: false,
            max_peers: 10,
        }),
        checkpoint: None,
    })
}

/// A fresh node syncs the chain in `dir` (generated first if shorter than `blocks`).
pub async fn sync(dir: Option<PathBuf>, blocks: u64, txs_per_block: u64) -> eyre::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("koma-bench-sync-")
        .tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().join("chain"));
    let (genesis, datadir) = chain_paths(&dir);
    let spec = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || gen_chain(&dir, 4, blocks, txs_per_block)).await??
    };
    let _ = genesis;
    let server = Node::launch(node_config(&spec, &datadir, vec![])?).await?;
    let target = server.db.head();
    let total_gas: u64 = (1..=target.number())
        .filter_map(|n| server.db.header_by_number(n).ok().flatten())
        .map(|h| h.header.gas_used)
        .sum();
    let boot = server
        .network
        .as_ref()
        .map(|n| n.bootnode_addrs())
        .unwrap_or_default();
    let fresh_dir = tmp.path().join("fresh");
    let started = Instant::now();
    let fresh = Node::launch(node_config(&spec, &fresh_dir, boot)?).await?;
    let deadline = started + Duration::from_secs(3600);
    while fresh.db.head().hash != target.hash {
        eyre::ensure!(
            Instant::now() < deadline,
            "sync did not finish within an hour"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "synced {} blocks ({:.1} Mgas, {} transfers) in {secs:.1}s: {:.0} blocks/s, {:.1} Mgas/s",
        target.number(),
        total_gas as f64 / 1e6,
        target.number() * txs_per_block,
        target.number() as f64 / secs,
        total_gas as f64 / 1e6 / secs
    );
    fresh.shutdown().await?;
    server.shutdown().await?;
    Ok(())
}

/// Block propagation across the nodes at `urls` (WebSocket `newHeads`).
pub async fn propagation(urls: Vec<String>, blocks: usize) -> eyre::Result<()> {
    eyre::ensure!(urls.len() >= 2, "give at least two --rpc URLs");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let ws = url.replacen("http://", "ws://", 1);
        let client = WsClientBuilder::default()
            .build(&ws)
            .await
            .wrap_err_with(|| format!("cannot connect to {ws}"))?;
        let mut sub = client
            .subscribe::<serde_json::Value, _>(
                "eth_subscribe",
                rpc_params!["newHeads"],
                "eth_unsubscribe",
            )
            .await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(head)) = sub.next().await {
                let hash = head["hash"].as_str().unwrap_or_default().to_string();
                if tx.send((i, hash, Instant::now())).is_err() {
                    break;
                }
            }
        });
        clients.push(client);
    }
    println!("watching {} nodes for {blocks} blocks...", urls.len());
    let mut seen: HashMap<String, Vec<(usize, Instant)>> = HashMap::new();
    let mut complete = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(blocks as u64 * 5 + 30);
    while complete.len() < blocks {
        let Ok(Some((node, hash, at))) = tokio::time::timeout_at(deadline.into(), rx.recv()).await
        else {
            break;
        };
        let arrivals = seen.entry(hash.clone()).or_default();
        arrivals.push((node, at));
        if arrivals.len() == urls.len() {
            complete.push(seen.remove(&hash).unwrap_or_default());
        }
    }
    let mut delays: Vec<f64> = Vec::new();
    for arrivals in &mut complete {
        arrivals.sort_by_key(|(_, t)| *t);
        if let Some((_, first)) = arrivals.first().copied() {
            delays.extend(
                arrivals
                    .iter()
                    .skip(1)
                    .map(|(_, t)| t.duration_since(first).as_secs_f64() * 1e3),
            );
        }
    }
    delays.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| crate::stats::percentile(&delays, p);
    println!(
        "{} blocks reached all {} nodes; propagation after the first node (producer commit -> peer import committed): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        complete.len(),
        urls.len(),
        pct(0.5),
        pct(0.99),
        delays.last().copied().unwrap_or(0.0)
    );
    eyre::ensure!(!complete.is_empty(), "no block reached every node");
    Ok(())
}

/// What a flood of heavy RPC requests achieved.
#[derive(Debug, Default)]
struct FloodStats {
    ok: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
}

/// `clients` concurrent HTTP clients loop heavy requests against `url` until `stop`:
/// `eth_feeHistory` over 1024 blocks with 100 percentiles, `eth_getLogs` over the
/// whole chain, and an `eth_call` whose code (a state override) loops until its gas
/// runs out.
fn start_flood(
    url: &str,
    clients: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::sync::Arc<FloodStats> {
    use std::sync::atomic::Ordering;
    let stats = std::sync::Arc::new(FloodStats::default());
    let percentiles: Vec<u32> = (1..=100).collect();
    let looping = "0x5b600056"; // JUMPDEST PUSH1 0 JUMP
    let target = "0x00000000000000000000000000000000000c0ffe";
    let requests = [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_feeHistory",
            "params": ["0x400", "latest", percentiles]}),
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "eth_getLogs",
            "params": [{"fromBlock": "0x0", "toBlock": "latest"}]}),
        serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "eth_call",
            "params": [{"to": target, "data": "0x"}, "latest", {target: {"code": looping}}]}),
    ];
    for i in 0..clients {
        let http = reqwest::Client::new();
        let url = url.to_string();
        let stats = stats.clone();
        let stop = stop.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            let mut k = i;
            while !*stop.borrow() {
                let body = &requests[k % requests.len()];
                k += 1;
                let answered = http
                    .post(&url)
                    .json(body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .and_then(|r| r.error_for_status());
                match answered {
                    Ok(r) => match r.json::<serde_json::Value>().await {
                        Ok(v) if v.get("result").is_some() => {
                            stats.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            stats.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    Err(_) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    stats
}

/// Checkpoint latency, read from one node's `finalized` and `checkpoints` subscriptions:
/// for every block of the next `count` checkpoints, the time from its finality to its
/// checkpoint's acceptance on L1 and to its notarization; and for each checkpoint, from
/// the finality of its last block (when its range can be signed) to both.
pub async fn checkpoints(url: String, count: usize) -> eyre::Result<()> {
    enum Seen {
        Final(u64, Instant),
        Checkpoint(serde_json::Value, Instant),
    }
    let ws = url.replacen("http://", "ws://", 1);
    let client = WsClientBuilder::default()
        .build(&ws)
        .await
        .wrap_err_with(|| format!("cannot connect to {ws}"))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for kind in ["finalized", "checkpoints"] {
        let mut sub = client
            .subscribe::<serde_json::Value, _>(
                "eth_subscribe",
                rpc_params![kind],
                "eth_unsubscribe",
            )
            .await
            .wrap_err_with(|| {
                format!("{ws}: eth_subscribe {kind} (does the node follow an L1?)")
            })?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(v)) = sub.next().await {
                let at = Instant::now();
                let seen = if kind == "finalized" {
                    let Some(n) = quantity(&v["number"]) else {
                        continue;
                    };
                    Seen::Final(n, at)
                } else {
                    Seen::Checkpoint(v, at)
                };
                if tx.send(seen).is_err() {
                    break;
                }
            }
        });
    }
    println!("watching {url} until {count} checkpoints are notarized...");
    let mut final_at: std::collections::BTreeMap<u64, Instant> = Default::default();
    let mut last_final = None::<u64>;
    let mut accepted_at: HashMap<u64, Instant> = HashMap::new();
    let (mut to_accepted, mut to_notarized) = (Vec::new(), Vec::new());
    let (mut range_to_accepted, mut range_to_notarized) = (Vec::new(), Vec::new());
    let mut done = 0usize;
    let deadline = Instant::now() + Duration::from_secs(count as u64 * 120 + 120);
    let ms = |later: Instant, earlier: Instant| later.duration_since(earlier).as_secs_f64() * 1e3;
    while done < count {
        let Ok(Some(seen)) = tokio::time::timeout_at(deadline.into(), rx.recv()).await else {
            eyre::bail!("timed out: {done} of {count} checkpoints notarized");
        };
        match seen {
            Seen::Final(m, at) => {
                // blocks final before we watched are not measured
                if let Some(last) = last_final {
                    for n in last.saturating_add(1)..=m {
                        final_at.insert(n, at);
                    }
                }
                last_final = Some(m.max(last_final.unwrap_or(0)));
            }
            Seen::Checkpoint(cp, at) => {
                let (Some(number), Some(start), Some(end)) = (
                    quantity(&cp["number"]),
                    quantity(&cp["start"]),
                    quantity(&cp["end"]),
                ) else {
                    continue;
                };
                if cp["removed"].as_bool() == Some(true) {
                    accepted_at.remove(&number);
                    continue;
                }
                let notarized = cp["notarized"].as_bool() == Some(true);
                let accepted = *accepted_at.entry(number).or_insert(at);
                if !notarized {
                    continue;
                }
                // only ranges wholly watched from their first block's finality
                let Some(range_final) = final_at.get(&end).copied() else {
                    continue;
                };
                if !final_at.contains_key(&start) {
                    continue;
                }
                for n in start..=end {
                    if let Some(f) = final_at.get(&n) {
                        to_accepted.push(ms(accepted, *f));
                        to_notarized.push(ms(at, *f));
                    }
                }
                range_to_accepted.push(ms(accepted, range_final));
                range_to_notarized.push(ms(at, range_final));
                done += 1;
                println!(
                    "checkpoint {number} [{start}, {end}]: last block final -> accepted {:.0} ms, -> notarized {:.0} ms",
                    ms(accepted, range_final),
                    ms(at, range_final)
                );
            }
        }
    }
    for v in [
        &mut to_accepted,
        &mut to_notarized,
        &mut range_to_accepted,
        &mut range_to_notarized,
    ] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    let p = |v: &[f64], q: f64| crate::stats::percentile(v, q);
    println!(
        "{done} checkpoints, {} blocks: block final -> accepted on L1 p50 {:.0} ms, p99 {:.0} ms; -> notarized p50 {:.0} ms, p99 {:.0} ms",
        to_accepted.len(),
        p(&to_accepted, 0.5),
        p(&to_accepted, 0.99),
        p(&to_notarized, 0.5),
        p(&to_notarized, 0.99)
    );
    println!(
        "range complete (last block final) -> accepted p50 {:.0} ms, max {:.0} ms; -> notarized p50 {:.0} ms, max {:.0} ms",
        p(&range_to_accepted, 0.5),
        range_to_accepted.last().copied().unwrap_or(0.0),
        p(&range_to_notarized, 0.5),
        range_to_notarized.last().copied().unwrap_or(0.0)
    );
    Ok(())
}

fn quantity(v: &serde_json::Value) -> Option<u64> {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
}

/// Finality latency: from the moment the first node announces a block (`newHeads`) to
/// the moment the first node in `urls` reports it final at its threshold. With
/// `flood > 0`, that many clients send heavy requests to the first node meanwhile.
pub async fn finality(urls: Vec<String>, blocks: usize, flood: usize) -> eyre::Result<()> {
    eyre::ensure!(!urls.is_empty(), "give at least one --rpc URL");
    let (stop_flood, flood_rx) = tokio::sync::watch::channel(false);
    let flood_stats = (flood > 0).then(|| start_flood(&urls[0], flood, flood_rx));
    let started = Instant::now();
    enum Seen {
        Head(u64, Instant),
        Final(u64, Instant),
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let ws = url.replacen("http://", "ws://", 1);
        let client = WsClientBuilder::default()
            .build(&ws)
            .await
            .wrap_err_with(|| format!("cannot connect to {ws}"))?;
        let kinds: &[&str] = if i == 0 {
            &["newHeads", "finalized"]
        } else {
            &["newHeads"]
        };
        for kind in kinds {
            let mut sub = client
                .subscribe::<serde_json::Value, _>(
                    "eth_subscribe",
                    rpc_params![*kind],
                    "eth_unsubscribe",
                )
                .await
                .wrap_err_with(|| format!("{ws}: eth_subscribe {kind}"))?;
            let tx = tx.clone();
            let is_final = *kind == "finalized";
            tokio::spawn(async move {
                while let Some(Ok(v)) = sub.next().await {
                    let n = v["number"]
                        .as_str()
                        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
                    let Some(n) = n else { continue };
                    let seen = if is_final {
                        Seen::Final(n, Instant::now())
                    } else {
                        Seen::Head(n, Instant::now())
                    };
                    if tx.send(seen).is_err() {
                        break;
                    }
                }
            });
        }
        clients.push(client);
    }
    println!(
        "watching {} nodes until {blocks} blocks are final...",
        urls.len()
    );
    let mut first_seen: std::collections::BTreeMap<u64, Instant> = Default::default();
    let mut latencies = Vec::new();
    let mut last_final = None::<u64>;
    let deadline = Instant::now() + Duration::from_secs(blocks as u64 * 3 + 60);
    while latencies.len() < blocks {
        let Ok(Some(seen)) = tokio::time::timeout_at(deadline.into(), rx.recv()).await else {
            break;
        };
        match seen {
            Seen::Head(n, at) => {
                first_seen.entry(n).or_insert(at);
            }
            Seen::Final(m, at) => {
                // Blocks announced before we watched are not measured.
                let from = last_final.map_or(m, |l| l + 1);
                if last_final.is_some() {
                    for n in from..=m {
                        if let Some(t) = first_seen.get(&n) {
                            latencies.push(at.duration_since(*t).as_secs_f64() * 1e3);
                        }
                    }
                }
                last_final = Some(m.max(last_final.unwrap_or(0)));
            }
        }
    }
    let _ = stop_flood.send(true);
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| crate::stats::percentile(&latencies, p);
    println!(
        "{} blocks final at the node's threshold: latency from first announcement p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    if let Some(stats) = flood_stats {
        use std::sync::atomic::Ordering;
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let ok = stats.ok.load(Ordering::Relaxed);
        let errors = stats.errors.load(Ordering::Relaxed);
        println!(
            "flood on {}: {flood} clients, {ok} heavy requests answered ({:.0}/s), {errors} errors or refusals",
            urls[0],
            ok as f64 / secs
        );
    }
    eyre::ensure!(!latencies.is_empty(), "no block became final");
    Ok(())
}

/// Splits a running devnet (started with `--admin-rpc`) into halves with
/// `admin_blockPeer`, `rounds` times for `split_secs` each, and prints how long after
/// each heal every node reported a new block final at its threshold (`safe` above what
/// was final before the heal).
pub async fn heal(urls: Vec<String>, rounds: usize, split_secs: u64) -> eyre::Result<()> {
    eyre::ensure!(
        urls.len() >= 2,
        "give the RPC URLs of every node (at least 2)"
    );
    let http = reqwest::Client::new();
    let call = |url: String, method: &'static str, params: serde_json::Value| {
        let http = http.clone();
        async move {
            let body =
                serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
            let v: serde_json::Value = http.post(&url).json(&body).send().await?.json().await?;
            match v.get("result") {
                Some(r) => Ok(r.clone()),
                None => Err(eyre::eyre!("{url} {method}: {}", v["error"])),
            }
        }
    };
    let number = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
    };
    let final_number = |url: String| {
        let call = &call;
        async move {
            let block = call(
                url,
                "eth_getBlockByNumber",
                serde_json::json!(["safe", false]),
            )
            .await?;
            Ok::<u64, eyre::Report>(number(&block["number"]).unwrap_or(0))
        }
    };
    let mut ids = Vec::new();
    for url in &urls {
        let info = call(url.clone(), "admin_nodeInfo", serde_json::json!([]))
            .await
            .wrap_err("admin_nodeInfo (start the devnet with --admin-rpc)")?;
        ids.push(info["id"].as_str().unwrap_or_default().to_string());
    }
    let half = urls.len() / 2;
    let split = |blocked: bool| {
        let (urls, ids, call) = (&urls, &ids, &call);
        async move {
            let method = if blocked {
                "admin_blockPeer"
            } else {
                "admin_unblockPeer"
            };
            for (i, url) in urls.iter().enumerate() {
                for (j, id) in ids.iter().enumerate() {
                    if (i < half) != (j < half) {
                        call(url.clone(), method, serde_json::json!([id])).await?;
                    }
                }
            }
            Ok::<(), eyre::Report>(())
        }
    };
    let mut times = Vec::new();
    for round in 1..=rounds {
        split(true).await?;
        tokio::time::sleep(Duration::from_secs(split_secs)).await;
        let mut before = 0;
        for url in &urls {
            before = before.max(final_number(url.clone()).await?);
        }
        split(false).await?;
        let healed = Instant::now();
        let mut done = vec![false; urls.len()];
        while done.iter().any(|d| !d) {
            eyre::ensure!(
                healed.elapsed() < Duration::from_secs(120),
                "round {round}: finality did not resume within 120 s of the heal"
            );
            for (i, url) in urls.iter().enumerate() {
                if !done[i] && final_number(url.clone()).await? > before {
                    done[i] = true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let secs = healed.elapsed().as_secs_f64();
        println!("round {round}: every node finalized a new block {secs:.1} s after the heal");
        times.push(secs * 1e3);
        // Let the network settle before the next split.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| crate::stats::percentile(&times, p);
    println!(
        "{rounds} heals after {split_secs} s splits: heal -> new final block on every node p50 {:.0} ms, max {:.0} ms",
        pct(0.5),
        times.last().copied().unwrap_or(0.0)
    );
    Ok(())
}
