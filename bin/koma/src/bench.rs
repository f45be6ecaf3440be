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
//! - `worst-case`: full blocks of the most expensive work per unit of gas (cheap
//!   opcodes, state access, storage writes, logs, precompiles), each transaction at
//!   the per-transaction gas cap, built and imported as nodes do.
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
use koma_primitives::chainspec::{GenesisAccount, Hardfork};
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
        /// Meanwhile, this many clients send the heaviest permitted RPC requests
        /// (eth_feeHistory over 1024 blocks x 100 percentiles, eth_getLogs over the
        /// whole chain, a looping eth_call) to the first node, as fast as answered.
        #[arg(long, default_value_t = 0)]
        flood: usize,
    },
    /// Checkpoint latency on a running devnet with an L1: from a block's finality (at
    /// the node's threshold) to its checkpoint accepted on L1 and notarized
    /// (`--l1-confirmations` deep), over the next `checkpoints` checkpoints.
    Checkpoints {
        /// JSON-RPC URL of a node that follows the L1.
        #[arg(long, default_value = "http://127.0.0.1:8545")]
        rpc: String,
        #[arg(long, default_value_t = 5)]
        checkpoints: usize,
    },
    /// Partition and heal: splits the network in two halves (admin_blockPeer; start
    /// the devnet with --admin-rpc), heals it, and measures heal -> a new block
    /// final on every node.
    Heal {
        /// JSON-RPC URLs of every node, comma separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "http://127.0.0.1:8545,http://127.0.0.1:8546,http://127.0.0.1:8547,http://127.0.0.1:8548"
        )]
        rpc: Vec<String>,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Seconds each split lasts.
        #[arg(long, default_value_t = 15)]
        split_secs: u64,
    },
    /// KoMaBFT in the seeded simulator (no network, no clock): finality latency,
    /// CPU per unit and bytes per unit with many validators of unequal stake. Built
    /// with the `test-tools` feature only (the simulator signs with mock keys).
    #[cfg(feature = "test-tools")]
    Consensus(ConsensusBench),
    /// Worst-case blocks: full blocks of transactions at the per-transaction gas cap
    /// that loop over the most expensive operations per gas (cheap opcodes, state
    /// access, storage writes, logs, precompiles), built and imported as nodes do;
    /// prints ms per block and Mgas/s per workload.
    WorstCase(WorstCaseBench),
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
        BenchCommand::Finality { rpc, blocks, flood } => {
            crate::bench_net::finality(rpc, blocks, flood).await
        }
        BenchCommand::Checkpoints { rpc, checkpoints } => {
            crate::bench_net::checkpoints(rpc, checkpoints).await
        }
        BenchCommand::Heal {
            rpc,
            rounds,
            split_secs,
        } => crate::bench_net::heal(rpc, rounds, split_secs).await,
        #[cfg(feature = "test-tools")]
        BenchCommand::Consensus(args) => consensus_sim(args),
        BenchCommand::WorstCase(args) => {
            tokio::task::spawn_blocking(move || worst_case(args)).await?
        }
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

/// A pool like the node's for the builder: a transaction skipped because the block
/// is full (gas or compute) stays for the next block; a rejected one leaves.
#[derive(Default)]
struct HoldingPool {
    txs: VecDeque<(TxEnvelope, Address)>,
    last: Option<(TxEnvelope, Address)>,
    held: Vec<(TxEnvelope, Address)>,
}

impl HoldingPool {
    /// After a block: what was handed out and not included goes back, in order.
    fn restore(&mut self) {
        self.held.extend(self.last.take());
        for tx in self.held.drain(..).rev() {
            self.txs.push_front(tx);
        }
    }
}

impl PoolAccess for HoldingPool {
    fn next_best(&mut self) -> Option<(TxEnvelope, Address)> {
        // The one handed out before was included (or skipped or rejected already).
        self.last = None;
        let next = self.txs.pop_front()?;
        self.last = Some(next.clone());
        Some(next)
    }
    fn skip_sender(&mut self, _sender: Address) {
        self.held.extend(self.last.take());
    }
    fn reject(&mut self, _tx: B256, _sender: Address) {
        self.last = None;
    }
}

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
    println!("block   txs     gas(M)  units(M) exec_ms  root_ms  commit_ms  total_ms  tx/s");
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
                "only {n} of {txs_per_block} transactions were included ({} skipped; {} of the {} compute units used)",
                built.skipped,
                built.compute_used,
                spec.compute_limit()
            );
        }
        let gas = built.header.header.gas_used;
        println!(
            "{:<7} {:<7} {:<7.1} {:<8.1} {:<8.1} {:<8.1} {:<10.1} {:<9.1} {:.0}",
            built.header.number(),
            n,
            gas as f64 / 1e6,
            built.compute_used as f64 / 1e6,
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
                header: koma_primitives::SignedHeader {
                    header,
                    seal: Default::default(),
                },
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
    let pct = |p: f64| crate::stats::percentile(&latencies, p);
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
#[cfg(feature = "test-tools")]
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
#[cfg(feature = "test-tools")]
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

// ---------------------------------------------------------------------------------------
// `koma bench worst-case`: blocks full of the most expensive work per unit of gas.
// ---------------------------------------------------------------------------------------

/// Options of `koma bench worst-case`.
#[derive(Debug, clap::Args)]
pub struct WorstCaseBench {
    /// Workloads to run, comma separated (default: all; `--list` names them).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Print the workloads and exit.
    #[arg(long)]
    list: bool,
    /// Block gas limit (default: the devnet spec's).
    #[arg(long)]
    gas_limit: Option<u64>,
    /// Block compute limit in units (ADR 0011; default: the devnet spec's). Blocks are
    /// built as producers build them: transactions that do not fit wait for the next.
    #[arg(long)]
    compute_limit: Option<u64>,
    /// Gas limit of each transaction (default: the devnet spec's per-transaction cap).
    #[arg(long)]
    tx_gas: Option<u64>,
    /// Full blocks per workload.
    #[arg(long, default_value_t = 2)]
    blocks: u64,
    /// Blocks built and imported first and left out of the figures (one-time costs:
    /// the KZG trusted setup is loaded at the first point evaluation, caches fill).
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Skip importing each block into a second database (what every other node does).
    #[arg(long)]
    no_import: bool,
    /// Run under these rules instead of the devnet's (`prague` or `osaka`: Osaka
    /// reprices modexp, EIP-7883, and adds P256VERIFY).
    #[arg(long)]
    hardfork: Option<String>,
}

/// Where every worst-case contract lives.
const WORST_CONTRACT: Address = Address::new([0xc0; 20]);
/// First of the contracts the cold-code workload reads.
const COLD_CODE_BASE: u64 = 0x0100_0000;
/// EIP-170's contract size limit.
const MAX_CODE_SIZE: usize = 24_576;

/// The EVM opcodes the worst-case contracts use.
mod op {
    pub const STOP: u8 = 0x00;
    pub const ADD: u8 = 0x01;
    pub const SUB: u8 = 0x03;
    pub const DIV: u8 = 0x04;
    pub const MULMOD: u8 = 0x09;
    pub const LT: u8 = 0x10;
    pub const ISZERO: u8 = 0x15;
    pub const XOR: u8 = 0x18;
    pub const KECCAK256: u8 = 0x20;
    pub const ADDRESS: u8 = 0x30;
    pub const BALANCE: u8 = 0x31;
    pub const CALLER: u8 = 0x33;
    pub const CALLDATALOAD: u8 = 0x35;
    pub const CODECOPY: u8 = 0x39;
    pub const EXTCODESIZE: u8 = 0x3b;
    pub const RETURNDATASIZE: u8 = 0x3d;
    pub const BLOCKHASH: u8 = 0x40;
    pub const NUMBER: u8 = 0x43;
    pub const SELFBALANCE: u8 = 0x47;
    pub const POP: u8 = 0x50;
    pub const MSTORE: u8 = 0x52;
    pub const SLOAD: u8 = 0x54;
    pub const SSTORE: u8 = 0x55;
    pub const JUMP: u8 = 0x56;
    pub const JUMPI: u8 = 0x57;
    pub const GAS: u8 = 0x5a;
    pub const JUMPDEST: u8 = 0x5b;
    pub const PUSH0: u8 = 0x5f;
    pub const PUSH1: u8 = 0x60;
    pub const PUSH2: u8 = 0x61;
    pub const DUP1: u8 = 0x80;
    pub const DUP2: u8 = 0x81;
    pub const DUP3: u8 = 0x82;
    pub const LOG0: u8 = 0xa0;
    pub const STATICCALL: u8 = 0xfa;
    pub const REVERT: u8 = 0xfd;
}

/// A tiny EVM assembler: opcodes, minimal pushes, labels (a `JUMPDEST` whose offset a
/// `PUSH2` can refer to) and a data section after the code.
#[derive(Default)]
struct Asm {
    code: Vec<u8>,
    labels: HashMap<&'static str, usize>,
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    fn op(mut self, bytes: &[u8]) -> Self {
        self.code.extend_from_slice(bytes);
        self
    }

    /// `bytes` repeated until the code is `len` long at most.
    fn fill(mut self, bytes: &[u8], len: usize) -> Self {
        while self.code.len() + bytes.len() <= len {
            self.code.extend_from_slice(bytes);
        }
        self
    }

    /// PUSH of a big-endian value, shortest form (PUSH0 for zero).
    fn push(mut self, value: &[u8]) -> Self {
        let v: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
        if v.is_empty() {
            self.code.push(op::PUSH0);
        } else {
            self.code.push(op::PUSH1 + (v.len() as u8 - 1));
            self.code.extend_from_slice(&v);
        }
        self
    }

    fn push_u(self, value: u64) -> Self {
        self.push(&value.to_be_bytes())
    }

    /// PUSH2 of a label's offset.
    fn push_label(mut self, label: &'static str) -> Self {
        self.code.push(op::PUSH2);
        self.fixups.push((self.code.len(), label));
        self.code.extend_from_slice(&[0, 0]);
        self
    }

    /// A jump target.
    fn label(mut self, label: &'static str) -> Self {
        self.labels.insert(label, self.code.len());
        self.code.push(op::JUMPDEST);
        self
    }

    /// Jumps to label `end` (see [`Asm::end`]) once less than `gas` is left, so that a
    /// transaction whose effects must stay (storage writes, logs) ends successfully
    /// instead of running out of gas, which would undo them.
    fn exit_below(self, gas: u64) -> Self {
        self.push_u(gas)
            .op(&[op::GAS, op::LT])
            .push_label("end")
            .op(&[op::JUMPI])
    }

    /// `STOP` at label `end`.
    fn end(self) -> Self {
        self.label("end").op(&[op::STOP])
    }

    /// `REVERT(0, 0)` at label `fail`: gives back the gas left, which the benchmark
    /// notices (every transaction must use all its gas).
    fn fail(self) -> Self {
        self.label("fail").op(&[op::PUSH0, op::PUSH0, op::REVERT])
    }

    /// Copies the data section (appended by `build`) to memory 0; `len` bytes.
    fn load_data(self, len: usize) -> Self {
        self.push_u(len as u64)
            .push_label("data")
            .op(&[op::PUSH0, op::CODECOPY])
    }

    fn build(mut self, data: &[u8]) -> eyre::Result<Bytes> {
        self.labels.insert("data", self.code.len());
        self.code.extend_from_slice(data);
        for (at, label) in &self.fixups {
            let target = *self
                .labels
                .get(label)
                .ok_or_else(|| eyre!("undefined label {label}"))?;
            self.code[*at..*at + 2].copy_from_slice(&(target as u16).to_be_bytes());
        }
        eyre::ensure!(
            self.code.len() <= MAX_CODE_SIZE,
            "contract of {} bytes",
            self.code.len()
        );
        Ok(self.code.into())
    }
}

/// A contract that repeats `body` (as often as fits in the code size limit) in a loop
/// until it runs out of gas; `setup` runs once before.
fn unrolled_loop(setup: Asm, body: &[u8]) -> eyre::Result<Bytes> {
    // Room for the jump back (PUSH2 + JUMP).
    let end = MAX_CODE_SIZE - 4;
    let asm = setup.label("loop").fill(body, end);
    asm.push_label("loop").op(&[op::JUMP]).build(&[])
}

/// A contract that calls precompile `address` with `input` (put in memory once) in a
/// loop until out of gas, and reverts (giving back gas) if a call fails or returns
/// fewer than `min_output` bytes.
fn precompile_loop(address: u8, input: &[u8], min_output: u64) -> eyre::Result<Bytes> {
    precompile_loop_at(u64::from(address), input, min_output)
}

/// [`precompile_loop`] for any precompile address.
fn precompile_loop_at(address: u64, input: &[u8], min_output: u64) -> eyre::Result<Bytes> {
    let out_offset = input.len().next_multiple_of(32) as u64;
    let mut asm = Asm::default()
        .load_data(input.len())
        .label("loop")
        // STATICCALL(gas, address, in offset, in size, out offset, out size)
        .push_u(min_output.max(32))
        .push_u(out_offset)
        .push_u(input.len() as u64)
        .op(&[op::PUSH0])
        .push_u(address)
        .op(&[op::GAS, op::STATICCALL, op::ISZERO])
        .push_label("fail")
        .op(&[op::JUMPI]);
    if min_output > 0 {
        // RETURNDATASIZE < min_output -> fail
        asm = asm
            .push_u(min_output)
            .op(&[op::RETURNDATASIZE, op::LT])
            .push_label("fail")
            .op(&[op::JUMPI]);
    }
    asm.push_label("loop").op(&[op::JUMP]).fail().build(input)
}

/// What a worst-case workload puts in genesis and sends.
struct Workload {
    code: Bytes,
    storage: BTreeMap<B256, B256>,
    accounts: Vec<(Address, GenesisAccount)>,
    /// Calldata of the run's `i`-th transaction.
    input: Box<dyn Fn(u64) -> Bytes>,
    /// Its transactions stop before running out of gas and succeed (their writes and
    /// logs stay); the others loop until out of gas (nothing to keep).
    succeeds: bool,
}

impl Workload {
    fn code(code: Bytes) -> Self {
        Self {
            code,
            storage: BTreeMap::new(),
            accounts: Vec::new(),
            input: Box::new(|_| Bytes::new()),
            succeeds: false,
        }
    }

    fn succeeding(mut self) -> Self {
        self.succeeds = true;
        self
    }
}

/// Name and description of every workload, in the order they run.
const WORKLOADS: &[(&str, &str)] = &[
    (
        "jumpdest",
        "24k JUMPDESTs (1 gas each) in a loop: the cheapest instruction",
    ),
    ("loop", "JUMPDEST PUSH0 JUMP: the tightest loop"),
    ("div", "DIV of 256-bit by 131-bit values (5 gas)"),
    ("mulmod", "MULMOD of full 256-bit values (8 gas)"),
    ("keccak", "KECCAK256 of 32 bytes (36 gas)"),
    ("mstore", "MSTORE of GAS at 0 (3 gas)"),
    ("selfbalance", "SELFBALANCE (5 gas)"),
    ("balance-warm", "BALANCE of the (warm) sender (100 gas)"),
    (
        "extcodesize-warm",
        "EXTCODESIZE of the (warm) contract itself (100 gas)",
    ),
    ("sload-warm", "SLOAD of a warm slot (100 gas)"),
    ("blockhash", "BLOCKHASH of the parent (20 gas)"),
    (
        "balance-cold",
        "BALANCE of a new address each time (2600 gas, a state miss)",
    ),
    (
        "extcodesize-cold",
        "EXTCODESIZE of a new 24 KiB contract each time (2600 gas)",
    ),
    (
        "sstore-new",
        "SSTORE to new slots (22,100 gas): trie growth, state root, commit",
    ),
    (
        "sstore-update",
        "SSTORE changing existing slots (5,000 gas): most slots per gas",
    ),
    (
        "log",
        "LOG0 of 24 KiB (8 gas/byte): receipts, receipts root, commit",
    ),
    ("ecrecover", "precompile 0x01, valid signature (3,000 gas)"),
    ("sha256", "precompile 0x02, 32 bytes (72 gas)"),
    (
        "modexp",
        "precompile 0x05, 32-byte odd modulus, 38-bit exponent (200 gas, the minimum)",
    ),
    (
        "modexp-even",
        "precompile 0x05, 32-byte even modulus, 38-bit exponent (200 gas)",
    ),
    (
        "modexp-64",
        "precompile 0x05, 64-byte modulus, 10-bit exponent (200 gas)",
    ),
    (
        "modexp-big",
        "precompile 0x05, 1024-byte even modulus, 2-bit exponent (5,461 gas; the slowest shape found)",
    ),
    ("bn-add", "precompile 0x06, bn254 G1 add (150 gas)"),
    ("bn-mul", "precompile 0x07, bn254 G1 mul (6,000 gas)"),
    (
        "bn-pairing",
        "precompile 0x08, bn254 pairing, 2 pairs (113,000 gas)",
    ),
    (
        "blake2f",
        "precompile 0x09, 10,000 rounds (1 gas per round)",
    ),
    ("kzg", "precompile 0x0a, KZG point evaluation (50,000 gas)"),
    ("bls-g1add", "precompile 0x0b, BLS12-381 G1 add (375 gas)"),
    (
        "bls-g1msm",
        "precompile 0x0c, BLS12-381 G1 MSM, 1 pair (12,000 gas)",
    ),
    ("bls-g2add", "precompile 0x0d, BLS12-381 G2 add (600 gas)"),
    (
        "bls-g2msm",
        "precompile 0x0e, BLS12-381 G2 MSM, 1 pair (22,500 gas)",
    ),
    (
        "bls-pairing",
        "precompile 0x0f, BLS12-381 pairing, 2 pairs (102,900 gas)",
    ),
    (
        "bls-map-g1",
        "precompile 0x10, BLS12-381 map Fp to G1 (5,500 gas)",
    ),
    (
        "bls-map-g2",
        "precompile 0x11, BLS12-381 map Fp2 to G2 (23,800 gas)",
    ),
    (
        "p256verify",
        "precompile 0x100, secp256r1 verify (6,900 gas; Osaka only)",
    ),
];
// Not in the default run: `modexp:<len>:<exponent hex>[:even]`, any modexp shape.

fn hex_bytes(parts: &[&str]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|p| hex::decode(p).unwrap_or_default())
        .collect()
}

/// A 64-byte EIP-2537 field element from 48 big-endian bytes in hex.
fn bls_fp(hex48: &str) -> Vec<u8> {
    let mut v = vec![0u8; 16];
    v.extend(hex::decode(hex48).unwrap_or_default());
    v
}

fn bls_g1() -> Vec<u8> {
    [
        bls_fp(
            "17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb",
        ),
        bls_fp(
            "08b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1",
        ),
    ]
    .concat()
}

fn bls_g2() -> Vec<u8> {
    [
        bls_fp(
            "024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8",
        ),
        bls_fp(
            "13e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e",
        ),
        bls_fp(
            "0ce5d527727d6e118cc9cdc6da2e351aadfd9baa8cbdd3a76d429a695160d12c923ac9cc3baca289e193548608b82801",
        ),
        bls_fp(
            "0606c4a02ea734cc32acd2b02bc28b99cb3e287e85a763af267492ab572e99ab3f370d275cec1da1aaa9075ff05f79be",
        ),
    ]
    .concat()
}

const BN_G1: &str = "00000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000002";
const BN_G1_NEG: &str = "000000000000000000000000000000000000000000000000000000000000000130644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd45";
const BN_G2: &str = "198e9393920d483a7260bfb731fb5d25f1aa493335a9e71297e485b7aef312c21800deef121f1e76426a00665e5c4479674322d4f75edadd46debd5cd992f6ed090689d0585ff075ec9e99ad690c3395bc4b313370b38ef355acdadcd122975b12c85ea5db8c6deb4aab71808dcb408fe3d1e7690c43d37b4ce6cc0166fa7daa";

/// EIP-198 input: lengths, then base, exponent and modulus.
fn modexp_input(base: &[u8], exp: &[u8], modulus: &[u8]) -> Vec<u8> {
    let len = |n: usize| U256::from(n).to_be_bytes::<32>().to_vec();
    [
        len(base.len()),
        len(exp.len()),
        len(modulus.len()),
        base.to_vec(),
        exp.to_vec(),
        modulus.to_vec(),
    ]
    .concat()
}

/// Deterministic pseudo-random bytes.
fn filler(seed: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut h = keccak256(seed);
    while out.len() < n {
        out.extend_from_slice(h.as_slice());
        h = keccak256(h);
    }
    out.truncate(n);
    out
}

/// The contract (and genesis state) of workload `name` for a run of `txs` transactions
/// of `tx_gas` each.
fn workload(name: &str, txs: u64, tx_gas: u64) -> eyre::Result<Workload> {
    use op::*;
    let w = match name {
        "jumpdest" => {
            let mut code = vec![JUMPDEST; MAX_CODE_SIZE - 2];
            code.extend_from_slice(&[PUSH0, JUMP]);
            Workload::code(code.into())
        }
        "loop" => Workload::code(Bytes::from_static(&[JUMPDEST, PUSH0, JUMP])),
        "div" => {
            // 2^130 + 12345: a three-limb divisor, two-limb quotients.
            let divisor: U256 = (U256::from(1u64) << 130usize) + U256::from(12_345u64);
            let setup = Asm::default()
                .push(&divisor.to_be_bytes::<32>())
                .push(&[0xff; 32]);
            Workload::code(unrolled_loop(setup, &[DUP2, DUP2, DIV, POP])?)
        }
        "mulmod" => {
            let v = filler("mulmod", 96);
            let mut modulus = v[64..96].to_vec();
            modulus[0] |= 0x80;
            modulus[31] |= 1;
            let setup = Asm::default()
                .push(&modulus)
                .push(&v[32..64])
                .push(&v[..32]);
            Workload::code(unrolled_loop(setup, &[DUP3, DUP3, DUP3, MULMOD, POP])?)
        }
        "keccak" => Workload::code(unrolled_loop(
            Asm::default(),
            &[PUSH1, 32, PUSH0, KECCAK256, POP],
        )?),
        "mstore" => Workload::code(unrolled_loop(Asm::default(), &[GAS, PUSH0, MSTORE])?),
        "selfbalance" => Workload::code(unrolled_loop(Asm::default(), &[SELFBALANCE, POP])?),
        "balance-warm" => Workload::code(unrolled_loop(Asm::default(), &[CALLER, BALANCE, POP])?),
        "extcodesize-warm" => {
            Workload::code(unrolled_loop(Asm::default(), &[ADDRESS, EXTCODESIZE, POP])?)
        }
        "sload-warm" => {
            let mut w = Workload::code(unrolled_loop(Asm::default(), &[PUSH0, SLOAD, POP])?);
            w.storage
                .insert(B256::ZERO, B256::from(U256::from(0xabcdefu64)));
            w
        }
        "blockhash" => Workload::code(unrolled_loop(
            Asm::default(),
            &[PUSH1, 1, NUMBER, SUB, BLOCKHASH, POP],
        )?),
        // GAS ^ CALLER: a different address every time, and in every transaction (each
        // has its own sender).
        "balance-cold" => Workload::code(unrolled_loop(
            Asm::default(),
            &[GAS, CALLER, XOR, BALANCE, POP],
        )?),
        "extcodesize-cold" => {
            // Transaction i reads contracts base + i * per_tx ...; one code (all
            // different accounts, as many as the run can reach).
            let per_tx = tx_gas / 2_600 + 1;
            let code = Asm::default()
                .op(&[PUSH0, CALLDATALOAD])
                .label("loop")
                .op(&[DUP1, EXTCODESIZE, POP])
                .push_u(1)
                .op(&[ADD])
                .push_label("loop")
                .op(&[JUMP])
                .build(&[])?;
            let big: Bytes = filler("cold-code", MAX_CODE_SIZE).into();
            let accounts = (0..txs * per_tx)
                .map(|i| {
                    (
                        Address::from_word(B256::from(U256::from(COLD_CODE_BASE + i))),
                        GenesisAccount {
                            balance: U256::ZERO,
                            nonce: 1,
                            code: Some(big.clone()),
                            storage: BTreeMap::new(),
                        },
                    )
                })
                .collect();
            Workload {
                code,
                storage: BTreeMap::new(),
                accounts,
                input: Box::new(move |i| {
                    B256::from(U256::from(COLD_CODE_BASE + i * per_tx))
                        .to_vec()
                        .into()
                }),
                succeeds: false,
            }
        }
        // Key GAS ^ CALLER, value GAS: new slots in every transaction.
        "sstore-new" => Workload::code(
            Asm::default()
                .label("loop")
                .exit_below(25_000)
                .op(&[GAS, GAS, CALLER, XOR, SSTORE])
                .push_label("loop")
                .op(&[JUMP])
                .end()
                .build(&[])?,
        )
        .succeeding(),
        "sstore-update" => {
            // Transaction i rewrites slots i * per_tx ..; all hold 1 at genesis.
            let per_tx = tx_gas / 5_000 + 1;
            let code = Asm::default()
                .op(&[PUSH0, CALLDATALOAD])
                .label("loop")
                .exit_below(8_000)
                .op(&[GAS, DUP2, SSTORE])
                .push_u(1)
                .op(&[ADD])
                .push_label("loop")
                .op(&[JUMP])
                .end()
                .build(&[])?;
            let one = B256::from(U256::from(1));
            let storage = (0..txs * per_tx)
                .map(|k| (B256::from(U256::from(k)), one))
                .collect();
            Workload {
                code,
                storage,
                accounts: Vec::new(),
                input: Box::new(move |i| B256::from(U256::from(i * per_tx)).to_vec().into()),
                succeeds: true,
            }
        }
        "log" => Workload::code(
            Asm::default()
                .label("loop")
                .exit_below(40_000)
                .op(&[PUSH2, 0x10, 0x00, PUSH0, LOG0])
                .push_label("loop")
                .op(&[JUMP])
                .end()
                .build(&[])?,
        )
        .succeeding(),
        "ecrecover" => {
            use alloy::signers::SignerSync;
            let key = bench_key(u64::MAX);
            let hash = keccak256("koma worst case");
            let sig = key.sign_hash_sync(&hash)?;
            let mut input = hash.to_vec();
            input.extend(U256::from(27 + u64::from(sig.v())).to_be_bytes::<32>());
            input.extend(sig.r().to_be_bytes::<32>());
            input.extend(sig.s().to_be_bytes::<32>());
            Workload::code(precompile_loop(0x01, &input, 32)?)
        }
        "sha256" => Workload::code(precompile_loop(0x02, &filler("sha", 32), 32)?),
        "modexp" | "modexp-even" => {
            let base = filler("modexp-base", 32);
            let mut modulus = filler("modexp-mod", 32);
            modulus[0] |= 0x80;
            if name == "modexp" {
                modulus[31] |= 1;
            } else {
                modulus[31] &= !1;
            }
            // 38 bits: iteration count 37, 16 * 37 / 3 = 197 -> the 200-gas minimum.
            let exp = hex_bytes(&["3fffffffff"]);
            Workload::code(precompile_loop(
                0x05,
                &modexp_input(&base, &exp, &modulus),
                32,
            )?)
        }
        "modexp-64" => {
            let base = filler("modexp-base", 64);
            let mut modulus = filler("modexp-mod", 64);
            modulus[0] |= 0x80;
            modulus[63] |= 1;
            // 10 bits: 64 * 9 / 3 = 192 -> 200 gas.
            let exp = hex_bytes(&["03ff"]);
            Workload::code(precompile_loop(
                0x05,
                &modexp_input(&base, &exp, &modulus),
                64,
            )?)
        }
        // 128 words, iteration count 1: 128^2 / 3 = 5461 gas. An even modulus takes
        // the slower path; see `modexp:<len>:<exp>[:even]` to try other shapes.
        "modexp-big" => workload("modexp:1024:03:even", txs, tx_gas)?,
        "bn-add" => Workload::code(precompile_loop(0x06, &hex_bytes(&[BN_G1, BN_G1]), 64)?),
        "bn-mul" => Workload::code(precompile_loop(
            0x07,
            &hex_bytes(&[
                BN_G1,
                "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000000",
            ]),
            64,
        )?),
        "bn-pairing" => Workload::code(precompile_loop(
            0x08,
            &hex_bytes(&[BN_G1, BN_G2, BN_G1_NEG, BN_G2]),
            32,
        )?),
        "blake2f" => {
            let mut input = 10_000u32.to_be_bytes().to_vec();
            input.extend(filler("blake2f", 64 + 128 + 16));
            input.push(1);
            Workload::code(precompile_loop(0x09, &input, 64)?)
        }
        "kzg" => {
            // c-kzg's verify_kzg_proof_case_correct_proof_4_4.
            let commitment = hex_bytes(&[
                "8f59a8d2a1a625a17f3fea0fe5eb8c896db3764f3185481bc22f91b4aaffcca25f26936857bc3a7c2539ea8ec3a952b7",
            ]);
            let input = [
                hex_bytes(&[
                    // 0x01 ++ sha256(commitment)[1..]
                    "01e798154708fe7789429634053cbf9f99b619f9f084048927333fce637f549b",
                    "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000000",
                    "1522a4a7f34e1ea350ae07c29c96c7e79655aa926122e95fe69fcbd932ca49e9",
                ]),
                commitment,
                hex_bytes(&[
                    "a62ad71d14c5719385c0686f1871430475bf3a00f0aa3f7b8dd99a9abc2160744faf0070725e00b60ad9a026a15b1a8c",
                ]),
            ]
            .concat();
            Workload::code(precompile_loop(0x0a, &input, 64)?)
        }
        "bls-g1add" => Workload::code(precompile_loop(0x0b, &[bls_g1(), bls_g1()].concat(), 128)?),
        "bls-g1msm" => Workload::code(precompile_loop(
            0x0c,
            &[bls_g1(), filler("scalar", 32)].concat(),
            128,
        )?),
        "bls-g2add" => Workload::code(precompile_loop(0x0d, &[bls_g2(), bls_g2()].concat(), 256)?),
        "bls-g2msm" => Workload::code(precompile_loop(
            0x0e,
            &[bls_g2(), filler("scalar", 32)].concat(),
            256,
        )?),
        "bls-pairing" => Workload::code(precompile_loop(
            0x0f,
            &[bls_g1(), bls_g2(), bls_g1(), bls_g2()].concat(),
            32,
        )?),
        "bls-map-g1" => Workload::code(precompile_loop(0x10, &bls_g1()[..64], 128)?),
        "bls-map-g2" => Workload::code(precompile_loop(0x11, &bls_g2()[..128], 256)?),
        "p256verify" => {
            // RIP-7212 test vector (a valid signature); Osaka only.
            let input = hex_bytes(&[
                "4cee90eb86eaa050036147a12d49004b6b9c72bd725d39d4785011fe190f0b4d",
                "a73bd4903f0ce3b639bbbf6e8e80d16931ff4bcf5993d58468e8fb19086e8cac",
                "36dbcd03009df8c59286b162af3bd7fcc0450c9aa81be5d10d312af6c66b1d60",
                "4aebd3099c618202fcfe16ae7770b0c49ab5eadf74b754204a3bb6060e44eff3",
                "7618b065f9832de4ca6ca971a7a1adc826d0f7c00181a5fb2ddf79ae00b4e10e",
            ]);
            Workload::code(precompile_loop_at(0x100, &input, 32)?)
        }
        custom if custom.starts_with("modexp:") => {
            // modexp:<base and modulus bytes>:<exponent hex>[:even]
            let parts: Vec<&str> = custom.split(':').collect();
            let len: usize = parts
                .get(1)
                .and_then(|l| l.parse().ok())
                .filter(|l| *l > 0)
                .ok_or_else(|| eyre!("modexp:<len>:<exponent hex>[:even]"))?;
            let exp = hex::decode(parts.get(2).copied().unwrap_or("03"))?;
            let base = filler("modexp-base", len);
            let mut modulus = filler("modexp-mod", len);
            modulus[0] |= 0x80;
            if parts.get(3) == Some(&"even") {
                modulus[len - 1] &= !1;
            } else {
                modulus[len - 1] |= 1;
            }
            Workload::code(precompile_loop(
                0x05,
                &modexp_input(&base, &exp, &modulus),
                len as u64,
            )?)
        }
        other => eyre::bail!("unknown workload {other} (see --list)"),
    };
    Ok(w)
}

/// One block of a worst-case run.
struct WorstBlock {
    gas: u64,
    txs: usize,
    units: u64,
    exec_ms: f64,
    root_ms: f64,
    commit_ms: f64,
    build_ms: f64,
    import_ms: Option<f64>,
}

impl WorstBlock {
    /// The slower of building (producer) and importing (every other node).
    fn path_ms(&self) -> f64 {
        self.build_ms.max(self.import_ms.unwrap_or(0.0))
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// `koma bench worst-case`: for each workload, full blocks of transactions at the
/// per-transaction gas cap, each looping over the workload's operation until out of
/// gas, built exactly as the producer builds them (execution with the transfer log,
/// state root, seal, commit) and imported into a second database as every other node
/// does (sender recovery, re-execution, state root, commit).
fn worst_case(args: WorstCaseBench) -> eyre::Result<()> {
    if args.list {
        for (name, what) in WORKLOADS {
            println!("{name:<18} {what}");
        }
        return Ok(());
    }
    let devnet = ChainSpec::devnet();
    let gas_limit = args.gas_limit.unwrap_or(devnet.gas_limit);
    let compute_limit = args.compute_limit.unwrap_or(devnet.compute_limit());
    let tx_gas = args.tx_gas.unwrap_or(devnet.max_tx_gas());
    eyre::ensure!(
        tx_gas >= 100_000 && tx_gas <= gas_limit,
        "--tx-gas must be between 100000 and the gas limit"
    );
    let hardfork = match args.hardfork.as_deref() {
        None => devnet.hardfork,
        Some(name) => serde_json::from_value(json!(name))
            .map_err(|_| eyre!("unknown hardfork {name} (prague or osaka)"))?,
    };
    let names: Vec<String> = if args.workloads.is_empty() {
        WORKLOADS
            .iter()
            .map(|(n, _)| n.to_string())
            .filter(|n| n != "p256verify" || hardfork == Hardfork::Osaka)
            .collect()
    } else {
        args.workloads.clone()
    };
    // Gas of each transaction of a block: as many at `tx_gas` as fit, then the rest.
    let mut block_txs = vec![tx_gas; (gas_limit / tx_gas) as usize];
    if gas_limit % tx_gas >= 100_000 {
        block_txs.push(gas_limit % tx_gas);
    }
    // Every transaction spends at least 99.5 % of its gas (checked below), so a block
    // holds at most this many under the compute limit; one more waits for the next.
    let least_units = koma_primitives::compute::tx_compute_units(tx_gas - tx_gas / 200, 0);
    block_txs.truncate((compute_limit / least_units.max(1) + 2) as usize);
    println!(
        "worst case ({hardfork:?}): blocks of {:.1} Mgas and {:.1} M compute units (up to {} transactions of up to {:.2} Mgas), {} blocks per workload after {} warm-up; load average {}",
        gas_limit as f64 / 1e6,
        compute_limit as f64 / 1e6,
        block_txs.len(),
        tx_gas as f64 / 1e6,
        args.blocks,
        args.warmup,
        load_average()
    );
    println!(
        "{:<18} {:>5} {:>4} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "workload",
        "block",
        "txs",
        "gas(M)",
        "units(M)",
        "exec_ms",
        "root_ms",
        "commit_ms",
        "build_ms",
        "import_ms",
        "exec_Mgas/s",
        "path_Mgas/s"
    );
    let producer = dev::dev_producer_key(0);
    let mut summary: Vec<(String, WorstBlock)> = Vec::new();
    for name in &names {
        let txs = block_txs.len() as u64 * (args.warmup + args.blocks);
        let w = workload(name, txs, tx_gas)?;
        let mut spec = devnet.clone();
        spec.hardfork = hardfork;
        spec.gas_limit = gas_limit;
        spec.max_tx_gas = Some(tx_gas.max(devnet.max_tx_gas()));
        spec.compute_limit = Some(compute_limit);
        spec.alloc.insert(
            WORST_CONTRACT,
            GenesisAccount {
                balance: U256::ZERO,
                nonce: 1,
                code: Some(w.code.clone()),
                storage: w.storage.clone(),
            },
        );
        spec.alloc.extend(w.accounts.iter().cloned());
        // One sender per transaction, so that no two share a nonce sequence or a
        // sender-derived key.
        let keys: Vec<PrivateKeySigner> = (0..txs).map(|i| bench_key(1 << 40 | i)).collect();
        for k in &keys {
            spec.alloc.insert(
                k.address(),
                GenesisAccount {
                    balance: U256::from(10u64).pow(U256::from(21)),
                    ..Default::default()
                },
            );
        }
        let dirs = (
            tempfile::Builder::new()
                .prefix("koma-bench-worst-")
                .tempdir()?,
            tempfile::Builder::new()
                .prefix("koma-bench-worst-")
                .tempdir()?,
        );
        let db = Database::open(dirs.0.path(), &spec)?;
        let importer = if args.no_import {
            None
        } else {
            Some(Database::open(dirs.1.path(), &spec)?)
        };
        // Every transaction a gas-full block could hold, signed up front; a block takes
        // what fits its gas and compute, the rest wait for the next (as in the pool).
        let mut pending = HoldingPool::default();
        let mut i = 0u64;
        for _ in 0..args.warmup + args.blocks {
            for gas in &block_txs {
                let key = &keys[i as usize];
                let tx = TxEip1559 {
                    chain_id: spec.chain_id,
                    nonce: 0,
                    gas_limit: *gas,
                    max_fee_per_gas: 10_000_000_000,
                    max_priority_fee_per_gas: 1_000_000_000,
                    to: TxKind::Call(WORST_CONTRACT),
                    value: U256::ZERO,
                    access_list: Default::default(),
                    input: (w.input)(i),
                };
                pending.txs.push_back((sign(key, tx)?, key.address()));
                i += 1;
            }
        }
        let mut worst: Option<WorstBlock> = None;
        for b in 0..args.warmup + args.blocks {
            let started = Instant::now();
            let built = build_block(&spec, &db, &mut pending, &producer, spec.timestamp + b + 1)?;
            let build_ms = started.elapsed().as_secs_f64() * 1e3;
            pending.restore();
            let n = built.block.body.transactions.len();
            eyre::ensure!(n > 0, "{name}: no transaction was included");
            // Every transaction must have spent (nearly) all its gas in the loop: one
            // that failed early gives gas back. Those that write must succeed.
            let mut before = 0u64;
            for (idx, (receipt, tx)) in built
                .receipts
                .iter()
                .zip(&built.block.body.transactions)
                .enumerate()
            {
                let gas = &alloy::consensus::Transaction::gas_limit(tx);
                let used = receipt.cumulative_gas_used() - before;
                before = receipt.cumulative_gas_used();
                eyre::ensure!(
                    used >= gas - gas / 200,
                    "{name}: transaction {idx} used {used} of {gas} gas: the workload failed"
                );
                eyre::ensure!(
                    !w.succeeds || receipt.status(),
                    "{name}: transaction {idx} failed"
                );
            }
            let import_ms = match &importer {
                Some(importer) => {
                    let started = Instant::now();
                    koma_producer::import_block(&spec, importer, &built.block)?;
                    Some(started.elapsed().as_secs_f64() * 1e3)
                }
                None => None,
            };
            let gas = built.header.header.gas_used;
            let figures = WorstBlock {
                gas,
                txs: n,
                units: built.compute_used,
                exec_ms: built.execution_ms,
                root_ms: built.state_root_ms,
                commit_ms: built.commit_ms,
                build_ms,
                import_ms,
            };
            let warming = b < args.warmup;
            println!(
                "{:<18} {:>5} {:>4} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>9.1} {:>10} {:>10.0} {:>10.0}{}",
                name,
                built.header.number(),
                n,
                gas as f64 / 1e6,
                built.compute_used as f64 / 1e6,
                figures.exec_ms,
                figures.root_ms,
                figures.commit_ms,
                figures.build_ms,
                figures
                    .import_ms
                    .map_or("-".to_string(), |ms| format!("{ms:.1}")),
                gas as f64 / 1e3 / figures.exec_ms,
                gas as f64 / 1e3 / figures.path_ms(),
                if warming { "  (warm-up)" } else { "" },
            );
            if warming {
                continue;
            }
            if worst
                .as_ref()
                .is_none_or(|w| figures.path_ms() > w.path_ms())
            {
                worst = Some(figures);
            }
        }
        if let Some(w) = worst {
            summary.push((name.clone(), w));
        }
    }
    summary.sort_by(|a, b| b.1.path_ms().total_cmp(&a.1.path_ms()));
    println!(
        "\nslowest block per workload, slowest first (whole path = the slower of build and import); load average {}",
        load_average()
    );
    println!(
        "{:<18} {:>4} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>11}",
        "workload",
        "txs",
        "gas(M)",
        "units(M)",
        "exec_ms",
        "root_ms",
        "commit_ms",
        "build_ms",
        "import_ms",
        "path_ms",
        "path_Mgas/s"
    );
    for (name, w) in &summary {
        println!(
            "{:<18} {:>4} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>9.1} {:>9} {:>8.1} {:>11.0}",
            name,
            w.txs,
            w.gas as f64 / 1e6,
            w.units as f64 / 1e6,
            w.exec_ms,
            w.root_ms,
            w.commit_ms,
            w.build_ms,
            w.import_ms.map_or("-".to_string(), |ms| format!("{ms:.1}")),
            w.path_ms(),
            w.gas as f64 / 1e3 / w.path_ms()
        );
    }
    println!(
        "(path_Mgas/s is also the largest block gas limit, in Mgas, whose worst block of that workload takes one second)"
    );
    if let Some((name, w)) = summary.first() {
        println!(
            "slowest block: {name}, {:.1} ms (compute limit {:.1} M units, gas limit {:.1} Mgas)",
            w.path_ms(),
            compute_limit as f64 / 1e6,
            gas_limit as f64 / 1e6
        );
    }
    Ok(())
}
