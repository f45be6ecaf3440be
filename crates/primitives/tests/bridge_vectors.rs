//! `tests/vectors/bridge.json` (made with JS noble by `contracts/scripts/bridge-vectors.js`,
//! independently of this crate and of the contracts): deposit data, the state hash chain,
//! withdrawal leaves, the withdrawals root and a full exit proof, byte for byte.

use std::str::FromStr;

use alloy_primitives::{Address, B256, Bytes, U256};
use koma_primitives::bridge::{
    Deposit, ETH_TOKEN, KMC_TOKEN, L2_BRIDGE_ADDRESS, TokenMetadata, Withdrawal, next_state_hash,
    withdrawals_root,
};
use koma_primitives::merkle::{MerkleTree, verify_proof};
use serde_json::Value;

fn vector() -> Value {
    serde_json::from_str(include_str!("../../../tests/vectors/bridge.json")).unwrap()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}
fn addr(v: &Value, key: &str) -> Address {
    Address::from_str(s(v, key)).unwrap()
}
fn b256(v: &Value, key: &str) -> B256 {
    B256::from_str(s(v, key)).unwrap()
}
fn bytes(v: &Value, key: &str) -> Bytes {
    Bytes::from_str(s(v, key)).unwrap()
}
fn u256(v: &Value, key: &str) -> U256 {
    match &v[key] {
        Value::String(text) => U256::from_str(text).unwrap(),
        Value::Number(n) => U256::from(n.as_u64().unwrap()),
        other => panic!("{key}: {other}"),
    }
}
fn hashes(v: &Value, key: &str) -> Vec<B256> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| B256::from_str(h.as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn deposits_and_their_hash_chain() {
    let v = vector();
    let deposits = v["deposits"].as_array().unwrap();
    assert_eq!(deposits.len(), 4);
    let mut hash = B256::ZERO;
    for (i, d) in deposits.iter().enumerate() {
        let id = d["id"].as_u64().unwrap();
        assert_eq!(id, i as u64 + 1, "ids count from 1");
        let receiver = addr(d, "receiver");
        assert_eq!(receiver, L2_BRIDGE_ADDRESS);
        let data = bytes(d, "data");
        let decoded = Deposit::decode(&data).unwrap();
        assert_eq!(decoded.token, addr(d, "token"));
        assert_eq!(decoded.from, addr(d, "from"));
        assert_eq!(decoded.to, addr(d, "to"));
        assert_eq!(decoded.amount, u256(d, "amount"));
        assert_eq!(decoded.encode(), data, "re-encoded byte for byte");
        let metadata = bytes(d, "metadata");
        assert_eq!(decoded.metadata.is_some(), !metadata.is_empty());
        hash = next_state_hash(hash, id, receiver, &data);
        assert_eq!(hash, b256(d, "stateHash"), "state hash {id}");
    }
    assert_eq!(addr(&deposits[0], "token"), ETH_TOKEN);
    assert_eq!(addr(&deposits[1], "token"), KMC_TOKEN);
    let eth = Deposit::decode(&bytes(&deposits[0], "data")).unwrap();
    assert_eq!(
        eth.metadata,
        Some(TokenMetadata {
            name: "Ether".into(),
            symbol: "ETH".into(),
            decimals: 18
        })
    );
    let usdc = Deposit::decode(&bytes(&deposits[2], "data")).unwrap();
    assert_eq!(usdc.metadata.unwrap().decimals, 6);
}

#[test]
fn withdrawals_and_the_exit_proofs() {
    let v = vector();
    let block = &v["block"];
    let exits = v["exits"].as_array().unwrap();
    let withdrawals: Vec<Withdrawal> = exits
        .iter()
        .map(|e| {
            let w = &e["withdrawal"];
            Withdrawal {
                nonce: u256(w, "nonce"),
                sender: addr(w, "sender"),
                recipient: addr(w, "recipient"),
                token: addr(w, "token"),
                amount: u256(w, "amount"),
            }
        })
        .collect();
    let root = withdrawals_root(&withdrawals);
    assert_eq!(root, b256(block, "withdrawalsRoot"));
    let tree = MerkleTree::from_iter(withdrawals.iter().map(Withdrawal::leaf));

    // the block leaf (the checkpoint format) in the checkpoint's tree
    let number = block["number"].as_u64().unwrap();
    let mut leaf = Vec::with_capacity(160);
    leaf.extend_from_slice(&U256::from(number).to_be_bytes::<32>());
    leaf.extend_from_slice(&U256::from(block["timestamp"].as_u64().unwrap()).to_be_bytes::<32>());
    leaf.extend_from_slice(b256(block, "blockHash").as_slice());
    leaf.extend_from_slice(b256(block, "receiptsRoot").as_slice());
    leaf.extend_from_slice(root.as_slice());
    let block_leaf = alloy_primitives::keccak256(&leaf);
    let checkpoint = &v["checkpoint"];
    let start = checkpoint["start"].as_u64().unwrap();

    for (i, (e, w)) in exits.iter().zip(&withdrawals).enumerate() {
        assert_eq!(w.leaf(), b256(e, "leaf"), "leaf {i}");
        let index = e["withdrawalIndex"].as_u64().unwrap();
        assert_eq!(index, i as u64);
        let proof = hashes(e, "withdrawalProof");
        assert_eq!(
            tree.proof(index),
            Some(proof.clone()),
            "withdrawal proof {i}"
        );
        assert!(verify_proof(w.leaf(), index, &proof, root));
        let block_index = e["blockIndex"].as_u64().unwrap();
        assert_eq!(block_index, number - start);
        assert!(verify_proof(
            block_leaf,
            block_index,
            &hashes(e, "blockProof"),
            b256(checkpoint, "root")
        ));
    }
}
