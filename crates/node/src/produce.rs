//! The block production loop: wait for this producer's slot on the current head, build,
//! commit, announce, gossip.
//!
//! The slot of a producer at distance `d` from the in-turn position opens
//! `(d + 1)` block times after the node learned of the head (after it started
//! building it, for its own blocks), and never before the earliest timestamp the
//! chain rules allow ([`koma_producer::earliest_timestamp`]). A new head before the
//! slot opens restarts the wait, so a backup producer only produces when everyone
//! before it in succession stayed silent.

use crate::chain::ChainWriter;
use crate::sync::SyncState;
use alloy::consensus::TxEnvelope;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256};
use alloy_rlp::Encodable;
use koma_network::{NetworkHandle, Topic};
use koma_producer::{
    BuildError, BuiltBlock, PoolAccess, ProducerSchedule, build_block_until, earliest_timestamp,
    slot_delay,
};
use koma_storage::StoredBody;
use koma_txpool::BestTransactions;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

struct BestAdapter {
    best: BestTransactions,
    rejected: Vec<B256>,
}

impl PoolAccess for BestAdapter {
    fn next_best(&mut self) -> Option<(TxEnvelope, Address)> {
        self.best.next().map(|p| (p.tx.clone(), p.sender))
    }
    fn skip_sender(&mut self, sender: Address) {
        self.best.mark_invalid(sender);
    }
    fn reject(&mut self, tx: B256, sender: Address) {
        self.best.mark_invalid(sender);
        self.rejected.push(tx);
    }
}

pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// The local instant at which wall-clock second `unix_secs` begins.
fn instant_at_unix(unix_secs: u64) -> Instant {
    let target_ms = unix_secs.saturating_mul(1000);
    let now_ms = unix_now_ms();
    Instant::now()
        .checked_add(Duration::from_millis(target_ms.saturating_sub(now_ms)))
        .unwrap_or_else(Instant::now)
}

pub(crate) async fn produce_loop(
    chain: Arc<ChainWriter>,
    key: PrivateKeySigner,
    network: Option<NetworkHandle>,
    sync: Arc<SyncState>,
    mut stop: watch::Receiver<bool>,
) {
    let schedule = ProducerSchedule::new(chain.spec.producers.clone());
    let me = key.address();
    let mut heads = chain.head.subscribe();
    // When this node learned of the current head (for its own blocks: when it began
    // building them, so its rhythm is one block per block time).
    let mut head_hash = heads.borrow().hash;
    let mut head_since = Instant::now();
    let mut own_block: Option<(B256, Instant)> = None;
    loop {
        if *stop.borrow() || stop.has_changed().is_err() {
            break;
        }
        let head = heads.borrow_and_update().clone();
        if head.hash != head_hash {
            head_hash = head.hash;
            head_since = match own_block {
                Some((hash, started)) if hash == head.hash => started,
                _ => Instant::now(),
            };
        }
        let number = head.number().saturating_add(1);
        let Some(distance) = schedule.distance(number, me) else {
            tracing::warn!(producer = %me, "not in the producer set; not producing");
            let _ = stop.changed().await;
            break;
        };
        let earliest = earliest_timestamp(&chain.spec, head.header.timestamp, distance);
        let due = head_since
            .checked_add(slot_delay(&chain.spec, distance))
            .unwrap_or(head_since)
            .max(instant_at_unix(earliest));
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = heads.changed() => continue,
            _ = stop.changed() => continue,
        }
        if sync.is_syncing() {
            // Far behind the network: a block on this head would only be a stale fork.
            tokio::select! {
                _ = heads.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let started = Instant::now();
        let _guard = chain.write.lock().await;
        if chain.db.head().hash != head.hash {
            // A block arrived while waiting for the lock.
            continue;
        }
        if distance > 0 {
            tracing::info!(
                number,
                distance,
                "in-turn producer silent; producing as backup"
            );
        }
        let built = build(&chain, &key, earliest).await;
        let Some(built) = built else { continue };
        own_block = Some((built.header.hash, started));
        let metrics = koma_metrics::metrics();
        metrics
            .block_build
            .observe((built.execution_ms + built.state_root_ms) / 1e3);
        metrics.block_commit.observe(built.commit_ms / 1e3);
        tracing::info!(
            number = built.header.number(),
            hash = %built.header.hash,
            txs = built.block.body.transactions.len(),
            gas_used = built.header.header.gas_used,
            exec_ms = format_args!("{:.1}", built.execution_ms),
            root_ms = format_args!("{:.1}", built.state_root_ms),
            commit_ms = format_args!("{:.1}", built.commit_ms),
            "produced block"
        );
        let mut encoded = Vec::with_capacity(built.block.length());
        built.block.encode(&mut encoded);
        let body = StoredBody {
            transactions: built.block.body.transactions,
            senders: built.senders,
        };
        let c = chain.clone();
        let (header, receipts) = (built.header, built.receipts);
        let _ = tokio::task::spawn_blocking(move || c.canonical(header, body, receipts)).await;
        drop(_guard);
        if let Some(net) = &network {
            match net.publish(Topic::Blocks, encoded).await {
                Ok(_) => {}
                Err(e) => tracing::warn!(number, error = %e, "cannot gossip block"),
            }
        }
    }
}

/// Share of the block time spent executing transactions; the rest is left for the
/// state root, the commit and propagation, so the block is on time even under load.
const EXECUTION_BUDGET: f64 = 0.4;

async fn build(
    chain: &Arc<ChainWriter>,
    key: &PrivateKeySigner,
    earliest: u64,
) -> Option<BuiltBlock> {
    let (c, key) = (chain.clone(), key.clone());
    let now = (unix_now_ms() / 1000).max(earliest);
    let budget = Duration::from_millis(chain.spec.block_time_ms).mul_f64(EXECUTION_BUDGET);
    let deadline = Instant::now()
        .checked_add(budget)
        .unwrap_or_else(Instant::now);
    let built = tokio::task::spawn_blocking(move || -> Result<BuiltBlock, BuildError> {
        let base_fee = c.spec.base_fee_after(&c.db.head().header);
        let mut best = BestAdapter {
            best: c.pool.best_transactions(base_fee),
            rejected: Vec::new(),
        };
        let built = build_block_until(&c.spec, &c.db, &mut best, &key, now, Some(deadline));
        if !best.rejected.is_empty() {
            tracing::debug!(
                count = best.rejected.len(),
                "dropping transactions that failed at execution"
            );
            c.pool.remove_transactions(&best.rejected);
        }
        built
    })
    .await;
    match built {
        Ok(Ok(b)) => Some(b),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "block production failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "block production task failed");
            None
        }
    }
}
