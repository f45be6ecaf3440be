//! `eth_getLogs` and the log scan that polling filters share.
//!
//! Bounds: the filter itself (at most 1,000 addresses, 4 topic positions of at most
//! 1,000 alternatives, see [`crate::params`]), the blocks one query may scan
//! (`max_logs_block_range`) and the logs it may return (`max_logs`, checked after each
//! block, so an answer holds at most that many plus one block's logs). One query reads
//! one snapshot, so a reorg during the scan cannot mix two chains.

use super::KomaApi;
use super::state::storage_err;
use crate::error::{self, invalid_params, server};
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::rpc::types::{Filter, FilterBlockOption, Log};
use jsonrpsee::core::RpcResult;
use koma_primitives::SealedHeader;
use koma_storage::Snapshot;

impl KomaApi {
    /// `eth_getLogs` (and `eth_getFilterLogs`).
    pub(super) fn logs_of(&self, filter: &Filter) -> RpcResult<Vec<Log>> {
        let snap = self.snapshot()?;
        if let FilterBlockOption::AtBlockHash(hash) = filter.block_option {
            let header = self
                .header_by_id(&snap, BlockId::hash(hash))?
                .ok_or_else(|| server("unknown block"))?;
            let mut out = Vec::new();
            self.collect_block_logs(&snap, filter, &header, &mut out)?;
            return Ok(out);
        }
        let head = snap.head().number();
        if let FilterBlockOption::Range {
            from_block,
            to_block,
        } = filter.block_option
        {
            // Like geth: a range that reaches past the head is an error, not clamped.
            let beyond = |t: Option<BlockNumberOrTag>| matches!(t, Some(BlockNumberOrTag::Number(n)) if n > head);
            if beyond(to_block) || beyond(from_block) {
                return Err(invalid_params(
                    "block range extends beyond current head block",
                ));
            }
        }
        let (from, to) = self.filter_range(&snap, filter)?;
        self.logs_in_range(&snap, filter, from, to)
    }

    /// The block range of a range filter in `snap` (`from > to` for an empty range).
    fn filter_range(&self, snap: &Snapshot<'_>, filter: &Filter) -> RpcResult<(u64, u64)> {
        let head = snap.head().number();
        match filter.block_option {
            FilterBlockOption::Range {
                from_block,
                to_block,
            } => {
                let from = from_block.map_or(head, |t| self.tag_number(snap, t));
                let to = to_block
                    .map_or(head, |t| self.tag_number(snap, t))
                    .min(head);
                if from > to && from <= head {
                    return Err(invalid_params("invalid block range params"));
                }
                Ok((from, to))
            }
            FilterBlockOption::AtBlockHash(_) => Ok((0, 0)),
        }
    }

    /// Logs of the canonical blocks `from..=to` of `snap` matching `filter`.
    pub(super) fn logs_in_range(
        &self,
        snap: &Snapshot<'_>,
        filter: &Filter,
        from: u64,
        to: u64,
    ) -> RpcResult<Vec<Log>> {
        let cfg = &self.state.config;
        if to
            .checked_sub(from)
            .is_some_and(|span| span >= cfg.max_logs_block_range)
        {
            return Err(error::limit(format!(
                "query exceeds max block range {}",
                cfg.max_logs_block_range
            )));
        }
        let mut out = Vec::new();
        for number in from..=to {
            let Some(header) = snap.header_by_number(number).map_err(storage_err)? else {
                break;
            };
            self.collect_block_logs(snap, filter, &header, &mut out)?;
            if out.len() > cfg.max_logs {
                return Err(error::limit(format!(
                    "query returned more than {} results",
                    cfg.max_logs
                )));
            }
        }
        Ok(out)
    }

    fn collect_block_logs(
        &self,
        snap: &Snapshot<'_>,
        filter: &Filter,
        header: &SealedHeader,
        out: &mut Vec<Log>,
    ) -> RpcResult<()> {
        if !filter.matches_bloom(header.header.logs_bloom) {
            return Ok(());
        }
        for receipt in self.receipts_of(snap, header)? {
            out.extend(
                receipt
                    .inner
                    .logs()
                    .iter()
                    .filter(|l| filter.matches(&l.inner))
                    .cloned(),
            );
        }
        Ok(())
    }
}
