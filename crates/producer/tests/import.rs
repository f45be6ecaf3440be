//! Block import: a block built by one node is accepted by another with identical
//! roots; a block that breaks any rule is rejected and leaves the importer untouched.

use alloy::consensus::TxEnvelope;
use alloy_primitives::{Address, U256};
use koma_primitives::SignedHeader;
use koma_primitives::{Block, ChainSpec, dev};
use koma_producer::test_utils::{VecPool, signed_transfer};
use koma_producer::{ImportError, build_block, import_block};
use koma_storage::Database;
use std::collections::VecDeque;

fn transfers(n: u64) -> VecDeque<(TxEnvelope, Address)> {
    (0..n)
        .map(|nonce| {
            signed_transfer(
                0,
                nonce,
                Address::with_last_byte(nonce as u8 + 1),
                U256::from(1000 + nonce),
            )
        })
        .collect()
}

struct Pair {
    spec: ChainSpec,
    producer: Database,
    importer: Database,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn pair() -> Pair {
    let spec = ChainSpec::devnet();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    Pair {
        producer: Database::open(a.path(), &spec).unwrap(),
        importer: Database::open(b.path(), &spec).unwrap(),
        spec,
        _dirs: (a, b),
    }
}

fn produce(p: &Pair, txs: u64) -> Block {
    let key = dev::dev_producer_key(0);
    let ts = p.spec.timestamp + p.producer.head().number() + 1;
    build_block(&p.spec, &p.producer, &mut VecPool(transfers(txs)), &key, ts)
        .unwrap()
        .block
}

#[test]
fn imported_blocks_reproduce_the_producers_chain() {
    let p = pair();
    let block = produce(&p, 5);
    let imported = import_block(&p.spec, &p.importer, &block).unwrap();
    assert_eq!(imported.hash, p.producer.head().hash);
    assert_eq!(
        imported.header.state_root,
        p.producer.head().header.state_root
    );
    assert_eq!(
        p.importer.receipts(imported.hash).unwrap(),
        p.producer.receipts(imported.hash).unwrap()
    );
    // A second (empty) block on top.
    let key = dev::dev_producer_key(0);
    let next = build_block(
        &p.spec,
        &p.producer,
        &mut VecPool(VecDeque::new()),
        &key,
        p.spec.timestamp + 9,
    )
    .unwrap()
    .block;
    import_block(&p.spec, &p.importer, &next).unwrap();
    assert_eq!(p.importer.head().hash, p.producer.head().hash);
}

/// Re-seals `block` after `tamper` so only the tampered rule is broken.
fn tampered(block: &Block, tamper: impl FnOnce(&mut Block)) -> Block {
    let mut b = block.clone();
    tamper(&mut b);
    reseal(&mut b, &dev::dev_producer_key(0));
    b
}

fn reseal(b: &mut Block, key: &alloy::signers::local::PrivateKeySigner) {
    let chain_id = ChainSpec::devnet().chain_id;
    b.header = SignedHeader::sign(b.header.header.clone(), chain_id, key).unwrap();
}

fn assert_rejected(p: &Pair, block: &Block, expect: &str) {
    let before = p.importer.head();
    let err = import_block(&p.spec, &p.importer, block).unwrap_err();
    assert!(
        err.to_string().contains(expect),
        "expected '{expect}', got: {err}"
    );
    assert_eq!(
        p.importer.head(),
        before,
        "a rejected block must leave the head"
    );
    assert!(
        p.importer
            .header(block.header.hash_slow())
            .unwrap()
            .is_none(),
        "nothing written"
    );
}

#[test]
fn large_blocks_recover_senders_in_parallel_and_known_senders_are_used() {
    struct Known(std::collections::HashMap<alloy_primitives::B256, Address>);
    impl koma_producer::KnownSenders for Known {
        fn sender(&self, tx: &alloy_primitives::B256) -> Option<Address> {
            self.0.get(tx).copied()
        }
    }
    let p = pair();
    // 150 transactions: above the parallel-recovery threshold.
    let block = produce(&p, 150);
    assert_eq!(block.body.transactions.len(), 150);
    // Half of the senders "known" (as the pool would know them), half recovered.
    let sender = dev::dev_accounts(1)[0].0;
    let known = Known(
        block
            .body
            .transactions
            .iter()
            .step_by(2)
            .map(|tx| (*tx.tx_hash(), sender))
            .collect(),
    );
    let imported = koma_producer::import_block_with(
        &p.spec,
        &p.importer,
        &block,
        &known,
        &koma_producer::Elections::genesis(),
    )
    .unwrap();
    assert_eq!(imported.hash, p.producer.head().hash);
    let body = p.importer.body(imported.hash).unwrap().unwrap();
    assert!(body.senders.iter().all(|s| *s == sender));
}

#[test]
fn blocks_breaking_a_rule_are_rejected_without_side_effects() {
    let p = pair();
    let good = produce(&p, 3);

    let b = tampered(&good, |b| {
        b.header.header.state_root = alloy_primitives::B256::repeat_byte(1)
    });
    assert_rejected(&p, &b, "state root mismatch");

    let b = tampered(&good, |b| b.header.header.gas_used += 1);
    assert_rejected(&p, &b, "gas used mismatch");

    let b = tampered(&good, |b| {
        b.header.header.receipts_root = alloy_primitives::B256::repeat_byte(2)
    });
    assert_rejected(&p, &b, "receipts root mismatch");

    let b = tampered(&good, |b| {
        b.body.transactions.pop();
    });
    assert_rejected(&p, &b, "transactions root mismatch");

    let b = tampered(&good, |b| b.header.header.base_fee_per_gas = Some(1));
    assert_rejected(&p, &b, "base fee mismatch");

    let b = tampered(&good, |b| b.header.header.number += 1);
    assert_rejected(&p, &b, "does not extend");

    // Sealed by a key that is not a producer.
    let mut b = good.clone();
    reseal(&mut b, &dev::dev_producer_key(7));
    assert_rejected(&p, &b, "is not a producer");

    // More extra data than Ethereum's 32 bytes, even when sealed by the right key.
    let b = tampered(&good, |b| b.header.header.extra_data = vec![7; 33].into());
    assert_rejected(&p, &b, "extra data is 33 bytes");

    // The right producer's seal, but over another chain's digest.
    let mut b = good.clone();
    b.header = SignedHeader::sign(
        b.header.header.clone(),
        p.spec.chain_id + 1,
        &dev::dev_producer_key(0),
    )
    .unwrap();
    assert_rejected(&p, &b, "is not a producer");

    // Stamped before its slot opens (one block time after the parent).
    let b = tampered(&good, |b| b.header.header.timestamp = p.spec.timestamp);
    assert_rejected(&p, &b, "too early");

    // Seal bytes altered.
    let mut b = good.clone();
    b.header.seal[40] ^= 0xff;
    let err = import_block(&p.spec, &p.importer, &b).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::BadSeal { .. } | ImportError::Mismatch { .. }
        ),
        "{err}"
    );

    // The untampered block still imports afterwards.
    import_block(&p.spec, &p.importer, &good).unwrap();
    assert_eq!(p.importer.head().hash, good.header.hash_slow());
}
