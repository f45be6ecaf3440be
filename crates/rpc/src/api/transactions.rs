//! Sending raw transactions; transactions and receipts by hash.

use super::KomaApi;
use super::state::storage_err;
use crate::convert::{RpcReceipt, rpc_transaction};
use crate::error::internal;
use alloy::rpc::types::Transaction;
use alloy_primitives::{B256, Bytes};
use jsonrpsee::core::RpcResult;
use jsonrpsee::types::ErrorObjectOwned;
use koma_txpool::PoolError;
use koma_txpool::PoolStateView;

impl KomaApi {
    /// `eth_sendRawTransaction`: bounded work (the pool refuses more than 128 KiB before
    /// decoding) that runs on the pool's admission threads, below the priority of block
    /// production, import and KoMaBFT (a burst of transactions waits there instead of
    /// taking the CPU from the blocks that would include them).
    pub(super) async fn submit_raw(&self, raw: Bytes) -> RpcResult<B256> {
        let pool = self.state.pool.clone();
        let view = PoolStateView(self.state.db.clone());
        let base_fee = self.state.next_base_fee();
        let (raw, added) = self
            .state
            .admission
            .run(move || {
                let added = pool.add_raw(&raw, &view, base_fee);
                (raw, added)
            })
            .await
            .map_err(internal)?;
        let hash = added.map_err(|e| {
            let message = match &e {
                PoolError::Decode(_) => undecodable(&raw).unwrap_or_else(|| e.to_string()),
                _ => e.to_string(),
            };
            ErrorObjectOwned::owned(e.rpc_code(), message, None::<()>)
        })?;
        if let Some(network) = &self.state.network {
            network.broadcast_transaction(raw);
        }
        Ok(hash)
    }

    pub(super) fn transaction_by_hash_in(&self, hash: B256) -> RpcResult<Option<Transaction>> {
        let snap = self.snapshot()?;
        if let Some(loc) = snap.tx_location(hash).map_err(storage_err)? {
            let Some(header) = snap
                .header_by_number(loc.block_number)
                .map_err(storage_err)?
            else {
                return Ok(None);
            };
            return self.tx_in(
                &snap,
                &header,
                usize::try_from(loc.index).unwrap_or(usize::MAX),
            );
        }
        Ok(self
            .state
            .pool
            .get(&hash)
            .map(|p| rpc_transaction(&p.tx, p.sender, None)))
    }

    pub(super) fn receipt_of(&self, hash: B256) -> RpcResult<Option<RpcReceipt>> {
        let snap = self.snapshot()?;
        let Some(loc) = snap.tx_location(hash).map_err(storage_err)? else {
            return Ok(None);
        };
        let Some(header) = snap
            .header_by_number(loc.block_number)
            .map_err(storage_err)?
        else {
            return Ok(None);
        };
        let index = usize::try_from(loc.index).unwrap_or(usize::MAX);
        Ok(self.receipts_of(&snap, &header)?.into_iter().nth(index))
    }
}

/// geth's message for bytes that are not a transaction envelope, where the structure
/// tells (`None`: the envelope is well formed and the pool's message stands). geth
/// decodes a legacy transaction (first byte above 0x7f) as an RLP list of 9 fields and
/// a typed one as a type byte followed by such a list.
pub(crate) fn undecodable(raw: &[u8]) -> Option<String> {
    let (&first, rest) = match raw.split_first() {
        Some(split) => split,
        None => return Some("typed transaction too short".into()),
    };
    if first > 0x7f {
        return rlp_list_error(raw, "types.LegacyTx", 9);
    }
    if rest.is_empty() {
        return Some("typed transaction too short".into());
    }
    let (name, fields) = match first {
        1 => ("types.AccessListTx", 11),
        2 => ("types.DynamicFeeTx", 12),
        4 => ("types.SetCodeTx", 13),
        _ => return None,
    };
    rlp_list_error(rest, name, fields)
}

/// Checks that `input` is exactly one RLP list of `fields` items, with geth's texts.
fn rlp_list_error(input: &[u8], name: &str, fields: usize) -> Option<String> {
    // The kind comes from the first byte alone (as in geth's stream decoder).
    if input.first().is_none_or(|&b| b < 0xc0) {
        return Some(format!("rlp: expected input list for {name}"));
    }
    let mut buf = input;
    let header = match alloy_rlp::Header::decode(&mut buf) {
        Ok(h) => h,
        Err(e) => return Some(rlp_error(&e, name)),
    };
    let Some(mut payload) = buf.get(..header.payload_length) else {
        return Some("rlp: value size exceeds available input length".into());
    };
    if buf.len() > header.payload_length {
        return Some("rlp: input contains more than one value".into());
    }
    let mut items = 0usize;
    while !payload.is_empty() {
        let item = match alloy_rlp::Header::decode(&mut payload) {
            Ok(h) => h,
            Err(e) => return Some(rlp_error(&e, name)),
        };
        let Some(rest) = payload.get(item.payload_length..) else {
            return Some("rlp: value size exceeds available input length".into());
        };
        payload = rest;
        items = items.saturating_add(1);
    }
    match items.cmp(&fields) {
        std::cmp::Ordering::Less => Some(format!("rlp: too few elements for {name}")),
        std::cmp::Ordering::Greater => {
            Some(format!("rlp: input list has too many elements for {name}"))
        }
        std::cmp::Ordering::Equal => None,
    }
}

fn rlp_error(e: &alloy_rlp::Error, name: &str) -> String {
    match e {
        alloy_rlp::Error::InputTooShort => "rlp: value size exceeds available input length".into(),
        alloy_rlp::Error::NonCanonicalSingleByte | alloy_rlp::Error::NonCanonicalSize => {
            format!("rlp: non-canonical size information for {name}")
        }
        alloy_rlp::Error::Overflow => "rlp: value size exceeds available input length".into(),
        other => format!("rlp: {other} for {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::undecodable;

    #[test]
    fn undecodable_raw_transactions_get_geths_texts() {
        let text = |raw: &[u8]| undecodable(raw).unwrap();
        assert_eq!(text(&[]), "typed transaction too short");
        assert_eq!(text(&[0x02]), "typed transaction too short");
        assert_eq!(text(&[0xc0]), "rlp: too few elements for types.LegacyTx");
        assert_eq!(
            text(&[0x02, 0xc0]),
            "rlp: too few elements for types.DynamicFeeTx"
        );
        assert_eq!(
            text(&[0x01, 0xc1, 0x80]),
            "rlp: too few elements for types.AccessListTx"
        );
        assert_eq!(
            text(&[0x04, 0x80]),
            "rlp: expected input list for types.SetCodeTx"
        );
        assert_eq!(text(&[0x81]), "rlp: expected input list for types.LegacyTx");
        assert_eq!(
            text(&[0xc5, 0x01]),
            "rlp: value size exceeds available input length"
        );
        assert_eq!(
            text(&[0xc1, 0x01, 0x01]),
            "rlp: input contains more than one value"
        );
        assert_eq!(
            text(&[0xc3, 0x83, 0x01, 0x02]),
            "rlp: value size exceeds available input length"
        );
        let ten = [0xca, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(
            text(&ten),
            "rlp: input list has too many elements for types.LegacyTx"
        );
        // Well-formed envelopes are left to the pool; so are unknown types.
        let nine = [0xc9, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(undecodable(&nine), None);
        assert_eq!(undecodable(&[0x05, 0xc0]), None);
    }
}
