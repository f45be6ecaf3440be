//! Column families and metadata keys.

use rocksdb::{BlockBasedOptions, Cache, ColumnFamily, DB, Options};
use std::sync::OnceLock;

/// The column families of the chain database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Metadata: head pointer, chain spec digest, schema version.
    Meta,
    /// block hash -> RLP header (unsigned, as Ethereum hashes it)
    Headers,
    /// block hash -> the producer's 65-byte seal over it (none for genesis)
    Seals,
    /// block number (big-endian) -> canonical block hash
    Canonical,
    /// block hash -> transactions (EIP-2718) and senders
    Bodies,
    /// block hash -> receipts (EIP-2718)
    Receipts,
    /// tx hash -> (block hash, number, index), canonical only
    TxLookup,
    /// address -> RLP(nonce, balance, storage root, code hash), latest state
    Accounts,
    /// address ‖ slot -> value (big-endian, no zero values), latest state
    Storage,
    /// code hash -> bytecode
    Code,
    /// node hash -> RLP node, the account trie and every storage trie
    Trie,
    /// block number -> the prior values of everything the block changed
    ChangeSets,
    /// block hash -> total difficulty (sum of difficulties from genesis), for fork choice
    TotalDifficulty,
    /// KoMaBFT: unit hash -> signed unit
    ConsensusUnits,
    /// KoMaBFT: era instance ‖ unit hash -> empty (the units of one era, reloaded at
    /// restart)
    ConsensusEraUnits,
    /// KoMaBFT: era (big-endian) -> era record
    ConsensusEras,
    /// KoMaBFT: era instance -> the latest unit hashes of a closed era
    ConsensusEraTips,
    /// Checkpoints: number (big-endian) -> this node's own signed vote (stored before it
    /// is gossiped, so a restart never signs another root for the same number)
    CheckpointVotes,
}

impl Table {
    pub const ALL: [Table; 18] = [
        Table::Meta,
        Table::Headers,
        Table::Seals,
        Table::Canonical,
        Table::Bodies,
        Table::Receipts,
        Table::TxLookup,
        Table::Accounts,
        Table::Storage,
        Table::Code,
        Table::Trie,
        Table::ChangeSets,
        Table::TotalDifficulty,
        Table::ConsensusUnits,
        Table::ConsensusEraUnits,
        Table::ConsensusEras,
        Table::ConsensusEraTips,
        Table::CheckpointVotes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Headers => "headers",
            Table::Seals => "seals",
            Table::Canonical => "canonical",
            Table::Bodies => "bodies",
            Table::Receipts => "receipts",
            Table::TxLookup => "tx_lookup",
            Table::Accounts => "accounts",
            Table::Storage => "storage",
            Table::Code => "code",
            Table::Trie => "trie",
            Table::ChangeSets => "changesets",
            Table::TotalDifficulty => "total_difficulty",
            Table::ConsensusUnits => "consensus_units",
            Table::ConsensusEraUnits => "consensus_era_units",
            Table::ConsensusEras => "consensus_eras",
            Table::ConsensusEraTips => "consensus_era_tips",
            Table::CheckpointVotes => "checkpoint_votes",
        }
    }

    /// Point-lookup tables get bloom filters; all share one block cache.
    pub fn options(self) -> Options {
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Cache::new_lru_cache(512 << 20));
        let mut block = BlockBasedOptions::default();
        block.set_block_cache(cache);
        block.set_bloom_filter(10.0, false);
        block.set_cache_index_and_filter_blocks(true);
        let mut opts = Options::default();
        opts.set_block_based_table_factory(&block);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        if matches!(self, Table::Trie | Table::Accounts | Table::Storage) {
            opts.set_write_buffer_size(64 << 20);
        }
        opts
    }
}

/// The column family handle of `t`. Every table is created when the database is
/// opened, so a missing handle is a programming error.
pub(crate) fn cf(db: &DB, t: Table) -> &ColumnFamily {
    #[allow(clippy::expect_used)]
    db.cf_handle(t.name())
        .expect("all column families are opened")
}

pub(crate) const META_HEAD: &[u8] = b"head";
pub(crate) const META_SPEC: &[u8] = b"chain_spec_digest";
pub(crate) const META_SCHEMA: &[u8] = b"schema_version";
/// The chain spec itself (JSON), so tools can open a data directory without it.
pub(crate) const META_SPEC_JSON: &[u8] = b"chain_spec";
/// The finality record of KoMaBFT (last final milestone per threshold).
pub(crate) const META_FINALITY: &[u8] = b"finality";
