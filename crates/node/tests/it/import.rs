//! A follower node importing peer blocks: extension, reorg to a heavier branch,
//! `removed` events for subscribers, and unwound transactions back in the pool.

use crate::launch;
use alloy::consensus::TxEnvelope;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, U256};
use koma_primitives::{Block, ChainSpec, dev};
use koma_producer::test_utils::{VecPool, signed_transfer, two_producer_spec};
use koma_producer::{ImportOutcome, build_block};
use koma_storage::Database;
use std::collections::VecDeque;

fn transfer(account: u32, nonce: u64) -> (TxEnvelope, Address) {
    signed_transfer(account, nonce, Address::with_last_byte(0x11), U256::from(1))
}

fn chain(
    spec: &ChainSpec,
    key: &PrivateKeySigner,
    account: u32,
    n: u64,
) -> (Vec<Block>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), spec).unwrap();
    let blocks = (0..n)
        .map(|i| {
            let mut pool = VecPool(VecDeque::from([transfer(account, i)]));
            build_block(spec, &db, &mut pool, key, spec.timestamp + i + 1)
                .unwrap()
                .block
        })
        .collect();
    (blocks, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_reorgs_and_announces_removed_blocks() {
    let spec = two_producer_spec();
    // A: 2 blocks by producer 0 from account 1 (td 3). B: 3 blocks by producer 1 from account 0 (td 5).
    let (chain_a, _da) = chain(&spec, &dev::dev_producer_key(0), 1, 2);
    let (chain_b, _db) = chain(&spec, &dev::dev_producer_key(1), 0, 3);

    let dir = tempfile::tempdir().unwrap();
    let node = launch(&spec, &dir, None, None).await;
    let mut events = node.events.subscribe();

    for b in &chain_a {
        assert!(matches!(
            node.import_block(b.clone()).await.unwrap(),
            ImportOutcome::Extended(_)
        ));
    }
    for b in &chain_b[..2] {
        assert!(matches!(
            node.import_block(b.clone()).await.unwrap(),
            ImportOutcome::SideChain { .. }
        ));
    }
    assert!(matches!(
        node.import_block(chain_b[2].clone()).await.unwrap(),
        ImportOutcome::Reorged { .. }
    ));
    assert_eq!(node.db.head().hash, chain_b[2].header.hash_slow());

    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push((ev.header.number(), ev.removed, ev.receipts.len()));
    }
    assert_eq!(
        seen,
        vec![
            (1, false, 1),
            (2, false, 1),
            (2, true, 1),
            (1, true, 1),
            (1, false, 1),
            (2, false, 1),
            (3, false, 1)
        ],
        "extensions, then the unwound blocks newest first with their receipts, then the new branch"
    );
    // Account 1's transfers were unwound and are valid on the new chain: back in the pool.
    for b in &chain_a {
        let hash = b.body.transactions[0].tx_hash();
        assert!(
            node.pool.contains(hash),
            "unwound transaction {hash} should be pending again"
        );
    }
    node.shutdown().await.unwrap();
}
