//! Deposits in blocks: a producer applies the confirmed deposits as system transactions
//! at the start of its block, in id order from the L2 bridge's `lastStateId`; an importer
//! accepts exactly that and refuses a block that reorders, repeats, moves or alters a
//! deposit transaction, or carries a system transaction that is not one.

use alloy::consensus::proofs::calculate_transaction_root;
use alloy::consensus::{SignableTransaction, Transaction, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, U256};
use koma_primitives::bridge::{
    self, Deposit, KMC_TOKEN, L2_BRIDGE_ADDRESS, LAST_STATE_HASH_SLOT, LAST_STATE_ID_SLOT,
    SYSTEM_ADDRESS,
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

fn refused(result: Result<koma_primitives::SealedHeader, ImportError>, what: &str) -> String {
    match result {
        Err(ImportError::BadTransaction { reason, .. }) => reason,
        other => panic!("{what}: expected a refused transaction, got {other:?}"),
    }
}

#[test]
fn deposits_open_the_block_in_order_and_importers_agree() {
    let p = pair();
    let data: Vec<Bytes> = (0..3)
        .map(|i| kmc_to(recipient(i), 1_000 + u64::from(i)))
        .collect();
    let confirmed = Confirmed(data.clone());
    let user = VecDeque::from([signed_transfer(
        0,
        0,
        Address::with_last_byte(9),
        U256::from(5),
    )]);
    let block = produce(&p, &confirmed, user);

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
    let mut chain = B256::ZERO;
    for (i, d) in data.iter().enumerate() {
        chain = bridge::next_state_hash(chain, i as u64 + 1, L2_BRIDGE_ADDRESS, d);
    }
    assert_eq!(
        B256::from(bridge_slot(&p.producer, LAST_STATE_HASH_SLOT)),
        chain,
        "L2 keeps L1's hash chain"
    );

    let imported = import_block(&p.spec, &p.importer, &block).unwrap();
    assert_eq!(imported.hash, p.producer.head().hash);

    // the next block takes up at id 4, and none is applied twice
    let more = Confirmed(
        data.iter()
            .cloned()
            .chain([kmc_to(recipient(3), 7)])
            .collect(),
    );
    let next = produce(&p, &more, VecDeque::new());
    assert_eq!(next.body.transactions.len(), 1);
    assert_eq!(
        bridge::deposit_of_tx(p.spec.chain_id, &next.body.transactions[0]).map(|d| d.0),
        Some(4)
    );
    import_block(&p.spec, &p.importer, &next).unwrap();
    // nothing new confirmed: a block without deposits
    let empty = produce(&p, &more, VecDeque::new());
    assert!(empty.body.transactions.is_empty());
}

#[test]
fn importers_refuse_deposits_out_of_order_repeated_moved_or_forged() {
    let p = pair();
    let data: Vec<Bytes> = (0..2).map(|i| kmc_to(recipient(i), 500)).collect();
    let user = VecDeque::from([signed_transfer(
        0,
        0,
        Address::with_last_byte(9),
        U256::from(5),
    )]);
    let block = produce(&p, &Confirmed(data), user);
    let txs = block.body.transactions.clone();
    let (d1, d2, transfer) = (txs[0].clone(), txs[1].clone(), txs[2].clone());

    // the system account's nonce (id - 1) refuses these before the bridge would
    let reordered = with_transactions(&p, &block, vec![d2.clone(), d1.clone(), transfer.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &reordered), "reordered");
    assert!(reason.contains("nonce 1 too high"), "{reason}");

    let repeated = with_transactions(&p, &block, vec![d1.clone(), d1.clone(), transfer.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &repeated), "repeated");
    assert!(reason.contains("nonce 0 too low"), "{reason}");

    let moved = with_transactions(&p, &block, vec![d1.clone(), transfer.clone(), d2.clone()]);
    let reason = refused(import_block(&p.spec, &p.importer, &moved), "moved");
    assert!(reason.contains("after a user transaction"), "{reason}");

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
    let skipped = with_transactions(&p, &block, vec![d2, transfer]);
    let reason = refused(import_block(&p.spec, &p.importer, &skipped), "skipped");
    assert!(reason.contains("nonce 1 too high"), "{reason}");

    // the importer is untouched and takes the real block
    assert_eq!(p.importer.head().number(), 0);
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
