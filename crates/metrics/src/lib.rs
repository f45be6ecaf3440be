//! The node's Prometheus metrics (`koma node --metrics ADDR`).
//!
//! One process-wide set of series ([`metrics`]), recorded with the official
//! OpenMetrics client (`prometheus-client`): counters and gauges are atomics, a
//! histogram takes its own short lock once per observation, so the hot paths pay
//! nothing per transaction (histograms are updated once per block or request).
//! Values that are cheaper to read than to track (heights, finality lag, pool sizes,
//! peers, sync) are set just before each scrape by the caller's refresh function
//! ([`serve`]).
//!
//! Several nodes in one process (tests) share the series.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod server;

pub use server::serve;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock};

/// One label (`name`, value) known at compile time.
pub type StaticLabel = [(&'static str, &'static str); 1];
/// Two such labels.
pub type StaticLabels2 = [(&'static str, &'static str); 2];
/// One label whose value is only known at run time (few distinct values).
pub type DynLabel = [(&'static str, String); 1];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every series the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Canonical head number.
    pub head: Gauge,
    /// Last block final at the node's threshold (the `safe` tag).
    pub safe: Gauge,
    /// Last block final at the node's threshold (the `finalized` tag).
    pub finalized: Gauge,
    /// Head number minus the last final number, per threshold.
    pub finality_lag: Family<DynLabel, Gauge>,
    /// Building a block (execution and state root), in seconds.
    pub block_build: Histogram,
    /// Importing a block from a peer (checks, re-execution, commit), in seconds.
    pub block_import: Histogram,
    /// Committing an own block to the database, in seconds.
    pub block_commit: Histogram,
    /// The node's current KoMaBFT round length, in seconds.
    pub round_length: Gauge<f64, AtomicU64>,
    /// Connected peers.
    pub peers: Gauge,
    /// Peers banned for misbehaviour since the node started.
    pub peers_banned: Counter,
    /// Gossip messages received, by topic.
    pub gossip_received: Family<StaticLabel, Counter>,
    /// Verdicts on gossip messages, by topic and outcome (accept, reject, ignore).
    pub gossip_validation: Family<StaticLabels2, Counter>,
    /// Executable pool transactions.
    pub pool_pending: Gauge,
    /// Pool transactions waiting for a lower nonce.
    pub pool_queued: Gauge,
    /// 1 while the node is syncing from a heavier peer.
    pub syncing: Gauge,
    /// Highest block known: the best peer's while syncing, else the head.
    pub sync_highest: Gauge,
    rpc_requests: Family<StaticLabel, Counter>,
    rpc_errors: Family<StaticLabel, Counter>,
    rpc_duration: HistogramFamily<StaticLabel>,
}

fn block_histogram() -> Histogram {
    // 1 ms .. ~8 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

fn rpc_histogram() -> Histogram {
    // 100 us .. ~6.5 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 9))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("koma");
        let m = Self {
            head: Gauge::default(),
            safe: Gauge::default(),
            finalized: Gauge::default(),
            finality_lag: Family::default(),
            block_build: block_histogram(),
            block_import: block_histogram(),
            block_commit: block_histogram(),
            round_length: Gauge::default(),
            peers: Gauge::default(),
            peers_banned: Counter::default(),
            gossip_received: Family::default(),
            gossip_validation: Family::default(),
            pool_pending: Gauge::default(),
            pool_queued: Gauge::default(),
            syncing: Gauge::default(),
            sync_highest: Gauge::default(),
            rpc_requests: Family::default(),
            rpc_errors: Family::default(),
            rpc_duration: Family::new_with_constructor(rpc_histogram),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("head_block", "Canonical head block number", m.head.clone());
        r.register(
            "safe_block",
            "Last block final at the node's threshold (safe tag)",
            m.safe.clone(),
        );
        r.register(
            "finalized_block",
            "Last block final at the node's threshold (finalized tag)",
            m.finalized.clone(),
        );
        r.register(
            "finality_lag_blocks",
            "Head number minus the last final block number, per KoMaBFT threshold",
            m.finality_lag.clone(),
        );
        r.register(
            "block_build_seconds",
            "Time to build an own block (execution and state root)",
            m.block_build.clone(),
        );
        r.register(
            "block_import_seconds",
            "Time to import a block from a peer (checks, re-execution, commit)",
            m.block_import.clone(),
        );
        r.register(
            "block_commit_seconds",
            "Time to commit an own block to the database",
            m.block_commit.clone(),
        );
        r.register(
            "consensus_round_length_seconds",
            "The node's current KoMaBFT round length",
            m.round_length.clone(),
        );
        r.register("p2p_peers", "Connected peers", m.peers.clone());
        r.register(
            "p2p_peers_banned",
            "Peers banned for misbehaviour since the node started",
            m.peers_banned.clone(),
        );
        r.register(
            "p2p_gossip_received",
            "Gossip messages received, by topic",
            m.gossip_received.clone(),
        );
        r.register(
            "p2p_gossip_validation",
            "Verdicts on received gossip messages, by topic and outcome",
            m.gossip_validation.clone(),
        );
        r.register(
            "txpool_pending",
            "Executable transactions in the pool",
            m.pool_pending.clone(),
        );
        r.register(
            "txpool_queued",
            "Pool transactions waiting for a lower nonce",
            m.pool_queued.clone(),
        );
        r.register(
            "sync_syncing",
            "1 while the node is syncing from a heavier peer",
            m.syncing.clone(),
        );
        r.register(
            "sync_highest_block",
            "Highest block known (the best peer's while syncing, else the head)",
            m.sync_highest.clone(),
        );
        r.register(
            "rpc_requests",
            "JSON-RPC calls, by method (unknown methods: other)",
            m.rpc_requests.clone(),
        );
        r.register(
            "rpc_errors",
            "JSON-RPC calls answered with an error, by method",
            m.rpc_errors.clone(),
        );
        r.register(
            "rpc_request_duration_seconds",
            "JSON-RPC call latency, by method",
            m.rpc_duration.clone(),
        );
        Self { registry, ..m }
    }

    /// The OpenMetrics text exposition of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// A block height as a gauge value.
pub fn height(number: u64) -> i64 {
    i64::try_from(number).unwrap_or(i64::MAX)
}

/// Counts a gossip message received on `topic`.
pub fn gossip_received(topic: &'static str) {
    metrics()
        .gossip_received
        .get_or_create(&[("topic", topic)])
        .inc();
}

/// Counts the verdict (`accept`, `reject`, `ignore`) on a gossip message of `topic`.
pub fn gossip_verdict(topic: &'static str, outcome: &'static str) {
    metrics()
        .gossip_validation
        .get_or_create(&[("topic", topic), ("outcome", outcome)])
        .inc();
}

#[derive(Debug, Clone)]
struct RpcMethod {
    requests: Counter,
    errors: Counter,
    duration: Histogram,
}

impl RpcMethod {
    fn new(method: &'static str) -> Self {
        let m = metrics();
        let label = [("method", method)];
        Self {
            requests: m.rpc_requests.get_or_create_owned(&label),
            errors: m.rpc_errors.get_or_create_owned(&label),
            duration: m.rpc_duration.get_or_create_owned(&label),
        }
    }
}

/// The RPC series of a server's methods, resolved once: recording a call is a map
/// lookup and three atomic updates. Methods the server does not know share the label
/// `other`, so a client cannot grow the label set.
#[derive(Debug, Clone)]
pub struct RpcMetrics(Arc<RpcMethods>);

#[derive(Debug)]
struct RpcMethods {
    known: HashMap<&'static str, RpcMethod>,
    other: RpcMethod,
}

impl RpcMetrics {
    pub fn new(methods: impl IntoIterator<Item = &'static str>) -> Self {
        let known = methods
            .into_iter()
            .map(|name| (name, RpcMethod::new(name)))
            .collect();
        Self(Arc::new(RpcMethods {
            known,
            other: RpcMethod::new("other"),
        }))
    }

    /// Records one call of `method` that took `seconds`.
    pub fn record(&self, method: &str, seconds: f64, error: bool) {
        let m = self.0.known.get(method).unwrap_or(&self.0.other);
        m.requests.inc();
        if error {
            m.errors.inc();
        }
        m.duration.observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_series_and_bounded_rpc_labels() {
        let rpc = RpcMetrics::new(["eth_blockNumber"]);
        rpc.record("eth_blockNumber", 0.001, false);
        rpc.record("eth_doesNotExist", 0.001, true);
        rpc.record("something_else", 0.001, true);
        metrics().head.set(7);
        metrics().block_build.observe(0.01);
        gossip_received("blocks");
        gossip_verdict("blocks", "accept");
        let text = metrics().encode();
        assert!(text.contains("koma_head_block 7"), "{text}");
        assert!(text.contains("koma_rpc_requests_total{method=\"eth_blockNumber\"} 1"));
        assert!(text.contains("koma_rpc_requests_total{method=\"other\"} 2"));
        assert!(text.contains("koma_rpc_errors_total{method=\"other\"} 2"));
        assert!(!text.contains("eth_doesNotExist"));
        assert!(text.contains("koma_block_build_seconds_count 1"));
        assert!(text.contains("koma_p2p_gossip_received_total{topic=\"blocks\"} 1"));
        assert!(
            text.contains(
                "koma_p2p_gossip_validation_total{topic=\"blocks\",outcome=\"accept\"} 1"
            )
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
