//! The compute meter (ADR 0011): each transaction's compute units, the builder filling
//! a block up to the chain's compute limit, and import rejecting a block above it.

use alloy::consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, U256};
use koma_evm::{BlockEnvInput, BlockExecutor, ExecutedTx};
use koma_primitives::chainspec::GenesisAccount;
use koma_primitives::compute::{EXECUTION_WEIGHT, PRECOMPILE_WEIGHT};
use koma_primitives::{ChainSpec, dev};
use koma_producer::test_utils::{VecPool, signed_call, signed_transfer};
use koma_producer::{ImportError, PoolAccess, build_block, import_block};
use koma_storage::Database;
use std::collections::VecDeque;

/// Calls ecrecover (with all its gas, zero input: 3,000 gas, empty output) in a loop
/// until it runs out of gas.
const HEAVY: Address = Address::new([0x11; 20]);
/// Calls ecrecover ten times (with all its gas each time), then stops: 30,000 gas of
/// precompiles.
const TEN_CALLS: Address = Address::new([0x12; 20]);

/// PUSH0 PUSH0 PUSH1 0x80 PUSH0 PUSH1 1 GAS STATICCALL POP
const CALL_ECRECOVER: [u8; 10] = [0x5f, 0x5f, 0x60, 0x80, 0x5f, 0x60, 0x01, 0x5a, 0xfa, 0x50];

fn spec() -> ChainSpec {
    let mut spec = ChainSpec::devnet();
    let mut heavy = vec![0x5b];
    heavy.extend_from_slice(&CALL_ECRECOVER);
    heavy.extend_from_slice(&[0x5f, 0x56]); // PUSH0 JUMP
    let mut ten = Vec::new();
    for _ in 0..10 {
        ten.extend_from_slice(&CALL_ECRECOVER);
    }
    ten.push(0x00);
    for (address, code) in [(HEAVY, heavy), (TEN_CALLS, ten)] {
        spec.alloc.insert(
            address,
            GenesisAccount {
                code: Some(Bytes::from(code)),
                nonce: 1,
                ..Default::default()
            },
        );
    }
    spec
}

fn open(spec: &ChainSpec) -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Database::open(dir.path(), spec).unwrap(), dir)
}

/// Executes one transaction in block 1 on genesis.
fn execute_alone(spec: &ChainSpec, tx: (TxEnvelope, Address)) -> ExecutedTx {
    let (db, _dir) = open(spec);
    let env = BlockEnvInput {
        number: 1,
        timestamp: spec.timestamp + 1,
        beneficiary: dev::dev_producer_key(0).address(),
        gas_limit: spec.gas_limit,
        base_fee: spec.fees.initial_base_fee,
        prevrandao: B256::ZERO,
    };
    let mut exec = BlockExecutor::new(spec, db.latest(), env);
    let done = exec.execute(tx.0, tx.1).unwrap();
    assert_eq!(exec.compute_used(), done.compute_units);
    assert_eq!(exec.finish().compute_used, done.compute_units);
    done
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

#[test]
fn a_transfer_uses_21000_units() {
    let done = execute_alone(
        &spec(),
        signed_transfer(1, 0, Address::repeat_byte(0x77), U256::from(1)),
    );
    assert_eq!(done.gas_used, 21_000);
    assert_eq!(done.precompile_gas, 0);
    assert_eq!(done.compute_units, 21_000);
}

#[test]
fn precompile_gas_weighs_more_than_execution_gas() {
    let done = execute_alone(&spec(), signed_call(1, 0, TEN_CALLS, U256::ZERO, 100_000));
    assert!(done.success);
    assert_eq!(done.precompile_gas, 30_000, "ten ecrecover calls");
    let execution = done.gas_used - 21_000 - 30_000;
    assert!(execution > 0 && execution < 2_000, "{execution}");
    assert_eq!(
        done.compute_units,
        21_000 + execution * EXECUTION_WEIGHT + 30_000 * PRECOMPILE_WEIGHT
    );

    // A loop of calls until out of gas: nearly all of its gas is precompile gas
    // (the last call, which runs out, uses all the gas it was given).
    let done = execute_alone(&spec(), signed_call(1, 0, HEAVY, U256::ZERO, 1_000_000));
    assert_eq!(done.gas_used, 1_000_000);
    assert!(done.precompile_gas > 900_000, "{}", done.precompile_gas);
    assert_eq!(
        done.compute_units,
        21_000
            + (1_000_000 - 21_000 - done.precompile_gas) * EXECUTION_WEIGHT
            + done.precompile_gas * PRECOMPILE_WEIGHT
    );
}

#[test]
fn a_call_near_the_limit_runs_as_without_it() {
    // A limit just above what the ten-call transaction needs: its calls are given more
    // gas than the block has room for in precompiles, run with that room, and give the
    // same result as without a limit.
    let free = execute_alone(&spec(), signed_call(1, 0, TEN_CALLS, U256::ZERO, 100_000));
    let mut tight = spec();
    tight.compute_limit = Some(free.compute_units + 1_000);
    let (db, _dir) = open(&tight);
    let tx = signed_call(1, 0, TEN_CALLS, U256::ZERO, 100_000);
    let built = build_block(
        &tight,
        &db,
        &mut VecPool(VecDeque::from([tx.clone()])),
        &dev::dev_producer_key(0),
        tight.timestamp + 1,
    )
    .unwrap();
    assert_eq!(built.block.body.transactions.len(), 1);
    assert_eq!(built.header.header.gas_used, free.gas_used);
    assert_eq!(built.compute_used, free.compute_units);
    let (importer, _i) = open(&tight);
    import_block(&tight, &importer, &built.block).unwrap();

    // One unit less and it cannot fit any block: the builder drops it from the pool.
    tight.compute_limit = Some(free.compute_units - 1);
    let (db, _dir) = open(&tight);
    let mut pool = Recorder {
        txs: VecDeque::from([tx.clone()]),
        ..Default::default()
    };
    let built = build_block(
        &tight,
        &db,
        &mut pool,
        &dev::dev_producer_key(0),
        tight.timestamp + 1,
    )
    .unwrap();
    assert!(built.block.body.transactions.is_empty());
    assert_eq!(pool.rejected, vec![*tx.0.tx_hash()]);
}

#[test]
fn the_builder_stops_at_the_compute_limit() {
    let mut spec = spec();
    spec.max_tx_gas = Some(1_000_000);
    spec.compute_limit = Some(36_000_000);
    let (db, _dir) = open(&spec);
    let heavy1 = signed_call(1, 0, HEAVY, U256::ZERO, 1_000_000);
    let heavy2 = signed_call(2, 0, HEAVY, U256::ZERO, 1_000_000);
    let ten = signed_call(3, 0, TEN_CALLS, U256::ZERO, 100_000);
    let mut pool = Recorder::default();
    pool.txs
        .extend([heavy1.clone(), heavy2.clone(), ten.clone()]);
    for nonce in 0..200 {
        pool.txs.push_back(signed_transfer(
            4,
            nonce,
            Address::repeat_byte(0x77),
            U256::from(1),
        ));
    }
    let built = build_block(
        &spec,
        &db,
        &mut pool,
        &dev::dev_producer_key(0),
        spec.timestamp + 1,
    )
    .unwrap();
    let txs = &built.block.body.transactions;
    // The first heavy transaction fits; the second does not and stays in the pool
    // (skipped, not rejected); the ten-call one could use more than what is left and
    // is not tried; transfers fill the rest until less than a transfer's units remain.
    assert_eq!(txs[0].tx_hash(), heavy1.0.tx_hash());
    assert!(pool.rejected.is_empty());
    assert_eq!(pool.skipped[..2], [heavy2.1, ten.1]);
    let transfers = txs.len() - 1;
    assert!(transfers > 10 && transfers < 200, "{transfers}");
    assert!(txs[1..].iter().all(|tx| tx.gas_limit() == 21_000));
    assert!(built.compute_used <= 36_000_000);
    assert!(
        built.compute_used > 36_000_000 - 21_000,
        "{}",
        built.compute_used
    );
    // The rest wait for the next block (the builder drew one more than it included
    // before it saw the block full; the node's pool only hands out, never removes).
    assert_eq!(pool.txs.len(), 200 - transfers - 1);
    assert!(
        built.header.header.gas_used < 4_000_000,
        "gas is far from binding"
    );

    // Importers count the same.
    let (importer, _i) = open(&spec);
    import_block(&spec, &importer, &built.block).unwrap();
}

#[test]
fn import_rejects_a_block_over_the_compute_limit() {
    // A producer running with a larger limit builds an otherwise valid block of two
    // heavy transactions; nodes on the real spec re-count and refuse it.
    let mut strict = spec();
    strict.max_tx_gas = Some(1_000_000);
    strict.compute_limit = Some(36_000_000);
    let mut lax = strict.clone();
    lax.compute_limit = Some(72_000_000);
    let (producer, _p) = open(&lax);
    let (importer, _i) = open(&strict);
    assert_eq!(producer.head().hash, importer.head().hash, "same genesis");
    let built = build_block(
        &lax,
        &producer,
        &mut VecPool(VecDeque::from([
            signed_call(1, 0, HEAVY, U256::ZERO, 1_000_000),
            signed_call(2, 0, HEAVY, U256::ZERO, 1_000_000),
        ])),
        &dev::dev_producer_key(0),
        lax.timestamp + 1,
    )
    .unwrap();
    assert_eq!(built.block.body.transactions.len(), 2);
    assert!(built.compute_used > 36_000_000);
    let (lax_importer, _l) = open(&lax);
    import_block(&lax, &lax_importer, &built.block).unwrap();

    let err = import_block(&strict, &importer, &built.block).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::ComputeLimitExceeded {
                number: 1,
                index: 1,
                limit: 36_000_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_invalid_block(), "the sender is to blame");
    assert!(err.to_string().contains("compute limit"), "{err}");
    assert_eq!(importer.head().number(), 0, "nothing written");
}
