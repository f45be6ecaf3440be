//! State readers and the preparation of a block's state write.

use crate::changeset::{ChangeSetEntry, SlotValue};
use crate::codec::{self, storage_key};
use crate::tables::{Table, cf};
use crate::trie::TrieStore;
use crate::{Database, StateChanges, StorageError};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::TrieAccount;
use eth_trie::{EthTrie, Trie};
use koma_primitives::EMPTY_ROOT_HASH;
use rocksdb::{DB, WriteBatch};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Read access to one version of the state.
pub trait StateReader: Send + Sync {
    fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError>;
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StorageError>;
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError>;
    /// Canonical block hash by number (for the BLOCKHASH opcode).
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError>;
}

/// The latest state, read from the plain tables (fast point lookups).
#[derive(Clone, Debug)]
pub struct LatestState {
    db: Database,
}

impl LatestState {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

impl StateReader for LatestState {
    fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError> {
        self.db.account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StorageError> {
        self.db.storage(address, slot)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError> {
        self.db.code(code_hash)
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        self.db.canonical_hash(number)
    }
}

/// The state under a given state root, read through the trie (any committed block).
#[derive(Clone, Debug)]
pub struct HistoricalState {
    db: Database,
    root: B256,
}

impl HistoricalState {
    pub(crate) fn new(db: Database, root: B256) -> Self {
        Self { db, root }
    }

    fn trie_get(&self, root: B256, key: B256) -> Result<Option<Vec<u8>>, StorageError> {
        if root == EMPTY_ROOT_HASH {
            return Ok(None);
        }
        let store = Arc::new(TrieStore::new(self.db.db.clone()));
        let trie = EthTrie::from(store, root)
            .map_err(|e| StorageError::Trie(format!("root {root}: {e}")))?;
        trie.get(key.as_slice())
            .map_err(|e| StorageError::Trie(e.to_string()))
    }
}

impl StateReader for HistoricalState {
    fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError> {
        self.trie_get(self.root, keccak256(address))?
            .map(|v| codec::decode_account(&v))
            .transpose()
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StorageError> {
        let Some(acc) = self.account(address)? else {
            return Ok(U256::ZERO);
        };
        let Some(v) = self.trie_get(acc.storage_root, keccak256(slot.to_be_bytes::<32>()))? else {
            return Ok(U256::ZERO);
        };
        U256::decode(&mut v.as_slice())
            .map_err(|e| StorageError::Corrupt(format!("storage value: {e}")))
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError> {
        self.db.code(code_hash)
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        self.db.canonical_hash(number)
    }
}

/// A block's state write, computed in memory and not yet on disk.
#[derive(Debug, Default)]
pub struct PreparedState {
    /// The head this was computed on.
    pub(crate) parent: B256,
    /// The state root after the block.
    pub state_root: B256,
    accounts: Vec<(Address, Option<TrieAccount>)>,
    storage: Vec<(Address, U256, U256)>,
    wiped: Vec<Address>,
    code: Vec<(B256, Bytes)>,
    trie_nodes: HashMap<Vec<u8>, Vec<u8>>,
    changeset: Vec<u8>,
}

impl PreparedState {
    pub(crate) fn write_into(self, db: &DB, batch: &mut WriteBatch, number: u64) {
        for address in &self.wiped {
            let from = storage_key(*address, U256::ZERO);
            let mut to = [0xffu8; 52];
            to[..20].copy_from_slice(address.as_slice());
            batch.delete_range_cf(cf(db, Table::Storage), from, to);
            // delete_range's end is exclusive: remove the last slot explicitly.
            batch.delete_cf(cf(db, Table::Storage), to);
        }
        for (address, acc) in &self.accounts {
            match acc {
                Some(acc) => batch.put_cf(
                    cf(db, Table::Accounts),
                    address.as_slice(),
                    codec::encode_account(acc),
                ),
                None => batch.delete_cf(cf(db, Table::Accounts), address.as_slice()),
            }
        }
        for (address, slot, value) in &self.storage {
            let key = storage_key(*address, *slot);
            if value.is_zero() {
                batch.delete_cf(cf(db, Table::Storage), key);
            } else {
                batch.put_cf(cf(db, Table::Storage), key, value.to_be_bytes_trimmed_vec());
            }
        }
        for (hash, code) in &self.code {
            batch.put_cf(cf(db, Table::Code), hash.as_slice(), code);
        }
        for (k, v) in &self.trie_nodes {
            batch.put_cf(cf(db, Table::Trie), k, v);
        }
        batch.put_cf(
            cf(db, Table::ChangeSets),
            codec::encode_u64(number),
            &self.changeset,
        );
    }

    /// Number of trie nodes this block adds (for metrics and benchmarks).
    pub fn new_trie_nodes(&self) -> usize {
        self.trie_nodes.len()
    }
}

fn open_trie(store: &Arc<TrieStore>, root: B256) -> Result<EthTrie<TrieStore>, StorageError> {
    if root == EMPTY_ROOT_HASH {
        Ok(EthTrie::new(store.clone()))
    } else {
        EthTrie::from(store.clone(), root)
            .map_err(|e| StorageError::Trie(format!("cannot open root {root}: {e}")))
    }
}

fn trie_err(e: eth_trie::TrieError) -> StorageError {
    StorageError::Trie(e.to_string())
}

/// Applies `changes` on top of the plain state and the trie at `parent_root`.
pub(crate) fn prepare(
    db: &Arc<DB>,
    parent_root: B256,
    changes: &StateChanges,
) -> Result<PreparedState, StorageError> {
    let store = Arc::new(TrieStore::new(db.clone()));
    let mut account_trie = open_trie(&store, parent_root)?;
    let mut out = PreparedState {
        code: changes.code.clone(),
        ..Default::default()
    };
    let mut changeset = Vec::with_capacity(changes.accounts.len());
    let get = |t: Table, k: &[u8]| {
        db.get_cf(cf(db, t), k)
            .map_err(|e| StorageError::Read(e.to_string()))
    };

    for change in &changes.accounts {
        let address = change.address;
        let old = get(Table::Accounts, address.as_slice())?
            .map(|v| codec::decode_account(&v))
            .transpose()?;
        let mut prior_slots = Vec::new();
        let mut storage_root = old.map_or(EMPTY_ROOT_HASH, |a| a.storage_root);
        let mut recorded = HashSet::new();
        if change.storage_wiped {
            storage_root = EMPTY_ROOT_HASH;
            out.wiped.push(address);
            let prefix = address.as_slice();
            let iter = db.prefix_iterator_cf(cf(db, Table::Storage), prefix);
            for item in iter {
                let (k, v) = item.map_err(|e| StorageError::Read(e.to_string()))?;
                if !k.starts_with(prefix) {
                    break;
                }
                let slot = U256::from_be_slice(k.get(20..).unwrap_or_default());
                recorded.insert(slot);
                prior_slots.push(SlotValue {
                    slot,
                    value: U256::from_be_slice(&v),
                });
            }
        }
        if !change.storage.is_empty() {
            let mut trie = open_trie(&store, storage_root)?;
            for (slot, value) in &change.storage {
                if recorded.insert(*slot) {
                    let prior = if change.storage_wiped {
                        U256::ZERO
                    } else {
                        get(Table::Storage, &storage_key(address, *slot))?
                            .map(|v| U256::from_be_slice(&v))
                            .unwrap_or_default()
                    };
                    prior_slots.push(SlotValue {
                        slot: *slot,
                        value: prior,
                    });
                }
                let key = keccak256(slot.to_be_bytes::<32>());
                if value.is_zero() {
                    trie.remove(key.as_slice()).map_err(trie_err)?;
                } else {
                    trie.insert(key.as_slice(), &alloy_rlp::encode(value))
                        .map_err(trie_err)?;
                }
                out.storage.push((address, *slot, *value));
            }
            storage_root = trie.root_hash().map_err(trie_err)?;
        }
        let key = keccak256(address);
        match change.info {
            None => {
                account_trie.remove(key.as_slice()).map_err(trie_err)?;
                out.accounts.push((address, None));
            }
            Some(info) => {
                let acc = TrieAccount {
                    nonce: info.nonce,
                    balance: info.balance,
                    storage_root,
                    code_hash: info.code_hash,
                };
                account_trie
                    .insert(key.as_slice(), &codec::encode_account(&acc))
                    .map_err(trie_err)?;
                out.accounts.push((address, Some(acc)));
            }
        }
        changeset.push(ChangeSetEntry {
            address,
            existed: old.is_some(),
            account: old.unwrap_or_default(),
            storage: prior_slots,
        });
    }
    out.state_root = account_trie.root_hash().map_err(trie_err)?;
    out.trie_nodes = store.take_overlay();
    out.changeset = alloy_rlp::encode(&changeset);
    Ok(out)
}
