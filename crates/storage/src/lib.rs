//! KOMA's chain database on RocksDB.
//!
//! Column families ([`tables`]): headers, canonical numbers, bodies (transactions with
//! their recovered senders), receipts, the transaction lookup index, the plain latest
//! state (accounts, storage slots, code), the Merkle-Patricia trie nodes, per-block
//! change sets, and metadata.
//!
//! Invariants:
//! - A block, its receipts, its state changes, its trie nodes, its change set and the
//!   new head pointer are written in **one atomic `WriteBatch`** ([`Database::commit_block`]).
//!   After `kill -9` at any moment the node reopens at its last committed block with a
//!   state that matches that block's `stateRoot`, never half a block.
//! - Trie nodes are keyed by hash and never deleted, so the state of any committed
//!   block can be read through its root ([`Database::state_at`]) and unwinding a block
//!   only has to restore the plain tables from its change set ([`Database::unwind_to`]).
//! - The state root costs in proportion to what a block touches: only the trie paths of
//!   changed accounts and slots are loaded and rehashed ([`Database::prepare_state`]).
//! - [`Database::snapshot`] pins one committed block: its head pointer, canonical index,
//!   bodies, receipts and plain state are read from one RocksDB snapshot, so a reader
//!   that resolves `latest` and then reads state sees one block however many are
//!   committed meanwhile.

// Data from peers and clients reaches this crate: no unwrap/expect/panic, no unchecked
// indexing or arithmetic outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

mod changeset;
mod codec;
mod error;
mod event;
mod snapshot;
mod state;
pub mod tables;
mod trie;

pub use changeset::{AccountChange, AccountInfo, StateChanges};

/// Builds the account fields of an [`AccountChange`].
pub fn changeset_info(nonce: u64, balance: U256, code_hash: B256) -> AccountInfo {
    AccountInfo {
        nonce,
        balance,
        code_hash,
    }
}
pub use error::StorageError;
pub use event::ChainEvent;
pub use snapshot::Snapshot;
pub use state::{HistoricalState, LatestState, PreparedState, StateReader};

use alloy::consensus::{Header, ReceiptEnvelope, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_trie::TrieAccount;
use koma_primitives::{Block, ChainSpec, EMPTY_ROOT_HASH, Seal, SealedHeader, SignedHeader};
use parking_lot::RwLock;
use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};
use std::path::Path;
use std::sync::Arc;
use tables::Table;

/// Database schema version; bumped on any incompatible layout change.
pub const SCHEMA_VERSION: u64 = 3;

/// Where a transaction sits in the canonical chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    pub block_hash: B256,
    pub block_number: u64,
    pub index: u64,
}

/// A block body as stored: transactions with the senders recovered at import, so that
/// reading a block never has to redo signature recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBody {
    pub transactions: Vec<TxEnvelope>,
    pub senders: Vec<Address>,
}

/// The chain database. Cheap to clone; all clones share one RocksDB instance.
#[derive(Clone)]
pub struct Database {
    db: Arc<DB>,
    head: Arc<RwLock<SealedHeader>>,
    genesis_hash: B256,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("head", &self.head.read().hash)
            .finish()
    }
}

impl Database {
    /// Opens (or creates) the database in `path` for the chain `spec`, writing the
    /// genesis block if the directory is new. A directory that belongs to another
    /// chain, or that is damaged, gives a clear error.
    pub fn open(path: &Path, spec: &ChainSpec) -> Result<Self, StorageError> {
        std::fs::create_dir_all(path)
            .map_err(|e| StorageError::Open(format!("cannot create {}: {e}", path.display())))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_bytes_per_sync(1 << 20);
        opts.increase_parallelism(2);
        let cfs = Table::ALL
            .iter()
            .map(|t| ColumnFamilyDescriptor::new(t.name(), t.options()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            StorageError::Open(format!("cannot open database at {}: {e}", path.display()))
        })?;
        let db = Arc::new(db);

        let digest = spec.digest();
        let stored_digest = get_raw(&db, Table::Meta, tables::META_SPEC)?;
        match stored_digest {
            Some(d) if d.as_slice() != digest.as_slice() => Err(StorageError::Open(format!(
                "{} holds a different chain (chain spec digest mismatch); use another --datadir",
                path.display()
            ))),
            Some(_) => {
                let schema = get_raw(&db, Table::Meta, tables::META_SCHEMA)?
                    .and_then(|v| codec::decode_u64(&v))
                    .ok_or_else(|| StorageError::Corrupt("schema version missing".into()))?;
                if schema != SCHEMA_VERSION {
                    return Err(StorageError::Open(format!(
                        "database schema {schema} is not supported (this node uses {SCHEMA_VERSION})"
                    )));
                }
                let head_hash = get_raw(&db, Table::Meta, tables::META_HEAD)?
                    .map(|v| codec::decode_b256(&v))
                    .transpose()?
                    .ok_or_else(|| StorageError::Corrupt("head pointer missing".into()))?;
                let genesis_hash = get_raw(&db, Table::Canonical, &codec::encode_u64(0))?
                    .map(|v| codec::decode_b256(&v))
                    .transpose()?
                    .ok_or_else(|| StorageError::Corrupt("genesis block missing".into()))?;
                let header = read_header(&db, head_hash)?.ok_or_else(|| {
                    StorageError::Corrupt(format!("head block {head_hash} missing"))
                })?;
                if get_raw(&db, Table::Meta, tables::META_SPEC_JSON)?.is_none() {
                    // Directories created before the spec was stored: the digest matched.
                    db.put_cf(
                        tables::cf(&db, Table::Meta),
                        tables::META_SPEC_JSON,
                        spec_json(spec)?,
                    )
                    .map_err(|e| StorageError::Write(e.to_string()))?;
                }
                Ok(Self {
                    db,
                    head: Arc::new(RwLock::new(SealedHeader {
                        hash: head_hash,
                        header,
                    })),
                    genesis_hash,
                })
            }
            None => Self::init_genesis(db, spec),
        }
    }

    fn init_genesis(db: Arc<DB>, spec: &ChainSpec) -> Result<Self, StorageError> {
        let mut changes = StateChanges::default();
        for (address, acc) in &spec.alloc {
            let code = acc.code.clone().filter(|c| !c.is_empty());
            let code_hash = code
                .as_ref()
                .map_or(koma_primitives::KECCAK_EMPTY, keccak256);
            changes.accounts.push(AccountChange {
                address: *address,
                info: Some(changeset::AccountInfo {
                    nonce: acc.nonce,
                    balance: acc.balance,
                    code_hash,
                }),
                storage_wiped: false,
                storage: acc
                    .storage
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            });
            if let Some(code) = code {
                changes.code.push((code_hash, code));
            }
        }
        let prepared = state::prepare(&db, EMPTY_ROOT_HASH, &changes)?;
        let header = Header {
            number: 0,
            gas_limit: spec.gas_limit,
            timestamp: spec.timestamp,
            extra_data: spec.extra_data.clone(),
            state_root: prepared.state_root,
            base_fee_per_gas: Some(spec.fees.initial_base_fee),
            withdrawals_root: Some(EMPTY_ROOT_HASH),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            requests_hash: Some(alloy::eips::eip7685::EMPTY_REQUESTS_HASH),
            ..Default::default()
        };
        let sealed = SealedHeader::seal(header);
        let genesis_hash = sealed.hash;
        let this = Self {
            db,
            head: Arc::new(RwLock::new(sealed.clone())),
            genesis_hash,
        };
        let mut batch = WriteBatch::default();
        this.put(
            &mut batch,
            Table::Meta,
            tables::META_SPEC,
            spec.digest().as_slice(),
        );
        this.put(
            &mut batch,
            Table::Meta,
            tables::META_SCHEMA,
            &codec::encode_u64(SCHEMA_VERSION),
        );
        this.put(
            &mut batch,
            Table::Meta,
            tables::META_SPEC_JSON,
            &spec_json(spec)?,
        );
        let block = Block {
            header: SignedHeader {
                header: sealed.header.clone(),
                seal: Seal::ZERO,
            },
            body: Default::default(),
        };
        this.write_block(batch, &sealed, &block, &[], &[], prepared)?;
        Ok(this)
    }

    /// The chain spec stored in the data directory at `path` (opened read-only, so a
    /// running node's directory can be read), or `None` if it holds no database.
    pub fn stored_spec(path: &Path) -> Result<Option<ChainSpec>, StorageError> {
        if !path.join("CURRENT").exists() {
            return Ok(None);
        }
        let opts = Options::default();
        // The column families that exist (an older directory may lack newer ones).
        let names = DB::list_cf(&opts, path).map_err(|e| {
            StorageError::Open(format!("cannot open database at {}: {e}", path.display()))
        })?;
        let db = DB::open_cf_for_read_only(&opts, path, names, false).map_err(|e| {
            StorageError::Open(format!("cannot open database at {}: {e}", path.display()))
        })?;
        get_raw(&db, Table::Meta, tables::META_SPEC_JSON)?
            .map(|json| {
                serde_json::from_slice(&json)
                    .map_err(|e| StorageError::Corrupt(format!("stored chain spec: {e}")))
            })
            .transpose()
    }

    /// Stores a KoMaBFT unit of the era instance `instance`. `durable` waits for the
    /// write to reach disk: a node's own units are stored so before they are broadcast.
    pub fn put_consensus_unit(
        &self,
        instance: B256,
        hash: B256,
        unit: &[u8],
        durable: bool,
    ) -> Result<(), StorageError> {
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(tables::cf(&self.db, Table::ConsensusUnits), hash, unit);
        batch.put_cf(
            tables::cf(&self.db, Table::ConsensusEraUnits),
            era_unit_key(&instance, &hash),
            [],
        );
        let mut wo = WriteOptions::default();
        wo.set_sync(durable);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| StorageError::Write(e.to_string()))
    }

    /// A stored KoMaBFT unit by hash.
    pub fn consensus_unit(&self, hash: B256) -> Result<Option<Vec<u8>>, StorageError> {
        get_raw(&self.db, Table::ConsensusUnits, hash.as_slice())
    }

    /// Every stored unit of the era instance `instance` (in no particular order; the
    /// caller re-adds them by dependency).
    pub fn consensus_units(&self, instance: B256) -> Result<Vec<Vec<u8>>, StorageError> {
        let index = tables::cf(&self.db, Table::ConsensusEraUnits);
        let mut hashes = Vec::new();
        for item in self.db.prefix_iterator_cf(index, instance) {
            let (key, _) = item.map_err(|e| StorageError::Read(e.to_string()))?;
            match key.split_at_checked(32) {
                Some((prefix, hash)) if prefix == instance.as_slice() => hashes.push(hash.to_vec()),
                _ => break,
            }
        }
        let units = tables::cf(&self.db, Table::ConsensusUnits);
        let mut out = Vec::with_capacity(hashes.len());
        for value in self
            .db
            .multi_get_cf(hashes.iter().map(|h| (units, h.as_slice())))
        {
            if let Some(v) = value.map_err(|e| StorageError::Read(e.to_string()))? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Stores this node's own vote on checkpoint `number`, durably (before it is
    /// gossiped).
    pub fn put_checkpoint_vote(&self, number: u64, vote: &[u8]) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .put_cf_opt(
                tables::cf(&self.db, Table::CheckpointVotes),
                number.to_be_bytes(),
                vote,
                &wo,
            )
            .map_err(|e| StorageError::Write(e.to_string()))
    }

    /// This node's own vote on checkpoint `number`, if it signed one.
    pub fn checkpoint_vote(&self, number: u64) -> Result<Option<Vec<u8>>, StorageError> {
        get_raw(&self.db, Table::CheckpointVotes, &number.to_be_bytes())
    }

    /// Stores (or replaces) the record of KoMaBFT era `era`, durably.
    pub fn put_era_record(&self, era: u64, record: &[u8]) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .put_cf_opt(
                tables::cf(&self.db, Table::ConsensusEras),
                era.to_be_bytes(),
                record,
                &wo,
            )
            .map_err(|e| StorageError::Write(e.to_string()))
    }

    /// Stores the latest unit hashes of a closed era (to serve peers catching up).
    pub fn put_era_tips(&self, instance: B256, tips: &[B256]) -> Result<(), StorageError> {
        let value: Vec<u8> = tips.iter().flat_map(|h| h.0).collect();
        self.db
            .put_cf(
                tables::cf(&self.db, Table::ConsensusEraTips),
                instance,
                value,
            )
            .map_err(|e| StorageError::Write(e.to_string()))
    }

    /// The latest unit hashes of a closed era, if stored.
    pub fn era_tips(&self, instance: B256) -> Result<Vec<B256>, StorageError> {
        Ok(
            get_raw(&self.db, Table::ConsensusEraTips, instance.as_slice())?
                .unwrap_or_default()
                .chunks_exact(32)
                .map(B256::from_slice)
                .collect(),
        )
    }

    /// Every stored era record, oldest era first (keys are big-endian era numbers).
    pub fn era_records(&self) -> Result<Vec<Vec<u8>>, StorageError> {
        let cf = tables::cf(&self.db, Table::ConsensusEras);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (_, value) = item.map_err(|e| StorageError::Read(e.to_string()))?;
            out.push(value.to_vec());
        }
        Ok(out)
    }

    /// Stores the KoMaBFT finality record (opaque to storage), durably.
    pub fn put_finality(&self, record: &[u8]) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .put_cf_opt(
                tables::cf(&self.db, Table::Meta),
                tables::META_FINALITY,
                record,
                &wo,
            )
            .map_err(|e| StorageError::Write(e.to_string()))
    }

    pub fn finality(&self) -> Result<Option<Vec<u8>>, StorageError> {
        get_raw(&self.db, Table::Meta, tables::META_FINALITY)
    }

    /// Hash of block 0.
    pub fn genesis_hash(&self) -> B256 {
        self.genesis_hash
    }

    /// The canonical head.
    pub fn head(&self) -> SealedHeader {
        self.head.read().clone()
    }

    fn cf(&self, t: Table) -> &rocksdb::ColumnFamily {
        tables::cf(&self.db, t)
    }

    fn put(&self, batch: &mut WriteBatch, t: Table, k: &[u8], v: &[u8]) {
        batch.put_cf(self.cf(t), k, v);
    }

    fn get(&self, t: Table, k: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        get_raw(&self.db, t, k)
    }

    /// Canonical block hash at `number`.
    pub fn canonical_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        self.get(Table::Canonical, &codec::encode_u64(number))?
            .map(|v| codec::decode_b256(&v))
            .transpose()
    }

    /// Header by hash (canonical or not).
    pub fn header(&self, hash: B256) -> Result<Option<Header>, StorageError> {
        read_header(&self.db, hash)
    }

    /// The producer's seal over block `hash` (`None` for genesis and unknown blocks).
    pub fn seal(&self, hash: B256) -> Result<Option<Seal>, StorageError> {
        self.get(Table::Seals, hash.as_slice())?
            .map(|v| codec::decode_seal(hash, &v))
            .transpose()
    }

    /// Header by hash with its seal (genesis with a zero seal).
    pub fn signed_header(&self, hash: B256) -> Result<Option<SignedHeader>, StorageError> {
        let Some(header) = self.header(hash)? else {
            return Ok(None);
        };
        let seal = self.seal(hash)?.unwrap_or(Seal::ZERO);
        Ok(Some(SignedHeader { header, seal }))
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

    /// Whether `hash` is on the canonical chain.
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

    /// Bytecode by hash.
    pub fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError> {
        if code_hash == koma_primitives::KECCAK_EMPTY {
            return Ok(Some(Bytes::new()));
        }
        Ok(self
            .get(Table::Code, code_hash.as_slice())?
            .map(Bytes::from))
    }

    /// Latest account record (plain state).
    pub fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError> {
        self.get(Table::Accounts, address.as_slice())?
            .map(|v| codec::decode_account(&v))
            .transpose()
    }

    /// Latest storage value (plain state).
    pub fn storage(&self, address: Address, slot: U256) -> Result<U256, StorageError> {
        Ok(self
            .get(Table::Storage, &codec::storage_key(address, slot))?
            .map(|v| U256::from_be_slice(&v))
            .unwrap_or_default())
    }

    /// A reader of the latest state.
    pub fn latest(&self) -> LatestState {
        LatestState::new(self.clone())
    }

    /// A reader of the state after the block whose state root is `state_root`.
    pub fn state_at(&self, state_root: B256) -> HistoricalState {
        HistoricalState::new(self.clone(), state_root)
    }

    /// Applies `changes` on top of the current head's state in memory: computes the new
    /// state root and everything [`Database::commit_block`] must write. Nothing is
    /// written to disk. Cost is proportional to the accounts and slots changed.
    pub fn prepare_state(&self, changes: &StateChanges) -> Result<PreparedState, StorageError> {
        let head = self.head.read().clone();
        let mut prepared = state::prepare(&self.db, head.header.state_root, changes)?;
        prepared.parent = head.hash;
        Ok(prepared)
    }

    /// Atomically writes a block that extends the current head, with its receipts and
    /// the state prepared by [`Database::prepare_state`], and makes it the head.
    pub fn commit_block(
        &self,
        block: &Block,
        senders: &[Address],
        receipts: &[ReceiptEnvelope],
        prepared: PreparedState,
    ) -> Result<SealedHeader, StorageError> {
        let sealed = SealedHeader::seal(block.header.header.clone());
        let head = self.head();
        if sealed.header.parent_hash != head.hash || prepared.parent != head.hash {
            return Err(StorageError::NotOnHead {
                parent: sealed.header.parent_hash,
                head: head.hash,
            });
        }
        if sealed.header.state_root != prepared.state_root {
            return Err(StorageError::StateRootMismatch {
                header: sealed.header.state_root,
                computed: prepared.state_root,
            });
        }
        if block.body.transactions.len() != senders.len() || receipts.len() != senders.len() {
            return Err(StorageError::Corrupt(
                "block, senders and receipts differ in length".into(),
            ));
        }
        self.write_block(
            WriteBatch::default(),
            &sealed,
            block,
            senders,
            receipts,
            prepared,
        )?;
        Ok(sealed)
    }

    fn write_block(
        &self,
        mut batch: WriteBatch,
        sealed: &SealedHeader,
        block: &Block,
        senders: &[Address],
        receipts: &[ReceiptEnvelope],
        prepared: PreparedState,
    ) -> Result<(), StorageError> {
        let hash = sealed.hash;
        let number = sealed.header.number;
        let td = self.child_total_difficulty(&sealed.header)?;
        self.put(
            &mut batch,
            Table::TotalDifficulty,
            hash.as_slice(),
            &td.to_be_bytes::<32>(),
        );
        self.put(
            &mut batch,
            Table::Headers,
            hash.as_slice(),
            &alloy_rlp::encode(&sealed.header),
        );
        if number != 0 {
            self.put(
                &mut batch,
                Table::Seals,
                hash.as_slice(),
                block.header.seal.as_slice(),
            );
        }
        self.put(
            &mut batch,
            Table::Bodies,
            hash.as_slice(),
            &codec::encode_body(&block.body.transactions, senders),
        );
        self.put(
            &mut batch,
            Table::Receipts,
            hash.as_slice(),
            &codec::encode_receipts(receipts),
        );
        self.put(
            &mut batch,
            Table::Canonical,
            &codec::encode_u64(number),
            hash.as_slice(),
        );
        for (index, tx) in block.body.transactions.iter().enumerate() {
            let loc = TxLocation {
                block_hash: hash,
                block_number: number,
                index: index as u64,
            };
            self.put(
                &mut batch,
                Table::TxLookup,
                tx.tx_hash().as_slice(),
                &codec::encode_tx_location(&loc),
            );
        }
        prepared.write_into(&self.db, &mut batch, number);
        self.put(&mut batch, Table::Meta, tables::META_HEAD, hash.as_slice());
        let mut wo = WriteOptions::default();
        // fsync the WAL: a committed block survives power loss, not only kill -9.
        wo.set_sync(true);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| StorageError::Write(e.to_string()))?;
        *self.head.write() = sealed.clone();
        Ok(())
    }

    /// Total difficulty of block `hash` (sum of difficulties from genesis).
    pub fn total_difficulty(&self, hash: B256) -> Result<Option<U256>, StorageError> {
        Ok(self
            .get(Table::TotalDifficulty, hash.as_slice())?
            .map(|v| U256::from_be_slice(&v)))
    }

    fn child_total_difficulty(&self, header: &Header) -> Result<U256, StorageError> {
        if header.number == 0 {
            return Ok(header.difficulty);
        }
        let parent = self.total_difficulty(header.parent_hash)?.ok_or_else(|| {
            StorageError::Corrupt(format!(
                "total difficulty of parent {} missing",
                header.parent_hash
            ))
        })?;
        Ok(parent.saturating_add(header.difficulty))
    }

    /// Stores a block that is not (yet) canonical: header, body and total difficulty,
    /// no receipts and no state. It becomes canonical only through a reorg that
    /// re-executes it. Returns its total difficulty.
    pub fn store_side_block(
        &self,
        block: &Block,
        senders: &[Address],
    ) -> Result<U256, StorageError> {
        let hash = block.header.hash_slow();
        let td = self.child_total_difficulty(&block.header)?;
        let mut batch = WriteBatch::default();
        self.put(
            &mut batch,
            Table::Headers,
            hash.as_slice(),
            &alloy_rlp::encode(&block.header.header),
        );
        self.put(
            &mut batch,
            Table::Seals,
            hash.as_slice(),
            block.header.seal.as_slice(),
        );
        self.put(
            &mut batch,
            Table::Bodies,
            hash.as_slice(),
            &codec::encode_body(&block.body.transactions, senders),
        );
        self.put(
            &mut batch,
            Table::TotalDifficulty,
            hash.as_slice(),
            &td.to_be_bytes::<32>(),
        );
        self.db
            .write(batch)
            .map_err(|e| StorageError::Write(e.to_string()))?;
        Ok(td)
    }

    /// Unwinds canonical blocks above `number` using their change sets, restoring the
    /// plain state, and returns the unwound blocks (newest first). Trie nodes are kept,
    /// so the restored head's state root stays readable.
    pub fn unwind_to(&self, number: u64) -> Result<Vec<(SealedHeader, StoredBody)>, StorageError> {
        let mut unwound = Vec::new();
        loop {
            let head = self.head();
            if head.number() <= number {
                return Ok(unwound);
            }
            let body = self.body(head.hash)?.unwrap_or(StoredBody {
                transactions: vec![],
                senders: vec![],
            });
            let parent = self
                .header(head.header.parent_hash)?
                .ok_or_else(|| StorageError::Corrupt(format!("parent of {} missing", head.hash)))?;
            let mut batch = WriteBatch::default();
            let cs = self
                .get(Table::ChangeSets, &codec::encode_u64(head.number()))?
                .ok_or_else(|| {
                    StorageError::Corrupt(format!("change set of block {} missing", head.number()))
                })?;
            changeset::revert_into(&self.db, &mut batch, &cs)?;
            batch.delete_cf(self.cf(Table::ChangeSets), codec::encode_u64(head.number()));
            batch.delete_cf(self.cf(Table::Canonical), codec::encode_u64(head.number()));
            for tx in &body.transactions {
                batch.delete_cf(self.cf(Table::TxLookup), tx.tx_hash().as_slice());
            }
            batch.put_cf(
                self.cf(Table::Meta),
                tables::META_HEAD,
                head.header.parent_hash.as_slice(),
            );
            let mut wo = WriteOptions::default();
            wo.set_sync(true);
            self.db
                .write_opt(batch, &wo)
                .map_err(|e| StorageError::Write(e.to_string()))?;
            *self.head.write() = SealedHeader {
                hash: head.header.parent_hash,
                header: parent,
            };
            unwound.push((head, body));
        }
    }

    /// Flushes memtables (used before a clean shutdown to speed up the next start).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.db
            .flush()
            .map_err(|e| StorageError::Write(e.to_string()))
    }
}

fn spec_json(spec: &ChainSpec) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(spec).map_err(|e| StorageError::Write(format!("chain spec: {e}")))
}

fn get_raw(db: &DB, t: Table, k: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
    db.get_cf(tables::cf(db, t), k)
        .map_err(|e| StorageError::Read(e.to_string()))
}

fn read_header(db: &DB, hash: B256) -> Result<Option<Header>, StorageError> {
    get_raw(db, Table::Headers, hash.as_slice())?
        .map(|v| {
            alloy_rlp::Decodable::decode(&mut v.as_slice())
                .map_err(|e| StorageError::Corrupt(format!("header {hash}: {e}")))
        })
        .transpose()
}

fn era_unit_key(instance: &B256, hash: &B256) -> [u8; 64] {
    let mut key = [0u8; 64];
    let (front, back) = key.split_at_mut(32);
    front.copy_from_slice(instance.as_slice());
    back.copy_from_slice(hash.as_slice());
    key
}
