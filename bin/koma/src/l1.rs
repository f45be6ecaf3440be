//! `koma l1 deploy`: the root contracts on any L1, and (for development networks) the
//! devnet stakers registered as the first staker set.

use alloy::network::EthereumWallet;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, U256};
use clap::{Args, Subcommand};
use eyre::{WrapErr, bail};
use koma_l1::{DeployParams, L1Contracts, StakerRegistration};
use koma_primitives::ChainSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum L1Command {
    /// Deploy the root contracts (StakingToken, RootChain) to an L1 and write the
    /// contracts file that `koma node --l1-contracts` reads.
    Deploy(DeployArgs),
    /// Add KMC to the checkpoint reward pool of a deployment.
    FundRewards(FundRewardsArgs),
}

#[derive(Debug, Args)]
pub struct FundRewardsArgs {
    /// KMC to add (decimals allowed); the account must hold it.
    #[arg(long)]
    pub amount: String,
    #[command(flatten)]
    pub act: crate::staker::ActArgs,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// JSON-RPC URL of the L1.
    #[arg(long)]
    pub l1_rpc: String,
    /// Keystore of the funded account that deploys (and receives the KMC supply).
    /// Without it, on a development L1 (chain id 1337 or 31337) only, the first
    /// development account of the standard `test … junk` mnemonic.
    #[arg(long)]
    pub deployer_keystore: Option<PathBuf>,
    /// File holding the deployer keystore's password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// The L2 chain spec whose blocks the checkpoints cover (default: the devnet's).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Where to write the contracts file.
    #[arg(long, default_value = "l1-contracts.json")]
    pub out: PathBuf,
    /// Most L2 blocks one checkpoint may cover.
    #[arg(long, default_value_t = 1024)]
    pub max_range: u64,
    /// Most stakers in the set.
    #[arg(long, default_value_t = 128)]
    pub max_stakers: u64,
    /// Seconds between leaving the staker set and withdrawing the stake.
    #[arg(long, default_value_t = 3600)]
    pub withdrawal_delay: u64,
    /// KMC each accepted checkpoint pays the stakers that signed it (decimals allowed;
    /// 0: no rewards).
    #[arg(long, default_value = "1")]
    pub reward_per_checkpoint: String,
    /// KMC of the deployer's supply put into the reward pool at deployment (anyone may add
    /// more later: `koma l1 fund-rewards`).
    #[arg(long, default_value = "1000000")]
    pub reward_pool: String,
    /// Development networks only: register the first N devnet stakers (their public
    /// devnet keys) with 1,000 KMC each and make them the first staker set; the chain
    /// spec's genesis producers that are devnet keys become producer candidates, each
    /// voted for by the devnet staker of the same key.
    #[arg(long)]
    pub dev_stakers: Option<u32>,
}

/// Devnet key indices searched for the genesis producers' keys.
const DEV_KEYS_SEARCHED: u32 = 64;

/// Development chain ids, on which the public development keys may be used.
const DEV_CHAIN_IDS: [u64; 2] = [koma_l1::dev::DEV_L1_CHAIN_ID, 31337];

pub async fn run(cmd: L1Command) -> eyre::Result<()> {
    match cmd {
        L1Command::Deploy(args) => {
            let spec = match &args.genesis {
                Some(path) => ChainSpec::from_file(path)?,
                None => ChainSpec::devnet(),
            };
            let deployer = match (&args.deployer_keystore, &args.password_file) {
                (Some(keystore), Some(password)) => {
                    Some(crate::cli::load_keystore(keystore, password)?)
                }
                (Some(_), None) => bail!("--deployer-keystore needs --password-file"),
                _ => None,
            };
            let mut params = DeployParams::devnet(&spec);
            params.max_range = args.max_range;
            params.max_stakers = args.max_stakers;
            params.withdrawal_delay = args.withdrawal_delay;
            params.reward_per_checkpoint =
                crate::bridge::parse_amount(&args.reward_per_checkpoint, 18)?;
            params.reward_pool = crate::bridge::parse_amount(&args.reward_pool, 18)?;
            let contracts = deploy_and_register(
                &args.l1_rpc,
                deployer,
                &params,
                args.dev_stakers.unwrap_or(0),
                &spec.producers.producers,
                Duration::from_secs(10),
            )
            .await?;
            contracts.write(&args.out)?;
            print_contracts(&args.l1_rpc, &contracts, Some(&args.out));
            Ok(())
        }
        L1Command::FundRewards(args) => crate::staker::fund_rewards(args).await,
    }
}

/// Deploys the contracts with `deployer` (or, on a development L1, the first development
/// account) and registers the first `dev_stakers` devnet stakers as the first set, and
/// those of the `producers` (the chain's genesis producers) that are devnet keys as
/// producer candidates, each voted for by the devnet staker of its key.
/// Waits up to `wait` for the L1 to answer.
pub async fn deploy_and_register(
    l1_rpc: &str,
    deployer: Option<PrivateKeySigner>,
    params: &DeployParams,
    dev_stakers: u32,
    producers: &[Address],
    wait: Duration,
) -> eyre::Result<L1Contracts> {
    let url: reqwest::Url = l1_rpc
        .parse()
        .wrap_err_with(|| format!("invalid L1 URL {l1_rpc}"))?;
    let chain_id = wait_for_l1(&url, wait).await?;
    let dev = DEV_CHAIN_IDS.contains(&chain_id);
    let deployer = match deployer {
        Some(d) => d,
        None if dev => koma_primitives::dev::dev_accounts(1).remove(0).1,
        None => bail!(
            "the L1 (chain id {chain_id}) is not a development chain: pass --deployer-keystore and --password-file"
        ),
    };
    if dev_stakers > 0 && !dev {
        bail!("--dev-stakers uses public keys: only on a development L1 (chain id 1337 or 31337)");
    }
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer.clone()))
        .connect_http(url.clone());
    let contracts = koma_l1::deploy(&provider, deployer.address(), params).await?;

    let amount = koma_l1::dev::dev_stake();
    // the genesis producers that are devnet keys, by key index
    let candidates: Vec<u32> = if dev_stakers > 0 {
        (0..DEV_KEYS_SEARCHED)
            .filter(|i| producers.contains(&koma_primitives::dev::dev_producer_key(*i).address()))
            .collect()
    } else {
        Vec::new()
    };
    let bond = params.min_stake;
    let last = candidates.iter().copied().max().map_or(0, |i| i + 1);
    for i in 0..dev_stakers.max(last) {
        let staker = i < dev_stakers;
        let candidate = candidates.contains(&i);
        if !staker && !candidate {
            continue;
        }
        let owner = koma_primitives::dev::dev_producer_key(i);
        let address = owner.address();
        // gas money on an L1 that did not fund the devnet keys at genesis (anvil)
        let balance = provider.get_balance(address).await?;
        let gas_money = U256::from(10u64).pow(U256::from(18u64));
        if balance < gas_money {
            send_eth(&provider, address, gas_money).await?;
        }
        let tokens = if staker { amount } else { U256::ZERO };
        let tokens = if candidate { tokens + bond } else { tokens };
        koma_l1::transfer_tokens(&provider, &contracts, address, tokens).await?;
        let owner_provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(owner))
            .connect_http(url.clone());
        if candidate {
            koma_l1::register_producer(&owner_provider, &contracts, address)
                .await
                .wrap_err_with(|| format!("cannot register devnet producer {i}"))?;
            tracing::info!(producer = i, %address, "registered a devnet producer candidate on L1");
        }
        if !staker {
            continue;
        }
        let bls = koma_l1::dev::dev_bls_key(i);
        koma_l1::register_staker(
            &owner_provider,
            address,
            &contracts,
            &StakerRegistration {
                signer: address,
                bls_key: &bls,
                amount,
            },
        )
        .await
        .wrap_err_with(|| format!("cannot register devnet staker {i}"))?;
        tracing::info!(staker = i, %address, "registered a devnet staker on L1");
        if candidate {
            koma_l1::vote_producer(&owner_provider, &contracts, address)
                .await
                .wrap_err_with(|| format!("devnet staker {i} cannot vote"))?;
        }
    }
    if dev_stakers > 0 {
        koma_l1::activate_genesis_set(&provider, &contracts).await?;
    }
    Ok(contracts)
}

async fn send_eth<P: Provider>(provider: &P, to: Address, value: U256) -> eyre::Result<()> {
    let tx = TransactionRequest::default().to(to).value(value);
    let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
    if !receipt.status() {
        bail!("sending gas money to {to} failed");
    }
    Ok(())
}

/// The L1's chain id, once it answers (retrying for up to `wait`).
async fn wait_for_l1(url: &reqwest::Url, wait: Duration) -> eyre::Result<u64> {
    let provider = ProviderBuilder::new().connect_http(url.clone());
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match provider.get_chain_id().await {
            Ok(id) => return Ok(id),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e).wrap_err_with(|| format!("the L1 at {url} does not answer"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub fn print_contracts(l1_rpc: &str, contracts: &L1Contracts, file: Option<&Path>) {
    println!(
        "L1 RPC:       {l1_rpc} (chain id {})",
        contracts.l1_chain_id
    );
    println!("RootChain:    {}", contracts.root_chain);
    println!("StakingToken: {}", contracts.staking_token);
    if let Some(bridge) = contracts.bridge {
        println!("Bridge:       {bridge}");
    }
    if let Some(file) = file {
        println!("Contracts:    {}", file.display());
    }
}
