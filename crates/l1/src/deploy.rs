//! Deploying the root contracts to an L1 and registering stakers.

use crate::bindings::{Bridge, RootChain, StakingToken, artifacts, creation_code};
use crate::contracts::L1Contracts;
use crate::revert::revert_reason;
use alloy::network::{ReceiptResponse, TransactionBuilder};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolConstructor;
use alloy_primitives::{Address, B256, U256};
use eyre::{WrapErr, bail, eyre};
use koma_checkpoint::{SecretKey, pop_message};

/// The parameters of a deployment.
#[derive(Debug, Clone)]
pub struct DeployParams {
    /// The L2's chain id (signed into every checkpoint).
    pub l2_chain_id: u64,
    /// The L2's KoMaBFT chain digest (`ChainSpec::digest`): the era instance ids of
    /// equivocation evidence must commit to it.
    pub consensus_chain: B256,
    /// The first L2 block of checkpoint 1 (0: from genesis).
    pub first_block: u64,
    /// The most blocks one checkpoint may cover.
    pub max_range: u64,
    pub min_stake: U256,
    pub max_stakers: u64,
    /// Seconds between leaving the set and withdrawing.
    pub withdrawal_delay: u64,
    /// KMC (in wei) each accepted checkpoint pays its signers, from the reward pool.
    pub reward_per_checkpoint: U256,
    /// KMC the deployer puts into the reward pool at deployment.
    pub reward_pool: U256,
    /// KMC minted at deployment, to the deployer.
    pub token_supply: U256,
    /// KMC the deployer locks in the bridge as the backing of the L2 genesis allocation's
    /// circulating native balances ([`genesis_supply`]).
    pub genesis_supply: U256,
}

/// The native KMC in circulation at the L2's genesis: every allocated balance except the
/// L2 bridge's reserve. The L1 bridge must hold at least this much from the start.
pub fn genesis_supply(spec: &koma_primitives::ChainSpec) -> U256 {
    spec.alloc
        .iter()
        .filter(|(address, _)| **address != koma_primitives::bridge::L2_BRIDGE_ADDRESS)
        .fold(U256::ZERO, |sum, (_, account)| {
            sum.saturating_add(account.balance)
        })
}

impl DeployParams {
    /// The devnet's parameters for the L2 of `spec`.
    pub fn devnet(spec: &koma_primitives::ChainSpec) -> Self {
        let kmc = U256::from(10u64).pow(U256::from(18u64));
        Self {
            l2_chain_id: spec.chain_id,
            consensus_chain: spec.digest(),
            first_block: 0,
            max_range: 1024,
            min_stake: kmc,
            max_stakers: 128,
            withdrawal_delay: 3600,
            reward_per_checkpoint: kmc,
            reward_pool: U256::from(1_000_000u64) * kmc,
            token_supply: U256::from(1_000_000_000u64) * kmc,
            genesis_supply: genesis_supply(spec),
        }
    }
}

/// Sends a contract creation and returns the new contract's address.
async fn create<P: Provider>(
    provider: &P,
    what: &str,
    init: Vec<u8>,
) -> eyre::Result<(Address, u64)> {
    let tx = TransactionRequest::default().with_deploy_code(init);
    let receipt = provider
        .send_transaction(tx)
        .await
        .wrap_err_with(|| format!("cannot send the {what} deployment"))?
        .get_receipt()
        .await
        .wrap_err_with(|| format!("no receipt for the {what} deployment"))?;
    if !receipt.status() {
        bail!(
            "the {what} deployment reverted (tx {})",
            receipt.transaction_hash()
        );
    }
    let address = receipt
        .contract_address()
        .ok_or_else(|| eyre!("the {what} deployment created no contract"))?;
    let block = receipt
        .block_number()
        .ok_or_else(|| eyre!("the {what} deployment receipt has no block"))?;
    Ok((address, block))
}

/// Deploys `StakingToken` (the whole supply to `holder`) and `RootChain`. `provider`
/// must sign with a funded account.
pub async fn deploy<P: Provider>(
    provider: &P,
    holder: Address,
    params: &DeployParams,
) -> eyre::Result<L1Contracts> {
    let l1_chain_id = provider
        .get_chain_id()
        .await
        .wrap_err("cannot read the L1 chain id")?;
    let mut init = creation_code("StakingToken", artifacts::STAKING_TOKEN)?.to_vec();
    init.extend(
        StakingToken::constructorCall {
            holder,
            supply: params.token_supply,
        }
        .abi_encode(),
    );
    let (token, first) = create(provider, "StakingToken", init).await?;

    let mut init = creation_code("RootChain", artifacts::ROOT_CHAIN)?.to_vec();
    init.extend(
        RootChain::constructorCall {
            token,
            l2ChainId_: U256::from(params.l2_chain_id),
            consensusChain_: params.consensus_chain,
            maxRange_: U256::from(params.max_range),
            firstBlock: U256::from(params.first_block),
            minStake_: params.min_stake,
            maxStakers_: U256::from(params.max_stakers),
            withdrawalDelay_: U256::from(params.withdrawal_delay),
            rewardPerCheckpoint_: params.reward_per_checkpoint,
        }
        .abi_encode(),
    );
    let (root_chain, _) = create(provider, "RootChain", init).await?;

    let mut init = creation_code("Bridge", artifacts::BRIDGE)?.to_vec();
    init.extend(
        Bridge::constructorCall {
            kmc_: token,
            rootChain_: root_chain,
            l2Bridge_: koma_primitives::bridge::L2_BRIDGE_ADDRESS,
        }
        .abi_encode(),
    );
    let (bridge, _) = create(provider, "Bridge", init).await?;
    if !params.genesis_supply.is_zero() {
        lock_genesis_supply(provider, token, bridge, params.genesis_supply).await?;
    }
    let contracts = L1Contracts {
        l1_chain_id,
        l2_chain_id: params.l2_chain_id,
        root_chain,
        staking_token: token,
        bridge: Some(bridge),
        deploy_block: first,
        first_block: params.first_block,
        max_range: params.max_range,
        min_stake: params.min_stake,
        max_stakers: params.max_stakers,
        withdrawal_delay: params.withdrawal_delay,
    };
    if !params.reward_pool.is_zero() {
        fund_rewards(provider, &contracts, params.reward_pool)
            .await
            .wrap_err("funding the reward pool")?;
    }
    tracing::info!(%token, %root_chain, %bridge, l1_chain_id, "deployed the root contracts and the bridge");
    Ok(contracts)
}

/// Puts `amount` KMC of the provider's sender into the checkpoint reward pool (approved
/// here).
pub async fn fund_rewards<P: Provider>(
    provider: &P,
    contracts: &L1Contracts,
    amount: U256,
) -> eyre::Result<()> {
    approve(
        provider,
        contracts.staking_token,
        contracts.root_chain,
        amount,
    )
    .await?;
    let sent = RootChain::new(contracts.root_chain, provider)
        .fundRewards(amount)
        .send()
        .await;
    confirm(sent, "reward funding").await?;
    Ok(())
}

/// Lets `spender` take `amount` of the ERC-20 `token` from the provider's sender, and
/// waits for the receipt (at most 120 s); the approval's transaction hash.
pub async fn approve<P: Provider>(
    provider: &P,
    token: Address,
    spender: Address,
    amount: U256,
) -> eyre::Result<B256> {
    let receipt = StakingToken::new(token, provider)
        .approve(spender, amount)
        .send()
        .await
        .map_err(|e| eyre!("the L1 refused the approval: {}", revert_reason(&e)))?
        .with_timeout(Some(std::time::Duration::from_secs(120)))
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("the approval reverted (L1 tx {})", receipt.transaction_hash);
    }
    Ok(receipt.transaction_hash)
}

/// Locks `amount` KMC of the provider's sender (the deployer) in `bridge` as the backing
/// of the L2 genesis allocation.
async fn lock_genesis_supply<P: Provider>(
    provider: &P,
    token: Address,
    bridge: Address,
    amount: U256,
) -> eyre::Result<()> {
    approve(provider, token, bridge, amount)
        .await
        .wrap_err("approving the genesis supply")?;
    let receipt = Bridge::new(bridge, provider)
        .lockGenesisSupply(amount)
        .send()
        .await
        .map_err(|e| eyre!("cannot lock the genesis supply: {e}"))?
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("locking the genesis supply reverted");
    }
    Ok(())
}

/// What a staker registers.
#[derive(Debug)]
pub struct StakerRegistration<'a> {
    /// The address of its KoMaBFT key.
    pub signer: Address,
    pub bls_key: &'a SecretKey,
    /// KMC to lock (the owner must hold it).
    pub amount: U256,
}

/// Registers `owner` (the provider's signing account) as a staker: approves the tokens,
/// proves possession of the BLS key, and stakes. Returns the L1 block of the stake.
pub async fn register_staker<P: Provider>(
    provider: &P,
    owner: Address,
    contracts: &L1Contracts,
    staker: &StakerRegistration<'_>,
) -> eyre::Result<u64> {
    approve(
        provider,
        contracts.staking_token,
        contracts.root_chain,
        staker.amount,
    )
    .await?;
    let pk = staker.bls_key.public_key().to_eip2537();
    let message = pop_message(
        contracts.l1_chain_id,
        contracts.root_chain,
        owner,
        staker.signer,
        &pk,
    );
    let pop = staker.bls_key.sign_pop(&message).to_eip2537();
    let root = RootChain::new(contracts.root_chain, provider);
    let sent = root
        .stake(
            staker.amount,
            staker.signer,
            pk.to_vec().into(),
            pop.to_vec().into(),
        )
        .send()
        .await;
    confirm(sent, "stake")
        .await?
        .block_number()
        .ok_or_else(|| eyre!("the stake receipt has no block"))
}

/// Registers `producer` (the address of a block-sealing key) as a producer candidate,
/// owned by the provider's signing account, which bonds the contract's `minStake`
/// (approved here). Returns the L1 block of the registration.
pub async fn register_producer<P: Provider>(
    provider: &P,
    contracts: &L1Contracts,
    producer: Address,
) -> eyre::Result<u64> {
    let root = RootChain::new(contracts.root_chain, provider);
    let bond = root.minStake().call().await?;
    approve(
        provider,
        contracts.staking_token,
        contracts.root_chain,
        bond,
    )
    .await?;
    confirm(root.registerProducer(producer).send().await, "registration")
        .await?
        .block_number()
        .ok_or_else(|| eyre!("the registration receipt has no block"))
}

/// The provider's signing account, a staker's owner, votes for producer candidate
/// `producer` (zero: withdraws its vote). Returns the L1 block of the vote.
pub async fn vote_producer<P: Provider>(
    provider: &P,
    contracts: &L1Contracts,
    producer: Address,
) -> eyre::Result<u64> {
    let sent = RootChain::new(contracts.root_chain, provider)
        .vote(producer)
        .send()
        .await;
    confirm(sent, "vote")
        .await?
        .block_number()
        .ok_or_else(|| eyre!("the vote receipt has no block"))
}

/// Waits for the receipt of a root-contract call sent as `what` ("stake", "vote", ...):
/// a refusal carries the contract's revert reason, a reverted receipt is an error.
pub async fn confirm<N: alloy::network::Network>(
    sent: Result<alloy::providers::PendingTransactionBuilder<N>, alloy::contract::Error>,
    what: &str,
) -> eyre::Result<N::ReceiptResponse> {
    let receipt = sent
        .map_err(|e| eyre!("{what} refused: {}", revert_reason(&e)))?
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("the {what} reverted (tx {})", receipt.transaction_hash());
    }
    Ok(receipt)
}

/// Transfers `amount` KMC from the provider's sender to `to`.
pub async fn transfer_tokens<P: Provider>(
    provider: &P,
    contracts: &L1Contracts,
    to: Address,
    amount: U256,
) -> eyre::Result<()> {
    let token = StakingToken::new(contracts.staking_token, provider);
    let receipt = token
        .transfer(to, amount)
        .send()
        .await
        .wrap_err("cannot send the token transfer")?
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("the token transfer to {to} reverted");
    }
    Ok(())
}

/// Makes the pending staker set active; the contract allows it only while the active set
/// is empty (right after deployment).
pub async fn activate_genesis_set<P: Provider>(
    provider: &P,
    contracts: &L1Contracts,
) -> eyre::Result<()> {
    let root = RootChain::new(contracts.root_chain, provider);
    let receipt = root
        .activateGenesisSet()
        .send()
        .await
        .map_err(|e| {
            eyre!(
                "cannot activate the first staker set: {}",
                revert_reason(&e)
            )
        })?
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("activating the first staker set reverted");
    }
    Ok(())
}
