//! BLS and Merkle costs of a checkpoint: signing and verifying one signature, aggregating
//! the stakers' signatures and keys, verifying an aggregate, hashing a full range.
//!
//! `cargo bench -p koma-checkpoint --bench bls`

use std::hint::black_box;

use alloy_primitives::{B256, U256, keccak256};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use koma_checkpoint::{MerkleTree, PublicKey, SecretKey, Signature, aggregate_signatures};

fn key(i: u64) -> SecretKey {
    let mut ikm = [0u8; 32];
    ikm[..8].copy_from_slice(&i.to_be_bytes());
    SecretKey::key_gen(&ikm).expect("32 bytes of key material")
}

fn bls(c: &mut Criterion) {
    let message = keccak256("checkpoint digest");
    let keys: Vec<SecretKey> = (0..512).map(key).collect();
    let public_keys: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let signatures: Vec<Signature> = keys.iter().map(|sk| sk.sign(&message)).collect();

    c.bench_function("sign", |b| b.iter(|| keys[0].sign(black_box(&message))));
    c.bench_function("verify", |b| {
        b.iter(|| public_keys[0].verify(black_box(&message), black_box(&signatures[0])))
    });

    let mut group = c.benchmark_group("aggregate signatures");
    for n in [4usize, 128, 512] {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| aggregate_signatures(black_box(&signatures[..n])))
        });
    }
    group.finish();

    c.bench_function("aggregate 128 public keys", |b| {
        b.iter(|| PublicKey::aggregate(black_box(&public_keys[..128])))
    });

    let aggregate = aggregate_signatures(&signatures[..128]).expect("signatures");
    let aggregate_key = PublicKey::aggregate(&public_keys[..128]).expect("keys");
    c.bench_function("verify aggregate of 128 against the aggregate key", |b| {
        b.iter(|| aggregate_key.verify(black_box(&message), black_box(&aggregate)))
    });

    let eip2537 = signatures[0].to_eip2537();
    c.bench_function("parse EIP-2537 signature", |b| {
        b.iter(|| Signature::from_eip2537(black_box(&eip2537)))
    });
    let eip2537 = public_keys[0].to_eip2537();
    c.bench_function("parse EIP-2537 public key", |b| {
        b.iter(|| PublicKey::from_eip2537(black_box(&eip2537)))
    });
}

fn tree(c: &mut Criterion) {
    let leaves: Vec<B256> = (0..1024u64)
        .map(|i| keccak256(U256::from(i).to_be_bytes::<32>()))
        .collect();
    c.bench_function("merkle root of 1024 leaves", |b| {
        b.iter(|| MerkleTree::new(black_box(leaves.clone())).root())
    });
}

criterion_group!(benches, bls, tree);
criterion_main!(benches);
