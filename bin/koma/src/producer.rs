//! `koma producer`: stand as a block producer candidate on L1, leave, take the bond
//! back, and see where a candidate stands (docs/producers.md).
//!
//! Stakers elect each span's producers with their votes (`koma staker vote`); the span
//! after next takes the ranking as of the L1 block the current span's first block names.

use crate::bridge::{Account, format_units, url};
use crate::staker::L1Root;
use alloy::network::EthereumWallet;
use alloy::providers::{Provider, ProviderBuilder};
use alloy_primitives::{Address, U256};
use clap::{Args, Subcommand};
use eyre::{WrapErr, eyre};
use koma_l1::L1Contracts;
use koma_l1::bindings::RootChain;

#[derive(Debug, Subcommand)]
pub enum ProducerCommand {
    /// Register a block-sealing key as a producer candidate, bonding the contract's
    /// minimum stake in KMC from the account (its owner).
    Register(CandidateArgs),
    /// Withdraw the candidacy: votes for it stop counting at once; the bond is
    /// withdrawable after the withdrawal delay.
    Leave(CandidateArgs),
    /// Pay the bond back to the owner once the candidate left and the delay is over.
    Withdraw(CandidateArgs),
    /// Where a candidate stands on L1 (bond, votes, rank) and, with `--rpc`, in the L2's
    /// producer schedule.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct CandidateArgs {
    /// The address of the block-sealing key (the node's `--producer-keystore`);
    /// default: the account's own address.
    #[arg(long)]
    pub producer: Option<Address>,
    #[command(flatten)]
    pub l1: L1Root,
    #[command(flatten)]
    pub account: Account,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub candidate: CandidateArgs,
    /// JSON-RPC URL of a KOMA node, to show the candidate's place in the producer
    /// schedule (`koma_producers`).
    #[arg(long)]
    pub rpc: Option<String>,
}

pub async fn run(cmd: ProducerCommand) -> eyre::Result<()> {
    match cmd {
        ProducerCommand::Register(args) => act(args, Action::Register).await,
        ProducerCommand::Leave(args) => act(args, Action::Leave).await,
        ProducerCommand::Withdraw(args) => act(args, Action::Withdraw).await,
        ProducerCommand::Status(args) => status(args).await,
    }
}

fn contracts(l1: &L1Root) -> eyre::Result<L1Contracts> {
    L1Contracts::from_file(&l1.l1_contracts)
        .wrap_err_with(|| format!("cannot read {}", l1.l1_contracts.display()))
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Register,
    Leave,
    Withdraw,
}

async fn act(args: CandidateArgs, action: Action) -> eyre::Result<()> {
    let contracts = contracts(&args.l1)?;
    let owner = args.account.signer()?;
    let producer = args.producer.unwrap_or(owner.address());
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner))
        .connect_http(url(&args.l1.l1_rpc)?);
    let root = RootChain::new(contracts.root_chain, &provider);
    let (what, sent) = match action {
        Action::Register => {
            let block = koma_l1::register_producer(&provider, &contracts, producer).await?;
            let bond = root.minStake().call().await?;
            println!(
                "registered producer candidate {producer} with a bond of {} KMC in L1 block {block}",
                format_units(bond, 18)
            );
            println!(
                "stakers vote for it with `koma staker vote {producer}`; elected, it produces from the span after next"
            );
            return Ok(());
        }
        Action::Leave => ("leave", root.leaveProducers(producer).send().await),
        Action::Withdraw => ("withdraw", root.withdrawBond(producer).send().await),
    };
    let receipt = koma_l1::confirm(sent, what).await?;
    println!(
        "{what}: done for candidate {producer} in L1 block {} (tx {})",
        receipt.block_number.unwrap_or_default(),
        receipt.transaction_hash
    );
    Ok(())
}

/// Where a candidate stands, as `koma producer status` prints it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    producer: Address,
    /// `candidate` (registered), `leaving` (left, the bond not withdrawable yet),
    /// `withdrawable` (left, the delay is over) or `none`.
    status: &'static str,
    owner: Option<Address>,
    bond: String,
    /// The stake voting for it (KMC, from the active staker set).
    votes: String,
    /// Its place in the ranking (1 = most votes), while a candidate.
    rank: Option<usize>,
    candidates: usize,
    withdrawable_at: u64,
    /// From the node given with `--rpc`: whether it produces the next block, and
    /// whether the next span elects it (null without `--rpc`, or while not known).
    producing: Option<bool>,
    elected_next_span: Option<bool>,
}

async fn status(args: StatusArgs) -> eyre::Result<()> {
    let contracts = contracts(&args.candidate.l1)?;
    let producer = match args.candidate.producer {
        Some(p) => p,
        None => args.candidate.account.signer()?.address(),
    };
    let provider = ProviderBuilder::new().connect_http(url(&args.candidate.l1.l1_rpc)?);
    let root = RootChain::new(contracts.root_chain, &provider);
    let c = root.candidates(producer).call().await?;
    let ranking = root.producerRanking().call().await?;
    let place = ranking.producers.iter().position(|p| *p == producer);
    let votes = place
        .and_then(|i| ranking.votes.get(i))
        .copied()
        .unwrap_or_default();
    let now = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .map_or(0, |b| b.header.timestamp);
    let status = if c.owner.is_zero() {
        "none"
    } else if c.index != 0 {
        "candidate"
    } else if now >= c.withdrawableAt {
        "withdrawable"
    } else {
        "leaving"
    };
    let (producing, elected_next_span) = match &args.rpc {
        Some(rpc) => schedule(rpc, producer).await?,
        None => (None, None),
    };
    let out = Status {
        producer,
        status,
        owner: (!c.owner.is_zero()).then_some(c.owner),
        bond: format_units(U256::from(c.bond), 18),
        // votes are weights in gwei
        votes: format_units(votes, 9),
        rank: place.map(|i| i + 1),
        candidates: ranking.producers.len(),
        withdrawable_at: c.withdrawableAt,
        producing,
        elected_next_span,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Whether `producer` produces the next block, and is elected for the next span, as the
/// node at `rpc` says.
async fn schedule(rpc: &str, producer: Address) -> eyre::Result<(Option<bool>, Option<bool>)> {
    let provider = ProviderBuilder::new().connect_http(url(rpc)?);
    let next: Option<serde_json::Value> = provider
        .raw_request("koma_producers".into(), ())
        .await
        .wrap_err("koma_producers")?;
    let Some(next) = next else {
        return Ok((None, None));
    };
    let has = |v: &serde_json::Value, field: &str| {
        v[field].as_array().map(|list| {
            list.iter()
                .any(|p| p.as_str().and_then(|s| s.parse::<Address>().ok()) == Some(producer))
        })
    };
    let producing = has(&next, "producers");
    let span = next["span"]
        .as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .ok_or_else(|| eyre!("koma_producers gave no span"))?;
    let later: Option<serde_json::Value> = provider
        .raw_request(
            "koma_producers".into(),
            [serde_json::json!({ "span": span + 1 })],
        )
        .await
        .wrap_err("koma_producers")?;
    Ok((producing, later.as_ref().and_then(|v| has(v, "elected"))))
}
