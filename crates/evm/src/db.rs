//! revm database adapters over KOMA storage.

use alloy_primitives::{Address, B256, Bytes, U256, map::HashMap};
use koma_storage::{AccountChange, StateChanges, StateReader, StorageError};
use revm::bytecode::Bytecode;
use revm::database_interface::{DBErrorMarker, Database, DatabaseCommit, DatabaseRef};
use revm::state::AccountInfo;

/// A storage error surfaced through revm.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DbError(#[from] pub StorageError);

impl DBErrorMarker for DbError {}

/// Read-only revm view of a [`StateReader`].
#[derive(Debug, Clone)]
pub struct StateDb<S>(pub S);

impl<S: StateReader> DatabaseRef for StateDb<S> {
    type Error = DbError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        Ok(self.0.account(address)?.map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            account_id: None,
            code: None,
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, DbError> {
        let code = self.0.code(code_hash)?.unwrap_or_default();
        Ok(Bytecode::new_raw(code))
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, DbError> {
        Ok(self.0.storage(address, index)?)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DbError> {
        Ok(self.0.block_hash(number)?.unwrap_or_default())
    }
}

#[derive(Debug, Clone)]
struct CachedAccount {
    /// `None`: does not exist.
    info: Option<AccountInfo>,
    /// Changed by this block.
    dirty: bool,
    /// Storage from before the block no longer applies.
    wiped: bool,
    /// Slots read or written; `dirty_slots` lists the written ones.
    storage: HashMap<U256, U256>,
    dirty_slots: HashMap<U256, U256>,
}

/// The state of a block being executed: reads fall through to `S`, writes stay here
/// until [`BlockDb::into_changes`] hands them to storage.
#[derive(Debug)]
pub struct BlockDb<S> {
    inner: StateDb<S>,
    accounts: HashMap<Address, CachedAccount>,
    new_code: HashMap<B256, Bytes>,
    /// Code read (and analysed) during this block, by hash: every transaction that calls
    /// a contract loads its code again, and many accounts may share one code.
    code: HashMap<B256, Bytecode>,
    /// Block hashes read during this block (`BLOCKHASH` costs 20 gas: without the cache
    /// each one is a storage read).
    block_hashes: HashMap<u64, B256>,
}

impl<S: StateReader> BlockDb<S> {
    pub fn new(state: S) -> Self {
        Self {
            inner: StateDb(state),
            accounts: HashMap::default(),
            new_code: HashMap::default(),
            code: HashMap::default(),
            block_hashes: HashMap::default(),
        }
    }

    fn load(&mut self, address: Address) -> Result<&mut CachedAccount, DbError> {
        if !self.accounts.contains_key(&address) {
            let info = self.inner.basic_ref(address)?;
            self.accounts.insert(
                address,
                CachedAccount {
                    info,
                    dirty: false,
                    wiped: false,
                    storage: HashMap::default(),
                    dirty_slots: HashMap::default(),
                },
            );
        }
        // Just inserted above if it was missing.
        #[allow(clippy::expect_used)]
        Ok(self.accounts.get_mut(&address).expect("present"))
    }

    /// Balance of `address` in the block's current state.
    pub fn balance(&mut self, address: Address) -> Result<U256, DbError> {
        Ok(self
            .load(address)?
            .info
            .as_ref()
            .map(|i| i.balance)
            .unwrap_or_default())
    }

    /// The block's state changes, in a deterministic (address) order.
    pub fn into_changes(self) -> StateChanges {
        let mut accounts: Vec<AccountChange> = self
            .accounts
            .into_iter()
            .filter(|(_, a)| a.dirty)
            .map(|(address, a)| {
                let mut storage: Vec<(U256, U256)> = a.dirty_slots.into_iter().collect();
                storage.sort_unstable_by_key(|(k, _)| *k);
                AccountChange {
                    address,
                    info: a
                        .info
                        .map(|i| koma_storage::changeset_info(i.nonce, i.balance, i.code_hash)),
                    storage_wiped: a.wiped,
                    storage,
                }
            })
            .collect();
        accounts.sort_unstable_by_key(|a| a.address);
        let mut code: Vec<(B256, Bytes)> = self.new_code.into_iter().collect();
        code.sort_unstable_by_key(|(h, _)| *h);
        StateChanges { accounts, code }
    }
}

impl<S: StateReader> Database for BlockDb<S> {
    type Error = DbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        Ok(self.load(address)?.info.clone())
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, DbError> {
        if let Some(code) = self.code.get(&code_hash) {
            return Ok(code.clone());
        }
        let code = match self.new_code.get(&code_hash) {
            Some(code) => Bytecode::new_raw(code.clone()),
            None => self.inner.code_by_hash_ref(code_hash)?,
        };
        self.code.insert(code_hash, code.clone());
        Ok(code)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, DbError> {
        let acc = self.load(address)?;
        if let Some(v) = acc.storage.get(&index) {
            return Ok(*v);
        }
        let v = if acc.wiped {
            U256::ZERO
        } else {
            self.inner.storage_ref(address, index)?
        };
        // `load` succeeded above, the entry exists.
        if let Some(acc) = self.accounts.get_mut(&address) {
            acc.storage.insert(index, v);
        }
        Ok(v)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, DbError> {
        if let Some(hash) = self.block_hashes.get(&number) {
            return Ok(*hash);
        }
        let hash = self.inner.block_hash_ref(number)?;
        self.block_hashes.insert(number, hash);
        Ok(hash)
    }
}

impl<S: StateReader> DatabaseCommit for BlockDb<S> {
    fn commit(&mut self, changes: revm::state::EvmState) {
        for (address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            let entry = self
                .accounts
                .entry(address)
                .or_insert_with(|| CachedAccount {
                    info: None,
                    dirty: false,
                    wiped: false,
                    storage: HashMap::default(),
                    dirty_slots: HashMap::default(),
                });
            entry.dirty = true;
            if account.is_selfdestructed() {
                entry.info = None;
                entry.wiped = true;
                entry.storage.clear();
                entry.dirty_slots.clear();
                continue;
            }
            if account.is_created() {
                entry.wiped = true;
                entry.storage.clear();
                entry.dirty_slots.clear();
            }
            let mut info = account.info;
            if let Some(code) = info.code.take()
                && !code.is_empty()
                && !self.new_code.contains_key(&info.code_hash)
            {
                self.new_code.insert(info.code_hash, code.original_bytes());
            }
            for (slot, value) in account.storage {
                if value.is_changed() {
                    entry.storage.insert(slot, value.present_value());
                    entry.dirty_slots.insert(slot, value.present_value());
                }
            }
            // EIP-161: a touched empty account does not exist.
            entry.info = if info.is_empty() { None } else { Some(info) };
        }
    }
}
