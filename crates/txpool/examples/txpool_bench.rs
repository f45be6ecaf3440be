//! Throughput of the pool on realistic signed transactions.
//!
//! `cargo run --release -p koma-txpool --example txpool_bench [senders] [txs_per_sender]`
//!
//! Measures `add_raw` (decode, validation, signature recovery, insertion) on one thread
//! and on two, selection of a block's worth of transactions with `best_transactions`, and
//! `on_canonical_block` after all of them were mined. Prints figures; asserts nothing
//! about time.

use std::{collections::HashMap, time::Instant};

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::eip2718::Encodable2718,
    network::TxSignerSync,
    signers::local::PrivateKeySigner,
};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use koma_txpool::{AccountInfoLite, AccountReader, GWEI, PoolConfig, TxPool};

const CHAIN_ID: u64 = 42_424;

struct Funded(HashMap<Address, AccountInfoLite>);

impl AccountReader for Funded {
    fn account(&self, address: Address) -> AccountInfoLite {
        self.0.get(&address).copied().unwrap_or_default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let senders: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let per_sender: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let total = senders * per_sender;

    let started = Instant::now();
    let mut accounts = HashMap::new();
    let mut raws: Vec<Vec<Vec<u8>>> = Vec::new();
    for i in 0..senders {
        let signer = PrivateKeySigner::from_bytes(&B256::from(U256::from(i + 1)))?;
        accounts.insert(
            signer.address(),
            AccountInfoLite {
                nonce: 0,
                balance: U256::from(10u128.pow(21)),
            },
        );
        let mut sender_raws = Vec::new();
        for nonce in 0..per_sender {
            let mut tx = TxEip1559 {
                chain_id: CHAIN_ID,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: (8 + u128::from(i % 50)) * GWEI,
                max_priority_fee_per_gas: (1 + u128::from(i % 7)) * GWEI,
                to: TxKind::Call(Address::repeat_byte(0xbb)),
                value: U256::from(1u8),
                access_list: Default::default(),
                input: Bytes::new(),
            };
            let signature = signer.sign_transaction_sync(&mut tx)?;
            let envelope: TxEnvelope = tx.into_signed(signature).into();
            sender_raws.push(envelope.encoded_2718());
        }
        raws.push(sender_raws);
    }
    let state = Funded(accounts);
    println!("signed {total} transactions in {:.2?}", started.elapsed());

    let config = PoolConfig {
        chain_id: CHAIN_ID,
        ..Default::default()
    };
    let base_fee = GWEI as u64;

    // One thread, senders interleaved (nonce-major order, as gossip would deliver them).
    let pool = TxPool::new(config.clone());
    let started = Instant::now();
    for nonce in 0..per_sender as usize {
        for sender_raws in &raws {
            pool.add_raw(&sender_raws[nonce], &state, base_fee)?;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "add_raw, 1 thread: {total} in {elapsed:.2?} = {:.0} tx/s ({:?})",
        total as f64 / elapsed.as_secs_f64(),
        pool.status()
    );

    // Two threads, each with half the senders.
    let pool2 = TxPool::new(config);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for half in raws.chunks(raws.len().div_ceil(2)) {
            let (pool, state) = (&pool2, &state);
            scope.spawn(move || {
                for nonce in 0..per_sender as usize {
                    for sender_raws in half {
                        if let Err(err) = pool.add_raw(&sender_raws[nonce], state, base_fee) {
                            eprintln!("rejected: {err}");
                        }
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    println!(
        "add_raw, 2 threads: {total} in {elapsed:.2?} = {:.0} tx/s ({:?})",
        total as f64 / elapsed.as_secs_f64(),
        pool2.status()
    );

    let started = Instant::now();
    let best: Vec<_> = pool.best_transactions(base_fee).take(20_000).collect();
    println!(
        "best_transactions: {} in {:.2?}",
        best.len(),
        started.elapsed()
    );

    let mined: Vec<B256> = best.iter().map(|tx| tx.hash).collect();
    let mut after = state.0;
    for tx in &best {
        if let Some(account) = after.get_mut(&tx.sender) {
            account.nonce = account.nonce.max(tx.nonce() + 1);
        }
    }
    let after = Funded(after);
    let started = Instant::now();
    pool.on_canonical_block(&mined, &[], &after, base_fee);
    println!(
        "on_canonical_block: {} mined in {:.2?}, left {:?}",
        mined.len(),
        started.elapsed(),
        pool.status()
    );
    Ok(())
}
