//! A consistent read view of the chain at one instant.
//!
//! [`Database::snapshot`] pins a RocksDB snapshot and reads the head pointer from it, so
//! the head, the canonical index, bodies, receipts and the plain latest state all
//! belong to the same committed block, however many blocks are committed (or unwound)
//! while a reader uses it. Readers that resolve a block tag and then read state (an
//! RPC `eth_call` on `latest`, a log query over a range) use one snapshot for the whole
//! request.

use crate::codec;
use crate::tables::{self, Table};
use crate::{Database, StateReader, StorageError, StoredBody, TxLocation};
use alloy::consensus::{Header, ReceiptEnvelope};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_trie::TrieAccount;
use koma_primitives::SealedHeader;

/// The chain as committed at the moment [`Database::snapshot`] was called.
pub struct Snapshot<'a> {
    db: &'a Database,
    snap: rocksdb::Snapshot<'a>,
    head: SealedHeader,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("head", &self.head.hash)
            .finish()
    }
}

impl Database {
    /// Pins the current committed state; see [`Snapshot`].
    pub fn snapshot(&self) -> Result<Snapshot<'_>, StorageError> {
        let snap = self.db.snapshot();
        let head_hash = get(&self.db, &snap, Table::Meta, tables::META_HEAD)?
            .map(|v| codec::decode_b256(&v))
            .transpose()?
            .ok_or_else(|| StorageError::Corrupt("head pointer missing".into()))?;
        let header = decode_header(
            head_hash,
            get(&self.db, &snap, Table::Headers, head_hash.as_slice())?,
        )?
        .ok_or_else(|| StorageError::Corrupt(format!("head block {head_hash} missing")))?;
        Ok(Snapshot {
            db: self,
            snap,
            head: SealedHeader {
                hash: head_hash,
                header,
            },
        })
    }
}

fn get(
    db: &rocksdb::DB,
    snap: &rocksdb::Snapshot<'_>,
    t: Table,
    k: &[u8],
) -> Result<Option<Vec<u8>>, StorageError> {
    snap.get_cf(tables::cf(db, t), k)
        .map_err(|e| StorageError::Read(e.to_string()))
}

fn decode_header(hash: B256, raw: Option<Vec<u8>>) -> Result<Option<Header>, StorageError> {
    raw.map(|v| {
        alloy_rlp::Decodable::decode(&mut v.as_slice())
            .map_err(|e| StorageError::Corrupt(format!("header {hash}: {e}")))
    })
    .transpose()
}

impl Snapshot<'_> {
    fn get(&self, t: Table, k: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        get(&self.db.db, &self.snap, t, k)
    }

    /// The canonical head of this snapshot.
    pub fn head(&self) -> &SealedHeader {
        &self.head
    }

    /// The database the snapshot was taken of (for readers of immutable data, such as
    /// the state under an older state root).
    pub fn database(&self) -> &Database {
        self.db
    }

    /// Canonical block hash at `number`.
    pub fn canonical_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        self.get(Table::Canonical, &codec::encode_u64(number))?
            .map(|v| codec::decode_b256(&v))
            .transpose()
    }

    /// Header by hash (canonical or not).
    pub fn header(&self, hash: B256) -> Result<Option<Header>, StorageError> {
        decode_header(hash, self.get(Table::Headers, hash.as_slice())?)
    }

    /// The producer's seal over block `hash` (`None` for genesis and unknown blocks).
    pub fn seal(&self, hash: B256) -> Result<Option<koma_primitives::Seal>, StorageError> {
        self.get(Table::Seals, hash.as_slice())?
            .map(|v| codec::decode_seal(hash, &v))
            .transpose()
    }

    /// Canonical header at `number`.
    pub fn header_by_number(&self, number: u64) -> Result<Option<SealedHeader>, StorageError> {
        let Some(hash) = self.canonical_hash(number)? else {
            return Ok(None);
        };
        Ok(self
            .header(hash)?
            .map(|header| SealedHeader { hash, header }))
    }

    /// Whether `hash` is on the canonical chain of this snapshot.
    pub fn is_canonical(&self, hash: B256, number: u64) -> Result<bool, StorageError> {
        Ok(self.canonical_hash(number)? == Some(hash))
    }

    /// Transactions and senders of block `hash`.
    pub fn body(&self, hash: B256) -> Result<Option<StoredBody>, StorageError> {
        self.get(Table::Bodies, hash.as_slice())?
            .map(|v| codec::decode_body(&v))
            .transpose()
    }

    /// Receipts of block `hash`, in transaction order.
    pub fn receipts(&self, hash: B256) -> Result<Option<Vec<ReceiptEnvelope>>, StorageError> {
        self.get(Table::Receipts, hash.as_slice())?
            .map(|v| codec::decode_receipts(&v))
            .transpose()
    }

    /// Where a canonical transaction is.
    pub fn tx_location(&self, tx_hash: B256) -> Result<Option<TxLocation>, StorageError> {
        self.get(Table::TxLookup, tx_hash.as_slice())?
            .map(|v| codec::decode_tx_location(&v))
            .transpose()
    }
}

/// The plain latest state of the snapshot (the state after [`Snapshot::head`]).
impl StateReader for Snapshot<'_> {
    fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError> {
        self.get(Table::Accounts, address.as_slice())?
            .map(|v| codec::decode_account(&v))
            .transpose()
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StorageError> {
        Ok(self
            .get(Table::Storage, &codec::storage_key(address, slot))?
            .map(|v| U256::from_be_slice(&v))
            .unwrap_or_default())
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError> {
        if code_hash == koma_primitives::KECCAK_EMPTY {
            return Ok(Some(Bytes::new()));
        }
        Ok(self
            .get(Table::Code, code_hash.as_slice())?
            .map(Bytes::from))
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        self.canonical_hash(number)
    }
}

/// Readers of one state can be shared by reference.
impl<T: StateReader + ?Sized> StateReader for &T {
    fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError> {
        (**self).account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StorageError> {
        (**self).storage(address, slot)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError> {
        (**self).code(code_hash)
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        (**self).block_hash(number)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Database, StateReader};
    use koma_primitives::ChainSpec;

    #[test]
    fn snapshot_sees_the_head_it_was_taken_at() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ChainSpec::devnet();
        let db = Database::open(dir.path(), &spec).unwrap();
        let snap = db.snapshot().unwrap();
        assert_eq!(snap.head().hash, db.head().hash);
        assert_eq!(snap.head().number(), 0);
        assert_eq!(snap.canonical_hash(0).unwrap(), Some(db.genesis_hash()));
        assert!(snap.header_by_number(1).unwrap().is_none());
        assert!(snap.body(db.genesis_hash()).unwrap().is_some());
        // The plain state of the snapshot is the genesis allocation.
        let (address, _) = spec.alloc.iter().next().unwrap();
        assert_eq!(
            snap.account(*address).unwrap(),
            db.latest().account(*address).unwrap()
        );
    }
}
