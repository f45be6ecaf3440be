//! The node's side of the Prometheus metrics (`koma_metrics`): the series read from
//! the node's state when scraped (heights, finality lag, pool, peers, sync), and the
//! KoMaBFT round length. Durations and counters are recorded where things happen
//! (producer loop, chain writer, network, RPC middleware).

use crate::sync::SyncState;
use koma_metrics::{height, metrics};
use koma_network::NetworkHandle;
use koma_primitives::ChainSpec;
use koma_rpc::ConsensusApi;
use koma_storage::Database;
use koma_txpool::TxPool;
use std::sync::Arc;

/// What a scrape reads.
#[derive(Debug)]
pub(crate) struct MetricsSource {
    pub db: Database,
    pub pool: Arc<TxPool>,
    pub consensus: Option<Arc<dyn ConsensusApi>>,
    pub network: Option<NetworkHandle>,
    pub sync: Arc<SyncState>,
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl MetricsSource {
    /// Sets the gauges that mirror the node's state (called before each scrape).
    pub fn refresh(&self) {
        let m = metrics();
        let head = self.db.head().number();
        m.head.set(height(head));
        if let Some(consensus) = &self.consensus {
            let node_threshold = consensus.node_threshold();
            for (i, t) in consensus.thresholds().into_iter().enumerate() {
                let last = t.last_final.as_ref().map_or(0, |b| b.number);
                m.finality_lag
                    .get_or_create(&[("threshold", t.threshold)])
                    .set(height(head.saturating_sub(last)));
                if i == node_threshold {
                    m.safe.set(height(last));
                    m.finalized.set(height(last));
                }
            }
        }
        let status = self.pool.status();
        m.pool_pending.set(count(status.pending));
        m.pool_queued.set(count(status.queued));
        if let Some(network) = &self.network {
            m.peers.set(count(network.peers().len()));
        }
        match self.sync.progress() {
            Some(progress) => {
                m.syncing.set(1);
                m.sync_highest.set(height(progress.highest_block.max(head)));
            }
            None => {
                m.syncing.set(0);
                m.sync_highest.set(height(head));
            }
        }
    }
}

/// Round length in milliseconds for round exponent `exp`.
fn round_length_ms(spec: &ChainSpec, exp: u8) -> Option<u64> {
    let min = spec.consensus.as_ref()?.min_round_ms;
    min.checked_mul(1u64.checked_shl(u32::from(exp))?)
}

/// The node's round exponent is now `exp`.
pub(crate) fn set_round_exp(spec: &ChainSpec, exp: u8) {
    if let Some(ms) = round_length_ms(spec, exp) {
        metrics().round_length.set(ms as f64 / 1e3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_length_follows_the_exponent() {
        let spec = ChainSpec::devnet();
        let min = spec.consensus.as_ref().map(|c| c.min_round_ms);
        assert_eq!(round_length_ms(&spec, 0), min);
        assert_eq!(round_length_ms(&spec, 2), min.map(|m| m * 4));
        assert_eq!(round_length_ms(&spec, 200), None);
    }
}
