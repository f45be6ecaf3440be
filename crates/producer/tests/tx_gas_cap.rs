//! The per-transaction gas cap (`ChainSpec::max_tx_gas`, EIP-7825): the builder never
//! includes a transaction above it, and import rejects a block that contains one.

use alloy::consensus::proofs::calculate_transaction_root;
use alloy::consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, U256};
use koma_primitives::SignedHeader;
use koma_primitives::chainspec::GenesisAccount;
use koma_primitives::{Block, ChainSpec, DEFAULT_MAX_TX_GAS, dev};
use koma_producer::test_utils::{VecPool, signed_call, signed_transfer};
use koma_producer::{ImportError, PoolAccess, build_block, execute_block, import_block};
use koma_storage::Database;
use std::collections::VecDeque;

/// A contract that loops until it runs out of gas: JUMPDEST PUSH0 JUMP.
const LOOP: Address = Address::new([0x10; 20]);

/// The devnet spec with the looping contract.
fn devnet() -> ChainSpec {
    let mut spec = ChainSpec::devnet();
    spec.alloc.insert(
        LOOP,
        GenesisAccount {
            code: Some(Bytes::from_static(&[0x5b, 0x5f, 0x56])),
            nonce: 1,
            ..Default::default()
        },
    );
    spec
}

/// [`devnet`] with room for several transactions at the cap in a block.
fn spec() -> ChainSpec {
    let mut spec = devnet();
    spec.gas_limit = 60_000_000;
    spec
}

/// A pool that records what the builder rejected and skipped.
#[derive(Default)]
struct Recorder {
    txs: VecDeque<(TxEnvelope, Address)>,
    rejected: Vec<B256>,
    skipped: Vec<Address>,
}

impl PoolAccess for Recorder {
    fn next_best(&mut self) -> Option<(TxEnvelope, Address)> {
        self.txs.pop_front()
    }
    fn skip_sender(&mut self, sender: Address) {
        self.skipped.push(sender);
    }
    fn reject(&mut self, tx: B256, _sender: Address) {
        self.rejected.push(tx);
    }
}

fn open(spec: &ChainSpec) -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Database::open(dir.path(), spec).unwrap(), dir)
}

#[test]
fn builder_never_includes_a_transaction_above_the_cap() {
    let spec = spec();
    assert_eq!(spec.max_tx_gas(), DEFAULT_MAX_TX_GAS);
    let (db, _dir) = open(&spec);
    let over = signed_call(1, 0, LOOP, U256::ZERO, DEFAULT_MAX_TX_GAS + 1);
    let at_cap = signed_call(2, 0, LOOP, U256::ZERO, DEFAULT_MAX_TX_GAS);
    let transfer = signed_transfer(0, 0, Address::with_last_byte(7), U256::from(5));
    let mut pool = Recorder {
        txs: VecDeque::from([over.clone(), at_cap.clone(), transfer.clone()]),
        ..Default::default()
    };
    let key = dev::dev_producer_key(0);
    let built = build_block(&spec, &db, &mut pool, &key, spec.timestamp + 1).unwrap();
    let hashes: Vec<B256> = built
        .block
        .body
        .transactions
        .iter()
        .map(|tx| *tx.tx_hash())
        .collect();
    assert_eq!(hashes, vec![*at_cap.0.tx_hash(), *transfer.0.tx_hash()]);
    assert_eq!(built.skipped, 1);
    assert_eq!(pool.rejected, vec![*over.0.tx_hash()], "it leaves the pool");
    // The looping transaction at the cap used all of its gas and is included.
    assert_eq!(built.header.header.gas_used, DEFAULT_MAX_TX_GAS + 21_000);
}

#[test]
fn a_devnet_block_holds_three_opcode_loops_at_the_cap() {
    // The devnet's gas limit is 600M again and its compute limit bounds heavy
    // execution (ADR 0011): three looping transactions at the cap fit (10 units per
    // gas), the fourth waits for the next block, a transfer after it still fits.
    let spec = devnet();
    assert_eq!(spec.gas_limit, 600_000_000);
    let (db, _dir) = open(&spec);
    let loops: Vec<_> = (2..6)
        .map(|account| signed_call(account, 0, LOOP, U256::ZERO, DEFAULT_MAX_TX_GAS))
        .collect();
    let transfer = signed_transfer(0, 0, Address::with_last_byte(7), U256::from(5));
    let key = dev::dev_producer_key(0);
    let mut pool = Recorder {
        txs: loops.iter().cloned().chain([transfer.clone()]).collect(),
        ..Default::default()
    };
    let built = build_block(&spec, &db, &mut pool, &key, spec.timestamp + 1).unwrap();
    let expected: Vec<TxEnvelope> = loops[..3]
        .iter()
        .map(|t| t.0.clone())
        .chain([transfer.0])
        .collect();
    assert_eq!(built.block.body.transactions, expected);
    assert_eq!(
        built.header.header.gas_used,
        3 * DEFAULT_MAX_TX_GAS + 21_000
    );
    assert!(pool.rejected.is_empty(), "nothing is dropped from the pool");
    assert_eq!(pool.skipped, vec![loops[3].1]);
    let next = build_block(
        &spec,
        &db,
        &mut VecPool(VecDeque::from([loops[3].clone()])),
        &key,
        spec.timestamp + 2,
    )
    .unwrap();
    assert_eq!(next.block.body.transactions, vec![loops[3].0.clone()]);
}

/// Replaces the transactions of `block` and re-seals it, as a dishonest producer would.
fn with_transactions(block: &Block, txs: Vec<TxEnvelope>) -> Block {
    let mut b = block.clone();
    b.body.transactions = txs;
    b.header.header.transactions_root = calculate_transaction_root(&b.body.transactions);
    b.header = SignedHeader::sign(
        b.header.header.clone(),
        devnet().chain_id,
        &dev::dev_producer_key(0),
    )
    .unwrap();
    b
}

#[test]
fn import_rejects_a_block_with_a_transaction_above_the_cap() {
    let spec = spec();
    let (producer, _p) = open(&spec);
    let (importer, _i) = open(&spec);
    let key = dev::dev_producer_key(0);
    let transfer = signed_transfer(0, 0, Address::with_last_byte(7), U256::from(5));
    let good = build_block(
        &spec,
        &producer,
        &mut VecPool(VecDeque::from([transfer])),
        &key,
        spec.timestamp + 1,
    )
    .unwrap()
    .block;

    // Built by hand: the transfer swapped for a transaction one gas above the cap.
    let over = signed_call(1, 0, LOOP, U256::ZERO, DEFAULT_MAX_TX_GAS + 1).0;
    let bad = with_transactions(&good, vec![over]);
    let before = importer.head();
    let err = import_block(&spec, &importer, &bad).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::TxGasLimitTooHigh {
                number: 1,
                index: 0,
                gas_limit,
                cap: DEFAULT_MAX_TX_GAS,
            } if gas_limit == DEFAULT_MAX_TX_GAS + 1
        ),
        "{err}"
    );
    assert!(err.is_invalid_block());
    assert_eq!(
        err.to_string(),
        "block 1: transaction 0 has gas limit 16777217, above the per-transaction cap 16777216"
    );
    assert_eq!(importer.head(), before, "nothing imported");
    assert!(importer.header(bad.header.hash_slow()).unwrap().is_none());

    // The honest block still imports.
    import_block(&spec, &importer, &good).unwrap();
    assert_eq!(importer.head().hash, producer.head().hash);
}

#[test]
fn a_block_valid_under_a_larger_cap_is_rejected_under_the_chains_cap() {
    // A producer running with a larger cap builds an otherwise valid block (roots,
    // gas used, seal) with a 20M-gas transaction; nodes on the real spec refuse it,
    // both in the header checks and in re-execution.
    let strict = spec();
    let mut lax = strict.clone();
    lax.max_tx_gas = Some(30_000_000);
    let (producer, _p) = open(&lax);
    let (importer, _i) = open(&strict);
    assert_eq!(producer.head().hash, importer.head().hash, "same genesis");
    let heavy = signed_call(1, 0, LOOP, U256::ZERO, 20_000_000);
    let built = build_block(
        &lax,
        &producer,
        &mut VecPool(VecDeque::from([heavy])),
        &dev::dev_producer_key(0),
        lax.timestamp + 1,
    )
    .unwrap();
    assert_eq!(built.block.body.transactions.len(), 1);
    assert_eq!(built.header.header.gas_used, 20_000_000);
    // The lax spec itself imports it.
    let (lax_importer, _l) = open(&lax);
    import_block(&lax, &lax_importer, &built.block).unwrap();

    let err = import_block(&strict, &importer, &built.block).unwrap_err();
    assert!(
        matches!(err, ImportError::TxGasLimitTooHigh { index: 0, .. }),
        "{err}"
    );
    // Execution alone (without the header checks) refuses it too, with geth's text.
    let err = execute_block(&strict, importer.latest(), &built.block, &built.senders).unwrap_err();
    assert!(
        err.to_string()
            .contains("transaction gas limit too high (cap: 16777216, tx: 20000000)"),
        "{err}"
    );
    assert_eq!(built.block.body.transactions[0].gas_limit(), 20_000_000);
}
