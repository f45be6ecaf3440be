//! The shared vectors in `tests/vectors/` (made with JS noble by
//! `contracts/scripts/vectors.js`, independently of this crate and of the contracts):
//! every field is reproduced byte for byte. Each JSON object is read through [`Fields`],
//! which fails the test if the vector holds a field that no check read, so a field added
//! to a vector cannot go unchecked.

use std::{cell::RefCell, collections::BTreeSet};

use alloy_primitives::{Address, B256, Bytes, U256, hex, keccak256, uint};
use koma_checkpoint::{
    BlockLeaf, BlsError, CheckpointHeader, Domain, MerkleTree, POP_DST, PublicKey, SIG_DST,
    SecretKey, Signature, absent_list, aggregate_signatures, bls::PointKind, fast_aggregate_verify,
    next_range, parse_absent_list, pop_message, set_commit, verify_proof, weight_of,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The order r of G1 and G2.
const R: U256 = uint!(0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001_U256);

fn load(name: &str) -> Value {
    // embedded: cargo rebuilds the test when a vector changes, and a test binary built
    // in another checkout of the same target dir never reads a path that is gone
    let text = match name {
        "bls-min-sig.json" => include_str!("../../../tests/vectors/bls-min-sig.json"),
        "checkpoint.json" => include_str!("../../../tests/vectors/checkpoint.json"),
        other => panic!("no vector {other}"),
    };
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A JSON object whose fields are read once each; dropping it asserts that every field was.
struct Fields<'a> {
    path: String,
    object: &'a Map<String, Value>,
    read: RefCell<BTreeSet<String>>,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, path: impl Into<String>) -> Self {
        let path = path.into();
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("{path} is not an object"));
        Self {
            path,
            object,
            read: RefCell::default(),
        }
    }

    fn value(&self, key: &str) -> &'a Value {
        self.read.borrow_mut().insert(key.to_owned());
        self.object
            .get(key)
            .unwrap_or_else(|| panic!("{}.{key} missing", self.path))
    }

    fn has(&self, key: &str) -> bool {
        self.object.contains_key(key)
    }

    fn str(&self, key: &str) -> &'a str {
        self.value(key)
            .as_str()
            .unwrap_or_else(|| panic!("{}.{key} is not a string", self.path))
    }

    fn bytes(&self, key: &str) -> Vec<u8> {
        hex::decode(self.str(key)).unwrap_or_else(|e| panic!("{}.{key}: {e}", self.path))
    }

    fn b256(&self, key: &str) -> B256 {
        B256::try_from(self.bytes(key).as_slice()).unwrap()
    }

    fn address(&self, key: &str) -> Address {
        Address::try_from(self.bytes(key).as_slice()).unwrap()
    }

    /// A number written as a JSON number or a decimal string.
    fn u256(&self, key: &str) -> U256 {
        match self.value(key) {
            Value::Number(n) => U256::from(n.as_u64().unwrap()),
            Value::String(s) => s.parse().unwrap(),
            other => panic!("{}.{key} is not a number: {other}", self.path),
        }
    }

    fn u64(&self, key: &str) -> u64 {
        self.u256(key).try_into().unwrap()
    }

    fn object(&self, key: &str) -> Fields<'a> {
        Fields::new(self.value(key), format!("{}.{key}", self.path))
    }

    fn array(&self, key: &str) -> Vec<Fields<'a>> {
        let items = self.value(key).as_array().unwrap();
        items
            .iter()
            .enumerate()
            .map(|(i, v)| Fields::new(v, format!("{}.{key}[{i}]", self.path)))
            .collect()
    }
}

impl Drop for Fields<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let unread: Vec<&String> = self
            .object
            .keys()
            .filter(|k| !self.read.borrow().contains(*k))
            .collect();
        assert!(
            unread.is_empty(),
            "{}: fields no check read: {unread:?}",
            self.path
        );
    }
}

fn word(n: u64) -> [u8; 32] {
    U256::from(n).to_be_bytes()
}

/// The address in the last 20 bytes of `keccak256(label)`, as the script makes owners.
fn label_address(label: &str) -> Address {
    Address::from_word(keccak256(label))
}

#[test]
fn bls_min_sig_vector() {
    let vector = load("bls-min-sig.json");
    let v = Fields::new(&vector, "bls-min-sig.json");
    assert_eq!(v.str("scheme"), "min_sig (sig G1, pk G2)");
    assert_eq!(v.str("DST").as_bytes(), SIG_DST);

    let sk = SecretKey::from_bytes(&v.bytes("sk").try_into().unwrap()).unwrap();
    let msg = v.b256("msg");
    let pk = sk.public_key();
    assert_eq!(
        pk.to_compressed().as_slice(),
        v.bytes("pk_zcash_compressed_96")
    );
    assert_eq!(
        pk.to_uncompressed().as_slice(),
        v.bytes("pk_zcash_uncompressed_192")
    );
    assert_eq!(pk.to_eip2537().as_slice(), v.bytes("pk_eip2537_256"));
    assert_eq!(
        PublicKey::from_compressed(&v.bytes("pk_zcash_compressed_96")).unwrap(),
        pk
    );
    assert_eq!(
        PublicKey::from_uncompressed(&v.bytes("pk_zcash_uncompressed_192")).unwrap(),
        pk
    );
    assert_eq!(
        PublicKey::from_eip2537(&v.bytes("pk_eip2537_256")).unwrap(),
        pk
    );

    // H(m): the signature of the secret key 1 is the hashed message itself.
    let one = SecretKey::from_bytes(&word(1)).unwrap();
    assert_eq!(
        one.sign(&msg).to_eip2537().as_slice(),
        v.bytes("H_eip2537_128")
    );

    let sig = sk.sign(&msg);
    assert_eq!(
        sig.to_compressed().as_slice(),
        v.bytes("sig_zcash_compressed_48")
    );
    assert_eq!(
        sig.to_uncompressed().as_slice(),
        v.bytes("sig_zcash_uncompressed_96")
    );
    assert_eq!(sig.to_eip2537().as_slice(), v.bytes("sig_eip2537_128"));
    for parsed in [
        Signature::from_compressed(&v.bytes("sig_zcash_compressed_48")).unwrap(),
        Signature::from_uncompressed(&v.bytes("sig_zcash_uncompressed_96")).unwrap(),
        Signature::from_eip2537(&v.bytes("sig_eip2537_128")).unwrap(),
    ] {
        assert_eq!(parsed, sig);
        assert!(pk.verify(&msg, &parsed));
    }

    // The vector abbreviates it ("0xc0000000..."): the flags 0b110 (compressed, infinity)
    // and zeros.
    assert!(
        v.str("g2_infinity_zcash_compressed")
            .starts_with("0xc0000000")
    );
    let mut infinity = [0u8; 96];
    infinity[0] = 0xc0;
    assert_eq!(
        PublicKey::from_compressed(&infinity).unwrap_err(),
        BlsError::Infinity {
            kind: PointKind::PublicKey
        }
    );
}

struct Staker {
    sk: SecretKey,
    pk: PublicKey,
    weight: u64,
}

#[test]
fn checkpoint_vector() {
    let vector = load("checkpoint.json");
    let v = Fields::new(&vector, "checkpoint.json");

    let description = v.str("description");
    for rule in [
        "keccak256(uint256 number ‖ uint256 timestamp ‖ blockHash ‖ receiptsRoot ‖ withdrawalsRoot)",
        "pads the leaves with zero hashes to a power of two",
        "weight = amount / 1 gwei",
        "set commit = keccak256(uint256 setId ‖ uint256 totalWeight ‖ aggregateKey)",
    ] {
        assert!(
            description.contains(rule),
            "the description no longer says {rule:?}"
        );
    }
    for dst in [SIG_DST, POP_DST] {
        assert!(description.contains(std::str::from_utf8(dst).unwrap()));
    }

    // ---- params ----
    let params = v.object("params");
    let l1_chain_id = params.u64("l1ChainId");
    let l2_chain_id = params.u64("l2ChainId");
    let root_contract = params.address("rootContract");
    assert_eq!(
        params
            .address("deployer")
            .create(params.u64("deployerNonce")),
        root_contract
    );
    let min_stake = params.u256("minStake");
    let max_stakers = params.u64("maxStakers");
    let max_range = params.u64("maxRange");
    let first_block = params.u64("firstBlock");
    assert!(params.u64("withdrawalDelay") > 0);
    assert!(
        weight_of(min_stake).unwrap() >= 1,
        "the contract wants minStake >= 1 gwei"
    );
    let domain = Domain {
        l1_chain_id,
        root_contract,
        l2_chain_id,
    };

    // ---- stakers: keys, proofs of possession ----
    let staker_fields = v.array("stakers");
    assert!(staker_fields.len() as u64 <= max_stakers);
    let mut stakers = Vec::new();
    for (i, s) in staker_fields.iter().enumerate() {
        // sk = sha256("koma-checkpoint-vector-sk-" i) mod (r - 1) + 1
        let seed = Sha256::digest(format!("koma-checkpoint-vector-sk-{i}"));
        let expected_sk = U256::from_be_slice(&seed) % (R - U256::from(1)) + U256::from(1);
        let sk_bytes: [u8; 32] = s.bytes("sk").try_into().unwrap();
        assert_eq!(sk_bytes, expected_sk.to_be_bytes::<32>());
        let sk = SecretKey::from_bytes(&sk_bytes).unwrap();

        let owner = s.address("owner");
        let signer = s.address("signer");
        assert_eq!(owner, label_address(&format!("koma-owner-{i}")));
        assert_eq!(signer, label_address(&format!("koma-signer-{i}")));
        let amount = s.u256("amount");
        assert!(amount >= min_stake);
        let weight = weight_of(amount).unwrap();
        assert_eq!(weight, s.u64("weight"));
        assert_eq!(s.u64("slot"), i as u64);

        let pk = sk.public_key();
        let pk_eip = pk.to_eip2537();
        assert_eq!(pk.to_compressed().as_slice(), s.bytes("pkCompressed"));
        assert_eq!(pk_eip.as_slice(), s.bytes("pk"));
        assert_eq!(PublicKey::from_eip2537(&s.bytes("pk")).unwrap(), pk);
        assert_eq!(
            PublicKey::from_compressed(&s.bytes("pkCompressed")).unwrap(),
            pk
        );
        assert_eq!(keccak256(pk_eip), s.b256("keyHash"));

        let message = pop_message(l1_chain_id, root_contract, owner, signer, &pk_eip);
        assert_eq!(message, s.b256("popMessage"));
        let pop = sk.sign_pop(&message);
        assert_eq!(pop.to_eip2537().as_slice(), s.bytes("pop"));
        assert_eq!(pop.to_compressed().as_slice(), s.bytes("popCompressed"));
        let parsed = Signature::from_eip2537(&s.bytes("pop")).unwrap();
        assert!(pk.verify_pop(&message, &parsed));
        assert!(
            !pk.verify(&message, &parsed),
            "a PoP must not pass as a checkpoint signature"
        );
        let other = pop_message(l1_chain_id, root_contract, signer, owner, &pk_eip);
        assert!(!pk.verify_pop(&other, &parsed));

        stakers.push(Staker { sk, pk, weight });
    }

    // ---- the set ----
    let set = v.object("set");
    let set_id = set.u64("setId");
    let total_weight: u64 = stakers.iter().map(|s| s.weight).sum();
    assert_eq!(set.u64("totalWeight"), total_weight);
    let aggregate_key = PublicKey::aggregate(stakers.iter().map(|s| &s.pk)).unwrap();
    assert_eq!(
        aggregate_key.to_eip2537().as_slice(),
        set.bytes("aggregateKey")
    );
    assert_eq!(
        PublicKey::from_eip2537(&set.bytes("aggregateKey")).unwrap(),
        aggregate_key
    );
    assert_eq!(
        set_commit(set_id, total_weight, &aggregate_key.to_eip2537()),
        set.b256("commit")
    );

    // ---- blocks, leaves, the tree and its proofs ----
    let block_fields = v.array("blocks");
    let leaves: Vec<BlockLeaf> = block_fields
        .iter()
        .map(|b| {
            let number = b.u64("number");
            let withdrawals_root = b.b256("withdrawalsRoot");
            let expected_withdrawals = if number == 3 {
                keccak256("withdrawals-3")
            } else {
                B256::ZERO
            };
            assert_eq!(withdrawals_root, expected_withdrawals);
            let leaf = BlockLeaf {
                number,
                timestamp: b.u64("timestamp"),
                block_hash: b.b256("blockHash"),
                receipts_root: b.b256("receiptsRoot"),
                withdrawals_root,
            };
            assert_eq!(leaf.timestamp, 1_767_225_600 + number);
            assert_eq!(leaf.block_hash, keccak256(format!("block-{number}")));
            assert_eq!(leaf.receipts_root, keccak256(format!("receipts-{number}")));
            assert_eq!(leaf.hash(), b.b256("leaf"));
            leaf
        })
        .collect();
    let tree = MerkleTree::from_iter(leaves.iter().map(BlockLeaf::hash));
    for (i, (b, leaf)) in block_fields.iter().zip(&leaves).enumerate() {
        let expected: Vec<B256> = b
            .value("proof")
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().parse().unwrap())
            .collect();
        let proof = tree.proof(i as u64).unwrap();
        assert_eq!(proof, expected, "proof of block {i}");
        assert!(verify_proof(leaf.hash(), i as u64, &proof, tree.root()));
        assert!(!verify_proof(
            leaf.hash(),
            (i as u64 + 1) % 8,
            &proof,
            tree.root()
        ));
    }
    drop(block_fields);

    // ---- the checkpoint and its digest ----
    let c = v.object("checkpoint");
    let header = CheckpointHeader {
        number: c.u64("number"),
        start: c.u64("start"),
        end: c.u64("end"),
        root: c.b256("root"),
    };
    assert_eq!(header.root, tree.root());
    assert_eq!(
        (header.start, header.end),
        (first_block, leaves.len() as u64 - 1)
    );
    assert_eq!(
        next_range(first_block, header.end, 1, max_range),
        Some((header.start, header.end))
    );
    assert_eq!(c.u64("setId"), set_id);
    let digest = domain.digest(&header, set_id);
    assert_eq!(digest, c.b256("digest"));
    drop(c);

    // ---- each staker's signature ----
    let mut signatures = Vec::new();
    for (i, s) in v.array("signatures").iter().enumerate() {
        assert_eq!(s.u64("slot"), i as u64);
        let staker = &stakers[i];
        let sig = staker.sk.sign(&digest);
        assert_eq!(sig.to_eip2537().as_slice(), s.bytes("sig"));
        assert_eq!(sig.to_compressed().as_slice(), s.bytes("compressed"));
        assert!(
            staker
                .pk
                .verify(&digest, &Signature::from_eip2537(&s.bytes("sig")).unwrap())
        );
        assert!(!staker.pk.verify_pop(&digest, &sig));
        signatures.push(sig);
    }
    assert_eq!(signatures.len(), stakers.len());

    // ---- submissions: aggregate signatures, absent lists, signers' keys ----
    let submissions = v.array("submissions");
    assert_eq!(submissions.len(), 2);
    for s in &submissions {
        let absent_bytes = s.bytes("absent");
        let absent = parse_absent_list(&absent_bytes).unwrap();
        let expected_absent: &[u16] = match s.str("name") {
            "all sign" => &[],
            "slot 2 absent" => &[2],
            other => panic!("unknown submission {other}"),
        };
        assert_eq!(absent, expected_absent);
        assert_eq!(absent_list(&absent).unwrap(), Bytes::from(absent_bytes));

        let present: Vec<usize> = (0..stakers.len())
            .filter(|i| !absent.contains(&(*i as u16)))
            .collect();
        let signed_weight: u64 = present.iter().map(|&i| stakers[i].weight).sum();
        assert_eq!(s.u64("signedWeight"), signed_weight);
        assert!(
            3 * u128::from(signed_weight) > 2 * u128::from(total_weight),
            "quorum"
        );

        let aggregate = aggregate_signatures(present.iter().map(|&i| &signatures[i])).unwrap();
        assert_eq!(aggregate.to_eip2537().as_slice(), s.bytes("signature"));
        let parsed = Signature::from_eip2537(&s.bytes("signature")).unwrap();
        let keys: Vec<PublicKey> = present.iter().map(|&i| stakers[i].pk).collect();
        let signers_key = PublicKey::aggregate(&keys).unwrap();
        assert!(signers_key.verify(&digest, &parsed));
        assert!(fast_aggregate_verify(&digest, &parsed, &keys));
        if absent.is_empty() {
            assert!(!s.has("signersKey"));
            assert_eq!(signers_key, aggregate_key);
        } else {
            assert_eq!(signers_key.to_eip2537().as_slice(), s.bytes("signersKey"));
            // Short of the absent stakers, the aggregate does not verify under the set's key.
            assert!(!aggregate_key.verify(&digest, &parsed));
        }
    }
    drop(submissions);

    // ---- a double signature: one staker, two roots for checkpoint 1 ----
    let double = v.object("doubleCheckpoint");
    let slot = double.u64("slot") as usize;
    assert_eq!(
        double.address("signer"),
        label_address(&format!("koma-signer-{slot}"))
    );
    let staker = &stakers[slot];
    let mut signed = Vec::new();
    for (name, expected_root) in [
        ("a", header.root),
        ("b", keccak256("koma-conflicting-root")),
    ] {
        let vote = double.object(name);
        let h = CheckpointHeader {
            number: vote.u64("number"),
            start: vote.u64("start"),
            end: vote.u64("end"),
            root: vote.b256("root"),
        };
        assert_eq!(h.root, expected_root);
        assert_eq!(
            (h.number, h.start, h.end),
            (header.number, header.start, header.end)
        );
        let id = vote.u64("setId");
        let d = domain.digest(&h, id);
        assert_eq!(d, vote.b256("digest"));
        let sig = staker.sk.sign(&d);
        assert_eq!(sig.to_eip2537().as_slice(), vote.bytes("signature"));
        assert_eq!(sig.to_compressed().as_slice(), vote.bytes("compressed"));
        assert!(staker.pk.verify(
            &d,
            &Signature::from_compressed(&vote.bytes("compressed")).unwrap()
        ));
        signed.push((h, d));
    }
    assert_ne!(signed[0].0, signed[1].0, "two checkpoints with one number");
    assert_eq!(signed[0].1, digest, "the first is the staker's honest vote");
    drop(double);

    // ---- roots of 1..9 leaves, leaf i = keccak256(uint256 i) ----
    let roots = v.array("roots");
    assert_eq!(roots.len(), 9);
    for (n, r) in (1u64..).zip(&roots) {
        assert_eq!(r.u64("leaves"), n);
        let tree: MerkleTree = (0..n).map(|i| keccak256(word(i))).collect();
        assert_eq!(tree.root(), r.b256("root"), "root of {n} leaves");
    }
}
