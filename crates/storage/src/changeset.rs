//! State changes of a block, and the change sets that undo them.

use crate::StorageError;
use crate::codec::{self, storage_key};
use crate::tables::{Table, cf};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use alloy_trie::TrieAccount;
use rocksdb::{DB, WriteBatch};

/// Account fields the executor changes (the storage root is derived by storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountInfo {
    pub nonce: u64,
    pub balance: U256,
    pub code_hash: B256,
}

/// The new state of one account after a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub address: Address,
    /// `None`: the account no longer exists (self-destructed or emptied, EIP-161).
    pub info: Option<AccountInfo>,
    /// All storage from before is gone (the account was destroyed and maybe recreated).
    pub storage_wiped: bool,
    /// New slot values; zero deletes the slot.
    pub storage: Vec<(U256, U256)>,
}

/// Everything a block changed in the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    pub accounts: Vec<AccountChange>,
    /// New bytecode by hash.
    pub code: Vec<(B256, Bytes)>,
}

/// What an account looked like before a block, so the block can be unwound.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub(crate) struct ChangeSetEntry {
    pub address: Address,
    /// Whether the account existed; if not, `account` is ignored.
    pub existed: bool,
    pub account: TrieAccount,
    /// Prior values of every slot the block changed or wiped.
    pub storage: Vec<SlotValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub(crate) struct SlotValue {
    pub slot: U256,
    pub value: U256,
}

/// Writes into `batch` what restores the plain state to before the change set's block.
pub(crate) fn revert_into(
    db: &DB,
    batch: &mut WriteBatch,
    encoded: &[u8],
) -> Result<(), StorageError> {
    let entries: Vec<ChangeSetEntry> = alloy_rlp::Decodable::decode(&mut &encoded[..])
        .map_err(|e| StorageError::Corrupt(format!("change set: {e}")))?;
    for e in entries {
        if e.existed {
            batch.put_cf(
                cf(db, Table::Accounts),
                e.address.as_slice(),
                codec::encode_account(&e.account),
            );
        } else {
            batch.delete_cf(cf(db, Table::Accounts), e.address.as_slice());
        }
        for s in e.storage {
            let key = storage_key(e.address, s.slot);
            if s.value.is_zero() {
                batch.delete_cf(cf(db, Table::Storage), key);
            } else {
                batch.put_cf(
                    cf(db, Table::Storage),
                    key,
                    s.value.to_be_bytes_trimmed_vec(),
                );
            }
        }
    }
    Ok(())
}
