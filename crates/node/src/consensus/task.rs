//! The consensus task: its run loop and how it carries out the core's effects.

use super::codec::ConsensusMessage;
use super::view::ConsensusView;
use super::{ConsensusInput, now_ms, store_era_record};
use crate::chain::ChainWriter;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::B256;
use koma_consensus::{Effect, Eras, Observation, SignedUnit};
use koma_network::{Misbehaviour, NetworkHandle, PeerId, Topic};
use koma_rpc::{FinalBlock, ValidatorStatus};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub(super) struct ConsensusTask {
    pub(super) chain: Arc<ChainWriter>,
    pub(super) eras: Eras,
    pub(super) net: Option<NetworkHandle>,
    pub(super) view: Arc<ConsensusView>,
    pub(super) input: mpsc::Sender<ConsensusInput>,
    /// Every time the core asked to be woken at (each request must be honoured).
    pub(super) timers: std::collections::BTreeSet<u64>,
    /// Test only: the key to sign conflicting twins of own units with.
    #[cfg_attr(not(feature = "equivocation"), allow(dead_code))]
    pub(super) equivocate: Option<PrivateKeySigner>,
    /// Units asked for recently (hash -> when), so a missing unit is asked for once.
    pub(super) requested: HashMap<B256, std::time::Instant>,
    /// Blocks (proposed values) being fetched from peers.
    pub(super) fetching: Arc<parking_lot::Mutex<std::collections::HashSet<B256>>>,
    /// The newest era announced in the log.
    pub(super) logged_era: Option<u64>,
    /// The block the validators' fork choice builds on that the chain follows, and
    /// when it was last computed.
    pub(super) followed: Option<B256>,
    pub(super) followed_at: std::time::Instant,
    /// What reloading the stored eras returned: applied first thing (it may hold own
    /// units of an era the reload started, which must be stored and sent like any).
    pub(super) startup: Vec<Effect>,
}

/// How often the validators' fork choice is recomputed for the L2 fork choice to follow.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// How long before a unit still missing is asked for again.
const REQUEST_RETRY: Duration = Duration::from_secs(2);

impl ConsensusTask {
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<ConsensusInput>,
        mut stop: watch::Receiver<bool>,
    ) {
        // (The reloaded units are on disk already.)
        let startup: Vec<Effect> = std::mem::take(&mut self.startup)
            .into_iter()
            .filter(|e| !matches!(e, Effect::Store(_)))
            .collect();
        self.apply(startup, None).await;
        // Proposals wait for the L2 block they name; each new head may be it.
        let mut heads = self.chain.head.subscribe();
        // ... and for the deposits in them to be confirmed on L1 here.
        let mut deposits = self.chain.deposits.subscribe();
        // ... and for L1 anchors and the staker sets of new eras to be read here.
        let mut stake = self.chain.stake.subscribe();
        loop {
            let sleep = match self.timers.first() {
                Some(t) => Duration::from_millis(t.saturating_sub(now_ms())),
                None => Duration::from_secs(1),
            };
            tokio::select! {
                input = rx.recv() => match input {
                    Some(ConsensusInput::Message { message, from, validation }) => {
                        self.on_message(message, from, validation).await;
                    }
                    Some(ConsensusInput::Latest { instance, reply }) => {
                        let mut units: Vec<Vec<u8>> = self
                            .eras
                            .latest_units(&instance)
                            .into_iter()
                            .map(SignedUnit::to_bytes)
                            .collect();
                        if units.is_empty() {
                            // An era closed long ago: its tips are on disk.
                            units = self
                                .chain
                                .db
                                .era_tips(instance)
                                .unwrap_or_default()
                                .into_iter()
                                .filter_map(|h| self.chain.db.consensus_unit(h).ok().flatten())
                                .collect();
                        }
                        let _ = reply.send(units);
                    }
                    Some(ConsensusInput::ValuesArrived) => {
                        let effects = self.eras.recheck_values(now_ms());
                        self.apply(effects, None).await;
                    }
                    None => break,
                },
                _ = tokio::time::sleep(sleep) => {
                    let now = now_ms();
                    self.timers.retain(|t| *t > now);
                    let head = self.chain.db.head().hash;
                    self.eras.set_candidate(Some(head));
                    let effects = self.eras.handle_timer(now_ms());
                    self.apply(effects, None).await;
                    self.refresh_validators();
                }
                changed = heads.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let effects = self.eras.recheck_values(now_ms());
                    self.apply(effects, None).await;
                }
                changed = deposits.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let effects = self.eras.recheck_values(now_ms());
                    self.apply(effects, None).await;
                }
                changed = stake.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let effects = self.eras.recheck_values(now_ms());
                    self.apply(effects, None).await;
                }
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            self.follow_estimate().await;
        }
    }

    /// Makes the L2 fork choice contain the block the validators' fork choice builds
    /// on (see [`ChainWriter::follow_estimate`]); recomputed at most every
    /// [`FOLLOW_INTERVAL`]. A block not imported yet is fetched like any proposed value
    /// and followed once it is.
    async fn follow_estimate(&mut self) {
        if self.followed_at.elapsed() < FOLLOW_INTERVAL {
            return;
        }
        self.followed_at = std::time::Instant::now();
        let Some(estimate) = self.eras.fork_choice_value() else {
            return;
        };
        if self.followed == Some(estimate) {
            return;
        }
        match self.chain.follow_estimate_async(estimate).await {
            Ok(true) => self.followed = Some(estimate),
            Ok(false) => {}
            Err(error) => {
                // Conflicts with a final block (or cannot be executed): not followed.
                tracing::debug!(%estimate, %error, "cannot follow the validators' fork choice");
                self.followed = Some(estimate);
            }
        }
    }

    async fn on_message(
        &mut self,
        message: ConsensusMessage,
        from: Option<PeerId>,
        validation: Option<koma_network::GossipValidation>,
    ) {
        let now = now_ms();
        let mut known_era = true;
        let (effects, hash) = match message {
            ConsensusMessage::Unit(unit) => {
                let hash = unit.hash();
                let instance = unit.unit.instance_id;
                known_era = self.eras.era_of(&instance).is_some();
                (self.eras.handle_unit(unit, now), Some(hash))
            }
            ConsensusMessage::Evidence(ev) => (self.eras.handle_evidence(ev, now), None),
        };
        let invalid = effects
            .iter()
            .any(|e| matches!(e, Effect::Invalid { unit, .. } if Some(*unit) == hash));
        if let Some(v) = validation {
            if invalid {
                v.reject();
            } else if !known_era {
                // A unit of an era this node has not reached cannot be checked here:
                // kept for later, but not forwarded (no amplification of junk).
                v.ignore();
            } else {
                v.accept();
            }
        }
        if invalid && let (Some(peer), Some(net)) = (from, &self.net) {
            net.report(peer, Misbehaviour::InvalidConsensusMessage);
        }
        self.apply(effects, from).await;
    }

    /// Carries out what the core asked for, in order. Storage writes run on blocking
    /// threads, never on the async workers: own units one by one and synced (each
    /// must be durable before it is sent), peers' units in one unsynced batch.
    async fn apply(&mut self, effects: Vec<Effect>, from: Option<PeerId>) {
        let mut missing = Vec::new();
        let mut stored: Vec<(B256, B256, Vec<u8>)> = Vec::new();
        let mut unsent = std::collections::HashSet::new();
        for effect in effects {
            match effect {
                Effect::Persist(unit) => {
                    let raw = unit.to_bytes();
                    let hash = unit.hash();
                    let instance = unit.unit.instance_id;
                    let result = self
                        .blocking(move |db| db.put_consensus_unit(instance, hash, &raw, true))
                        .await;
                    if let Err(error) = result {
                        // Never send a unit that is not durably stored, and sign no
                        // more: after a restart this node would not know it signed
                        // it, and could equivocate. It keeps following finality.
                        tracing::error!(%hash, %error, "cannot store an own consensus unit: this node stops signing");
                        self.eras.stop_signing();
                        unsent.insert(hash);
                    }
                }
                Effect::Store(unit) => {
                    stored.push((unit.unit.instance_id, unit.hash(), unit.to_bytes()));
                }
                Effect::Broadcast(unit) => {
                    if unsent.contains(&unit.hash()) {
                        continue;
                    }
                    #[cfg(feature = "equivocation")]
                    if let Some(key) = &self.equivocate {
                        // A twin with the same creator and sequence number: other value
                        // or timestamp, validly signed. Peers that see both prove it.
                        let mut twin = unit.unit.clone();
                        match twin.value {
                            Some(v) => twin.value = Some(alloy_primitives::keccak256(v)),
                            None => twin.timestamp = twin.timestamp.saturating_add(1),
                        }
                        let signature = koma_consensus::UnitSigner::sign(key, &twin.hash());
                        let twin = SignedUnit {
                            unit: twin,
                            signature,
                        };
                        self.publish(ConsensusMessage::Unit(twin)).await;
                    }
                    self.publish(ConsensusMessage::Unit(unit)).await
                }
                Effect::Evidence(ev) => {
                    tracing::warn!(
                        validator = ev.creator(),
                        "equivocation detected; evidence gossiped"
                    );
                    self.report_on_l1(&ev);
                    self.publish(ConsensusMessage::Evidence(ev)).await;
                }
                Effect::Request(hash) => missing.push(hash),
                Effect::RequestValue(value) => self.fetch_value(value, from),
                Effect::RequestLatest(instance) => self.request_latest(instance),
                Effect::Timer(t) => {
                    self.timers.insert(t);
                }
                Effect::Finalized {
                    threshold, value, ..
                } => self.on_final(threshold, value).await,
                Effect::Invalid { unit, error } => {
                    tracing::debug!(%unit, %error, "invalid consensus unit");
                }
                Effect::RoundExp(exp) => {
                    tracing::info!(round_exp = exp, "round length changed");
                    crate::metrics::set_round_exp(&self.chain.spec, exp);
                }
                Effect::EraStarted(record) => {
                    // The same record comes again when its cap rises (a switch caught
                    // up at a higher threshold): stored again, logged once.
                    if self.logged_era.is_none_or(|e| record.era > e) {
                        self.logged_era = Some(record.era);
                        tracing::info!(
                            era = record.era,
                            start = record.start,
                            validators = record.validators.len(),
                            banned = record.banned.len(),
                            "KoMaBFT era started"
                        );
                    }
                    let era = record.era;
                    let result = self.blocking(move |db| store_era_record(db, &record)).await;
                    if let Err(e) = result {
                        tracing::error!(error = %e, era, "cannot store era record");
                    }
                }
                Effect::EraClosed {
                    era,
                    instance_id,
                    tips,
                } => {
                    let result = self
                        .blocking(move |db| db.put_era_tips(instance_id, &tips))
                        .await;
                    if let Err(e) = result {
                        tracing::warn!(error = %e, era, "cannot store the tips of a closed era");
                    }
                    tracing::debug!(era, "KoMaBFT era closed");
                }
            }
        }
        if !stored.is_empty() {
            let count = stored.len();
            let result = self
                .blocking(move |db| {
                    for (instance, hash, raw) in &stored {
                        db.put_consensus_unit(*instance, *hash, raw, false)?;
                    }
                    Ok::<(), koma_storage::StorageError>(())
                })
                .await;
            if let Err(e) = result {
                // Peers' units are served to others and reloaded after a restart;
                // without them this node fetches them again, nothing is unsafe.
                tracing::warn!(error = %e, count, "cannot store consensus units");
            }
        }
        if !missing.is_empty() {
            let now = std::time::Instant::now();
            self.requested
                .retain(|_, at| now.duration_since(*at) < REQUEST_RETRY);
            missing.retain(|h| self.eras.unit(h).is_none() && !self.requested.contains_key(h));
            missing.sort();
            missing.dedup();
            for h in &missing {
                self.requested.insert(*h, now);
            }
            if !missing.is_empty() {
                self.request(missing, from);
            }
        }
    }

    /// Runs a storage write on a blocking thread.
    pub(super) async fn blocking<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
        &self,
        f: impl FnOnce(&koma_storage::Database) -> Result<T, E> + Send + 'static,
    ) -> Result<T, String> {
        let db = self.chain.db.clone();
        match tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("storage task failed: {e}")),
        }
    }

    /// Hands the evidence to the L1 slasher (crate::slashing), with the era its units
    /// belong to and the equivocator's key.
    fn report_on_l1(&self, ev: &koma_consensus::Evidence) {
        let instance = ev.a.unit.instance_id;
        let records = self.eras.records();
        let Some(record) = records.iter().find(|r| r.instance_id == instance) else {
            return;
        };
        let Some((signer, _)) = usize::try_from(ev.creator())
            .ok()
            .and_then(|i| record.validators.get(i))
        else {
            return;
        };
        self.chain.stake.report_offence(crate::slashing::Report {
            signer: *signer,
            offence: crate::slashing::Offence::Units {
                evidence: ev.clone(),
                era: record.era,
                key_block: record.key_block,
            },
        });
    }

    async fn publish(&self, message: ConsensusMessage) {
        let Some(net) = &self.net else { return };
        let data = message.encode();
        if let Err(e) = net.publish(Topic::Consensus, data).await {
            tracing::debug!(error = %e, "cannot gossip consensus message");
        }
    }

    /// Milestone `value` is final at threshold `index`: so are its block and
    /// ancestors. At the node's threshold the block must be on the canonical chain:
    /// if fork choice had left its branch, the node switches to it first, and it
    /// becomes the floor of every later reorg.
    async fn on_final(&self, index: usize, value: B256) {
        let header = match self.chain.db.header(value) {
            Ok(Some(header)) => header,
            _ => {
                tracing::warn!(%value, "final milestone not imported here");
                return;
            }
        };
        let number = header.number;
        if index == self.view.node_threshold
            && let Err(error) = self.chain.adopt_final_async(value).await
        {
            tracing::error!(%value, number, %error, "cannot switch to the final block");
            return;
        }
        let record = {
            let mut record = self.view.record.write();
            if record.last_final.len() < self.view.thresholds.len() {
                record.last_final.resize(self.view.thresholds.len(), None);
            }
            let Some(slot) = record.last_final.get_mut(index) else {
                return;
            };
            if slot.is_some_and(|(n, _)| n >= number) {
                return;
            }
            *slot = Some((number, value));
            record.clone()
        };
        if index == self.view.node_threshold {
            let _ = self.view.finalized.send(FinalBlock {
                number,
                hash: value,
            });
            tracing::info!(number, hash = %value, "finalized");
        }
        if let Ok(raw) = serde_json::to_vec(&record)
            && let Err(e) = self.blocking(move |db| db.put_finality(&raw)).await
        {
            tracing::warn!(error = %e, "cannot store the finality record");
        }
    }

    pub(super) fn refresh_validators(&self) {
        let Some(current) = self.eras.current() else {
            return;
        };
        let state = current.state();
        let validators = &state.validators;
        let era = self.eras.current_era();
        let source = self.eras.records().last().and_then(|r| r.source);
        let table = self.chain.stake.table();
        let mut list: Vec<ValidatorStatus> = validators
            .indices()
            .map(|i| {
                let latest = state
                    .latest()
                    .get(i as usize)
                    .and_then(Observation::correct)
                    .and_then(|h| state.unit(&h));
                let address = validators.key(i).copied().unwrap_or_default();
                ValidatorStatus {
                    index: Some(i),
                    address,
                    stake: validators.weight(i),
                    faulty: state.is_faulty(i),
                    era: Some(era),
                    latest_unit: latest.map(|u| u.hash),
                    latest_seq: latest.map(|u| u.seq),
                    latest_timestamp: latest.map(|u| u.timestamp),
                    round_length_ms: latest.map(|u| state.params.round_len(u.round_exp)),
                    status: member_status(state.is_faulty(i), address, table.as_ref()),
                    source_l1_block: source.map(|s| s.l1_block),
                    set_id: source.map(|s| s.set_id),
                }
            })
            .collect();
        self.chain
            .stake
            .set_members(list.iter().map(|v| v.address).collect());
        if let Some(table) = &table {
            let joining: Vec<ValidatorStatus> = table
                .pending
                .iter()
                .filter(|(signer, _)| !list.iter().any(|v| v.address == *signer))
                .map(|(signer, weight)| ValidatorStatus {
                    index: None,
                    address: *signer,
                    stake: *weight,
                    faulty: false,
                    era: None,
                    latest_unit: None,
                    latest_seq: None,
                    latest_timestamp: None,
                    round_length_ms: None,
                    status: "pending",
                    source_l1_block: Some(table.l1_block),
                    set_id: None,
                })
                .collect();
            list.extend(joining);
        }
        *self.view.validators.write() = list;
    }
}

/// A member's status: slashed on L1, else KoMaBFT's verdict, else what the stake table
/// on L1 (if read) says.
fn member_status(
    faulty: bool,
    address: alloy_primitives::Address,
    table: Option<&crate::stake::StakerTable>,
) -> &'static str {
    match table {
        Some(t) if t.slashed.contains(&address) => "slashed",
        _ if faulty => "faulty",
        Some(t) if !t.pending.iter().any(|(s, _)| *s == address) => "unbonding",
        _ => "active",
    }
}

#[cfg(test)]
mod tests {
    use super::member_status;
    use crate::stake::StakerTable;
    use alloy_primitives::Address;

    #[test]
    fn a_members_status_follows_l1_then_komabft() {
        let (a, b, c) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        // without a table (no L1, or not read yet) only KoMaBFT's verdict shows
        assert_eq!(member_status(false, a, None), "active");
        assert_eq!(member_status(true, a, None), "faulty");
        let table = StakerTable {
            l1_block: 7,
            pending: vec![(a, 10), (b, 5)],
            slashed: [c].into_iter().collect(),
        };
        assert_eq!(member_status(false, a, Some(&table)), "active");
        assert_eq!(member_status(true, b, Some(&table)), "faulty");
        // slashed on L1 wins over KoMaBFT's own verdict
        assert_eq!(member_status(true, c, Some(&table)), "slashed");
        assert_eq!(member_status(false, c, Some(&table)), "slashed");
        // out of the pending set: it left, and stays a member until the era ends
        let d = Address::repeat_byte(4);
        assert_eq!(member_status(false, d, Some(&table)), "unbonding");
    }
}
