//! Deposits in blocks (ADR 0017): a producer announces the deposits confirmed in its
//! reading in its header's watermark, and once that block is agreed a later block
//! applies them as system transactions at its start, in id order from the L2 bridge's
//! `lastStateId`, up to exactly an announced watermark. An importer checks that without
//! an L1 and refuses a block that reorders, repeats, moves, alters, splits or invents a
//! deposit, carries a system transaction that is not one, or announces a watermark that
//! goes back, changes or jumps too far.

use alloy::consensus::proofs::calculate_transaction_root;
use alloy::consensus::{SignableTransaction, Transaction, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, U256};
use koma_primitives::bridge::{
    self, Deposit, KMC_TOKEN, L2_BRIDGE_ADDRESS, LAST_STATE_HASH_SLOT, LAST_STATE_ID_SLOT,
    SYSTEM_ADDRESS, Watermark,
};
use koma_primitives::{Block, ChainSpec, SignedHeader, dev};
use koma_producer::test_utils::{VecDeposits as Confirmed, VecPool, signed_transfer};
use koma_producer::{ImportError, build_block_with, import_block};
use koma_storage::{Database, StateReader};
use std::collections::VecDeque;

fn kmc_to(to: Address, amount: u64) -> Bytes {
    Deposit {
        token: KMC_TOKEN,
        from: Address::with_last_byte(0xaa),
        to,
        amount: U256::from(amount),
        metadata: None,
    }
    .encode()
}

fn recipient(i: u8) -> Address {
    Address::with_last_byte(0x40 + i)
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

fn produce(p: &Pair, deposits: &Confirmed, txs: VecDeque<(TxEnvelope, Address)>) -> Block {
    let key = dev::dev_producer_key(0);
    let ts = p.spec.timestamp + p.producer.head().number() + 1;
    build_block_with(
        &p.spec,
        &p.producer,
        &mut VecPool(txs),
        deposits,
        &koma_producer::Elections::genesis(),
        &key,
        ts,
        None,
    )
    .unwrap()
    .block
}

/// `block` with its transactions replaced, the transactions root recomputed and the
/// header sealed again by the producer: everything an importer checks before executing
/// is right.
fn with_transactions(p: &Pair, block: &Block, txs: Vec<TxEnvelope>) -> Block {
    let mut header = block.header.header.clone();
    header.transactions_root = calculate_transaction_root(&txs);
    let mut body = block.body.clone();
    body.transactions = txs;
    Block {
        header: SignedHeader::sign(header, p.spec.chain_id, &dev::dev_producer_key(0)).unwrap(),
        body,
    }
}

fn bridge_slot(db: &Database, slot: U256) -> U256 {
    db.latest().storage(L2_BRIDGE_ADDRESS, slot).unwrap()
}

/// The reason an importer gives for refusing `result`: a refused transaction or a
/// broken chain rule.
fn refused(result: Result<koma_primitives::SealedHeader, ImportError>, what: &str) -> String {
    match result {
        Err(ImportError::BadTransaction { reason, .. } | ImportError::Invalid { reason, .. }) => {
            reason
        }
        other => panic!("{what}: expected a refused block, got {other:?}"),
    }
}

/// `block` with its header changed by `change` and sealed again.
fn with_header(
    p: &Pair,
    block: &Block,
    change: impl FnOnce(&mut alloy::consensus::Header),
) -> Block {
    let mut header = block.header.header.clone();
    change(&mut header);
    Block {
        header: SignedHeader::sign(header, p.spec.chain_id, &dev::dev_producer_key(0)).unwrap(),
        body: block.body.clone(),
    }
}

fn hash_chain(data: &[Bytes]) -> B256 {
    Watermark::default().extend(data).hash
}

#[test]
fn a_block_announces_confirmed_deposits_and_its_child_applies_them_in_order() {
    let p = pair();
    let data: Vec<Bytes> = (0..3)
        .map(|i| kmc_to(recipient(i), 1_000 + u64::from(i)))
        .collect();
    let confirmed = Confirmed(data.clone());
    let transfer = || {
        VecDeque::from([signed_transfer(
            0,
            p.producer.head().number(),
            Address::with_last_byte(9),
            U256::from(5),
        )])
    };

    // block 1 announces them (nonce = id, extraData = hash chain) and applies none
    let announcing = produce(&p, &confirmed, transfer());
    assert_eq!(
        announcing.body.transactions.len(),
        1,
        "only the user's transfer"
    );
    let mark = Watermark::of(&announcing.header.header).unwrap();
    assert_eq!(
        mark,
        Watermark {
            id: 3,
            hash: hash_chain(&data)
        }
    );
    assert_eq!(u64::from_be_bytes(announcing.header.nonce.0), 3);
    assert_eq!(&announcing.header.extra_data[..], mark.hash.as_slice());
    import_block(&p.spec, &p.importer, &announcing).unwrap();

    // block 2, once block 1 is agreed, applies them first
    let block = produce(&p, &confirmed, transfer());
    let txs = &block.body.transactions;
    assert_eq!(txs.len(), 4, "three deposits and the user's transfer");
    for (i, tx) in txs.iter().take(3).enumerate() {
        let id = i as u64 + 1;
        assert!(bridge::is_system_tx(tx));
        assert_eq!(
            bridge::deposit_of_tx(p.spec.chain_id, tx),
            Some((id, data[i].clone()))
        );
        assert_eq!(tx.gas_price(), Some(0));
    }
    assert!(!bridge::is_system_tx(&txs[3]));
    assert_eq!(
        Watermark::of(&block.header.header).unwrap(),
        mark,
        "nothing new to announce"
    );
    for i in 0..3u8 {
        let balance = p
            .producer
            .latest()
            .account(recipient(i))
            .unwrap()
            .unwrap()
            .balance;
        assert_eq!(balance, U256::from(1_000 + u64::from(i)));
    }
    assert_eq!(bridge_slot(&p.producer, LAST_STATE_ID_SLOT), U256::from(3));
    assert_eq!(
        B256::from(bridge_slot(&p.producer, LAST_STATE_HASH_SLOT)),
        mark.hash,
        "L2 keeps L1's hash chain"
    );
    let imported = import_block(&p.spec, &p.importer, &block).unwrap();
    assert_eq!(imported.hash, p.producer.head().hash);

    // more confirmed than one block may announce: the devnet's cap, then the rest
    let cap = bridge::announcement_cap(&p.spec);
    assert!(cap >= 2, "{cap}");
    let more = Confirmed(
        data.iter()
            .cloned()
            .chain((0..cap + 1).map(|i| kmc_to(recipient(3), 7 + i)))
            .collect(),
    );
    let next = produce(&p, &more, VecDeque::new());
    assert!(
        next.body.transactions.is_empty(),
        "announced, not applied yet"
    );
    assert_eq!(Watermark::of(&next.header.header).unwrap().id, 3 + cap);
    import_block(&p.spec, &p.importer, &next).unwrap();
    let next = produce(&p, &more, VecDeque::new());
    assert_eq!(next.body.transactions.len() as u64, cap, "the agreed ones");
    assert_eq!(
        bridge::deposit_of_tx(p.spec.chain_id, &next.body.transactions[0]).map(|d| d.0),
        Some(4)
    );
    assert_eq!(Watermark::of(&next.header.header).unwrap().id, 4 + cap);
    import_block(&p.spec, &p.importer, &next).unwrap();
    let last = produce(&p, &more, VecDeque::new());
    assert_eq!(last.body.transactions.len(), 1, "the last one, none twice");
    import_block(&p.spec, &p.importer, &last).unwrap();
    // nothing new confirmed: a block without deposits
    let empty = produce(&p, &more, VecDeque::new());
    assert!(empty.body.transactions.is_empty());
    import_block(&p.spec, &p.importer, &empty).unwrap();
}

#[test]
fn nothing_is_applied_before_it_is_agreed() {
    struct NotAgreed(Confirmed);
    impl koma_producer::DepositSource for NotAgreed {
        fn confirmed_from(&self, first: u64, max: usize) -> Vec<Bytes> {
            self.0.confirmed_from(first, max)
        }
        fn agreed_through(&self) -> u64 {
            0
        }
    }
    let p = pair();
    let source = NotAgreed(Confirmed(vec![kmc_to(recipient(0), 1)]));
    let key = dev::dev_producer_key(0);
    for n in 1..=3 {
        let built = build_block_with(
            &p.spec,
            &p.producer,
            &mut VecPool::default(),
            &source,
            &koma_producer::Elections::genesis(),
            &key,
            p.spec.timestamp + n,
            None,
        )
        .unwrap();
        assert!(
            built.block.body.transactions.is_empty(),
            "block {n} applies nothing"
        );
        assert_eq!(
            Watermark::of(&built.block.header.header).unwrap().id,
            1,
            "announced once, carried on"
        );
    }
}

#[test]
fn importers_refuse_deposits_out_of_order_repeated_moved_forged_or_not_announced() {
    let p = pair();
    let data: Vec<Bytes> = (0..2).map(|i| kmc_to(recipient(i), 500)).collect();
    let announcing = produce(&p, &Confirmed(data.clone()), VecDeque::new());
    import_block(&p.spec, &p.importer, &announcing).unwrap();
    let user = VecDeque::from([signed_transfer(
        0,
        0,
        Address::with_last_byte(9),
        U256::from(5),
    )]);
    let block = produce(&p, &Confirmed(data.clone()), user);
    let txs = block.body.transactions.clone();
    let (d1, d2, transfer) = (txs[0].clone(), txs[1].clone(), txs[2].clone());

    let reordered = with_transactions(&p, &block, vec![d2.clone(), d1.clone(), transfer.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &reordered), "reordered");
    assert!(
        reason.contains("applies deposit 2 after deposit 0"),
        "{reason}"
    );

    let repeated = with_transactions(&p, &block, vec![d1.clone(), d1.clone(), transfer.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &repeated), "repeated");
    assert!(
        reason.contains("applies deposit 1 after deposit 1"),
        "{reason}"
    );

    let moved = with_transactions(&p, &block, vec![d1.clone(), transfer.clone(), d2.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &moved), "moved");
    assert!(reason.contains("no ancestor announced"), "{reason}");

    // the same call with another gas limit under the all-zero signature
    let TxEnvelope::Legacy(signed) = &d1 else {
        panic!("deposits are legacy transactions")
    };
    let mut changed = signed.tx().clone();
    changed.gas_limit = 10_000_000;
    let forged = TxEnvelope::Legacy(changed.into_signed(*signed.signature()));
    let bad = with_transactions(&p, &block, vec![forged, d2.clone(), transfer.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &bad), "forged");
    assert!(reason.contains("not a deposit transaction"), "{reason}");

    // skipping deposit 1
    let skipped = with_transactions(&p, &block, vec![d2.clone(), transfer.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &skipped), "skipped");
    assert!(
        reason.contains("applies deposit 2 after deposit 0"),
        "{reason}"
    );

    // stopping inside the announcement: its hash chain cannot be checked
    let partial = with_transactions(&p, &block, vec![d1.clone(), transfer.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &partial), "partial");
    assert!(
        reason.contains("up to 1, which no ancestor announced"),
        "{reason}"
    );

    // a well-formed deposit transaction with other data than announced
    let altered = bridge::deposit_tx(p.spec.chain_id, 2, kmc_to(recipient(1), 5_000));
    let bad = with_transactions(&p, &block, vec![d1.clone(), altered, transfer.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &bad), "altered");
    assert!(reason.contains("not the ones announced"), "{reason}");

    // one more than announced
    let third = bridge::deposit_tx(p.spec.chain_id, 3, kmc_to(recipient(2), 1));
    let bad = with_transactions(&p, &block, vec![d1.clone(), d2, third, transfer]);
    let reason = refused(import_block(&p.spec, &p.importer, &bad), "beyond");
    assert!(
        reason.contains("up to 3, which no ancestor announced"),
        "{reason}"
    );

    // the announcement in the header: never back, never another hash for an id,
    // never more than the cap at once
    let cap = bridge::announcement_cap(&p.spec);
    let mark = Watermark::of(&announcing.header.header).unwrap();
    for (what, lie, expected) in [
        (
            "back",
            Watermark {
                id: 1,
                hash: hash_chain(&data[..1]),
            },
            "goes back",
        ),
        (
            "rehashed",
            Watermark {
                id: 2,
                hash: B256::repeat_byte(7),
            },
            "changes its hash",
        ),
        (
            "too many",
            Watermark {
                id: 2 + cap + 1,
                hash: B256::repeat_byte(7),
            },
            "at most",
        ),
    ] {
        let bad = with_header(&p, &block, |h| lie.write(h));
        let reason = refused(import_block(&p.spec, &p.importer, &bad), what);
        assert!(reason.contains(expected), "{what}: {reason}");
    }
    let bad = with_header(&p, &block, |h| h.extra_data = Bytes::from(vec![1; 20]));
    let reason = refused(import_block(&p.spec, &p.importer, &bad), "short hash");
    assert!(reason.contains("32-byte deposit hash chain"), "{reason}");
    assert_eq!(mark.id, 2);

    // the importer is untouched and takes the real block
    assert_eq!(p.importer.head().number(), 1);
    import_block(&p.spec, &p.importer, &block).unwrap();
    assert_eq!(p.importer.head().hash, p.producer.head().hash);
    assert_eq!(
        p.importer
            .latest()
            .storage(L2_BRIDGE_ADDRESS, LAST_STATE_ID_SLOT)
            .unwrap(),
        U256::from(2)
    );
    let system = p
        .importer
        .latest()
        .account(SYSTEM_ADDRESS)
        .unwrap()
        .unwrap();
    assert_eq!(
        system.nonce, 2,
        "one nonce per deposit: id - 1 is never reused"
    );
}
