use alloy_primitives::B256;

/// Storage failures. Messages name the data directory problem so an operator can act.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    Open(String),
    #[error("database read failed: {0}")]
    Read(String),
    #[error("database write failed: {0}")]
    Write(String),
    #[error("database is corrupt: {0}")]
    Corrupt(String),
    #[error("trie error: {0}")]
    Trie(String),
    #[error("block parent {parent} is not the head {head}")]
    NotOnHead { parent: B256, head: B256 },
    #[error("header state root {header} differs from the computed state root {computed}")]
    StateRootMismatch { header: B256, computed: B256 },
}
