//! `koma bench`: rerunnable performance figures.
//!
//! - `execute`: the producer's real path (revm execution with the transfer log, state
//!   root, atomic RocksDB commit, sealing) over blocks of pre-signed ETH or ERC-20
//!   transfers.
//! - `state-root`: cost of a block's state root and commit with 10^3 vs 10^6
//!   accounts already in state, for the same number of touched accounts.
//! - `load`: end-to-end throughput and inclusion latency of pre-signed transfers sent
//!   over JSON-RPC to any Ethereum node (KOMA, anvil, ...), or spread over the nodes
//!   of a network.
//! - `gen-chain`, `sync`, `propagation`: see [`crate::bench_net`].

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::SolCall;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use clap::Subcommand;
use eyre::{WrapErr, eyre};
use koma_primitives::chainspec::GenesisAccount;
use koma_primitives::{ChainSpec, dev};
use koma_producer::{PoolAccess, build_block};
use koma_storage::{AccountChange, Database, StateChanges, changeset_info};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Executor throughput on revm + RocksDB: blocks of pre-signed transfers built,
    /// rooted, sealed and committed exactly as the producer does.
    Execute {
        /// Number of blocks to build.
        #[arg(long, default_value_t = 5)]
        blocks: usize,
        /// Transfers per block.
        #[arg(long, default_value_t = 20_000)]
        txs_per_block: usize,
        /// Distinct senders (each sends txs_per_block * blocks / senders).
        #[arg(long, default_value_t = 4_000)]
        senders: usize,
        /// ERC-20 `transfer` calls instead of ETH transfers.
        #[arg(long)]
        erc20: bool,
    },
    /// State-root and commit cost per block against the size of the state.
    StateRoot {
        /// State sizes (accounts) to compare.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1_000u64, 1_000_000])]
        accounts: Vec<u64>,
        /// Accounts each block changes.
        #[arg(long, default_value_t = 10_000)]
        touched: u64,
        /// Blocks per state size.
        #[arg(long, default_value_t = 5)]
        blocks: u64,
    },
    /// End-to-end: send pre-signed transfers over JSON-RPC until all are included;
    /// prints transfers/s and inclusion latency. Works against any Ethereum node.
    Load {
        /// JSON-RPC HTTP URL of the node under test; several (comma separated) spread
        /// the senders over the nodes of a network.
        #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8545")]
        rpc: Vec<String>,
        /// Transfers to send.
        #[arg(long, default_value_t = 20_000)]
        txs: usize,
        /// Fresh sender accounts (funded first by the funder).
        #[arg(long, default_value_t = 400)]
        senders: usize,
        /// Parallel HTTP connections sending.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Transactions per JSON-RPC batch request.
        #[arg(long, default_value_t = 250)]
        batch: usize,
        /// Private key paying for the senders (default: dev account 0).
        #[arg(long)]
        funder_key: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Write a devnet chain with transfers in every block into a directory
    /// (`genesis.json` and `node/`), for sync tests and benchmarks.
    GenChain {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 10_000)]
        blocks: u64,
        #[arg(long, default_value_t = 10)]
        txs_per_block: u64,
        /// Producers of the chain (devnet producer keys 0..n).
        #[arg(long, default_value_t = 4)]
        producers: u32,
    },
    /// Sync speed: a fresh node fetches, validates and executes a generated chain
    /// from a serving node over libp2p on loopback.
    Sync {
        /// Reuse (or create) the generated chain here; default: a temporary one.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 10_000)]
        blocks: u64,
        #[arg(long, default_value_t = 50)]
        txs_per_block: u64,
    },
    /// Finality latency: block announced -> final at the node's threshold (1/3).
    Finality {
        /// JSON-RPC URLs of the nodes (the first reports finality), comma separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "http://127.0.0.1:8545,http://127.0.0.1:8546,http://127.0.0.1:8547,http://127.0.0.1:8548"
        )]
        rpc: Vec<String>,
        #[arg(long, default_value_t = 60)]
        blocks: usize,
    },
    /// KoMaBFT in the seeded simulator (no network, no clock): finality latency,
    /// CPU per unit and bytes per unit with many validators of unequal stake.
    Consensus(ConsensusBench),
    /// Block propagation latency across the nodes of a running network.
    Propagation {
        /// JSON-RPC URLs of the nodes (WebSocket on the same port), comma separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "http://127.0.0.1:8545,http://127.0.0.1:8546,http://127.0.0.1:8547,http://127.0.0.1:8548"
        )]
        rpc: Vec<String>,
        /// Blocks to measure.
        #[arg(long, default_value_t = 60)]
        blocks: usize,
    },
}

pub async fn run(cmd: BenchCommand) -> eyre::Result<()> {
    match cmd {
        BenchCommand::Execute {
            blocks,
            txs_per_block,
            senders,
            erc20,
        } => {
            tokio::task::spawn_blocking(move || execute(blocks, txs_per_block, senders, erc20))
                .await?
        }
        BenchCommand::StateRoot {
            accounts,
            touched,
            blocks,
        } => tokio::task::spawn_blocking(move || state_root(&accounts, touched, blocks)).await?,
        BenchCommand::Load {
            rpc,
            txs,
            senders,
            concurrency,
            batch,
            funder_key,
            timeout_secs,
        } => {
            load(LoadArgs {
                rpc,
                txs,
                senders,
                concurrency,
                batch,
                funder_key,
                timeout: Duration::from_secs(timeout_secs),
            })
            .await
        }
        BenchCommand::GenChain {
            dir,
            blocks,
            txs_per_block,
            producers,
        } => {
            tokio::task::spawn_blocking(move || {
                crate::bench_net::gen_chain(&dir, producers, blocks, txs_per_block).map(|_| ())
            })
            .await?
        }
        BenchCommand::Sync {
            dir,
            blocks,
            txs_per_block,
        } => crate::bench_net::sync(dir, blocks, txs_per_block).await,
        BenchCommand::Finality { rpc, blocks } => crate::bench_net::finality(rpc, blocks).await,
        BenchCommand::Consensus(args) => consensus_sim(args),
        BenchCommand::Propagation { rpc, blocks } => {
            crate::bench_net::propagation(rpc, blocks).await
        }
    }
}

sol! {
    function transfer(address to, uint256 value) external returns (bool);
}

/// The ERC-20 of the end-to-end fixtures; its `_balances` mapping is storage slot 3.
const TOKEN_ARTIFACT: &str = include_str!("../../../tests/fixtures/artifacts/TestToken.json");
const TOKEN_BALANCES_SLOT: u64 = 3;
const TOKEN_ADDRESS: Address = Address::new([0x70; 20]);

fn token_balance_slot(owner: Address) -> B256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(owner.as_slice());
    buf[32..].copy_from_slice(&U256::from(TOKEN_BALANCES_SLOT).to_be_bytes::<32>());
    keccak256(buf)
}

fn bench_key(i: u64) -> PrivateKeySigner {
    let mut seed = keccak256(format!("koma-bench-{i}"));
    // A keccak output is a valid secp256k1 scalar with overwhelming probability.
    loop {
        if let Ok(k) = PrivateKeySigner::from_bytes(&seed) {
            return k;
        }
        seed = keccak256(seed);
    }
}

fn sign(key: &PrivateKeySigner, mut tx: TxEip1559) -> eyre::Result<TxEnvelope> {
    let sig = key.sign_transaction_sync(&mut tx)?;
    Ok(tx.into_signed(sig).into())
}

struct VecPool(VecDeque<(TxEnvelope, Address)>);

impl PoolAccess for VecPool {
    fn next_best(&mut self) -> Option<(TxEnvelope, Address)> {
        self.0.pop_front()
    }
    fn skip_sender(&mut self, _sender: Address) {}
}

fn execute(blocks: usize, txs_per_block: usize, senders: usize, erc20: bool) -> eyre::Result<()> {
    let gas_per_tx: u64 = if erc20 { 60_000 } else { 21_000 };
    let mut spec = ChainSpec::devnet();
    spec.gas_limit = (txs_per_block as u64)
        .saturating_mul(gas_per_tx)
        .max(30_000_000);
    let keys: Vec<PrivateKeySigner> = (0..senders as u64).map(bench_key).collect();
    let eth = U256::from(10u64).pow(U256::from(18));
    let mut token_storage = BTreeMap::new();
    for k in &keys {
        spec.alloc.insert(
            k.address(),
            GenesisAccount {
                balance: eth * U256::from(1000),
                ..Default::default()
            },
        );
        token_storage.insert(
            token_balance_slot(k.address()),
            B256::from(U256::from(1_000_000u64) * eth),
        );
    }
    if erc20 {
        let artifact: Value = serde_json::from_str(TOKEN_ARTIFACT)?;
        let code: Bytes = artifact["deployedBytecode"]
            .as_str()
            .ok_or_else(|| eyre!("artifact without code"))?
            .parse()?;
        spec.alloc.insert(
            TOKEN_ADDRESS,
            GenesisAccount {
                balance: U256::ZERO,
                nonce: 1,
                code: Some(code),
                storage: token_storage,
            },
        );
    }
    let dir = tempfile::Builder::new().prefix("koma-bench-").tempdir()?;
    let db = Database::open(dir.path(), &spec)?;
    let producer = dev::dev_producer_key(0);
    let total = blocks * txs_per_block;
    println!(
        "signing {total} {} transfers from {senders} senders...",
        if erc20 { "ERC-20" } else { "ETH" }
    );
    let mut nonces = vec![0u64; senders];
    let mut all = Vec::with_capacity(total);
    for i in 0..total {
        let s = i % senders;
        let key = &keys[s];
        let to = Address::from_word(keccak256((i as u64).to_be_bytes()));
        let (kind, value, input) = if erc20 {
            (
                TxKind::Call(TOKEN_ADDRESS),
                U256::ZERO,
                transferCall {
                    to,
                    value: U256::from(1),
                }
                .abi_encode()
                .into(),
            )
        } else {
            (TxKind::Call(to), U256::from(1), Bytes::new())
        };
        let tx = TxEip1559 {
            chain_id: spec.chain_id,
            nonce: nonces[s],
            gas_limit: gas_per_tx,
            max_fee_per_gas: 10_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: kind,
            value,
            access_list: Default::default(),
            input,
        };
        nonces[s] += 1;
        all.push((sign(key, tx)?, key.address()));
    }
    println!("block   txs     gas(M)  exec_ms  root_ms  commit_ms  total_ms  tx/s");
    let mut sum = (0usize, 0u64, 0f64, 0f64, 0f64);
    let mut iter = all.into_iter();
    for _ in 0..blocks {
        let chunk: VecDeque<_> = iter.by_ref().take(txs_per_block).collect();
        let started = Instant::now();
        let built = build_block(
            &spec,
            &db,
            &mut VecPool(chunk),
            &producer,
            spec.timestamp + 1,
        )?;
        let total_ms = started.elapsed().as_secs_f64() * 1e3;
        let n = built.block.body.transactions.len();
        if n != txs_per_block {
            eyre::bail!(
                "only {n} of {txs_per_block} transactions were included ({} skipped)",
                built.skipped
            );
        }
        let gas = built.header.header.gas_used;
        println!(
            "{:<7} {:<7} {:<7.1} {:<8.1} {:<8.1} {:<10.1} {:<9.1} {:.0}",
            built.header.number(),
            n,
            gas as f64 / 1e6,
            built.execution_ms,
            built.state_root_ms,
            built.commit_ms,
            total_ms,
            n as f64 / (total_ms / 1e3)
        );
        sum.0 += n;
        sum.1 += gas;
        sum.2 += built.execution_ms;
        sum.3 += total_ms;
        sum.4 += built.state_root_ms;
    }
    println!(
        "\n{} transfers: execution {:.0} tx/s ({:.0} Mgas/s); whole block path (execute + state root + seal + commit) {:.0} tx/s; state root {:.1} ms/block",
        if erc20 { "ERC-20" } else { "ETH" },
        sum.0 as f64 / (sum.2 / 1e3),
        sum.1 as f64 / 1e6 / (sum.2 / 1e3),
        sum.0 as f64 / (sum.3 / 1e3),
        sum.4 / blocks as f64,
    );
    Ok(())
}

fn state_root(sizes: &[u64], touched: u64, blocks: u64) -> eyre::Result<()> {
    println!(
        "accounts_in_state  touched  genesis_s  root_ms(avg)  commit_ms(avg)  new_trie_nodes(avg)"
    );
    for &size in sizes {
        let mut spec = ChainSpec::devnet();
        let addr = |i: u64| Address::from_word(keccak256(i.to_be_bytes()));
        for i in 0..size {
            spec.alloc.insert(
                addr(i),
                GenesisAccount {
                    balance: U256::from(1_000_000),
                    ..Default::default()
                },
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("koma-bench-root-")
            .tempdir()?;
        let started = Instant::now();
        let db = Database::open(dir.path(), &spec)?;
        let genesis_s = started.elapsed().as_secs_f64();
        let (mut root_ms, mut commit_ms, mut nodes) = (0f64, 0f64, 0usize);
        let mut rng_state = 0x9e3779b97f4a7c15u64;
        for b in 0..blocks {
            let mut changes = StateChanges::default();
            let mut seen = std::collections::HashSet::new();
            while (changes.accounts.len() as u64) < touched.min(size) {
                // xorshift: a deterministic spread over existing accounts.
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 7;
                rng_state ^= rng_state << 17;
                let i = rng_state % size;
                if !seen.insert(i) {
                    continue;
                }
                changes.accounts.push(AccountChange {
                    address: addr(i),
                    info: Some(changeset_info(
                        0,
                        U256::from(1_000_000 + b + 1),
                        koma_primitives::KECCAK_EMPTY,
                    )),
                    storage_wiped: false,
                    storage: vec![],
                });
            }
            changes.accounts.sort_by_key(|a| a.address);
            let t = Instant::now();
            let prepared = db.prepare_state(&changes)?;
            root_ms += t.elapsed().as_secs_f64() * 1e3;
            nodes += prepared.new_trie_nodes();
            let head = db.head();
            let header = alloy::consensus::Header {
                parent_hash: head.hash,
                number: head.number() + 1,
                state_root: prepared.state_root,
                gas_limit: spec.gas_limit,
                ..Default::default()
            };
            let block = koma_primitives::Block {
                header,
                body: Default::default(),
            };
            let t = Instant::now();
            db.commit_block(&block, &[], &[], prepared)?;
            commit_ms += t.elapsed().as_secs_f64() * 1e3;
        }
        let n = blocks as f64;
        println!(
            "{:<18} {:<8} {:<10.1} {:<13.1} {:<15.1} {:.0}",
            size,
            touched.min(size),
            genesis_s,
            root_ms / n,
            commit_ms / n,
            nodes as f64 / n
        );
    }
    Ok(())
}

struct LoadArgs {
    rpc: Vec<String>,
    txs: usize,
    senders: usize,
    concurrency: usize,
    batch: usize,
    funder_key: Option<String>,
    timeout: Duration,
}

#[derive(Clone)]
struct Rpc {
    http: reqwest::Client,
    url: String,
}

impl Rpc {
    async fn call(&self, method: &str, params: Value) -> eyre::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp: Value = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        if let Some(err) = resp.get("error") {
            return Err(eyre!("{method}: {err}"));
        }
        Ok(resp["result"].clone())
    }

    /// Sends raw transactions as one JSON-RPC batch; returns the number rejected.
    async fn send_batch(&self, raws: &[String]) -> eyre::Result<(usize, Option<String>)> {
        let body: Vec<Value> = raws
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [r]}))
            .collect();
        let resp: Value = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let arr = resp
            .as_array()
            .ok_or_else(|| eyre!("batch response is not an array: {resp}"))?;
        let errors: Vec<&Value> = arr.iter().filter_map(|r| r.get("error")).collect();
        Ok((errors.len(), errors.first().map(|e| e.to_string())))
    }
}

fn quantity(v: &Value) -> eyre::Result<u128> {
    let s = v
        .as_str()
        .ok_or_else(|| eyre!("expected a hex quantity, got {v}"))?;
    u128::from_str_radix(s.trim_start_matches("0x"), 16)
        .wrap_err_with(|| format!("bad quantity {s}"))
}

async fn wait_nonce(rpc: &Rpc, addr: Address, target: u64, deadline: Instant) -> eyre::Result<()> {
    loop {
        let n = quantity(
            &rpc.call("eth_getTransactionCount", json!([addr, "latest"]))
                .await?,
        )? as u64;
        if n >= target {
            return Ok(());
        }
        if Instant::now() > deadline {
            eyre::bail!("timed out waiting for {addr} to reach nonce {target} (at {n})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn load(args: LoadArgs) -> eyre::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let nodes: Vec<Rpc> = args
        .rpc
        .iter()
        .map(|url| Rpc {
            http: http.clone(),
            url: url.clone(),
        })
        .collect();
    // Funding and inclusion are watched on the first node.
    let rpc = nodes
        .first()
        .cloned()
        .ok_or_else(|| eyre!("no --rpc URL"))?;
    let deadline = Instant::now() + args.timeout;
    let chain_id = quantity(&rpc.call("eth_chainId", json!([])).await?)? as u64;
    let gas_price = quantity(&rpc.call("eth_gasPrice", json!([])).await?)?;
    let tip =
        quantity(&rpc.call("eth_maxPriorityFeePerGas", json!([])).await?).unwrap_or(1_000_000_000);
    let max_fee = gas_price.saturating_mul(3).max(tip * 2);
    let funder: PrivateKeySigner = match &args.funder_key {
        Some(k) => k.parse().wrap_err("invalid --funder-key")?,
        None => dev::dev_accounts(1).remove(0).1,
    };
    let per_sender = args.txs.div_ceil(args.senders);
    // Distinct keys per run, so reruns against a long-lived node start at nonce 0.
    let run_salt: u64 = rand::random();
    let keys: Vec<PrivateKeySigner> = (0..args.senders as u64)
        .map(|i| bench_key(run_salt ^ (i << 20)))
        .collect();
    println!(
        "target {} (chain {chain_id}), {} transfers from {} senders",
        args.rpc.join(","),
        args.txs,
        args.senders
    );

    // Fund the senders, in chunks the pool's per-sender limit accepts.
    let fund = U256::from(max_fee) * U256::from(21_000u64 * per_sender as u64 + 21_000)
        + U256::from(per_sender);
    let mut nonce = quantity(
        &rpc.call(
            "eth_getTransactionCount",
            json!([funder.address(), "pending"]),
        )
        .await?,
    )? as u64;
    for chunk in keys.chunks(64) {
        let mut raws = Vec::new();
        for k in chunk {
            let tx = TxEip1559 {
                chain_id,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: tip,
                to: TxKind::Call(k.address()),
                value: fund,
                access_list: Default::default(),
                input: Bytes::new(),
            };
            nonce += 1;
            raws.push(sign(&funder, tx)?.encoded_2718().into());
        }
        let raws: Vec<String> = raws.iter().map(|r: &Bytes| r.to_string()).collect();
        let (rejected, first) = rpc.send_batch(&raws).await?;
        if rejected > 0 {
            eyre::bail!(
                "{rejected} funding transactions rejected: {}",
                first.unwrap_or_default()
            );
        }
        wait_nonce(&rpc, funder.address(), nonce, deadline).await?;
    }
    println!(
        "funded {} senders; signing {} transfers...",
        keys.len(),
        args.txs
    );

    // Pre-sign, interleaving senders so every batch spreads over many of them. Each
    // sender talks to one node (sender s to node s % nodes), as a wallet would.
    let mut raws: Vec<Vec<(B256, String)>> = vec![Vec::new(); nodes.len()];
    for i in 0..args.txs {
        let s = i % keys.len();
        let n = (i / keys.len()) as u64;
        let tx = TxEip1559 {
            chain_id,
            nonce: n,
            gas_limit: 21_000,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::from_word(
                keccak256((run_salt, i as u64).0.to_be_bytes())
                    ^ keccak256((i as u64).to_be_bytes()),
            )),
            value: U256::from(1),
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let env = sign(&keys[s], tx)?;
        raws[s % nodes.len()].push((*env.tx_hash(), Bytes::from(env.encoded_2718()).to_string()));
    }

    let start_block = quantity(&rpc.call("eth_blockNumber", json!([])).await?)? as u64;
    let sent_at: Arc<parking_lot_free::Map> = Arc::new(parking_lot_free::Map::default());
    let started = Instant::now();
    // Batches of all nodes interleaved; each task takes every `concurrency`-th batch
    // and sends it to that batch's node.
    let per_node: Vec<Vec<Vec<(B256, String)>>> = raws
        .iter()
        .map(|r| r.chunks(args.batch).map(|c| c.to_vec()).collect())
        .collect();
    let most = per_node.iter().map(Vec::len).max().unwrap_or(0);
    let mut batches: Vec<(usize, Vec<(B256, String)>)> = Vec::new();
    for i in 0..most {
        for (node, list) in per_node.iter().enumerate() {
            if let Some(b) = list.get(i) {
                batches.push((node, b.clone()));
            }
        }
    }
    let batches = Arc::new(batches);
    let mut tasks = Vec::new();
    for t in 0..args.concurrency {
        let nodes = nodes.clone();
        let batches = batches.clone();
        let sent_at = sent_at.clone();
        let conc = args.concurrency;
        tasks.push(tokio::spawn(async move {
            let mut rejected = 0usize;
            let mut first_err = None;
            for (node, b) in batches.iter().skip(t).step_by(conc) {
                let now = started.elapsed();
                sent_at.insert_all(b.iter().map(|(h, _)| (*h, now)));
                let raws: Vec<String> = b.iter().map(|(_, r)| r.clone()).collect();
                match nodes[*node].send_batch(&raws).await {
                    Ok((r, e)) => {
                        rejected += r;
                        if first_err.is_none() {
                            first_err = e;
                        }
                    }
                    Err(e) => {
                        rejected += raws.len();
                        first_err.get_or_insert(e.to_string());
                    }
                }
            }
            (rejected, first_err)
        }));
    }
    // Watch blocks for inclusion.
    let mut included: HashMap<B256, Duration> = HashMap::with_capacity(args.txs);
    let mut next_block = start_block + 1;
    let mut per_block = Vec::new();
    // (number, hash, our transactions) of the blocks counted, to notice reorgs.
    let mut seen_blocks: Vec<(u64, String, Vec<B256>)> = Vec::new();
    let mut send_done: Option<Duration> = None;
    let mut rejected_total = 0usize;
    loop {
        if send_done.is_none() && tasks.iter().all(|t| t.is_finished()) {
            for t in tasks.drain(..) {
                let (r, e) = t.await?;
                rejected_total += r;
                if let Some(e) = e.filter(|_| r > 0) {
                    eprintln!("rejected: {e}");
                }
            }
            send_done = Some(started.elapsed());
        }
        let head = quantity(&rpc.call("eth_blockNumber", json!([])).await?)? as u64;
        while next_block <= head {
            let block = rpc
                .call(
                    "eth_getBlockByNumber",
                    json!([format!("{next_block:#x}"), false]),
                )
                .await?;
            if block.is_null() {
                break; // the head moved back (reorg); read again next round
            }
            let hash = block["hash"].as_str().unwrap_or_default().to_string();
            let parent = block["parentHash"].as_str().unwrap_or_default();
            if let Some((number, last_hash, txs)) = seen_blocks.last()
                && last_hash != parent
            {
                // A reorg replaced the last block we counted: uncount it, read again.
                for h in txs {
                    included.remove(h);
                }
                next_block = *number;
                seen_blocks.pop();
                per_block.pop();
                continue;
            }
            let now = started.elapsed();
            let hashes = block["transactions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut ours = Vec::new();
            for h in hashes {
                if let Some(h) = h.as_str().and_then(|s| s.parse::<B256>().ok())
                    && sent_at.contains(&h)
                {
                    included.insert(h, now);
                    ours.push(h);
                }
            }
            per_block.push((next_block, ours.len()));
            seen_blocks.push((next_block, hash, ours));
            next_block += 1;
        }
        if send_done.is_some() && included.len() + rejected_total >= args.txs {
            break;
        }
        if Instant::now() > deadline {
            println!("timed out: {} of {} included", included.len(), args.txs);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies: Vec<f64> = included
        .iter()
        .filter_map(|(h, seen)| {
            sent_at
                .get(h)
                .map(|sent| (seen.saturating_sub(sent)).as_secs_f64() * 1e3)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| percentile(&latencies, p);
    let last = included.values().max().copied().unwrap_or_default();
    let blocks_used: Vec<_> = per_block.iter().filter(|(_, n)| *n > 0).collect();
    println!(
        "sent {} in {:.2}s ({:.0}/s), rejected {}",
        args.txs,
        send_done.unwrap_or_default().as_secs_f64(),
        args.txs as f64
            / send_done
                .unwrap_or(Duration::from_secs(1))
                .as_secs_f64()
                .max(1e-9),
        rejected_total
    );
    println!(
        "included {} transfers in {:.2}s over {} blocks (max {} per block): {:.0} transfers/s; inclusion latency p50 {:.0} ms, p99 {:.0} ms",
        included.len(),
        last.as_secs_f64(),
        blocks_used.len(),
        blocks_used.iter().map(|(_, n)| *n).max().unwrap_or(0),
        included.len() as f64 / last.as_secs_f64().max(1e-9),
        pct(0.5),
        pct(0.99)
    );
    if included.len() + rejected_total < args.txs {
        eyre::bail!("not all transfers were included");
    }
    Ok(())
}

/// The `p`-quantile (0..=1) of sorted figures, nearest rank; 0 for none.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0).max(0.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// A small concurrent map for send timestamps (std only).
mod parking_lot_free {
    use alloy_primitives::B256;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    pub struct Map(Mutex<HashMap<B256, Duration>>);

    impl Map {
        pub fn insert_all(&self, items: impl Iterator<Item = (B256, Duration)>) {
            if let Ok(mut m) = self.0.lock() {
                m.extend(items);
            }
        }
        pub fn contains(&self, h: &B256) -> bool {
            self.0.lock().map(|m| m.contains_key(h)).unwrap_or(false)
        }
        pub fn get(&self, h: &B256) -> Option<Duration> {
            self.0.lock().ok().and_then(|m| m.get(h).copied())
        }
    }
}

/// Options of `koma bench consensus`.
#[derive(Debug, clap::Args)]
pub struct ConsensusBench {
    /// Validators (stake 1..=100 each, at random).
    #[arg(long, default_value_t = 100)]
    validators: usize,
    /// One-way message delay: mean and spread (uniform in mean +- spread), ms.
    #[arg(long, default_value_t = 50)]
    delay_ms: u64,
    #[arg(long, default_value_t = 25)]
    jitter_ms: u64,
    /// Shortest round (ms); rounds adapt upwards if proposals fail.
    #[arg(long, default_value_t = 512)]
    min_round_ms: u64,
    /// Simulated time (ms).
    #[arg(long, default_value_t = 30_000)]
    duration_ms: u64,
    /// Seeds to run (1..=seeds).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Sign and verify with real secp256k1 keys, as the node does (default: a cheap
    /// keccak-based mock, to isolate the protocol's own cost).
    #[arg(long)]
    real_keys: bool,
}

/// `koma bench consensus`: the KoMaBFT simulator's figures.
fn consensus_sim(args: ConsensusBench) -> eyre::Result<()> {
    use koma_consensus::sim::{Scenario, run};
    let ConsensusBench {
        validators,
        delay_ms,
        jitter_ms,
        min_round_ms,
        duration_ms,
        seeds,
        real_keys,
    } = args;
    let mut sc = Scenario::new("bench", validators, duration_ms);
    sc.min_delay = delay_ms.saturating_sub(jitter_ms);
    sc.max_delay = delay_ms + jitter_ms;
    sc.min_round_len = min_round_ms;
    sc.real_keys = real_keys;
    println!(
        "KoMaBFT simulation: {validators} validators (stake 1..=100), one-way delay {}..={} ms, min round {min_round_ms} ms, {} s simulated, {} signatures",
        sc.min_delay,
        sc.max_delay,
        duration_ms / 1000,
        if real_keys { "secp256k1" } else { "mock" }
    );
    // What checking a unit's signature costs with the node's verifier (libsecp256k1)
    // and with the pure-Rust one the simulator uses for `--real-keys`.
    {
        use koma_consensus::{Secp256k1Verifier, UnitSigner, UnitVerifier};
        let key = alloy::signers::local::PrivateKeySigner::random();
        let addr = UnitSigner::address(&key);
        let signed: Vec<_> = (0..2000u32)
            .map(|i| {
                let h = alloy_primitives::keccak256(i.to_be_bytes());
                (h, UnitSigner::sign(&key, &h))
            })
            .collect();
        let time = |v: &dyn UnitVerifier| {
            let t = std::time::Instant::now();
            let ok = signed.iter().filter(|(h, s)| v.verify(&addr, h, s)).count();
            (t.elapsed().as_secs_f64() * 1e6 / signed.len() as f64, ok)
        };
        let (lib, ok1) = time(&koma_node::LibSecp256k1Verifier);
        let (k256, ok2) = time(&Secp256k1Verifier);
        eyre::ensure!(
            ok1 == signed.len() && ok2 == signed.len(),
            "signature check failed"
        );
        println!(
            "signature check per unit: {lib:.1} us with libsecp256k1 (the node's), {k256:.1} us with k256 (the simulator's --real-keys)"
        );
    }
    let mut all = Vec::new();
    for seed in 1..=seeds {
        let started = std::time::Instant::now();
        let r = run(sc.clone(), seed).map_err(|e| eyre::eyre!(e))?;
        let wall = started.elapsed();
        println!(
            "seed {seed}: final blocks per threshold {:?}; proposal -> final at 1/3: p50 {} ms, p99 {} ms; {} units created, {:.0} bytes/unit; CPU {:.1} us per unit received ({} received); wall {:.1} s",
            r.finalized,
            r.percentile(0.5).unwrap_or(0),
            r.percentile(0.99).unwrap_or(0),
            r.units_created,
            r.bytes_per_unit,
            r.cpu_per_unit().as_secs_f64() * 1e6,
            r.units_handled,
            wall.as_secs_f64()
        );
        all.push(r);
    }
    let mut lat: Vec<u64> = all
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let units: usize = all.iter().map(|r| r.units_handled).sum();
    let cpu: std::time::Duration = all.iter().map(|r| r.handle_time).sum();
    let bytes = all.iter().map(|r| r.bytes_per_unit).sum::<f64>() / all.len().max(1) as f64;
    println!(
        "all seeds: proposal -> final at 1/3 p50 {} ms, p99 {} ms ({} samples); {:.1} us CPU per unit received; {:.0} bytes per unit",
        pct(0.5),
        pct(0.99),
        lat.len(),
        cpu.as_secs_f64() * 1e6 / units.max(1) as f64,
        bytes
    );
    Ok(())
}
