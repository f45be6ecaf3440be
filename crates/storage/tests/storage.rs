//! Storage: state roots against an independent trie computation, atomic commits,
//! unwinding, reopening and clear start-up errors.

use alloy::consensus::{BlockBody, Header};
use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_trie::{HashBuilder, Nibbles, TrieAccount};
use koma_primitives::{Block, ChainSpec, EMPTY_ROOT_HASH, KECCAK_EMPTY, Seal, SignedHeader};
use koma_storage::{AccountChange, Database, StateChanges, StateReader, changeset_info};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Reference state root: hashes every account from scratch with alloy-trie.
/// The state root of `state` computed from scratch; accounts keep the code the devnet
/// genesis gives them (the L2 bridge predeploy), the rest have none.
fn reference_root(state: &BTreeMap<Address, (u64, U256, BTreeMap<U256, U256>)>) -> B256 {
    let genesis = spec();
    let mut leaves: Vec<(B256, Vec<u8>)> = state
        .iter()
        .map(|(addr, (nonce, balance, storage))| {
            let storage_root = alloy_trie::root::storage_root_unhashed(
                storage
                    .iter()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| (B256::from(*k), *v)),
            );
            let acc = TrieAccount {
                nonce: *nonce,
                balance: *balance,
                storage_root,
                code_hash: genesis
                    .alloc
                    .get(addr)
                    .and_then(|g| g.code.as_ref())
                    .map_or(KECCAK_EMPTY, keccak256),
            };
            (keccak256(addr), alloy_rlp::encode(acc))
        })
        .collect();
    leaves.sort();
    let mut hb = HashBuilder::default();
    for (k, v) in leaves {
        hb.add_leaf(Nibbles::unpack(k), &v);
    }
    hb.root()
}

fn spec() -> ChainSpec {
    ChainSpec::devnet()
}

fn genesis_state(spec: &ChainSpec) -> BTreeMap<Address, (u64, U256, BTreeMap<U256, U256>)> {
    spec.alloc
        .iter()
        .map(|(a, g)| (*a, (g.nonce, g.balance, BTreeMap::new())))
        .collect()
}

/// Commits an (unsealed) block carrying `changes` on top of the head.
fn commit(db: &Database, changes: &StateChanges) -> B256 {
    let prepared = db.prepare_state(changes).unwrap();
    let head = db.head();
    let header = Header {
        parent_hash: head.hash,
        number: head.number() + 1,
        state_root: prepared.state_root,
        gas_limit: head.header.gas_limit,
        ..Default::default()
    };
    let block = Block {
        header: SignedHeader {
            header,
            seal: Seal::repeat_byte(0xab),
        },
        body: BlockBody::default(),
    };
    db.commit_block(&block, &[], &[], prepared)
        .unwrap()
        .header
        .state_root
}

#[test]
fn seal_is_stored_beside_the_unsigned_header() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec();
    let db = Database::open(dir.path(), &spec).unwrap();
    assert_eq!(
        db.seal(db.genesis_hash()).unwrap(),
        None,
        "nobody seals genesis"
    );
    commit(&db, &StateChanges::default());
    let head = db.head();
    assert_eq!(db.seal(head.hash).unwrap(), Some(Seal::repeat_byte(0xab)));
    let signed = db.signed_header(head.hash).unwrap().unwrap();
    assert_eq!(signed.header, head.header);
    assert_eq!(
        signed.hash_slow(),
        head.hash,
        "the hash is the unsigned header's"
    );
}

#[test]
fn genesis_root_matches_reference_and_reopen_keeps_head() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec();
    let db = Database::open(dir.path(), &spec).unwrap();
    assert_eq!(db.head().number(), 0);
    assert_eq!(
        db.head().header.state_root,
        reference_root(&genesis_state(&spec))
    );
    let genesis = db.genesis_hash();
    drop(db);
    let db = Database::open(dir.path(), &spec).unwrap();
    assert_eq!(db.genesis_hash(), genesis);
}

#[test]
fn opening_another_chains_datadir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    Database::open(dir.path(), &spec()).unwrap();
    let mut other = spec();
    other.chain_id = 7;
    let err = Database::open(dir.path(), &other).unwrap_err().to_string();
    assert!(err.contains("different chain"), "{err}");
}

#[test]
fn the_chain_spec_is_stored_and_readable_while_open() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Database::stored_spec(dir.path()).unwrap().is_none());
    let mut custom = spec();
    custom.producers.sprint = 4;
    let db = Database::open(dir.path(), &custom).unwrap();
    assert_eq!(Database::stored_spec(dir.path()).unwrap(), Some(custom));
    drop(db);
}

#[test]
fn corrupt_datadir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    Database::open(dir.path(), &spec()).unwrap();
    // Destroy RocksDB's manifest pointer.
    std::fs::write(dir.path().join("CURRENT"), b"garbage\n").unwrap();
    let err = Database::open(dir.path(), &spec()).unwrap_err().to_string();
    assert!(err.contains("cannot open database"), "{err}");
}

#[test]
fn unwind_restores_plain_state_and_history_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec();
    let db = Database::open(dir.path(), &spec).unwrap();
    let a = Address::repeat_byte(0xaa);
    let change = |balance: u64, slot_value: u64| StateChanges {
        accounts: vec![AccountChange {
            address: a,
            info: Some(changeset_info(1, U256::from(balance), KECCAK_EMPTY)),
            storage_wiped: false,
            storage: vec![(U256::from(1), U256::from(slot_value))],
        }],
        code: vec![],
    };
    let root1 = commit(&db, &change(100, 7));
    let root2 = commit(&db, &change(50, 0));
    assert_ne!(root1, root2);
    assert_eq!(db.account(a).unwrap().unwrap().balance, U256::from(50));
    assert_eq!(db.storage(a, U256::from(1)).unwrap(), U256::ZERO);
    // Historical reads through the trie.
    let old = db.state_at(root1);
    assert_eq!(old.account(a).unwrap().unwrap().balance, U256::from(100));
    assert_eq!(old.storage(a, U256::from(1)).unwrap(), U256::from(7));

    let unwound = db.unwind_to(1).unwrap();
    assert_eq!(unwound.len(), 1);
    assert_eq!(db.head().number(), 1);
    assert_eq!(db.head().header.state_root, root1);
    assert_eq!(db.account(a).unwrap().unwrap().balance, U256::from(100));
    assert_eq!(db.storage(a, U256::from(1)).unwrap(), U256::from(7));
    db.unwind_to(0).unwrap();
    assert!(db.account(a).unwrap().is_none());
    assert_eq!(db.storage(a, U256::from(1)).unwrap(), U256::ZERO);
    // Re-applying gives the same root again.
    assert_eq!(commit(&db, &change(100, 7)), root1);
}

#[test]
fn wiped_storage_is_removed_and_unwound() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), &spec()).unwrap();
    let a = Address::repeat_byte(0xbb);
    let info = Some(changeset_info(1, U256::from(1), KECCAK_EMPTY));
    let slots: Vec<_> = (1..=3u64)
        .map(|i| (U256::from(i), U256::from(i * 10)))
        .collect();
    commit(
        &db,
        &StateChanges {
            accounts: vec![AccountChange {
                address: a,
                info,
                storage_wiped: false,
                storage: slots,
            }],
            code: vec![],
        },
    );
    let root = commit(
        &db,
        &StateChanges {
            accounts: vec![AccountChange {
                address: a,
                info,
                storage_wiped: true,
                storage: vec![(U256::from(9), U256::from(90))],
            }],
            code: vec![],
        },
    );
    assert_eq!(db.storage(a, U256::from(2)).unwrap(), U256::ZERO);
    assert_eq!(db.storage(a, U256::from(9)).unwrap(), U256::from(90));
    let mut expected = genesis_state(&spec());
    expected.insert(
        a,
        (
            1,
            U256::from(1),
            BTreeMap::from([(U256::from(9), U256::from(90))]),
        ),
    );
    assert_eq!(root, reference_root(&expected));
    db.unwind_to(1).unwrap();
    assert_eq!(db.storage(a, U256::from(2)).unwrap(), U256::from(20));
    assert_eq!(db.storage(a, U256::from(9)).unwrap(), U256::ZERO);
}

#[test]
fn empty_state_root_is_the_empty_trie() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec();
    spec.alloc.clear();
    let db = Database::open(dir.path(), &spec).unwrap();
    assert_eq!(db.head().header.state_root, EMPTY_ROOT_HASH);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Incremental roots over random blocks of account and slot changes (including
    /// deletions) equal the root recomputed from scratch.
    #[test]
    fn incremental_root_equals_full_recomputation(
        blocks in prop::collection::vec(
            prop::collection::vec((0u8..24, 0u64..4, prop::collection::vec((0u8..6, 0u64..3), 0..4), prop::bool::weighted(0.1)), 1..12),
            1..6)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec();
        let db = Database::open(dir.path(), &spec).unwrap();
        let mut model = genesis_state(&spec);
        for block in blocks {
            let mut by_addr: BTreeMap<Address, AccountChange> = BTreeMap::new();
            for (a, balance, slots, delete) in block {
                let address = Address::with_last_byte(a);
                let storage: Vec<(U256, U256)> = slots.into_iter().map(|(k, v)| (U256::from(k), U256::from(v))).collect();
                let info = (!delete).then(|| changeset_info(1, U256::from(balance + 1), KECCAK_EMPTY));
                let entry = by_addr.entry(address).or_insert(AccountChange { address, info, storage_wiped: false, storage: vec![] });
                entry.info = info;
                if delete {
                    entry.storage_wiped = true;
                    entry.storage.clear();
                } else {
                    for (k, v) in storage {
                        entry.storage.retain(|(x, _)| *x != k);
                        entry.storage.push((k, v));
                    }
                }
            }
            for c in by_addr.values() {
                match c.info {
                    None => { model.remove(&c.address); }
                    Some(i) => {
                        let e = model.entry(c.address).or_insert((1, U256::ZERO, BTreeMap::new()));
                        e.1 = i.balance;
                        if c.storage_wiped { e.2.clear(); }
                        for (k, v) in &c.storage {
                            if v.is_zero() { e.2.remove(k); } else { e.2.insert(*k, *v); }
                        }
                    }
                }
            }
            let changes = StateChanges { accounts: by_addr.into_values().collect(), code: vec![] };
            let root = commit(&db, &changes);
            prop_assert_eq!(root, reference_root(&model));
        }
    }
}
