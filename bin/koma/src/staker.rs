//! `koma staker`: join, top up, decrease, leave and withdraw from the staker set on L1,
//! vote for a block producer, and see where a staker stands (docs/staking.md,
//! docs/producers.md).
//!
//! A change takes effect on L1 with the next accepted checkpoint (the pending set becomes
//! the active set) and on L2 at the next era boundary after that (the era takes the
//! active set at the L1 block its predecessor's last block names).

use crate::bridge::{Account, format_units, parse_amount, url};
use alloy::network::EthereumWallet;
use alloy::providers::{Provider, ProviderBuilder};
use alloy_primitives::{Address, U256};
use clap::{Args, Subcommand};
use eyre::WrapErr;
use koma_l1::bindings::RootChain;
use koma_l1::{L1Contracts, StakerRegistration};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum StakerCommand {
    /// Lock KMC on L1 and join the staker set (from the next set on), with a KoMaBFT
    /// signer address and a BLS key proven by a proof of possession.
    Stake(StakeArgs),
    /// Add KMC to the stake of a staker (from the next set on).
    Restake(RestakeArgs),
    /// Leave the staker set, or with `--amount` take that much out of the stake and stay;
    /// the KMC is withdrawable once the set without it is active on L1 and the
    /// withdrawal delay has passed (until then it can still be slashed).
    Unstake(UnstakeArgs),
    /// Pay out the KMC taken out by `unstake` once it may be withdrawn (a staker that
    /// left gets its unclaimed checkpoint rewards with it).
    Withdraw(ActArgs),
    /// Pay out the checkpoint rewards the staker has earned: each accepted checkpoint's
    /// reward is shared by the stakers that signed it, in proportion to their weight
    /// (docs/staking.md). A slashed staker's rewards are forfeit.
    Claim(ActArgs),
    /// Vote with the stake for a block producer candidate (`koma producer register`),
    /// replacing the previous vote; `0x0000000000000000000000000000000000000000`
    /// withdraws it. The vote weighs the stake in the active set (docs/producers.md).
    Vote(VoteArgs),
    /// Where a staker stands: stake, signer, slot, active / pending / unbonding, and its
    /// unclaimed rewards.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct L1Root {
    /// JSON-RPC URL of the L1 (default: the devnet's L1).
    #[arg(long, default_value = "http://127.0.0.1:8645")]
    pub l1_rpc: String,
    /// The contracts file of the L1 deployment (`koma devnet` prints its path).
    #[arg(long)]
    pub l1_contracts: PathBuf,
}

#[derive(Debug, Args)]
pub struct StakeArgs {
    /// KMC to lock (decimals allowed: 1.5); at least the contract's minimum stake.
    #[arg(long)]
    pub amount: String,
    /// The address of the staker's KoMaBFT key (its node's `--producer-keystore`);
    /// default: the staking account's own address.
    #[arg(long)]
    pub signer: Option<Address>,
    /// The staker's BLS keystore (`koma keys new-bls`), the one its node signs with.
    #[arg(long)]
    pub bls_keystore: PathBuf,
    /// File holding the BLS keystore's password.
    #[arg(long)]
    pub bls_password_file: PathBuf,
    #[command(flatten)]
    pub l1: L1Root,
    #[command(flatten)]
    pub account: Account,
}

#[derive(Debug, Args)]
pub struct ActArgs {
    #[command(flatten)]
    pub l1: L1Root,
    #[command(flatten)]
    pub account: Account,
}

#[derive(Debug, Args)]
pub struct RestakeArgs {
    /// KMC to add (decimals allowed); the account must hold it.
    #[arg(long)]
    pub amount: String,
    #[command(flatten)]
    pub act: ActArgs,
}

#[derive(Debug, Args)]
pub struct UnstakeArgs {
    /// KMC to take out of the stake (decimals allowed); at least the contract's minimum
    /// stake must stay. Without it the staker leaves the set with everything.
    #[arg(long)]
    pub amount: Option<String>,
    #[command(flatten)]
    pub act: ActArgs,
}

#[derive(Debug, Args)]
pub struct VoteArgs {
    /// The candidate: the address of its block-sealing key.
    pub producer: Address,
    #[command(flatten)]
    pub act: ActArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The staker (its owner address); default: the account's own address.
    #[arg(long)]
    pub owner: Option<Address>,
    #[command(flatten)]
    pub l1: L1Root,
    #[command(flatten)]
    pub account: Account,
}

pub async fn run(cmd: StakerCommand) -> eyre::Result<()> {
    match cmd {
        StakerCommand::Stake(args) => stake(args).await,
        StakerCommand::Restake(RestakeArgs { amount, act: a }) => {
            act(a, Action::Restake(parse_amount(&amount, 18)?)).await
        }
        StakerCommand::Unstake(UnstakeArgs {
            amount: None,
            act: a,
        }) => act(a, Action::Unstake).await,
        StakerCommand::Unstake(UnstakeArgs {
            amount: Some(amount),
            act: a,
        }) => act(a, Action::Decrease(parse_amount(&amount, 18)?)).await,
        StakerCommand::Withdraw(args) => act(args, Action::Withdraw).await,
        StakerCommand::Claim(args) => act(args, Action::Claim).await,
        StakerCommand::Vote(VoteArgs { producer, act: a }) => act(a, Action::Vote(producer)).await,
        StakerCommand::Status(args) => status(args).await,
    }
}

fn contracts(l1: &L1Root) -> eyre::Result<L1Contracts> {
    L1Contracts::from_file(&l1.l1_contracts)
        .wrap_err_with(|| format!("cannot read {}", l1.l1_contracts.display()))
}

async fn stake(args: StakeArgs) -> eyre::Result<()> {
    let contracts = contracts(&args.l1)?;
    let owner = args.account.signer()?;
    let bls = crate::cli::load_bls_keystore(&args.bls_keystore, &args.bls_password_file)?;
    let amount = parse_amount(&args.amount, 18)?;
    let address = owner.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner))
        .connect_http(url(&args.l1.l1_rpc)?);
    let signer = args.signer.unwrap_or(address);
    let block = koma_l1::register_staker(
        &provider,
        address,
        &contracts,
        &StakerRegistration {
            signer,
            bls_key: &bls,
            amount,
        },
    )
    .await?;
    println!(
        "staked {} KMC: owner {address}, signer {signer}, L1 block {block}",
        format_units(amount, 18)
    );
    println!(
        "in the pending set now; active on L1 with the next checkpoint, and on L2 from the next era after that"
    );
    Ok(())
}

/// A transaction `koma staker` sends for the staker itself.
#[derive(Debug, Clone, Copy)]
enum Action {
    Restake(U256),
    Unstake,
    Decrease(U256),
    Withdraw,
    Claim,
    Vote(Address),
}

async fn act(args: ActArgs, action: Action) -> eyre::Result<()> {
    let contracts = contracts(&args.l1)?;
    let owner = args.account.signer()?;
    let address = owner.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner))
        .connect_http(url(&args.l1.l1_rpc)?);
    let root = RootChain::new(contracts.root_chain, &provider);
    if let Action::Restake(amount) = action {
        koma_l1::approve(
            &provider,
            contracts.staking_token,
            contracts.root_chain,
            amount,
        )
        .await?;
    }
    let (what, sent) = match action {
        Action::Restake(amount) => ("restake", root.restake(amount).send().await),
        Action::Unstake => ("unstake", root.unstake().send().await),
        Action::Decrease(amount) => ("decrease", root.decreaseStake(amount).send().await),
        Action::Withdraw => ("withdraw", root.withdraw().send().await),
        Action::Claim => ("claim", root.claimRewards().send().await),
        Action::Vote(producer) => ("vote", root.vote(producer).send().await),
    };
    let receipt = koma_l1::confirm(sent, what).await?;
    println!(
        "{what}: done for {address} in L1 block {} (tx {})",
        receipt.block_number.unwrap_or_default(),
        receipt.transaction_hash
    );
    let claimed = receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.address() == contracts.root_chain)
        .filter_map(|log| log.log_decode::<RootChain::RewardsClaimed>().ok())
        .map(|log| log.inner.data.amount)
        .fold(U256::ZERO, |sum, amount| sum + amount);
    if !claimed.is_zero() {
        println!("rewards paid: {} KMC", format_units(claimed, 18));
    }
    Ok(())
}

/// `koma l1 fund-rewards`: adds KMC to the reward pool.
pub async fn fund_rewards(args: crate::l1::FundRewardsArgs) -> eyre::Result<()> {
    let contracts = contracts(&args.act.l1)?;
    let amount = parse_amount(&args.amount, 18)?;
    let owner = args.act.account.signer()?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner))
        .connect_http(url(&args.act.l1.l1_rpc)?);
    koma_l1::fund_rewards(&provider, &contracts, amount).await?;
    let pool = RootChain::new(contracts.root_chain, &provider)
        .rewardPool()
        .call()
        .await?;
    println!(
        "added {} KMC to the reward pool; it holds {} KMC",
        format_units(amount, 18),
        format_units(pool, 18)
    );
    Ok(())
}

/// Where a staker stands, as `koma staker status` prints it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    owner: Address,
    signer: Address,
    amount: String,
    /// active, pending (joined, not active yet), leaving (still in the active set),
    /// unbonding (left, waiting for the delay), withdrawable, or none.
    status: &'static str,
    /// KMC taken out of a staying stake (`unstake --amount`) and not withdrawn yet.
    unbonding: String,
    /// Whether `withdraw` pays that out now (its set is active, the delay is over).
    unbonding_withdrawable: bool,
    /// Whether the staker's KoMaBFT key was slashed for misbehaving (it then leaves the
    /// set, and the key can never stake again).
    slashed: bool,
    active_set_id: u64,
    exit_set_id: u64,
    withdrawable_at: u64,
    /// The producer candidate the staker votes for (none: no vote).
    vote: Option<Address>,
    /// KMC of checkpoint rewards earned and not claimed (`koma staker claim`; forfeit if
    /// slashed).
    rewards: String,
}

async fn status(args: StatusArgs) -> eyre::Result<()> {
    let contracts = contracts(&args.l1)?;
    let owner = match args.owner {
        Some(o) => o,
        None => args.account.signer()?.address(),
    };
    let provider = ProviderBuilder::new().connect_http(url(&args.l1.l1_rpc)?);
    let root = RootChain::new(contracts.root_chain, &provider);
    let s = root.stakers(owner).call().await?;
    let head = root.head().call().await?;
    let active = root.activeSet().call().await?;
    let active_set_id = u64::try_from(head.setId)?;
    let in_active = s.signer != Address::ZERO
        && active
            .signers
            .iter()
            .zip(&active.weights)
            .any(|(a, w)| *a == s.signer && *w > U256::ZERO);
    let now = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .map_or(0, |b| b.header.timestamp);
    let status = if s.blsKey == Address::ZERO {
        "none"
    } else if s.slot != 0 {
        if in_active { "active" } else { "pending" }
    } else if in_active {
        "leaving"
    } else if u64::from(s.exitSetId) <= active_set_id && now >= s.withdrawableAt {
        "withdrawable"
    } else {
        "unbonding"
    };
    let out = Status {
        owner,
        signer: s.signer,
        amount: format_units(U256::from(s.amount), 18),
        status,
        unbonding: format_units(U256::from(s.unbonding), 18),
        unbonding_withdrawable: s.unbonding != 0
            && u64::from(s.unbondSetId) <= active_set_id
            && now >= s.withdrawableAt,
        slashed: s.signer != Address::ZERO && root.slashed(s.signer).call().await?,
        active_set_id,
        exit_set_id: u64::from(s.exitSetId),
        withdrawable_at: s.withdrawableAt,
        vote: Some(root.voteOf(owner).call().await?).filter(|v| !v.is_zero()),
        rewards: format_units(root.rewardsOf(owner).call().await?, 18),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
