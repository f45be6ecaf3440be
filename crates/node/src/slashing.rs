//! Misbehaviour proven on L1 (docs/staking.md): when KoMaBFT holds evidence that a
//! staker signed two units with one sequence number, or the checkpoint task holds two
//! BLS signatures of one staker on different checkpoints with one number, the node
//! sends it to the root contract (`reportEquivocation`, `reportDoubleCheckpoint`), which
//! checks the signatures and slashes the staker. Every node with an L1 account does so,
//! once per staker: it waits a delay of its own (so nodes seldom send the same evidence
//! at once), then sends only if the staker is not slashed yet. A report the contract
//! refuses is final; any other failure (the L1 unreachable, a nonce race with the
//! checkpoint submitter, which signs with the same account) is retried.

use crate::checkpoint::{Vote, wait_for_contracts};
use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::EthereumWallet;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use koma_checkpoint::CheckpointHeader;
use koma_consensus::Evidence;
use koma_l1::bindings::RootChain;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Misbehaviour to prove: the offender and the evidence.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The offender's KoMaBFT key (what the contract knows a staker by).
    pub signer: Address,
    pub offence: Offence,
}

/// The evidence of one kind of misbehaviour.
#[derive(Debug, Clone)]
pub(crate) enum Offence {
    /// Two units with one sequence number, and the era they belong to.
    Units {
        evidence: Evidence,
        era: u64,
        key_block: B256,
    },
    /// Two signed checkpoints with one number and different ranges or roots.
    Checkpoints { a: Vote, b: Vote },
    /// Two different headers on one parent sealed by one producer (its bond answers).
    Seals {
        a: koma_primitives::SignedHeader,
        b: koma_primitives::SignedHeader,
    },
}

impl Offence {
    fn name(&self) -> &'static str {
        match self {
            Self::Units { .. } => "equivocation",
            Self::Checkpoints { .. } => "double checkpoint signature",
            Self::Seals { .. } => "double seal",
        }
    }

    /// Whether it costs a producer candidate's bond (else a staker's stake).
    pub(crate) fn against_producer(&self) -> bool {
        matches!(self, Self::Seals { .. })
    }
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
            "slashing: the root contract is bound to another chain spec; misbehaviour will not be reported"
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
        let offence = report.offence.name();
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
                    tracing::warn!(signer = %report.signer, offence, error = %e, attempt, "slashing: cannot reach the L1; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2u64.saturating_pow(attempt.min(5)))) => {}
                        _ = stop.changed() => return,
                    }
                }
                Err(e) => {
                    tracing::error!(signer = %report.signer, offence, error = %e, "slashing: gave up reporting misbehaviour");
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
    let done = if report.offence.against_producer() {
        root.producerSlashed(report.signer).call().await?
    } else {
        root.slashed(report.signer).call().await?
    };
    if done {
        tracing::info!(signer = %report.signer, "slashing: the offender is slashed on L1 already");
        return Ok(());
    }
    match &report.offence {
        Offence::Units {
            evidence,
            era,
            key_block,
        } => {
            let (a, b) = (&evidence.a, &evidence.b);
            let call = root.reportEquivocation(
                Bytes::from(a.unit.encode()),
                a.signature.clone(),
                Bytes::from(b.unit.encode()),
                b.signature.clone(),
                *era,
                *key_block,
            );
            finish(call, report).await
        }
        Offence::Checkpoints { a, b } => {
            let call = root.reportDoubleCheckpoint(
                checkpoint(&a.header),
                U256::from(a.set_id),
                Bytes::from(a.signature.to_eip2537().to_vec()),
                checkpoint(&b.header),
                U256::from(b.set_id),
                Bytes::from(b.signature.to_eip2537().to_vec()),
                report.signer,
            );
            finish(call, report).await
        }
        Offence::Seals { a, b } => {
            let call = root.reportDoubleSeal(
                Bytes::from(alloy_rlp::encode(&a.header)),
                Bytes::from(a.seal.to_vec()),
                Bytes::from(alloy_rlp::encode(&b.header)),
                Bytes::from(b.seal.to_vec()),
            );
            finish(call, report).await
        }
    }
}

fn checkpoint(header: &CheckpointHeader) -> RootChain::Checkpoint {
    RootChain::Checkpoint {
        number: U256::from(header.number),
        start: U256::from(header.start),
        end: U256::from(header.end),
        root: header.root,
    }
}

/// Sends a report's transaction and waits for its receipt (see [`send`]).
async fn finish<D: CallDecoder>(
    call: CallBuilder<&&DynProvider, D>,
    report: &Report,
) -> eyre::Result<()> {
    let offence = report.offence.name();
    let pending = match call.send().await {
        Ok(pending) => pending,
        // the contract's own refusal (someone was first, or the evidence does not hold)
        Err(e)
            if e.as_decoded_interface_error::<RootChain::RootChainErrors>()
                .is_some() =>
        {
            tracing::warn!(signer = %report.signer, offence, reason = %koma_l1::revert_reason(&e), "slashing: L1 refused the evidence");
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
            offence,
            tx = %receipt.transaction_hash,
            gas_used = receipt.gas_used,
            "slashing: offender slashed on L1"
        );
    } else {
        tracing::warn!(signer = %report.signer, offence, tx = %receipt.transaction_hash, "slashing: the report reverted (slashed by another node first?)");
    }
    Ok(())
}
