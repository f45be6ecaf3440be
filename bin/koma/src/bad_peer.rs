//! `koma debug bad-peer`: a deliberately misbehaving peer, for fault tests and for
//! checking a deployment's defences. It joins a node and gossips one kind of bad
//! message until the node disconnects it, then checks that the node refuses it.

use alloy::consensus::{EMPTY_OMMER_ROOT_HASH, Header};
use alloy_primitives::{B256, keccak256};
use alloy_rlp::{Decodable, Encodable};
use clap::{Args, ValueEnum};
use koma_network::{
    Multiaddr, Network, NetworkConfig, NetworkHandle, PublishOutcome, SyncRequest, SyncResponse,
    Topic,
};
use koma_primitives::{Block, ChainSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Random bytes on the blocks topic (undecodable).
    Garbage,
    /// Transaction gossip above the topic's size limit.
    Oversized,
    /// Well-formed blocks on the target's head, sealed by the in-turn devnet producer
    /// key, whose state root is wrong: they fail only at re-execution.
    InvalidBlock,
    /// Blocks on the target's head, sealed by the in-turn producer key, with one
    /// extreme header field each in turn: `gas_used`, `number` or `timestamp` at
    /// `u64::MAX`, or 64 KiB of `extraData`.
    ExtremeHeader,
    /// Blocks on the target's head, sealed by the in-turn producer key, that open with
    /// deposit transactions 2 and 1, in that order.
    ReorderedDeposits,
    /// Checkpoint votes for the target's next checkpoint (read from `--rpc`) in staker
    /// set `--set-id`, slot 0, whose BLS signature is a valid point made with another
    /// key: they fail only at the signature check.
    BadCheckpointVote,
}

#[derive(Debug, Args)]
pub struct BadPeerArgs {
    /// Chain spec of the target network.
    #[arg(long)]
    pub genesis: PathBuf,
    /// The node to attack (`.../p2p/<peer id>`).
    #[arg(long)]
    pub target: Multiaddr,
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// The target's JSON-RPC URL (`bad-checkpoint-vote` reads its latest checkpoint).
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
    /// The staker set the bad votes name (`bad-checkpoint-vote`).
    #[arg(long, default_value_t = 1)]
    pub set_id: u64,
    /// Give up (exit with an error) if still connected after this many messages.
    #[arg(long, default_value_t = 20)]
    pub max_messages: u32,
}

pub async fn run(args: BadPeerArgs) -> eyre::Result<()> {
    let spec = ChainSpec::from_file(&args.genesis)?;
    let (target, _) = koma_network::split_peer_addr(&args.target)?;
    let mut config = NetworkConfig::new(spec.chain_id, koma_network::Keypair::generate_ed25519());
    config.bootnodes = vec![args.target.clone()];
    config.discovery = false;
    config.gossip_heartbeat = Duration::from_millis(200);
    // Our own limits must not stop the bad messages from leaving.
    config.max_tx_message_size = 1024 * 1024;
    let (net, mut events) = Network::start(config).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !net.peers().contains(&target) {
        eyre::ensure!(
            Instant::now() < deadline,
            "could not connect to {}",
            args.target
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
    }
    println!("connected to {target}");
    // Drain events (the target's gossip) so the service never blocks.
    tokio::spawn(async move { while events.recv().await.is_some() {} });

    for sent in 0..args.max_messages {
        if !net.peers().contains(&target) {
            println!("disconnected by the target after {sent} bad messages");
            return check_refused(&net, &args.target, target).await;
        }
        let (topic, data) = message(&net, &spec, target, &args, sent).await?;
        // Right after connecting the target may not have announced its topics yet.
        let outcome = net.publish(topic, data).await?;
        if outcome == PublishOutcome::NoPeers {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    if !net.peers().contains(&target) {
        println!(
            "disconnected by the target after {} bad messages",
            args.max_messages
        );
        return check_refused(&net, &args.target, target).await;
    }
    eyre::bail!("still connected after {} bad messages", args.max_messages)
}

async fn check_refused(
    net: &NetworkHandle,
    addr: &Multiaddr,
    target: koma_network::PeerId,
) -> eyre::Result<()> {
    let _ = net.dial(addr.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    eyre::ensure!(
        !net.peers().contains(&target),
        "the target accepted us again right after disconnecting us"
    );
    println!("reconnection refused");
    Ok(())
}

async fn message(
    net: &NetworkHandle,
    spec: &ChainSpec,
    target: koma_network::PeerId,
    args: &BadPeerArgs,
    n: u32,
) -> eyre::Result<(Topic, Vec<u8>)> {
    let noise = |len: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut seed = keccak256(format!("bad-peer {n} {:?}", Instant::now()));
        while out.len() < len {
            out.extend_from_slice(seed.as_slice());
            seed = keccak256(seed);
        }
        out.truncate(len);
        out
    };
    Ok(match args.mode {
        Mode::Garbage => (Topic::Blocks, noise(512)),
        Mode::Oversized => (Topic::Txs, noise(200 * 1024)),
        Mode::InvalidBlock => (
            Topic::Blocks,
            bad_block(net, spec, target, n, Lie::StateRoot).await?,
        ),
        Mode::ExtremeHeader => {
            let lie = match n % 4 {
                0 => Lie::GasUsed,
                1 => Lie::Number,
                2 => Lie::Timestamp,
                _ => Lie::ExtraData,
            };
            (Topic::Blocks, bad_block(net, spec, target, n, lie).await?)
        }
        Mode::ReorderedDeposits => (
            Topic::Blocks,
            bad_block(net, spec, target, n, Lie::DepositOrder).await?,
        ),
        Mode::BadCheckpointVote => (
            Topic::Checkpoints,
            bad_checkpoint_vote(&args.rpc, args.set_id).await?,
        ),
    })
}

/// A vote for the checkpoint after the target's latest, in set `set_id` at slot 0, signed
/// with a fresh key (a valid signature point that does not verify under slot 0's key).
async fn bad_checkpoint_vote(rpc: &str, set_id: u64) -> eyre::Result<Vec<u8>> {
    use jsonrpsee::core::client::ClientT;
    let ws = rpc.replacen("http://", "ws://", 1);
    let client = jsonrpsee::ws_client::WsClientBuilder::default()
        .build(&ws)
        .await?;
    let latest: Option<serde_json::Value> = client
        .request("koma_getCheckpoint", jsonrpsee::rpc_params!["latest"])
        .await?;
    let quantity = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
    };
    let (number, start) = match &latest {
        Some(cp) => (
            quantity(&cp["number"]).unwrap_or(0).saturating_add(1),
            quantity(&cp["end"]).unwrap_or(0).saturating_add(1),
        ),
        None => (1, 0),
    };
    let header = koma_checkpoint::CheckpointHeader {
        number,
        start,
        end: start.saturating_add(31),
        root: keccak256(format!("bad vote {number} {:?}", Instant::now())),
    };
    let key = koma_checkpoint::SecretKey::random(&mut rand::rng());
    let vote = koma_node::CheckpointVote {
        signature: key.sign(&header.root),
        header,
        set_id,
        slot: 0,
    };
    Ok(vote.encode())
}

/// What a bad block lies about.
#[derive(Debug, Clone, Copy)]
enum Lie {
    /// Passes every header check; only re-execution finds it.
    StateRoot,
    GasUsed,
    Number,
    Timestamp,
    ExtraData,
    /// Deposits 2 and 1, in that order.
    DepositOrder,
}

/// A block on the target's head, sealed by the in-turn producer key, with one lie.
async fn bad_block(
    net: &NetworkHandle,
    spec: &ChainSpec,
    target: koma_network::PeerId,
    n: u32,
    lie: Lie,
) -> eyre::Result<Vec<u8>> {
    let SyncResponse::Status(status) = net.request(target, SyncRequest::Status).await? else {
        eyre::bail!("unexpected status answer");
    };
    let SyncResponse::Headers(items) = net
        .request(
            target,
            SyncRequest::HeadersByRange {
                start: status.number,
                count: 1,
            },
        )
        .await?
    else {
        eyre::bail!("unexpected headers answer");
    };
    let raw = items
        .first()
        .ok_or_else(|| eyre::eyre!("target has no head header"))?;
    let parent = Header::decode(&mut raw.as_slice())?;
    let number = parent.number + 1;
    let schedule = koma_producer::ProducerSchedule::genesis(spec);
    let in_turn = schedule.in_turn(number);
    let index = spec
        .producers
        .producers
        .iter()
        .position(|p| *p == in_turn)
        .unwrap_or_default();
    let key = koma_primitives::dev::dev_producer_key(u32::try_from(index)?);
    let mut header = Header {
        parent_hash: status.hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: key.address(),
        // The lie.
        state_root: keccak256(format!("not the state root {n}")),
        transactions_root: koma_primitives::EMPTY_ROOT_HASH,
        receipts_root: koma_primitives::EMPTY_ROOT_HASH,
        difficulty: schedule
            .difficulty(number, key.address())
            .unwrap_or_default(),
        number,
        gas_limit: spec.gas_limit,
        gas_used: 0,
        timestamp: koma_producer::earliest_timestamp(spec, parent.timestamp, 0),
        mix_hash: koma_producer::next_prevrandao(parent.mix_hash, number),
        base_fee_per_gas: Some(spec.base_fee_after(&parent)),
        withdrawals_root: Some(koma_primitives::EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(alloy::eips::eip7685::EMPTY_REQUESTS_HASH),
        ..Default::default()
    };
    // the parent's deposit watermark, carried on as an honest block does
    koma_primitives::bridge::Watermark::of(&parent)
        .unwrap_or_default()
        .write(&mut header);
    match lie {
        Lie::StateRoot => {}
        Lie::GasUsed => header.gas_used = u64::MAX,
        Lie::Number => header.number = u64::MAX,
        Lie::Timestamp => header.timestamp = u64::MAX,
        Lie::ExtraData => header.extra_data = vec![0xab; 64 * 1024].into(),
        Lie::DepositOrder => {}
    }
    let transactions = match lie {
        Lie::DepositOrder => {
            let data = koma_primitives::bridge::Deposit {
                token: koma_primitives::bridge::KMC_TOKEN,
                from: alloy_primitives::Address::ZERO,
                to: key.address(),
                amount: alloy_primitives::U256::from(1u64),
                metadata: None,
            }
            .encode();
            [2, 1]
                .map(|id| koma_primitives::bridge::deposit_tx(spec.chain_id, id, data.clone()))
                .to_vec()
        }
        _ => Vec::new(),
    };
    header.transactions_root = alloy::consensus::proofs::calculate_transaction_root(&transactions);
    let block = Block {
        header: koma_primitives::SignedHeader::sign(header, spec.chain_id, &key)?,
        body: alloy::consensus::BlockBody {
            transactions,
            ommers: Vec::new(),
            withdrawals: Some(Default::default()),
        },
    };
    let mut out = Vec::new();
    block.encode(&mut out);
    Ok(out)
}
