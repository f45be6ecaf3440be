//! Equivocations proven on L1 (docs/staking.md): when KoMaBFT holds evidence that a
//! staker signed two units with one sequence number, the node sends it to the root
//! contract's `reportEquivocation`, which checks the two signatures and slashes the
//! staker. Every node with an L1 account does so, once per staker: it waits a delay of
//! its own (so nodes seldom send the same evidence at once), then sends only if the
//! staker is not slashed yet. A report the contract refuses is final; any other failure
//! (the L1 unreachable, a nonce race with the checkpoint submitter, which signs with the
//! same account) is retried.

use crate::checkpoint::wait_for_contracts;
use alloy::network::EthereumWallet;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes, keccak256};
use koma_consensus::Evidence;
use koma_l1::bindings::RootChain;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// An equivocation to prove: the evidence and the era its units belong to.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub evidence: Evidence,
    pub era: u64,
    pub key_block: B256,
    /// The equivocator's KoMaBFT key (the era's validator at the units' creator index).
    pub signer: Address,
}

/// Where to send reports.
#[derive(Debug, Clone)]
pub(crate) struct SlashConfig {
    pub l1_rpc: String,
    pub contracts_file: PathBuf,
    pub l1_key: PrivateKeySigner,
    /// This chain's KoMaBFT digest (`ChainSpec::digest`): the root contract must be bound
    /// to it, or it refuses every report.
    pub consensus_chain: B256,
}

/// Most attempts at one report while the L1 fails.
const ATTEMPTS: u32 = 10;

/// Sends each report to L1 (see the module docs), until `stop`.
pub(crate) async fn run(
    mut reports: mpsc::UnboundedReceiver<Report>,
    config: SlashConfig,
    mut stop: watch::Receiver<bool>,
) {
    let Some(contracts) = wait_for_contracts(&config.contracts_file, &mut stop).await else {
        return;
    };
    let me = config.l1_key.address();
    let provider = match config.l1_rpc.parse() {
        Ok(url) => ProviderBuilder::new()
            .wallet(EthereumWallet::from(config.l1_key.clone()))
            .connect_http(url)
            .erased(),
        Err(e) => {
            tracing::error!(url = %config.l1_rpc, error = %e, "invalid L1 URL; slashing reports are off");
            let _ = stop.changed().await;
            return;
        }
    };
    let bound = loop {
        match RootChain::new(contracts.root_chain, &provider)
            .consensusChain()
            .call()
            .await
        {
            Ok(chain) => break chain,
            Err(e) => {
                tracing::debug!(error = %e, "slashing: cannot read the root contract yet");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    if bound != config.consensus_chain {
        tracing::error!(
            contract = %bound,
            ours = %config.consensus_chain,
            "slashing: the root contract is bound to another chain spec; equivocations will not be reported"
        );
        let _ = stop.changed().await;
        return;
    }
    loop {
        let report = tokio::select! {
            Some(report) = reports.recv() => report,
            _ = stop.changed() => return,
        };
        if report.signer == me {
            continue; // (a test build's equivocator sees its own twins)
        }
        // A delay of this node's own (0-9 s) for this staker: usually one node sends.
        let spread = keccak256([me.as_slice(), report.signer.as_slice()].concat());
        let delay = Duration::from_secs(u64::from(spread.0.first().copied().unwrap_or(0) % 10));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            match send(&provider, contracts.root_chain, &report).await {
                Ok(()) => break,
                Err(e) if attempt < ATTEMPTS => {
                    tracing::warn!(signer = %report.signer, error = %e, attempt, "slashing: cannot reach the L1; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2u64.saturating_pow(attempt.min(5)))) => {}
                        _ = stop.changed() => return,
                    }
                }
                Err(e) => {
                    tracing::error!(signer = %report.signer, error = %e, "slashing: gave up reporting an equivocation");
                    break;
                }
            }
        }
    }
}

/// Sends one report unless the staker is slashed already. `Err` only if the L1 could not
/// be asked or did not answer (worth retrying); a refusal is logged and final.
async fn send(provider: &DynProvider, root_chain: Address, report: &Report) -> eyre::Result<()> {
    let root = RootChain::new(root_chain, provider);
    if root.slashed(report.signer).call().await? {
        tracing::info!(signer = %report.signer, "slashing: the equivocator is slashed on L1 already");
        return Ok(());
    }
    let (a, b) = (&report.evidence.a, &report.evidence.b);
    let call = root.reportEquivocation(
        Bytes::from(a.unit.encode()),
        a.signature.clone(),
        Bytes::from(b.unit.encode()),
        b.signature.clone(),
        report.era,
        report.key_block,
    );
    let pending = match call.send().await {
        Ok(pending) => pending,
        // the contract's own refusal (someone was first, or the evidence does not hold)
        Err(e)
            if e.as_decoded_interface_error::<RootChain::RootChainErrors>()
                .is_some() =>
        {
            tracing::warn!(signer = %report.signer, reason = %koma_l1::revert_reason(&e), "slashing: L1 refused the evidence");
            return Ok(());
        }
        // anything else (the L1 unreachable, a nonce taken by a checkpoint submission
        // from the same account at the same moment, ...) is worth another try
        Err(e) => return Err(e.into()),
    };
    let receipt = pending
        .with_timeout(Some(Duration::from_secs(60)))
        .get_receipt()
        .await?;
    if receipt.status() {
        tracing::warn!(
            signer = %report.signer,
            era = report.era,
            tx = %receipt.transaction_hash,
            gas_used = receipt.gas_used,
            "slashing: equivocator slashed on L1"
        );
    } else {
        tracing::warn!(signer = %report.signer, tx = %receipt.transaction_hash, "slashing: the report reverted (slashed by another node first?)");
    }
    Ok(())
}
