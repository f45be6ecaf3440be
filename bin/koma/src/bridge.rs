//! `koma bridge`: deposit from L1, withdraw from L2, exit on L1, and follow either
//! (docs/bridge.md).
//!
//! By default it acts for the devnet: the first development account, the devnet's L2 RPC
//! and the contracts file `koma devnet` writes.

use alloy::network::EthereumWallet;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, U256};
use clap::{Args, Subcommand};
use eyre::{WrapErr, bail, eyre};
use koma_l1::L1Contracts;
use koma_l1::bindings::{Bridge, L2Bridge, StakingToken};
use koma_primitives::bridge::{KMC_TOKEN, L2_BRIDGE_ADDRESS};
use koma_rpc::WithdrawalProof;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// Deposit KMC, ETH or an ERC-20 from L1 to L2 and wait until it is spendable there.
    Deposit(DepositArgs),
    /// Withdraw KMC (native), or burn a bridged ETH/ERC-20 child token, from L2 to an L1
    /// address.
    Withdraw(WithdrawArgs),
    /// Exit a withdrawal on L1 once a checkpoint covers it (waits for the checkpoint).
    Exit(ExitArgs),
    /// Where a withdrawal (--tx) or a deposit (--deposit) stands.
    Status(StatusArgs),
    /// Check, token by token, that what the L1 bridge holds is what the L2 can claim
    /// (issued on L2 + pending deposits + pending exits), to the wei.
    Audit(crate::audit::AuditArgs),
}

#[derive(Debug, Args)]
pub struct Account {
    /// Index of the development account to act with (the standard `test … junk`
    /// mnemonic); ignored with --keystore.
    #[arg(long, default_value_t = 0)]
    pub account: u32,
    /// Keystore of the account to act with instead of a development account.
    #[arg(long, requires = "password_file")]
    pub keystore: Option<PathBuf>,
    /// File holding the keystore's password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

impl Account {
    pub fn signer(&self) -> eyre::Result<PrivateKeySigner> {
        match (&self.keystore, &self.password_file) {
            (Some(keystore), Some(password)) => crate::cli::load_keystore(keystore, password),
            (Some(_), None) => bail!("--keystore needs --password-file"),
            _ => koma_primitives::dev::dev_accounts(self.account.saturating_add(1))
                .pop()
                .map(|(_, key)| key)
                .ok_or_else(|| eyre!("no development account {}", self.account)),
        }
    }
}

#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// Amount, in the token's units (decimals allowed: 1.5).
    #[arg(long)]
    pub amount: String,
    /// What to withdraw: KMC, ETH, or an ERC-20's L1 address (its child token on L2 is
    /// burned).
    #[arg(long, default_value = "KMC")]
    pub token: String,
    /// The L1 address to pay (default: the sending account's own address).
    #[arg(long)]
    pub to: Option<Address>,
    /// JSON-RPC URL of a KOMA node.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub l2_rpc: String,
    #[command(flatten)]
    pub account: Account,
}

#[derive(Debug, Args)]
pub struct ExitArgs {
    /// The L2 transaction that withdrew.
    #[arg(long)]
    pub tx: B256,
    /// Which of the transaction's withdrawals (if it made several).
    #[arg(long, default_value_t = 0)]
    pub index: u64,
    /// JSON-RPC URL of a KOMA node that follows the L1.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub l2_rpc: String,
    #[command(flatten)]
    pub l1: L1Bridge,
    /// Give up waiting for a checkpoint after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    #[command(flatten)]
    pub account: Account,
}

#[derive(Debug, Args)]
pub struct DepositArgs {
    /// Amount, in the token's units (decimals allowed: 1.5).
    #[arg(long)]
    pub amount: String,
    /// What to deposit: KMC, ETH, or an ERC-20's L1 address.
    #[arg(long, default_value = "KMC")]
    pub token: String,
    /// The L2 address to credit (default: the depositing account's own address).
    #[arg(long)]
    pub to: Option<Address>,
    /// JSON-RPC URL of a KOMA node that follows the L1.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub l2_rpc: String,
    #[command(flatten)]
    pub l1: L1Bridge,
    /// Give up waiting for the deposit on L2 after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    #[command(flatten)]
    pub account: Account,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["tx", "deposit"])))]
pub struct StatusArgs {
    /// The L2 transaction that withdrew.
    #[arg(long)]
    pub tx: Option<B256>,
    /// The id of a deposit (`koma bridge deposit` prints it).
    #[arg(long)]
    pub deposit: Option<u64>,
    /// Which of the transaction's withdrawals (if it made several).
    #[arg(long, default_value_t = 0)]
    pub index: u64,
    /// JSON-RPC URL of a KOMA node that follows the L1.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub l2_rpc: String,
    #[command(flatten)]
    pub l1: L1Bridge,
}

/// The L1 and where the bridge is on it.
#[derive(Debug, Args)]
pub struct L1Bridge {
    /// JSON-RPC URL of the L1 (default: the devnet's L1).
    #[arg(long, default_value = "http://127.0.0.1:8645")]
    pub l1_rpc: String,
    /// The contracts file of the L1 deployment (`koma devnet` prints its path).
    #[arg(long, required_unless_present = "bridge")]
    pub l1_contracts: Option<PathBuf>,
    /// The bridge's address on L1, instead of a contracts file.
    #[arg(long)]
    pub bridge: Option<Address>,
}

impl L1Bridge {
    pub fn address(&self) -> eyre::Result<Address> {
        match (self.bridge, &self.l1_contracts) {
            (Some(address), _) => Ok(address),
            (None, Some(file)) => L1Contracts::from_file(file)?.bridge.ok_or_else(|| {
                eyre!(
                    "{} names no bridge (deployed before the bridge existed)",
                    file.display()
                )
            }),
            (None, None) => bail!("pass --l1-contracts or --bridge"),
        }
    }

    /// The L1 block the bridge was deployed in (0 when only --bridge is given).
    pub fn deploy_block(&self) -> eyre::Result<u64> {
        match (self.bridge, &self.l1_contracts) {
            (None, Some(file)) => Ok(L1Contracts::from_file(file)?.deploy_block),
            _ => Ok(0),
        }
    }
}

pub async fn run(cmd: BridgeCommand) -> eyre::Result<()> {
    match cmd {
        BridgeCommand::Deposit(args) => deposit(args).await,
        BridgeCommand::Withdraw(args) => withdraw(args).await,
        BridgeCommand::Exit(args) => exit(args).await,
        BridgeCommand::Status(args) => status(args).await,
        BridgeCommand::Audit(args) => crate::audit::run(args).await,
    }
}

/// An L1 token as `--token` names it.
#[derive(Debug, Clone, Copy)]
enum DepositToken {
    Kmc,
    Ether,
    Erc20(Address),
}

fn deposit_token(text: &str) -> eyre::Result<DepositToken> {
    match text.to_ascii_uppercase().as_str() {
        "KMC" => Ok(DepositToken::Kmc),
        "ETH" => Ok(DepositToken::Ether),
        _ => text
            .parse()
            .map(DepositToken::Erc20)
            .map_err(|_| eyre!("invalid token {text:?}: KMC, ETH or an ERC-20's L1 address")),
    }
}

async fn deposit_of(l2: &impl Provider, id: u64) -> eyre::Result<serde_json::Value> {
    let status: Option<serde_json::Value> = l2
        .raw_request("koma_getDeposit".into(), (id,))
        .await
        .wrap_err("koma_getDeposit failed")?;
    status.ok_or_else(|| eyre!("no deposit {id}"))
}

fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v.get(name).and_then(|f| f.as_str()).unwrap_or("?")
}

/// A hex quantity field in decimal ("?" if absent).
fn number(v: &serde_json::Value, name: &str) -> String {
    let text = field(v, name);
    u64::from_str_radix(text.trim_start_matches("0x"), 16)
        .map_or_else(|_| text.to_string(), |n| n.to_string())
}

fn describe_deposit(d: &serde_json::Value) -> String {
    let id = number(d, "id");
    match field(d, "status") {
        "applied" => format!(
            "deposit {id}: applied in L2 block {} (tx {}), {}",
            number(d, "blockNumber"),
            field(d, "transactionHash"),
            d.get("finality")
                .and_then(|f| f.get("status"))
                .and_then(|s| s.as_str())
                .unwrap_or("included")
        ),
        "confirmed" => format!(
            "deposit {id}: confirmed on L1 (block {}), waiting for an L2 block to announce it",
            number(d, "l1BlockNumber")
        ),
        "announced" => {
            format!("deposit {id}: announced on L2, waiting for the stakers to agree on it")
        }
        "agreed" => {
            format!("deposit {id}: agreed by the stakers, waiting for an L2 block to apply it")
        }
        _ => format!("deposit {id}: not confirmed on L1 yet as the L2 node reads it"),
    }
}

async fn deposit(args: DepositArgs) -> eyre::Result<()> {
    let bridge_at = args.l1.address()?;
    let token = deposit_token(&args.token)?;
    let signer = args.account.signer()?;
    let from = signer.address();
    let to = args.to.unwrap_or(from);
    let l1 = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url(&args.l1.l1_rpc)?);
    let l2 = ProviderBuilder::new().connect_http(url(&args.l2_rpc)?);
    let bridge = Bridge::new(bridge_at, &l1);
    let call = match token {
        DepositToken::Ether => {
            let amount = parse_amount(&args.amount, 18)?;
            bridge
                .depositEtherFor(to)
                .value(amount)
                .into_transaction_request()
        }
        DepositToken::Kmc | DepositToken::Erc20(_) => {
            let address = match token {
                DepositToken::Erc20(a) => a,
                _ => bridge
                    .kmc()
                    .call()
                    .await
                    .wrap_err("cannot read the bridge on L1")?,
            };
            let erc20 = StakingToken::new(address, &l1);
            let decimals = erc20
                .decimals()
                .call()
                .await
                .wrap_err_with(|| format!("{address} is not an ERC-20 on L1"))?;
            let amount = parse_amount(&args.amount, decimals)?;
            let balance = erc20.balanceOf(from).call().await?;
            if balance < amount {
                bail!(
                    "{from} holds {} of {address} on L1, less than {}",
                    format_units(balance, decimals),
                    args.amount
                );
            }
            if erc20.allowance(from, bridge_at).call().await? < amount {
                let tx = koma_l1::approve(&l1, address, bridge_at, amount).await?;
                println!("approved the bridge to take {} (L1 tx {tx})", args.amount);
            }
            bridge
                .depositERC20For(address, to, amount)
                .into_transaction_request()
        }
    };
    let receipt = l1
        .send_transaction(call)
        .await
        .map_err(|e| eyre!("the L1 refused the deposit: {e}"))?
        .with_timeout(Some(Duration::from_secs(120)))
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("the deposit reverted (L1 tx {})", receipt.transaction_hash);
    }
    let id = receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == bridge_at)
        .find_map(|l| l.log_decode::<Bridge::Deposited>().ok())
        .map(|l| l.inner.data.id)
        .ok_or_else(|| eyre!("the deposit's L1 transaction emitted no Deposited event"))?;
    let id = u64::try_from(id).map_err(|_| eyre!("deposit id {id} is above u64"))?;
    let included = receipt.block_number.unwrap_or_default();
    println!(
        "deposit {id} sent: {} {} from {from} to {to} on L2 (L1 tx {}, block {included})",
        args.amount, args.token, receipt.transaction_hash
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let mut said = String::new();
    loop {
        let d = deposit_of(&l2, id).await?;
        let line = match field(&d, "status") {
            "applied" => {
                println!("{}", describe_deposit(&d));
                return Ok(());
            }
            "confirmed" | "announced" | "agreed" => describe_deposit(&d),
            _ => {
                let head = l1.get_block_number().await.unwrap_or(included);
                format!(
                    "waiting for L1 confirmations: {} so far",
                    head.saturating_sub(included)
                )
            }
        };
        if line != said {
            println!("{line}");
            said = line;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("deposit {id} is not applied on L2 after {} s", args.timeout);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `amount` in units with `decimals` decimals ("1.5" KMC is 1.5e18 wei).
pub fn parse_amount(amount: &str, decimals: u8) -> eyre::Result<U256> {
    let bad = || eyre!("invalid amount {amount:?}: a decimal number such as 1.5");
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    if fraction.len() > usize::from(decimals) {
        bail!("{amount} has more than {decimals} decimals");
    }
    let digits = format!("{whole}{fraction:0<width$}", width = usize::from(decimals));
    let value = U256::from_str_radix(&digits, 10).map_err(|_| bad())?;
    if value.is_zero() {
        bail!("the amount must be above zero");
    }
    Ok(value)
}

pub fn url(rpc: &str) -> eyre::Result<reqwest::Url> {
    rpc.parse().wrap_err_with(|| format!("invalid URL {rpc}"))
}

async fn withdraw(args: WithdrawArgs) -> eyre::Result<()> {
    let token = deposit_token(&args.token)?;
    let signer = args.account.signer()?;
    let from = signer.address();
    let to = args.to.unwrap_or(from);
    let l2 = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url(&args.l2_rpc)?);
    let bridge = L2Bridge::new(L2_BRIDGE_ADDRESS, &l2);
    let (call, amount, token_id) = match token {
        DepositToken::Kmc => {
            let amount = parse_amount(&args.amount, 18)?;
            (
                bridge.withdraw(to).value(amount).into_transaction_request(),
                amount,
                KMC_TOKEN,
            )
        }
        DepositToken::Ether | DepositToken::Erc20(_) => {
            let root = match token {
                DepositToken::Erc20(a) => a,
                _ => koma_primitives::bridge::ETH_TOKEN,
            };
            let child = bridge
                .childOf(root)
                .call()
                .await
                .wrap_err("cannot read the L2 bridge")?;
            if child == Address::ZERO {
                bail!("{root} has never been deposited: it has no child token on L2");
            }
            let erc20 = StakingToken::new(child, &l2);
            let decimals = erc20.decimals().call().await?;
            let amount = parse_amount(&args.amount, decimals)?;
            let balance = erc20.balanceOf(from).call().await?;
            if balance < amount {
                bail!(
                    "{from} holds {} of child token {child} on L2, less than {}",
                    format_units(balance, decimals),
                    args.amount
                );
            }
            (
                bridge
                    .withdrawToken(child, to, amount)
                    .into_transaction_request(),
                amount,
                root,
            )
        }
    };
    let pending = l2
        .send_transaction(call)
        .await
        .wrap_err("the L2 node refused the withdrawal")?;
    let hash = *pending.tx_hash();
    println!("withdrawal sent: {hash}");
    let receipt = pending
        .with_timeout(Some(Duration::from_secs(60)))
        .get_receipt()
        .await
        .wrap_err("no receipt within 60 s")?;
    if !receipt.status() {
        bail!("the withdrawal reverted (tx {hash})");
    }
    let block = receipt.block_number.unwrap_or_default();
    println!(
        "included in L2 block {block}: {} from {from} to {to} on L1",
        show(amount, token_id)
    );
    println!("exit it once a checkpoint covers block {block}: koma bridge exit --tx {hash}");
    Ok(())
}

async fn proof_of(
    l2: &impl Provider,
    tx: B256,
    index: u64,
) -> eyre::Result<Option<WithdrawalProof>> {
    l2.raw_request("koma_getWithdrawalProof".into(), (tx, index))
        .await
        .wrap_err("koma_getWithdrawalProof failed")
}

fn exit_proof(p: &WithdrawalProof) -> eyre::Result<Bridge::ExitProof> {
    let (Some(checkpoint), Some(block_index), Some(block_proof)) =
        (p.checkpoint, p.block_index, p.block_proof.clone())
    else {
        bail!("block {} is not checkpointed yet", p.block_leaf.number);
    };
    let w = &p.withdrawal;
    let leaf = &p.block_leaf;
    Ok(Bridge::ExitProof {
        withdrawal: Bridge::Withdrawal {
            nonce: w.nonce,
            sender: w.sender,
            recipient: w.recipient,
            token: w.token,
            amount: w.amount,
        },
        withdrawalIndex: U256::from(p.withdrawal_index),
        withdrawalProof: p.withdrawal_proof.clone(),
        checkpoint: U256::from(checkpoint),
        blockLeaf: Bridge::BlockLeaf {
            number: U256::from(leaf.number),
            timestamp: U256::from(leaf.timestamp),
            blockHash: leaf.block_hash,
            receiptsRoot: leaf.receipts_root,
            withdrawalsRoot: leaf.withdrawals_root,
        },
        blockIndex: U256::from(block_index),
        blockProof: block_proof,
    })
}

async fn exit(args: ExitArgs) -> eyre::Result<()> {
    let bridge_at = args.l1.address()?;
    let l2 = ProviderBuilder::new().connect_http(url(&args.l2_rpc)?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let mut said = None;
    let proof = loop {
        let Some(p) = proof_of(&l2, args.tx, args.index).await? else {
            bail!("transaction {} is not in the L2 chain", args.tx);
        };
        if p.checkpoint.is_some() {
            break p;
        }
        if said != Some(p.block_leaf.number) {
            println!(
                "waiting for a checkpoint covering block {}",
                p.block_leaf.number
            );
            said = Some(p.block_leaf.number);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "no checkpoint covers block {} after {} s",
                p.block_leaf.number,
                args.timeout
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let signer = args.account.signer()?;
    let l1 = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url(&args.l1.l1_rpc)?);
    let bridge = Bridge::new(bridge_at, &l1);
    let nonce = proof.withdrawal.nonce;
    if bridge.isExited(nonce).call().await? {
        println!("withdrawal {nonce} has already exited");
        return Ok(());
    }
    let receipt = bridge
        .exit(exit_proof(&proof)?)
        .send()
        .await
        .map_err(|e| eyre!("the exit was refused: {}", koma_l1::revert_reason(&e)))?
        .with_timeout(Some(Duration::from_secs(120)))
        .get_receipt()
        .await?;
    if !receipt.status() {
        bail!("the exit reverted (L1 tx {})", receipt.transaction_hash);
    }
    println!(
        "exited: withdrawal {nonce}, {} paid to {} (L1 tx {}, gas {})",
        show(proof.withdrawal.amount, proof.withdrawal.token),
        proof.withdrawal.recipient,
        receipt.transaction_hash,
        receipt.gas_used
    );
    Ok(())
}

/// `amount` of L1 token id `token`, in human units where the decimals are known.
fn show(amount: U256, token: Address) -> String {
    let name = if token == KMC_TOKEN {
        "KMC"
    } else if token == koma_primitives::bridge::ETH_TOKEN {
        "ETH"
    } else {
        return format!("{amount} base units of {token}");
    };
    format!("{} {name}", format_units(amount, 18))
}

/// `amount` with `decimals` decimals, trailing zeros trimmed ("2.5").
pub fn format_units(amount: U256, decimals: u8) -> String {
    let digits = amount.to_string();
    let width = usize::from(decimals);
    let padded = format!("{digits:0>w$}", w = width + 1);
    let (whole, fraction) = padded.split_at(padded.len() - width);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    }
}

async fn status(args: StatusArgs) -> eyre::Result<()> {
    let l2 = ProviderBuilder::new().connect_http(url(&args.l2_rpc)?);
    let tx = match (args.tx, args.deposit) {
        (Some(tx), _) => tx,
        (None, Some(id)) => {
            let d = deposit_of(&l2, id).await?;
            println!("{}", describe_deposit(&d));
            return Ok(());
        }
        (None, None) => bail!("pass --tx or --deposit"),
    };
    let Some(p) = proof_of(&l2, tx, args.index).await? else {
        bail!("transaction {tx} is not in the L2 chain");
    };
    let w = &p.withdrawal;
    println!(
        "withdrawal {}: {} from {} to {}",
        w.nonce,
        show(w.amount, w.token),
        w.sender,
        w.recipient
    );
    println!("included in L2 block {}", p.block_leaf.number);
    let Some(checkpoint) = p.checkpoint else {
        println!(
            "waiting for a checkpoint covering block {}",
            p.block_leaf.number
        );
        return Ok(());
    };
    println!("checkpointed in checkpoint {checkpoint}");
    let l1 = ProviderBuilder::new().connect_http(url(&args.l1.l1_rpc)?);
    let bridge = Bridge::new(args.l1.address()?, &l1);
    if bridge.isExited(w.nonce).call().await? {
        println!("exited on L1");
    } else {
        println!("ready to exit: koma bridge exit --tx {tx}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_human_units() {
        let kmc = U256::from(10u64).pow(U256::from(18u64));
        assert_eq!(parse_amount("1", 18).unwrap(), kmc);
        assert_eq!(
            parse_amount("1.5", 18).unwrap(),
            kmc * U256::from(3) / U256::from(2)
        );
        assert_eq!(parse_amount(".25", 2).unwrap(), U256::from(25));
        assert_eq!(
            parse_amount("0.000000000000000001", 18).unwrap(),
            U256::from(1)
        );
        for bad in ["", ".", "1.2.3", "-1", "1e18", "abc", "0", "0.0"] {
            assert!(parse_amount(bad, 18).is_err(), "{bad:?}");
        }
        assert!(
            parse_amount("0.001", 2).is_err(),
            "more decimals than the token has"
        );
    }

    #[test]
    fn tokens_by_symbol_or_address() {
        assert!(matches!(deposit_token("kmc"), Ok(DepositToken::Kmc)));
        assert!(matches!(deposit_token("ETH"), Ok(DepositToken::Ether)));
        let a = Address::with_last_byte(7);
        assert!(matches!(deposit_token(&a.to_string()), Ok(DepositToken::Erc20(x)) if x == a));
        assert!(deposit_token("USDC").is_err());
    }

    #[test]
    fn amounts_shown_in_human_units() {
        let kmc = U256::from(10u64).pow(U256::from(18u64));
        assert_eq!(format_units(kmc * U256::from(5) / U256::from(2), 18), "2.5");
        assert_eq!(format_units(U256::from(1), 18), "0.000000000000000001");
        assert_eq!(format_units(U256::ZERO, 18), "0");
        assert_eq!(format_units(U256::from(1234), 0), "1234");
        assert_eq!(show(kmc, KMC_TOKEN), "1 KMC");
        for text in ["1", "1.5", "0.000000000000000001", "123456.789"] {
            assert_eq!(format_units(parse_amount(text, 18).unwrap(), 18), text);
        }
    }
}
