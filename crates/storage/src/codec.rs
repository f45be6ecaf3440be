//! Value encodings of the tables. All are canonical RLP or fixed-width big-endian.

use crate::{StorageError, StoredBody, TxLocation};
use alloy::consensus::{ReceiptEnvelope, TxEnvelope};
use alloy::eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rlp::Decodable;
use alloy_trie::TrieAccount;

pub(crate) fn encode_u64(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn decode_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

pub(crate) fn decode_b256(v: &[u8]) -> Result<B256, StorageError> {
    B256::try_from(v)
        .map_err(|_| StorageError::Corrupt(format!("expected 32 bytes, found {}", v.len())))
}

pub(crate) fn storage_key(address: Address, slot: U256) -> [u8; 52] {
    let mut k = [0u8; 52];
    k[..20].copy_from_slice(address.as_slice());
    k[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    k
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn encode_account(a: &TrieAccount) -> Vec<u8> {
    alloy_rlp::encode(a)
}

pub(crate) fn decode_account(v: &[u8]) -> Result<TrieAccount, StorageError> {
    TrieAccount::decode(&mut &v[..]).map_err(|e| corrupt("account", e))
}

#[derive(alloy_rlp::RlpEncodable, alloy_rlp::RlpDecodable)]
struct BodyRecord {
    transactions: Vec<Bytes>,
    senders: Vec<Address>,
}

pub(crate) fn encode_body(txs: &[TxEnvelope], senders: &[Address]) -> Vec<u8> {
    let record = BodyRecord {
        transactions: txs.iter().map(|t| t.encoded_2718().into()).collect(),
        senders: senders.to_vec(),
    };
    alloy_rlp::encode(&record)
}

pub(crate) fn decode_body(v: &[u8]) -> Result<StoredBody, StorageError> {
    let BodyRecord {
        transactions: encoded,
        senders,
    } = BodyRecord::decode(&mut &v[..]).map_err(|e| corrupt("body", e))?;
    let transactions = encoded
        .iter()
        .map(|b| TxEnvelope::decode_2718(&mut b.as_ref()).map_err(|e| corrupt("transaction", e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StoredBody {
        transactions,
        senders,
    })
}

pub(crate) fn encode_receipts(receipts: &[ReceiptEnvelope]) -> Vec<u8> {
    let encoded: Vec<Bytes> = receipts.iter().map(|r| r.encoded_2718().into()).collect();
    alloy_rlp::encode(encoded)
}

pub(crate) fn decode_receipts(v: &[u8]) -> Result<Vec<ReceiptEnvelope>, StorageError> {
    let encoded = Vec::<Bytes>::decode(&mut &v[..]).map_err(|e| corrupt("receipts", e))?;
    encoded
        .iter()
        .map(|b| ReceiptEnvelope::decode_2718(&mut b.as_ref()).map_err(|e| corrupt("receipt", e)))
        .collect()
}

pub(crate) fn encode_tx_location(l: &TxLocation) -> [u8; 48] {
    let mut out = [0u8; 48];
    out[..32].copy_from_slice(l.block_hash.as_slice());
    out[32..40].copy_from_slice(&l.block_number.to_be_bytes());
    out[40..].copy_from_slice(&l.index.to_be_bytes());
    out
}

pub(crate) fn decode_tx_location(v: &[u8]) -> Result<TxLocation, StorageError> {
    if v.len() != 48 {
        return Err(StorageError::Corrupt(format!(
            "tx location of {} bytes",
            v.len()
        )));
    }
    let n = |r: std::ops::Range<usize>| v.get(r).and_then(decode_u64).unwrap_or_default();
    Ok(TxLocation {
        block_hash: decode_b256(&v[..32])?,
        block_number: n(32..40),
        index: n(40..48),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_location_roundtrip() {
        let l = TxLocation {
            block_hash: B256::repeat_byte(7),
            block_number: 42,
            index: 3,
        };
        assert_eq!(decode_tx_location(&encode_tx_location(&l)).unwrap(), l);
        assert!(decode_tx_location(&[1, 2, 3]).is_err());
    }
}
