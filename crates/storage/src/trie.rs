//! The node store behind the Merkle-Patricia tries.
//!
//! Nodes are keyed by their keccak hash in the `trie` column family and shared by the
//! account trie and all storage tries. A root computation writes new nodes to an
//! in-memory overlay; they reach disk only with the block's atomic write batch. Nodes
//! are never deleted (eth_trie's pruning of replaced nodes is ignored), which keeps
//! every committed state readable and makes unwinding a block cheap.

use crate::tables::{Table, cf};
use parking_lot::RwLock;
use rocksdb::DB;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrieDbError(String);

pub(crate) struct TrieStore {
    db: Arc<DB>,
    overlay: RwLock<HashMap<Vec<u8>, Vec<u8>>>,
}

impl TrieStore {
    pub(crate) fn new(db: Arc<DB>) -> Self {
        Self {
            db,
            overlay: RwLock::new(HashMap::new()),
        }
    }

    pub(crate) fn take_overlay(&self) -> HashMap<Vec<u8>, Vec<u8>> {
        std::mem::take(&mut *self.overlay.write())
    }
}

impl eth_trie::DB for TrieStore {
    type Error = TrieDbError;

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error> {
        if let Some(v) = self.overlay.read().get(key) {
            return Ok(Some(v.clone()));
        }
        self.db
            .get_cf(cf(&self.db, Table::Trie), key)
            .map_err(|e| TrieDbError(e.to_string()))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), Self::Error> {
        self.overlay.write().insert(key.to_vec(), value);
        Ok(())
    }

    fn insert_batch(&self, keys: Vec<Vec<u8>>, values: Vec<Vec<u8>>) -> Result<(), Self::Error> {
        let mut overlay = self.overlay.write();
        for (k, v) in keys.into_iter().zip(values) {
            overlay.insert(k, v);
        }
        Ok(())
    }

    fn remove(&self, _key: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }

    fn remove_batch(&self, _keys: &[Vec<u8>]) -> Result<(), Self::Error> {
        Ok(())
    }

    fn flush(&self) -> Result<(), Self::Error> {
        Ok(())
    }
}
