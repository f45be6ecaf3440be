//! Gas price, priority fee and `eth_feeHistory`.
//!
//! `eth_feeHistory` covers at most `max_fee_history_blocks` blocks (a larger count is
//! truncated, as geth does) with at most 100 reward percentiles (checked before
//! anything is read, see [`crate::params::check_percentiles`]), so an answer holds at
//! most 1,024 x 100 rewards.

use super::KomaApi;
use super::state::storage_err;
use crate::error::{header_not_found, internal};
use alloy::consensus::Transaction as _;
use alloy::eips::BlockNumberOrTag;
use alloy::rpc::types::FeeHistory;
use alloy_primitives::U256;
use jsonrpsee::core::RpcResult;
use koma_primitives::SealedHeader;
use koma_storage::Snapshot;

impl KomaApi {
    /// `eth_gasPrice`: the next base fee plus the minimum tip.
    pub(super) fn gas_price_now(&self) -> U256 {
        let tip = u128::from(self.state.spec.fees.min_priority_fee);
        U256::from(u128::from(self.state.next_base_fee()).saturating_add(tip))
    }

    pub(super) fn fee_history_in(
        &self,
        block_count: u64,
        newest: BlockNumberOrTag,
        percentiles: Option<&[f64]>,
    ) -> RpcResult<FeeHistory> {
        let count = block_count.min(self.state.config.max_fee_history_blocks);
        let snap = self.snapshot()?;
        let newest = self.tag_number(&snap, newest).min(snap.head().number());
        if count == 0 {
            return Ok(FeeHistory {
                oldest_block: newest,
                ..Default::default()
            });
        }
        let oldest = newest.saturating_sub(count.saturating_sub(1));
        let mut hist = FeeHistory {
            oldest_block: oldest,
            ..Default::default()
        };
        let mut rewards = Vec::new();
        let mut last = None;
        for n in oldest..=newest {
            let h = snap
                .header_by_number(n)
                .map_err(storage_err)?
                .ok_or_else(header_not_found)?;
            let base_fee = h.header.base_fee_per_gas.unwrap_or_default();
            hist.base_fee_per_gas.push(u128::from(base_fee));
            hist.gas_used_ratio
                .push(h.header.gas_used as f64 / h.header.gas_limit.max(1) as f64);
            hist.base_fee_per_blob_gas.push(0);
            hist.blob_gas_used_ratio.push(0.0);
            if let Some(p) = percentiles {
                rewards.push(self.block_rewards(&snap, &h, p)?);
            }
            last = Some(h);
        }
        if let Some(h) = last {
            hist.base_fee_per_gas
                .push(u128::from(self.state.spec.base_fee_after(&h.header)));
            hist.base_fee_per_blob_gas.push(0);
        }
        if percentiles.is_some() {
            hist.reward = Some(rewards);
        }
        Ok(hist)
    }

    /// The tips at `percentiles` of the gas used in block `h`, floored at the pool's
    /// minimum tip: no lower tip can be included, and an empty block would otherwise
    /// suggest a 0 tip that the pool refuses.
    fn block_rewards(
        &self,
        snap: &Snapshot<'_>,
        h: &SealedHeader,
        percentiles: &[f64],
    ) -> RpcResult<Vec<u128>> {
        let base_fee = h.header.base_fee_per_gas.unwrap_or_default();
        let body = self.body(snap, h.hash)?;
        let receipts = snap
            .receipts(h.hash)
            .map_err(storage_err)?
            .ok_or_else(|| internal(format!("receipts of block {} missing", h.hash)))?;
        let mut previous = 0u64;
        let mut tips: Vec<(u128, u64)> = body
            .transactions
            .iter()
            .zip(&receipts)
            .map(|(tx, r)| {
                let cumulative = r.cumulative_gas_used();
                let used = cumulative.saturating_sub(previous);
                previous = cumulative;
                (tx.effective_tip_per_gas(base_fee).unwrap_or_default(), used)
            })
            .collect();
        tips.sort_unstable();
        let floor = u128::from(self.state.spec.fees.min_priority_fee);
        Ok(percentile_rewards(&tips, h.header.gas_used, percentiles)
            .into_iter()
            .map(|r| r.max(floor))
            .collect())
    }
}

/// Gas-weighted tip percentiles of one block (as geth computes them): `sorted_tips`
/// are (tip, gas used) by ascending tip.
pub(crate) fn percentile_rewards(
    sorted_tips: &[(u128, u64)],
    gas_used: u64,
    percentiles: &[f64],
) -> Vec<u128> {
    if sorted_tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    let mut out = Vec::with_capacity(percentiles.len());
    let mut idx = 0usize;
    let mut cumulative = sorted_tips.first().map_or(0, |t| t.1);
    for p in percentiles {
        // Saturating float-to-int conversion; p is in [0, 100].
        let threshold = (gas_used as f64 * p / 100.0) as u64;
        while cumulative < threshold {
            let Some(next) = idx.checked_add(1).filter(|&i| i < sorted_tips.len()) else {
                break;
            };
            idx = next;
            cumulative = cumulative.saturating_add(sorted_tips.get(idx).map_or(0, |t| t.1));
        }
        out.push(sorted_tips.get(idx).map_or(0, |t| t.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percentile_rewards;

    #[test]
    fn rewards_are_gas_weighted() {
        // Two transactions: 21,000 gas at tip 1, 79,000 gas at tip 5.
        let tips = [(1u128, 21_000u64), (5, 79_000)];
        assert_eq!(
            percentile_rewards(&tips, 100_000, &[0.0, 20.0, 21.0, 22.0, 100.0]),
            vec![1, 1, 1, 5, 5]
        );
        assert_eq!(percentile_rewards(&[], 0, &[10.0, 90.0]), vec![0, 0]);
        // Gas used larger than the receipts add up to never indexes past the end.
        assert_eq!(percentile_rewards(&tips, u64::MAX, &[100.0]), vec![5]);
    }
}
