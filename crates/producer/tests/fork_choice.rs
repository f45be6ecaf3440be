//! Fork choice: side branches are stored, a strictly heavier branch triggers a reorg
//! (unwind + re-execution), an invalid heavier branch leaves the old chain in place,
//! and the reorg depth is bounded.

use alloy::consensus::TxEnvelope;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, B256, U256};
use koma_primitives::{Block, ChainSpec, dev};
use koma_producer::test_utils::{VecPool, signed_transfer, two_producer_spec};
use koma_producer::{ImportError, ImportOutcome, build_block, import};
use koma_storage::Database;
use std::collections::VecDeque;

fn spec() -> ChainSpec {
    two_producer_spec()
}

fn transfer(nonce: u64, to: u8) -> (TxEnvelope, Address) {
    signed_transfer(0, nonce, Address::with_last_byte(to), U256::from(1_000_000))
}

/// Builds `n` blocks with `key` on `db`, one transfer each to `to`; returns them.
fn build_chain(
    spec: &ChainSpec,
    db: &Database,
    key: &PrivateKeySigner,
    n: u64,
    to: u8,
) -> Vec<Block> {
    (0..n)
        .map(|i| {
            let pool = VecPool(VecDeque::from([transfer(i, to)]));
            let mut pool = pool;
            build_block(spec, db, &mut pool, key, spec.timestamp + i + 1)
                .unwrap()
                .block
        })
        .collect()
}

struct Setup {
    spec: ChainSpec,
    a: Database,
    b: Database,
    chain_a: Vec<Block>,
    chain_b: Vec<Block>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Chain A: 2 blocks by producer 0 (difficulties 1 + 2 = 3).
/// Chain B: 3 blocks by producer 1 (difficulties 2 + 1 + 2 = 5).
fn setup() -> Setup {
    let spec = spec();
    let (da, dbb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Database::open(da.path(), &spec).unwrap();
    let b = Database::open(dbb.path(), &spec).unwrap();
    let chain_a = build_chain(&spec, &a, &dev::dev_producer_key(0), 2, 0xaa);
    let chain_b = build_chain(&spec, &b, &dev::dev_producer_key(1), 3, 0xbb);
    Setup {
        spec,
        a,
        b,
        chain_a,
        chain_b,
        _dirs: (da, dbb),
    }
}

#[test]
fn heavier_branch_wins_and_reports_what_changed() {
    let s = setup();
    let a_head = s.a.head();
    assert_eq!(
        s.a.total_difficulty(a_head.hash).unwrap(),
        Some(U256::from(3))
    );

    let out = import(&s.spec, &s.a, &s.chain_b[0], 64).unwrap();
    assert!(
        matches!(out, ImportOutcome::SideChain { total_difficulty, .. } if total_difficulty == U256::from(2))
    );
    let out = import(&s.spec, &s.a, &s.chain_b[1], 64).unwrap();
    assert!(
        matches!(out, ImportOutcome::SideChain { .. }),
        "a tie keeps the chain seen first"
    );
    assert_eq!(s.a.head(), a_head);
    assert!(matches!(
        import(&s.spec, &s.a, &s.chain_b[1], 64).unwrap(),
        ImportOutcome::AlreadyKnown
    ));

    match import(&s.spec, &s.a, &s.chain_b[2], 64).unwrap() {
        ImportOutcome::Reorged {
            new_head,
            unwound,
            applied,
        } => {
            assert_eq!(new_head.hash, s.b.head().hash);
            assert_eq!(unwound.len(), 2);
            assert_eq!(unwound[0].0.hash, a_head.hash, "newest first");
            assert_eq!(
                unwound
                    .iter()
                    .map(|(_, b)| b.transactions.len())
                    .sum::<usize>(),
                2
            );
            assert_eq!(applied.len(), 3);
        }
        other => panic!("expected a reorg, got {other:?}"),
    }
    // Same state as the node that built B, and A's transfers are gone.
    assert_eq!(s.a.head().header.state_root, s.b.head().header.state_root);
    assert!(
        s.a.account(Address::with_last_byte(0xaa))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.a.account(Address::with_last_byte(0xbb))
            .unwrap()
            .unwrap()
            .balance,
        U256::from(3_000_000)
    );
    for (i, block) in s.chain_b.iter().enumerate() {
        assert_eq!(
            s.a.canonical_hash(i as u64 + 1).unwrap(),
            Some(block.header.hash_slow())
        );
        let tx = block.body.transactions[0].tx_hash();
        assert_eq!(
            s.a.tx_location(*tx).unwrap().unwrap().block_number,
            i as u64 + 1
        );
    }
    for block in &s.chain_a {
        assert!(
            s.a.tx_location(*block.body.transactions[0].tx_hash())
                .unwrap()
                .is_none()
        );
    }
}

#[test]
fn invalid_heavier_branch_restores_the_old_chain() {
    let s = setup();
    let a_head = s.a.head();
    let mut bad = s.chain_b[2].clone();
    bad.header.header.state_root = B256::repeat_byte(9);
    bad.header = koma_primitives::SignedHeader::sign(
        bad.header.header.clone(),
        s.spec.chain_id,
        &dev::dev_producer_key(1),
    )
    .unwrap();
    import(&s.spec, &s.a, &s.chain_b[0], 64).unwrap();
    import(&s.spec, &s.a, &s.chain_b[1], 64).unwrap();
    let err = import(&s.spec, &s.a, &bad, 64).unwrap_err();
    assert!(err.to_string().contains("state root mismatch"), "{err}");
    assert_eq!(s.a.head(), a_head);
    assert_eq!(
        s.a.account(Address::with_last_byte(0xaa))
            .unwrap()
            .unwrap()
            .balance,
        U256::from(2_000_000)
    );
    assert!(
        s.a.account(Address::with_last_byte(0xbb))
            .unwrap()
            .is_none()
    );
}

#[test]
fn reorg_depth_is_bounded_and_unknown_parents_are_reported() {
    let s = setup();
    import(&s.spec, &s.a, &s.chain_b[0], 1).unwrap();
    import(&s.spec, &s.a, &s.chain_b[1], 1).unwrap();
    let err = import(&s.spec, &s.a, &s.chain_b[2], 1).unwrap_err();
    assert!(
        matches!(err, ImportError::ReorgTooDeep { depth: 2, max: 1 }),
        "{err}"
    );

    let spec = spec();
    let dir = tempfile::tempdir().unwrap();
    let fresh = Database::open(dir.path(), &spec).unwrap();
    let err = import(&spec, &fresh, &s.chain_b[2], 64).unwrap_err();
    assert!(
        matches!(err, ImportError::UnknownParent { number: 3, .. }),
        "{err}"
    );
}
