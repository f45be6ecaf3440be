//! Checkpoints, node side: stakers sign each range of finalized blocks, gossip their
//! signatures, and the submitter of the moment aggregates more than 2/3 of the stake and
//! submits the checkpoint to the root contract on L1 (docs/checkpoints.md).
//!
//! - **Ranges.** Checkpoint `n` covers `interval` blocks: from the L1 contract's next
//!   start, in steps of `interval`. Every staker computes the same ranges from L1's state
//!   and its own finalized blocks, so no two honest stakers ever sign different ranges
//!   for one number; a backlog (an L1 outage) is caught up by checkpoints submitted back
//!   to back.
//! - **Signing.** Once a range is final, the staker computes its root, signs the digest,
//!   stores the vote durably, and only then gossips it. A stored vote is reused after a
//!   restart; the node never signs another root for a number it voted on.
//! - **Submitting.** Votes are checked (slot in the active set, signature) before they
//!   are forwarded; an invalid one costs the peer. The submitter for checkpoint `n` is
//!   slot `n mod k` of the active set's occupied slots; if the checkpoint is not on L1
//!   `submit_timeout` after the quorum was first seen, the next slot takes over, and so
//!   on. The submitter waits `straggler_wait` for missing votes (each absent staker costs
//!   about 6,000 gas) before it submits.
//! - **L1.** The task reads the contract's head and active set every `poll`; an L1 that
//!   fails or answers garbage is logged and retried, never fatal. A checkpoint whose L1
//!   transaction is reorged out is the next one again: the votes of the last
//!   [`VOTES_KEPT_AFTER_ACCEPTANCE`] accepted checkpoints are kept for that, and it is
//!   submitted again.

mod ledger;
mod send;
mod vote;

pub(crate) use ledger::{CheckpointView, Ledger};
pub use vote::Vote;

use crate::chain::ChainWriter;
use alloy::network::EthereumWallet;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, U256};
use koma_checkpoint::{
    BlockLeaf, CheckpointHeader, Domain, MerkleTree, PublicKey, SecretKey, absent_list,
    aggregate_signatures,
};
use koma_l1::L1Contracts;
use koma_l1::bindings::RootChain;
use koma_network::{GossipValidation, Misbehaviour, NetworkHandle, PeerId, Topic};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use vote::{Subject, VoteBook, above_two_thirds};

/// L1 blocks whose checkpoint events are read again at every poll (see `read_accepted`).
const L1_BLOCKS_REREAD: u64 = 64;

/// Accepted checkpoints whose votes are kept, for resubmission after an L1 reorg.
const VOTES_KEPT_AFTER_ACCEPTANCE: u64 = 8;

/// How a node takes part in checkpoints.
#[derive(Clone)]
pub struct CheckpointConfig {
    /// JSON-RPC URL of the L1.
    pub l1_rpc: String,
    /// Where the deployment is described (read when it appears: `koma devnet` writes it
    /// while the nodes start).
    pub contracts_file: PathBuf,
    /// The staker's BLS key; `None` follows without signing.
    pub bls_key: Option<Arc<SecretKey>>,
    /// The account that pays for submissions on L1 (the staker's key on the devnet).
    pub l1_key: Option<PrivateKeySigner>,
    /// Blocks per checkpoint.
    pub interval: u64,
    /// L1 blocks after which an accepted checkpoint counts as notarized.
    pub confirmations: u64,
    pub poll: Duration,
    pub submit_timeout: Duration,
    pub straggler_wait: Duration,
    /// A submission not mined this long is replaced with higher fees.
    pub bump_after: Duration,
    /// The highest max fee per gas a submission offers, in wei.
    pub max_fee_per_gas: u128,
    /// Test only (a build with the `equivocation` feature): sign every checkpoint a
    /// second time with another root and gossip both, a slashable offence.
    pub double_sign_for_testing: bool,
}

impl std::fmt::Debug for CheckpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointConfig")
            .field("l1_rpc", &self.l1_rpc)
            .field("contracts_file", &self.contracts_file)
            .field(
                "signer",
                &self
                    .bls_key
                    .as_ref()
                    .map(|k| k.public_key().to_compressed()),
            )
            .field("l1_key", &self.l1_key.as_ref().map(|k| k.address()))
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl CheckpointConfig {
    /// The devnet's settings (1-second L1 blocks): a checkpoint every 32 blocks.
    pub fn devnet(l1_rpc: String, contracts_file: PathBuf) -> Self {
        Self {
            l1_rpc,
            contracts_file,
            bls_key: None,
            l1_key: None,
            interval: 32,
            confirmations: 2,
            poll: Duration::from_millis(500),
            submit_timeout: Duration::from_secs(8),
            straggler_wait: Duration::from_millis(400),
            bump_after: Duration::from_secs(12),
            max_fee_per_gas: 500_000_000_000,
            double_sign_for_testing: false,
        }
    }
}

/// Gossiped votes handed to the task by the network event loop.
pub(crate) struct GossipVote {
    pub data: Vec<u8>,
    pub from: PeerId,
    pub validation: GossipValidation,
}

/// The active staker set as the contract reads it.
#[derive(Debug, Clone)]
struct ActiveSet {
    id: u64,
    /// By slot: the signer's address, its key and weight; `None` for an empty slot.
    slots: Vec<Option<(Address, PublicKey, u64)>>,
    total: u64,
    aggregate_key: [u8; 256],
}

impl ActiveSet {
    fn weight(&self, slot: u16) -> u64 {
        match self.slots.get(usize::from(slot)) {
            Some(Some((_, _, w))) => *w,
            _ => 0,
        }
    }

    fn members(&self) -> ledger::SetMembers {
        ledger::SetMembers {
            id: self.id,
            slots: self
                .slots
                .iter()
                .map(|s| s.map(|(address, _, weight)| (address, weight)))
                .collect(),
        }
    }

    fn occupied(&self) -> Vec<u16> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .filter_map(|(i, _)| u16::try_from(i).ok())
            .collect()
    }
}

/// What the task knows of L1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct L1Head {
    block: u64,
    set_id: u64,
    /// The last accepted checkpoint number.
    number: u64,
    next_start: u64,
}

struct Service {
    chain: Arc<ChainWriter>,
    config: CheckpointConfig,
    net: Option<NetworkHandle>,
    reader: DynProvider,
    /// The provider that signs submissions, and the account it signs for.
    submitter: Option<(DynProvider, Address)>,
    contracts: L1Contracts,
    domain: Domain,
    set: Option<ActiveSet>,
    head: Option<L1Head>,
    book: VoteBook,
    /// When the quorum of the next checkpoint was first seen, by number.
    quorum_seen: Option<(u64, Instant)>,
    ledger: Arc<parking_lot::RwLock<Ledger>>,
    /// Members of the staker sets read for the ledger, by set id.
    members: std::collections::BTreeMap<u64, Arc<ledger::SetMembers>>,
    /// Submissions made: (number, attempt).
    submitted: std::collections::BTreeSet<(u64, u64)>,
    l1_failures: u32,
}

/// The L1 deployment described in `file`, read once it exists: the deployment may still
/// be under way (`koma devnet` writes the file when done). `None` if `stop` comes first.
pub(crate) async fn wait_for_contracts(
    file: &std::path::Path,
    stop: &mut watch::Receiver<bool>,
) -> Option<L1Contracts> {
    loop {
        match L1Contracts::from_file(file) {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::debug!(error = %e, "waiting for the L1 contracts file");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return None,
                }
            }
        }
    }
}

/// Runs the checkpoint service until `stop`; never returns early (an L1 that misbehaves is
/// retried).
pub(crate) async fn run(
    chain: Arc<ChainWriter>,
    config: CheckpointConfig,
    net: Option<NetworkHandle>,
    mut votes: mpsc::Receiver<GossipVote>,
    ledger: Arc<parking_lot::RwLock<Ledger>>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(contracts) = wait_for_contracts(&config.contracts_file, &mut stop).await else {
        return;
    };
    let url = match config.l1_rpc.parse() {
        Ok(url) => url,
        Err(e) => {
            tracing::error!(url = %config.l1_rpc, error = %e, "invalid L1 URL; checkpoints are off");
            let _ = stop.changed().await;
            return;
        }
    };
    let reader = ProviderBuilder::new().connect_http(url).erased();
    // signs only: nonce, gas and fees are the submission's own (send.rs)
    let submitter = config.l1_key.clone().and_then(|key| {
        let from = key.address();
        config.l1_rpc.parse().ok().map(|url| {
            let provider = ProviderBuilder::new()
                .disable_recommended_fillers()
                .wallet(EthereumWallet::from(key))
                .connect_http(url)
                .erased();
            (provider, from)
        })
    });
    tracing::info!(
        root_chain = %contracts.root_chain,
        l1 = %config.l1_rpc,
        signing = config.bls_key.is_some(),
        interval = config.interval,
        "checkpoints: following the root contract"
    );
    {
        let mut l = ledger.write();
        l.confirmations = config.confirmations;
        l.next_log_block = contracts.deploy_block;
    }
    let mut service = Service {
        ledger,
        domain: Domain {
            l1_chain_id: contracts.l1_chain_id,
            root_contract: contracts.root_chain,
            l2_chain_id: contracts.l2_chain_id,
        },
        chain,
        config,
        net,
        reader,
        submitter,
        contracts,
        set: None,
        head: None,
        book: VoteBook::default(),
        quorum_seen: None,
        submitted: Default::default(),
        members: Default::default(),
        l1_failures: 0,
    };
    let mut tick = tokio::time::interval(service.config.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => service.step().await,
            Some(vote) = votes.recv() => service.on_gossip(vote),
            _ = stop.changed() => return,
        }
    }
}

impl Service {
    /// One round: read L1, sign what is final, submit what has a quorum.
    async fn step(&mut self) {
        if let Err(e) = self.refresh_l1().await {
            self.l1_failures = self.l1_failures.saturating_add(1);
            // every failure at debug, a warning now and then (the L1 may be down a while)
            if self.l1_failures == 1 || self.l1_failures.is_multiple_of(20) {
                tracing::warn!(error = %e, failures = self.l1_failures, "cannot read the L1; retrying");
            } else {
                tracing::debug!(error = %e, "cannot read the L1");
            }
            return;
        }
        if self.l1_failures > 0 {
            tracing::info!(after = self.l1_failures, "the L1 answers again");
            self.l1_failures = 0;
        }
        if let Err(e) = self.read_accepted().await {
            tracing::debug!(error = %e, "cannot read checkpoint events from the L1");
        }
        if let Err(e) = self.sign_final_ranges() {
            tracing::error!(error = %e, "cannot sign a checkpoint");
        }
        self.maybe_submit();
    }

    /// The active staker set at L1 block `block`.
    async fn read_set(&self, block: u64) -> eyre::Result<ActiveSet> {
        let root = RootChain::new(self.contracts.root_chain, &self.reader);
        let set = root.activeSet().block(block.into()).call().await?;
        let mut slots = Vec::with_capacity(set.keys.len());
        let mut total = 0u64;
        let mut keys = Vec::new();
        for ((signer, key), weight) in set.signers.iter().zip(&set.keys).zip(&set.weights) {
            if *weight == U256::ZERO {
                slots.push(None);
                continue;
            }
            let key = PublicKey::from_eip2537(key)
                .map_err(|e| eyre::eyre!("the L1 returned an invalid staker key: {e}"))?;
            let weight = u64::try_from(*weight)?;
            total = total.saturating_add(weight);
            keys.push(key);
            slots.push(Some((*signer, key, weight)));
        }
        let aggregate_key = PublicKey::aggregate(keys.iter())
            .map_err(|e| eyre::eyre!("cannot aggregate the staker keys: {e}"))?
            .to_eip2537();
        Ok(ActiveSet {
            id: u64::try_from(set.setId)?,
            slots,
            total,
            aggregate_key,
        })
    }

    async fn refresh_l1(&mut self) -> eyre::Result<()> {
        let root = RootChain::new(self.contracts.root_chain, &self.reader);
        let block = self.reader.get_block_number().await?;
        let head = root.head().block(block.into()).call().await?;
        let head = L1Head {
            block,
            set_id: u64::try_from(head.setId)?,
            number: u64::try_from(head.checkpointNumber)?,
            next_start: u64::try_from(head.nextStart)?,
        };
        if self.head.map(|h| h.number) != Some(head.number) {
            if let Some(old) = self.head
                && head.number > old.number
            {
                tracing::info!(
                    number = head.number,
                    l1_block = block,
                    next_start = head.next_start,
                    "checkpoint accepted on L1"
                );
            }
            if let Some(old) = self.head
                && head.number < old.number
            {
                tracing::warn!(
                    from = head.number.saturating_add(1),
                    to = old.number,
                    l1_block = block,
                    "an L1 reorg dropped accepted checkpoints; submitting them again"
                );
                // the dropped numbers are submitted afresh, by the submitter of attempt 0
                self.submitted.clear();
                self.quorum_seen = None;
            }
            // the votes of the last few accepted checkpoints are kept: if an L1 reorg
            // drops one, its quorum is still at hand (gossip would not carry the same
            // votes again)
            self.book.prune_below(
                head.number
                    .saturating_add(1)
                    .saturating_sub(VOTES_KEPT_AFTER_ACCEPTANCE),
            );
            self.submitted.retain(|(n, _)| *n > head.number);
        }
        if self.set.as_ref().map(|s| s.id) != Some(head.set_id) {
            let set = self.read_set(block).await?;
            tracing::info!(
                set = set.id,
                stakers = set.occupied().len(),
                total = set.total,
                "checkpoints: staker set"
            );
            self.set = Some(set);
        }
        self.head = Some(head);
        Ok(())
    }

    /// Reads the `CheckpointSubmitted` events since the last read (at most 5,000 L1
    /// blocks at a time) into the ledger, with who signed each; forgets checkpoints above
    /// the contract's head (their L1 transaction was reorged out).
    async fn read_accepted(&mut self) -> eyre::Result<()> {
        let Some(head) = self.head else {
            return Ok(());
        };
        // the last L1 blocks are read again each time: a reorg may have moved a
        // checkpoint's transaction into a block read before
        let from = self
            .ledger
            .read()
            .next_log_block
            .min(head.block.saturating_sub(L1_BLOCKS_REREAD))
            .max(self.contracts.deploy_block);
        let to = head.block.min(from.saturating_add(4_999));
        let mut found = Vec::new();
        if from <= to {
            let filter = alloy::rpc::types::Filter::new()
                .address(self.contracts.root_chain)
                .event_signature(
                    <RootChain::CheckpointSubmitted as alloy::sol_types::SolEvent>::SIGNATURE_HASH,
                )
                .from_block(from)
                .to_block(to);
            for log in self.reader.get_logs(&filter).await? {
                let (Some(tx), Some(block)) = (log.transaction_hash, log.block_number) else {
                    continue;
                };
                let event = log
                    .log_decode::<RootChain::CheckpointSubmitted>()?
                    .inner
                    .data;
                let number = u64::try_from(event.number)?;
                if let Some(known) = self.ledger.read().known(number, tx, block) {
                    found.push((number, known));
                    continue;
                }
                let signing = match self.signing_of(tx, block).await {
                    Ok(signing) => signing,
                    Err(e) => {
                        tracing::debug!(number, %tx, error = %e, "cannot read who signed a checkpoint");
                        None
                    }
                };
                found.push((
                    number,
                    ledger::Accepted {
                        start: u64::try_from(event.start)?,
                        end: u64::try_from(event.end)?,
                        root: event.root,
                        tx,
                        l1_block: block,
                        signing,
                    },
                ));
            }
        }
        let mut ledger = self.ledger.write();
        ledger.update(head.number, head.block, found);
        ledger.next_log_block = to.saturating_add(1);
        Ok(())
    }

    /// Who signed the checkpoint submitted by L1 transaction `tx` in L1 block `block`:
    /// the set active just before that block, less the absent slots of the call. `None`
    /// if the transaction is not a direct `submitCheckpoint` call or the set read is not
    /// the one it was checked against.
    async fn signing_of(&mut self, tx: B256, block: u64) -> eyre::Result<Option<ledger::Signing>> {
        use alloy::consensus::Transaction as _;
        use alloy::sol_types::SolCall as _;
        let Some(tx) = self.reader.get_transaction_by_hash(tx).await? else {
            return Ok(None);
        };
        if tx.to() != Some(self.contracts.root_chain) {
            return Ok(None);
        }
        let Ok(call) = RootChain::submitCheckpointCall::abi_decode(tx.input()) else {
            return Ok(None);
        };
        let before = block.saturating_sub(1);
        let root = RootChain::new(self.contracts.root_chain, &self.reader);
        let set_id = u64::try_from(root.head().block(before.into()).call().await?.setId)?;
        let members = match self.members.get(&set_id) {
            Some(m) => m.clone(),
            None => {
                let set = self.read_set(before).await?;
                if set.id != set_id {
                    return Ok(None);
                }
                let members = Arc::new(set.members());
                self.members.insert(set_id, members.clone());
                // a handful of sets at most are read at once
                while self.members.len() > 8 {
                    self.members.pop_first();
                }
                members
            }
        };
        let Ok(absent) = koma_checkpoint::format::parse_absent_list(&call.absent) else {
            return Ok(None);
        };
        Ok(Some(ledger::Signing {
            set: members,
            absent,
        }))
    }

    /// This node's slot in the active set, if it signs.
    fn my_slot(&self) -> Option<u16> {
        let key = self.config.bls_key.as_ref()?.public_key();
        let set = self.set.as_ref()?;
        set.slots
            .iter()
            .position(|s| matches!(s, Some((_, k, _)) if *k == key))
            .and_then(|i| u16::try_from(i).ok())
    }

    /// Signs every whole range that is final, from L1's next start, up to the contract's
    /// maximum range ahead.
    fn sign_final_ranges(&mut self) -> eyre::Result<()> {
        let (Some(head), Some(set_id), Some(slot), Some(key)) = (
            self.head,
            self.set.as_ref().map(|s| s.id),
            self.my_slot(),
            self.config.bls_key.clone(),
        ) else {
            return Ok(());
        };
        let finalized = self
            .chain
            .finalized
            .load(std::sync::atomic::Ordering::Relaxed);
        let interval = self.config.interval.max(1);
        let ahead = self
            .contracts
            .max_range
            .checked_div(interval)
            .unwrap_or(1)
            .max(1);
        for k in 0..ahead {
            let number = head.number.saturating_add(1).saturating_add(k);
            let start = head.next_start.saturating_add(k.saturating_mul(interval));
            let end = start.saturating_add(interval.saturating_sub(1));
            if end > finalized {
                break;
            }
            let vote = match self.stored_vote(number)? {
                Some(v) if v.header.start == start && v.header.end == end && v.set_id == set_id => {
                    v
                }
                stored => {
                    let root = self.range_root(start, end)?;
                    // never two roots for one number, whatever changed (the range after
                    // another checkpoint interval in the spec, the set): only the same root again
                    if let Some(old) = &stored
                        && old.header.root != root
                    {
                        eyre::bail!(
                            "refusing to sign checkpoint {number} [{start}, {end}] with root {root}: this node signed root {} for [{}, {}]",
                            old.header.root,
                            old.header.start,
                            old.header.end
                        );
                    }
                    let header = CheckpointHeader {
                        number,
                        start,
                        end,
                        root,
                    };
                    let signature = key.sign(&self.domain.digest(&header, set_id));
                    let vote = Vote {
                        header,
                        set_id,
                        slot,
                        signature,
                    };
                    // durably before anyone sees it
                    self.chain.db.put_checkpoint_vote(number, &vote.encode())?;
                    tracing::info!(number, start, end, %root, set = set_id, "signed checkpoint");
                    vote
                }
            };
            if self.book.add(vote.clone())
                && let Some(net) = &self.net
            {
                let messages: Vec<Vec<u8>> = std::iter::once(vote.clone())
                    .chain(self.twin_for_testing(&vote, &key))
                    .map(|v| v.encode())
                    .collect();
                let net = net.clone();
                tokio::spawn(async move {
                    for data in messages {
                        let _ = net.publish(Topic::Checkpoints, data).await;
                    }
                });
            }
        }
        Ok(())
    }

    /// Test only (`--double-sign-checkpoints-for-testing`): `vote` signed again over
    /// another root; `None` on an honest node.
    #[cfg(feature = "equivocation")]
    fn twin_for_testing(&self, vote: &Vote, key: &SecretKey) -> Option<Vote> {
        if !self.config.double_sign_for_testing {
            return None;
        }
        let header = CheckpointHeader {
            root: alloy_primitives::keccak256(vote.header.root),
            ..vote.header
        };
        tracing::warn!(number = header.number, root = %header.root, "TEST: signing a conflicting checkpoint");
        Some(Vote {
            signature: key.sign(&self.domain.digest(&header, vote.set_id)),
            header,
            ..vote.clone()
        })
    }

    #[cfg(not(feature = "equivocation"))]
    fn twin_for_testing(&self, _vote: &Vote, _key: &SecretKey) -> Option<Vote> {
        None
    }

    fn stored_vote(&self, number: u64) -> eyre::Result<Option<Vote>> {
        Ok(self
            .chain
            .db
            .checkpoint_vote(number)?
            .and_then(|raw| Vote::decode(&raw)))
    }

    /// The Merkle root over the canonical blocks `start..=end` (all final).
    fn range_root(&self, start: u64, end: u64) -> eyre::Result<B256> {
        let mut leaves = Vec::new();
        for number in start..=end {
            let header = self
                .chain
                .db
                .header_by_number(number)?
                .ok_or_else(|| eyre::eyre!("final block {number} is missing"))?;
            leaves.push(
                BlockLeaf {
                    number,
                    timestamp: header.header.timestamp,
                    block_hash: header.hash,
                    receipts_root: header.header.receipts_root,
                    withdrawals_root: header.header.withdrawals_root.unwrap_or_default(),
                }
                .hash(),
            );
        }
        Ok(MerkleTree::new(leaves).root())
    }

    /// Checks a gossiped vote (decodes, current set, slot, signature) before it is
    /// forwarded; a bad one costs the peer.
    fn on_gossip(&mut self, gossip: GossipVote) {
        let GossipVote {
            data,
            from,
            validation,
        } = gossip;
        let Some(vote) = Vote::decode(&data) else {
            validation.reject();
            self.report(from, Misbehaviour::Undecodable);
            return;
        };
        let Some(set) = &self.set else {
            validation.ignore();
            return;
        };
        // another set, already accepted, or further ahead than anyone signs: not wrong,
        // not useful (and not kept: the book stays bounded)
        let ahead = self
            .contracts
            .max_range
            .checked_div(self.config.interval.max(1))
            .unwrap_or(1)
            .max(1);
        if vote.set_id != set.id
            || self.head.is_none_or(|h| {
                vote.header.number <= h.number
                    || vote.header.number > h.number.saturating_add(ahead)
            })
        {
            validation.ignore();
            return;
        }
        let Some(Some((signer, key, _))) = set.slots.get(usize::from(vote.slot)) else {
            validation.reject();
            self.report(from, Misbehaviour::InvalidConsensusMessage);
            return;
        };
        if !key.verify(
            &self.domain.digest(&vote.header, vote.set_id),
            &vote.signature,
        ) {
            tracing::debug!(%from, number = vote.header.number, slot = vote.slot, "bad checkpoint signature");
            validation.reject();
            self.report(from, Misbehaviour::InvalidConsensusMessage);
            return;
        }
        validation.accept();
        // one staker, two checkpoints with one number: slashable on L1 (not this node's
        // own slot: its votes come from its own store, one per number)
        if Some(vote.slot) != self.my_slot()
            && let Some(other) = self.book.conflicting(&vote)
        {
            tracing::warn!(
                number = vote.header.number,
                slot = vote.slot,
                signer = %signer,
                "a staker signed two checkpoints with one number"
            );
            self.chain.stake.report_offence(crate::slashing::Report {
                signer: *signer,
                offence: crate::slashing::Offence::Checkpoints {
                    a: other,
                    b: vote.clone(),
                },
            });
        }
        self.book.add(vote);
    }

    fn report(&self, peer: PeerId, misbehaviour: Misbehaviour) {
        if let Some(net) = &self.net {
            net.report(peer, misbehaviour);
        }
    }

    /// Submits the next checkpoint if it has a quorum and this node is its submitter now.
    fn maybe_submit(&mut self) {
        let (Some(head), Some(set)) = (self.head, self.set.as_ref()) else {
            return;
        };
        let number = head.number.saturating_add(1);
        let Some((subject, weight, votes)) = self.book.best(number, set.id, |s| set.weight(s))
        else {
            return;
        };
        if !above_two_thirds(weight, set.total) {
            return;
        }
        let seen = match self.quorum_seen {
            Some((n, at)) if n == number => at,
            _ => {
                let now = Instant::now();
                self.quorum_seen = Some((number, now));
                now
            }
        };
        let occupied = set.occupied();
        let all_voted = votes.len() == occupied.len();
        let elapsed = seen.elapsed();
        if !all_voted && elapsed < self.config.straggler_wait {
            return;
        }
        let attempt = u64::try_from(
            elapsed
                .as_millis()
                .checked_div(self.config.submit_timeout.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(u64::MAX);
        let Some(len) = u64::try_from(occupied.len()).ok().filter(|l| *l > 0) else {
            return;
        };
        let turn = number
            .wrapping_add(attempt)
            .checked_rem(len)
            .and_then(|t| usize::try_from(t).ok())
            .unwrap_or(0);
        let (Some(me), Some(submitter)) = (self.my_slot(), self.submitter.clone()) else {
            return;
        };
        if occupied.get(turn) != Some(&me) || !self.submitted.insert((number, attempt)) {
            return;
        }
        let absent: Vec<u16> = occupied
            .iter()
            .copied()
            .filter(|s| !votes.contains_key(s))
            .collect();
        let signature = match aggregate_signatures(votes.values()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, number, "cannot aggregate checkpoint signatures");
                return;
            }
        };
        let absent = match absent_list(&absent) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, number, "cannot list absent stakers");
                return;
            }
        };
        let call = SubmitCall {
            subject,
            aggregate_key: set.aggregate_key,
            absent: absent.to_vec(),
            signature: signature.to_eip2537(),
            signed: votes.len(),
            attempt,
        };
        let policy = send::SendPolicy {
            poll: self.config.poll,
            bump_after: self.config.bump_after,
            max_fee_cap: self.config.max_fee_per_gas,
            give_up_after: Duration::from_secs(300),
        };
        let (provider, from) = submitter;
        let l1 = send::AlloyL1 {
            provider,
            from,
            root_chain: self.contracts.root_chain,
            chain_id: self.contracts.l1_chain_id,
            input: call.input(),
            number: call.subject.number,
        };
        tokio::spawn(submit(l1, policy, call));
    }
}

struct SubmitCall {
    subject: Subject,
    aggregate_key: [u8; 256],
    absent: Vec<u8>,
    signature: [u8; 128],
    signed: usize,
    attempt: u64,
}

impl SubmitCall {
    /// The `submitCheckpoint` calldata.
    fn input(&self) -> alloy_primitives::Bytes {
        use alloy::sol_types::SolCall as _;
        let s = self.subject;
        RootChain::submitCheckpointCall {
            cp: RootChain::Checkpoint {
                number: U256::from(s.number),
                start: U256::from(s.start),
                end: U256::from(s.end),
                root: s.root,
            },
            aggregateKey: self.aggregate_key.to_vec().into(),
            absent: self.absent.clone().into(),
            signature: self.signature.to_vec().into(),
        }
        .abi_encode()
        .into()
    }
}

/// Sends one submission and reports how it went (the service learns the outcome from
/// the contract's head, not from here).
async fn submit(l1: send::AlloyL1, policy: send::SendPolicy, call: SubmitCall) {
    let s = call.subject;
    tracing::info!(
        number = s.number,
        start = s.start,
        end = s.end,
        signers = call.signed,
        attempt = call.attempt,
        "submitting checkpoint"
    );
    match send::send_until_mined(&l1, policy).await {
        send::Outcome::Mined {
            mined,
            replacements,
        } if mined.success => tracing::info!(
            number = s.number,
            tx = %mined.tx,
            gas = mined.gas_used,
            replacements,
            "checkpoint transaction mined"
        ),
        send::Outcome::Mined { mined, .. } => tracing::warn!(
            number = s.number,
            tx = %mined.tx,
            gas = mined.gas_used,
            "checkpoint transaction reverted (another submission came first)"
        ),
        send::Outcome::Refused(reason) => tracing::warn!(
            number = s.number,
            attempt = call.attempt,
            %reason,
            "checkpoint submission refused"
        ),
        send::Outcome::Moot => tracing::debug!(
            number = s.number,
            "checkpoint accepted through another submission"
        ),
        send::Outcome::Failed(error) => tracing::warn!(
            number = s.number,
            %error,
            "checkpoint submission failed"
        ),
    }
}
