//! Value encodings of the tables. All are canonical RLP or fixed-width big-endian.

use crate::{StorageError, StoredBody, TxLocation};
use alloy::consensus::{Receipt, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType};
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

pub(crate) fn decode_seal(hash: B256, v: &[u8]) -> Result<koma_primitives::Seal, StorageError> {
    koma_primitives::Seal::try_from(v)
        .map_err(|_| corrupt(&format!("seal of {hash}"), format!("{} bytes", v.len())))
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

/// A receipt as stored: the bloom is left out (it is derived from the logs on read),
/// which saves 256 bytes per transaction.
#[derive(alloy_rlp::RlpEncodable, alloy_rlp::RlpDecodable)]
struct StoredReceipt {
    tx_type: u8,
    success: bool,
    cumulative_gas_used: u64,
    logs: Vec<alloy_primitives::Log>,
}

pub(crate) fn encode_receipts(receipts: &[ReceiptEnvelope]) -> Vec<u8> {
    let stored: Vec<StoredReceipt> = receipts
        .iter()
        .map(|r| StoredReceipt {
            tx_type: r.tx_type() as u8,
            success: r.status(),
            cumulative_gas_used: r.cumulative_gas_used(),
            logs: r.logs().to_vec(),
        })
        .collect();
    alloy_rlp::encode(stored)
}

pub(crate) fn decode_receipts(v: &[u8]) -> Result<Vec<ReceiptEnvelope>, StorageError> {
    let stored = Vec::<StoredReceipt>::decode(&mut &v[..]).map_err(|e| corrupt("receipts", e))?;
    stored
        .into_iter()
        .map(|r| {
            let receipt = Receipt {
                status: r.success.into(),
                cumulative_gas_used: r.cumulative_gas_used,
                logs: r.logs,
            };
            let with_bloom = ReceiptWithBloom::from(receipt);
            Ok(
                match TxType::try_from(r.tx_type).map_err(|e| corrupt("receipt type", e))? {
                    TxType::Legacy => ReceiptEnvelope::Legacy(with_bloom),
                    TxType::Eip2930 => ReceiptEnvelope::Eip2930(with_bloom),
                    TxType::Eip1559 => ReceiptEnvelope::Eip1559(with_bloom),
                    TxType::Eip4844 => ReceiptEnvelope::Eip4844(with_bloom),
                    TxType::Eip7702 => ReceiptEnvelope::Eip7702(with_bloom),
                },
            )
        })
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
        block_hash: decode_b256(v.get(..32).unwrap_or_default())?,
        block_number: n(32..40),
        index: n(40..48),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_roundtrip_with_derived_bloom() {
        use alloy_primitives::{Address, LogData};
        let log = alloy_primitives::Log {
            address: Address::repeat_byte(1),
            data: LogData::new_unchecked(vec![B256::repeat_byte(2)], Bytes::from_static(b"x")),
        };
        let mk = |ok: bool, gas: u64| {
            ReceiptWithBloom::from(Receipt {
                status: ok.into(),
                cumulative_gas_used: gas,
                logs: vec![log.clone()],
            })
        };
        let receipts = vec![
            ReceiptEnvelope::Legacy(mk(true, 21_000)),
            ReceiptEnvelope::Eip1559(mk(false, 50_000)),
            ReceiptEnvelope::Eip7702(mk(true, 90_000)),
        ];
        assert_eq!(
            decode_receipts(&encode_receipts(&receipts)).unwrap(),
            receipts
        );
        assert!(decode_receipts(&[0xc1, 0x05]).is_err());
    }

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

    proptest::proptest! {
        /// Stored receipts decode to exactly what was encoded, blooms included.
        #[test]
        fn receipts_roundtrip_arbitrary(
            entries in proptest::collection::vec(
                (0u8..5, proptest::prelude::any::<bool>(), proptest::prelude::any::<u64>(),
                 proptest::collection::vec((proptest::prelude::any::<[u8; 20]>(),
                    proptest::collection::vec(proptest::prelude::any::<[u8; 32]>(), 0..5),
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100)), 0..4)),
                0..8)
        ) {
            use alloy_primitives::{Address, LogData};
            let receipts: Vec<ReceiptEnvelope> = entries
                .into_iter()
                .map(|(ty, ok, gas, logs)| {
                    let logs = logs
                        .into_iter()
                        .map(|(a, topics, data)| alloy_primitives::Log {
                            address: Address::from(a),
                            data: LogData::new_unchecked(topics.into_iter().map(B256::from).collect(), data.into()),
                        })
                        .collect();
                    let r = ReceiptWithBloom::from(Receipt { status: ok.into(), cumulative_gas_used: gas, logs });
                    match ty {
                        0 => ReceiptEnvelope::Legacy(r),
                        1 => ReceiptEnvelope::Eip2930(r),
                        2 => ReceiptEnvelope::Eip1559(r),
                        3 => ReceiptEnvelope::Eip4844(r),
                        _ => ReceiptEnvelope::Eip7702(r),
                    }
                })
                .collect();
            proptest::prop_assert_eq!(decode_receipts(&encode_receipts(&receipts)).unwrap(), receipts);
        }

        /// Bodies (signed transactions and senders) roundtrip.
        #[test]
        fn bodies_roundtrip_arbitrary(
            txs in proptest::collection::vec((proptest::prelude::any::<u64>(), proptest::prelude::any::<u64>(),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)), 0..6)
        ) {
            use alloy::consensus::{SignableTransaction, TxEip1559};
            use alloy::network::TxSignerSync;
            let key = koma_primitives::dev::dev_accounts(1).remove(0).1;
            let mut envelopes = Vec::new();
            let mut senders = Vec::new();
            for (nonce, value, input) in txs {
                let mut tx = TxEip1559 { chain_id: 42424, nonce, gas_limit: 21_000, value: U256::from(value), input: input.into(), ..Default::default() };
                let sig = key.sign_transaction_sync(&mut tx).unwrap();
                envelopes.push(TxEnvelope::from(tx.into_signed(sig)));
                senders.push(key.address());
            }
            let body = decode_body(&encode_body(&envelopes, &senders)).unwrap();
            proptest::prop_assert_eq!(body.transactions, envelopes);
            proptest::prop_assert_eq!(body.senders, senders);
        }
    }
}
