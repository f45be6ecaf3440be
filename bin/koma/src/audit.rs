//! `koma bridge audit`: reads the L1 bridge from the L1 and the L2 bridge from an L2
//! node, independently, and checks for every bridged token that what L1 holds is what
//! L2 can claim ([`koma_l1::audit`], docs/bridge.md).

use crate::bridge::{L1Bridge, format_units, url};
use alloy::eips::BlockNumberOrTag;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, Log};
use alloy_primitives::{Address, B256, U256};
use clap::Args;
use eyre::{WrapErr, eyre};
use koma_l1::audit::{Audit, L1Books, L1DepositEntry, L1Exit, L2Books, audit};
use koma_l1::bindings::{Bridge, L2Bridge, StakingToken};
use koma_primitives::ChainSpec;
use koma_primitives::bridge::{
    Deposit, ETH_TOKEN, KMC_TOKEN, L2_BRIDGE_ADDRESS, next_state_hash, withdrawal_of,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Blocks per `eth_getLogs` request (a KOMA node answers up to 10,000 by default).
const LOG_CHUNK: u64 = 5_000;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The L2 block to audit: a number, or finalized, safe or latest.
    #[arg(long, default_value = "finalized")]
    pub block: String,
    /// The L2's chain spec (genesis) file, for the native KMC circulating at genesis
    /// (default: the devnet's).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Print the audit as JSON (amounts in wei).
    #[arg(long)]
    pub json: bool,
    /// JSON-RPC URL of a KOMA node.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub l2_rpc: String,
    #[command(flatten)]
    pub l1: L1Bridge,
}

/// Runs the audit; an error when the books do not balance.
pub async fn run(args: AuditArgs) -> eyre::Result<()> {
    let spec = match &args.genesis {
        Some(path) => ChainSpec::from_file(path)?,
        None => ChainSpec::devnet(),
    };
    let l1 = ProviderBuilder::new().connect_http(url(&args.l1.l1_rpc)?);
    let l2 = ProviderBuilder::new().connect_http(url(&args.l2_rpc)?);
    let block: BlockNumberOrTag = match args.block.parse::<u64>() {
        Ok(n) => BlockNumberOrTag::Number(n),
        Err(_) => args
            .block
            .parse()
            .map_err(|_| eyre!("--block takes a number, finalized, safe or latest"))?,
    };
    let header = l2
        .get_block_by_number(block)
        .await
        .wrap_err("cannot read the L2")?
        .ok_or_else(|| match block {
            BlockNumberOrTag::Number(n) => eyre!("the L2 has no block {n} yet"),
            tag => eyre!("the L2 has no {tag} block yet"),
        })?;
    let (l2_books, mut problems) = read_l2(&l2, header.header.number, &spec).await?;
    let (l1_books, l1_problems, names) =
        read_l1(&l1, args.l1.address()?, args.l1.deploy_block()?).await?;
    problems.extend(l1_problems);

    let mut report = audit(&l1_books, &l2_books);
    if !problems.is_empty() {
        report.balanced = false;
        report.problems.splice(0..0, problems);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report, &names);
    }
    if report.balanced {
        Ok(())
    } else if report.problems.is_empty() && report.tokens.iter().all(|t| !t.short()) {
        // L1 holds more than L2 can claim: nothing is at risk
        Ok(())
    } else {
        Err(eyre!("the bridge's books do not balance"))
    }
}

/// `eth_getLogs` of `address` over `from..=to`, in chunks.
async fn logs(p: &impl Provider, address: Address, from: u64, to: u64) -> eyre::Result<Vec<Log>> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = start.saturating_add(LOG_CHUNK - 1).min(to);
        let filter = Filter::new()
            .address(address)
            .from_block(start)
            .to_block(end);
        out.extend(p.get_logs(&filter).await?);
        start = end.saturating_add(1);
    }
    Ok(out)
}

async fn read_l2(
    l2: &impl Provider,
    at: u64,
    spec: &ChainSpec,
) -> eyre::Result<(L2Books, Vec<String>)> {
    let mut problems = Vec::new();
    let bridge = L2Bridge::new(L2_BRIDGE_ADDRESS, l2);
    let mut books = L2Books {
        block: at,
        last_state_id: bridge
            .lastStateId()
            .block(at.into())
            .call()
            .await?
            .try_into()
            .map_err(|_| eyre!("lastStateId does not fit 64 bits"))?,
        last_state_hash: bridge.lastStateHash().block(at.into()).call().await?,
        withdrawal_count: bridge.withdrawalCount().block(at.into()).call().await?,
        ..L2Books::default()
    };
    // Refused native deposits stay in the bridge's balance until claimed.
    let mut claimable = U256::ZERO;
    let mut released = U256::ZERO;
    let mut children = BTreeMap::new();
    for log in logs(l2, L2_BRIDGE_ADDRESS, 0, at).await? {
        if let Some(w) = withdrawal_of(&log.inner) {
            books.withdrawals.push(w);
        } else if let Ok(e) = log.log_decode::<L2Bridge::DepositApplied>() {
            if !e.inner.credited {
                claimable = claimable.saturating_add(e.inner.amount);
            }
        } else if let Ok(e) = log.log_decode::<L2Bridge::Claimed>() {
            released = released.saturating_add(e.inner.amount);
        } else if let Ok(e) = log.log_decode::<L2Bridge::ChildTokenCreated>() {
            children.insert(e.inner.rootToken, e.inner.child);
        }
    }
    for (root, child) in children {
        let supply = StakingToken::new(child, l2)
            .totalSupply()
            .block(at.into())
            .call()
            .await?;
        books.child_supply.insert(root, supply);
    }
    let reserve_at_genesis = l2.get_balance(L2_BRIDGE_ADDRESS).number(0).await?;
    let in_spec = spec
        .alloc
        .get(&L2_BRIDGE_ADDRESS)
        .map(|a| a.balance)
        .unwrap_or_default();
    if reserve_at_genesis != in_spec {
        problems.push(format!(
            "the genesis file gives the L2 bridge {in_spec} but the chain's block 0 has {reserve_at_genesis}: pass this chain's --genesis"
        ));
    }
    let reserve = l2
        .get_balance(L2_BRIDGE_ADDRESS)
        .number(at)
        .await?
        .saturating_sub(claimable.saturating_sub(released));
    books.native_issued = koma_l1::genesis_supply(spec)
        .saturating_add(reserve_at_genesis)
        .saturating_sub(reserve);
    Ok((books, problems))
}

/// Display names and decimals of the tokens, by L1 token id.
type Names = BTreeMap<Address, (String, u8)>;

async fn read_l1(
    l1: &impl Provider,
    at_bridge: Address,
    deploy_block: u64,
) -> eyre::Result<(L1Books, Vec<String>, Names)> {
    let mut problems = Vec::new();
    let at = l1.get_block_number().await.wrap_err("cannot read the L1")?;
    let bridge = Bridge::new(at_bridge, l1);
    let kmc = bridge
        .kmc()
        .block(at.into())
        .call()
        .await
        .wrap_err_with(|| format!("no bridge at {at_bridge} on L1"))?;
    let mut books = L1Books {
        block: at,
        ..L1Books::default()
    };
    let mut hash = B256::ZERO;
    for log in logs(l1, at_bridge, deploy_block, at).await? {
        if let Ok(e) = log.log_decode::<Bridge::StateSynced>() {
            let id: u64 = e.inner.id.try_into().unwrap_or(u64::MAX);
            let d = Deposit::decode(&e.inner.data.data)?;
            hash = next_state_hash(hash, id, e.inner.receiver, &e.inner.data.data);
            books.deposits.push(L1DepositEntry {
                id,
                token: d.token,
                amount: d.amount,
                state_hash: hash,
            });
        } else if let Ok(e) = log.log_decode::<Bridge::Exited>() {
            books.exits.push(L1Exit {
                nonce: e.inner.nonce,
                recipient: e.inner.recipient,
                token: e.inner.token,
                amount: e.inner.amount,
            });
        }
    }
    let counter = bridge.stateCounter().block(at.into()).call().await?;
    let state_hash = bridge.stateHash().block(at.into()).call().await?;
    if (counter, state_hash) != (U256::from(books.deposits.len()), hash) {
        problems.push(format!(
            "the L1 bridge counts {counter} state messages (hash {state_hash}) but {} were read (hash {hash})",
            books.deposits.len()
        ));
    }

    let mut names = Names::new();
    names.insert(KMC_TOKEN, ("KMC".into(), 18));
    names.insert(ETH_TOKEN, ("ETH".into(), 18));
    let mut tokens: Vec<Address> = vec![KMC_TOKEN, ETH_TOKEN];
    for d in &books.deposits {
        if !tokens.contains(&d.token) {
            tokens.push(d.token);
        }
    }
    for token in tokens {
        let locked = bridge.locked(token).block(at.into()).call().await?;
        let held = if token == ETH_TOKEN {
            l1.get_balance(at_bridge).number(at).await?
        } else {
            let address = if token == KMC_TOKEN { kmc } else { token };
            let erc20 = StakingToken::new(address, l1);
            if token != KMC_TOKEN {
                let symbol = erc20
                    .symbol()
                    .call()
                    .await
                    .unwrap_or_else(|_| token.to_string());
                let decimals = erc20.decimals().call().await.unwrap_or(18);
                names.insert(token, (symbol, decimals));
            }
            erc20.balanceOf(at_bridge).block(at.into()).call().await?
        };
        books.locked.insert(token, locked);
        books.held.insert(token, held);
    }
    Ok((books, problems, names))
}

fn print(report: &Audit, names: &Names) {
    println!(
        "bridge audit of L2 block {} against L1 block {}",
        report.l2_block, report.l1_block
    );
    println!(
        "deposits: {} on L1, {} applied on L2; withdrawals: {} on L2, {} exited on L1",
        report.deposits_on_l1, report.deposits_applied, report.withdrawals, report.exited
    );
    for t in &report.tokens {
        let (name, decimals) = names
            .get(&t.token)
            .cloned()
            .unwrap_or_else(|| (t.token.to_string(), 18));
        let amount = |a: U256| format_units(a, decimals);
        let verdict = if t.balanced() {
            "balanced".to_string()
        } else if t.short() {
            format!("SHORT by {} base units", t.surplus.trim_start_matches('-'))
        } else {
            format!("L1 holds {} base units more than L2 can claim", t.surplus)
        };
        println!("{name} ({}): {verdict}", t.token);
        println!(
            "  locked on L1 {} (the bridge holds {})",
            amount(t.locked),
            amount(t.held)
        );
        println!(
            "  issued on L2 {} + pending deposits {} + pending exits {} - exited ahead {}",
            amount(t.issued),
            amount(t.pending_deposits),
            amount(t.pending_exits),
            amount(t.exited_ahead)
        );
    }
    for p in &report.problems {
        println!("problem: {p}");
    }
    if report.balanced {
        println!(
            "balanced: for every token, locked on L1 = issued on L2 + pending deposits + pending exits"
        );
    }
}
