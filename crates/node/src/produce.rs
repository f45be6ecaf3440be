//! The block production loop: wait for this producer's slot on the current head, have
//! the chain writer build, commit and announce the block ([`ChainWriter::produce`]),
//! gossip it.
//!
//! The slot of a producer at distance `d` from the in-turn position opens
//! `(d + 1)` block times after the node learned of the head (after it started
//! building it, for its own blocks), and never before the earliest timestamp the
//! chain rules allow ([`koma_producer::earliest_timestamp`]). A new head before the
//! slot opens restarts the wait, so a backup producer only produces when everyone
//! before it in succession stayed silent.

use crate::chain::ChainWriter;
use crate::clock::instant_at_unix;
use crate::sync::SyncState;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::B256;
use koma_network::{NetworkHandle, Topic};
use koma_producer::{earliest_timestamp, slot_delay};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub(crate) async fn produce_loop(
    chain: Arc<ChainWriter>,
    key: PrivateKeySigner,
    network: Option<NetworkHandle>,
    sync: Arc<SyncState>,
    mut stop: watch::Receiver<bool>,
) {
    let me = key.address();
    // Whether this node produced in the last span it looked at (logged on change).
    let mut producing: Option<bool> = None;
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
        let schedule = match chain
            .elections
            .producers_for(&chain.spec, &chain.db, &head, number)
        {
            Ok(producers) => producers.schedule(&chain.spec),
            Err(e) => {
                // the span's ranking is not read from L1 yet: look again shortly
                tracing::debug!(number, error = %e, "producers not known yet");
                tokio::select! {
                    _ = heads.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        let distance = schedule.distance(number, me);
        if producing != Some(distance.is_some()) {
            producing = Some(distance.is_some());
            if distance.is_some() {
                tracing::info!(producer = %me, number, "among the producers: producing");
            } else {
                tracing::info!(producer = %me, number, "not among the producers: waiting for a span that elects this producer");
            }
        }
        let Some(distance) = distance else {
            tokio::select! {
                _ = heads.changed() => {}
                _ = stop.changed() => {}
            }
            continue;
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
        if distance > 0 {
            tracing::info!(
                number,
                distance,
                "in-turn producer silent; producing as backup"
            );
        }
        let budget = Duration::from_millis(chain.spec.block_time_ms).mul_f64(EXECUTION_BUDGET);
        let produced = match chain.produce(head.hash, &key, earliest, budget).await {
            Ok(Some(produced)) => produced,
            // A block arrived while waiting for the write lock.
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, "block production failed");
                continue;
            }
        };
        own_block = Some((produced.header.hash, started));
        let metrics = koma_metrics::metrics();
        metrics
            .block_build
            .observe((produced.execution_ms + produced.state_root_ms) / 1e3);
        metrics.block_commit.observe(produced.commit_ms / 1e3);
        tracing::info!(
            number = produced.header.number(),
            hash = %produced.header.hash,
            txs = produced.txs,
            gas_used = produced.header.header.gas_used,
            exec_ms = format_args!("{:.1}", produced.execution_ms),
            root_ms = format_args!("{:.1}", produced.state_root_ms),
            commit_ms = format_args!("{:.1}", produced.commit_ms),
            "produced block"
        );
        if let Some(net) = &network {
            match net.publish(Topic::Blocks, produced.encoded).await {
                Ok(_) => {}
                Err(e) => tracing::warn!(number, error = %e, "cannot gossip block"),
            }
            if let Some(twin) = produced.twin {
                // test only: a second block on the same parent
                let _ = net.publish(Topic::Blocks, twin).await;
            }
        }
    }
}

/// Share of the block time spent executing transactions; the rest is left for the
/// state root, the commit and propagation, so the block is on time even under load.
const EXECUTION_BUDGET: f64 = 0.4;
