//! Shared state of the RPC handlers.

use crate::backend::CheckpointInfo;
use crate::filters::FilterStore;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_trie::TrieAccount;
use koma_checkpoint::{BlockLeaf, MerkleTree};
use koma_primitives::{ChainSpec, SealedHeader};
use koma_storage::{ChainEvent, Database, HistoricalState, LatestState, StateReader, StorageError};
use koma_txpool::TxPool;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The checkpoint leaf of block `hash` with `header`.
pub(crate) fn block_leaf(hash: B256, header: &alloy::consensus::Header) -> BlockLeaf {
    BlockLeaf {
        number: header.number,
        timestamp: header.timestamp,
        block_hash: hash,
        receipts_root: header.receipts_root,
        withdrawals_root: header.withdrawals_root.unwrap_or_default(),
    }
}

/// Why a checkpoint's tree cannot be rebuilt from the node's blocks.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointTreeError {
    #[error("block {number} of checkpoint {checkpoint} is missing")]
    MissingBlock { number: u64, checkpoint: u64 },
    #[error("checkpoint {checkpoint} on L1 has root {l1}, this node's blocks give {local}")]
    RootMismatch {
        checkpoint: u64,
        l1: B256,
        local: B256,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Limits and defaults of the RPC API.
///
/// Handlers that read storage or run the EVM do not run on the async workers: they run
/// on tokio's blocking threads, at most [`ApiConfig::max_blocking_tasks`] at once (of
/// those at most [`ApiConfig::max_evm_tasks`] executing calls), so that a flood of RPC
/// requests cannot starve block production, import or the consensus timers, which
/// share the async workers. The defaults suit the machine's core count.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Most blocks one `eth_getLogs` may scan.
    pub max_logs_block_range: u64,
    /// Most logs one `eth_getLogs` may return.
    pub max_logs: usize,
    /// Gas limit of `eth_call` / `eth_estimateGas` when the request gives none.
    pub gas_cap: u64,
    /// Filters not polled for this long are removed.
    pub filter_timeout: std::time::Duration,
    /// Client version string.
    pub client_version: String,
    /// Serve the `admin_*` namespace (peer management). Off by default.
    pub admin: bool,
    /// Storage- and CPU-heavy handlers (state reads, blocks, receipts, logs, fee
    /// history, filter polling, `txpool_content`, calls) running at once. Default: the
    /// number of cores, at least 2.
    pub max_blocking_tasks: usize,
    /// Of those, EVM executions (`eth_call`, `eth_estimateGas`) running at once.
    /// Default: half the cores, at least 1.
    pub max_evm_tasks: usize,
    /// Heavy handlers waiting for a slot; more are refused at once with -32005
    /// (`server busy`). Default: 1,024.
    pub max_queued_tasks: usize,
    /// Most blocks one `eth_feeHistory` reports; a larger `blockCount` is truncated,
    /// as geth does. Default: 1,024.
    pub max_fee_history_blocks: u64,
    /// Most transactions `txpool_content` returns; a larger pool is refused with
    /// -32005 (`txpool_status` still answers). Default: 10,000.
    pub max_txpool_content: usize,
    /// Most filters installed at once; beyond this the longest idle one is dropped.
    /// Default: 10,000.
    pub max_filters: usize,
    /// Most addresses and topics held by all installed log filters together (a filter
    /// holds at most 1,000 addresses and 4 x 1,000 topics); beyond this the longest
    /// idle filters are dropped. Default: 1,000,000.
    pub max_filter_criteria: usize,
    /// What the `finalized` tag stands for. Default: KoMaBFT finality.
    pub finalized_tag: FinalizedTag,
}

/// What the `finalized` block tag stands for (`safe` always stands for KoMaBFT finality).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinalizedTag {
    /// The last block final in KoMaBFT at the node's threshold.
    #[default]
    Consensus,
    /// The last block of the newest checkpoint notarized on L1 (accepted and the node's
    /// configured confirmations deep), never past KoMaBFT's final block; block 0 until
    /// a checkpoint is notarized.
    Notarized,
}

/// Cores available to the process (1 if unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_logs_block_range: 10_000,
            max_logs: 10_000,
            gas_cap: 50_000_000,
            filter_timeout: std::time::Duration::from_secs(300),
            client_version: format!(
                "koma/v{}/{}-{}",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
            admin: false,
            max_blocking_tasks: cores().max(2),
            max_evm_tasks: (cores() / 2).max(1),
            max_queued_tasks: 1_024,
            max_fee_history_blocks: 1_024,
            max_txpool_content: 10_000,
            max_filters: 10_000,
            max_filter_criteria: 1_000_000,
            finalized_tag: FinalizedTag::default(),
        }
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct RpcState {
    pub spec: Arc<ChainSpec>,
    pub db: Database,
    pub pool: Arc<TxPool>,
    /// Runs `eth_sendRawTransaction`'s validation at background priority.
    pub admission: koma_txpool::Admission,
    pub events: broadcast::Sender<Arc<ChainEvent>>,
    pub filters: FilterStore,
    pub config: ApiConfig,
    /// The peer-to-peer side; `None` for a node without networking.
    pub network: Option<Arc<dyn crate::backend::NetworkApi>>,
    /// KoMaBFT finality; `None`: no finality layer (`safe`/`finalized` = head).
    pub consensus: Option<Arc<dyn crate::backend::ConsensusApi>>,
    /// Blocks as they become final at the node's threshold (`eth_subscribe("finalized")`).
    pub finalized: broadcast::Sender<crate::backend::FinalBlock>,
    /// Checkpoints on L1; `None`: the node follows no L1.
    pub checkpoints: Option<Arc<dyn crate::backend::CheckpointApi>>,
    /// The trees of the newest checkpoints, rebuilt from this node's blocks.
    pub checkpoint_trees: CheckpointTrees,
    /// Deposits read from the L1 bridge; `None`: the node follows no L1.
    pub deposits: Option<Arc<dyn crate::backend::DepositsApi>>,
    /// Each block's producers; `None`: only the genesis producers are known.
    pub producers: Option<Arc<dyn crate::backend::ProducersApi>>,
}

/// Trees of accepted checkpoints rebuilt from the node's blocks and found equal to L1's
/// root, for block proofs and `koma_getFinality`; the newest [`CheckpointTrees::KEEP`].
#[derive(Debug, Default)]
pub struct CheckpointTrees(parking_lot::Mutex<BTreeMap<u64, (B256, Arc<MerkleTree>)>>);

impl CheckpointTrees {
    /// Checkpoints whose trees are kept.
    pub const KEEP: usize = 64;
}

/// Either the latest state or the state at an older block.
#[derive(Debug, Clone)]
pub enum StateAt {
    Latest(LatestState),
    Historical(HistoricalState),
}

impl StateReader for StateAt {
    fn account(&self, address: Address) -> Result<Option<TrieAccount>, StorageError> {
        match self {
            Self::Latest(s) => s.account(address),
            Self::Historical(s) => s.account(address),
        }
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StorageError> {
        match self {
            Self::Latest(s) => s.storage(address, slot),
            Self::Historical(s) => s.storage(address, slot),
        }
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StorageError> {
        match self {
            Self::Latest(s) => s.code(code_hash),
            Self::Historical(s) => s.code(code_hash),
        }
    }
    fn block_hash(&self, number: u64) -> Result<Option<B256>, StorageError> {
        match self {
            Self::Latest(s) => s.block_hash(number),
            Self::Historical(s) => s.block_hash(number),
        }
    }
}

impl RpcState {
    /// The last block final in KoMaBFT at the node's threshold (the head without a
    /// finality layer).
    pub fn final_number(&self) -> u64 {
        let head = self.db.head().number();
        match &self.consensus {
            Some(c) => c
                .thresholds()
                .get(c.node_threshold())
                .and_then(|t| t.last_final)
                .map_or(0, |b| b.number)
                .min(head),
            None => head,
        }
    }

    /// The block the `finalized` tag stands for (see [`FinalizedTag`]).
    pub fn finalized_number(&self) -> u64 {
        match self.config.finalized_tag {
            FinalizedTag::Consensus => self.final_number(),
            FinalizedTag::Notarized => self
                .checkpoints
                .as_ref()
                .and_then(|c| c.notarized_end())
                .unwrap_or(0)
                .min(self.final_number()),
        }
    }

    /// The tree of accepted checkpoint `cp` over this node's canonical blocks; an error
    /// if a block is missing or the tree's root is not the one L1 holds.
    pub fn checkpoint_tree(
        &self,
        cp: &CheckpointInfo,
    ) -> Result<Arc<MerkleTree>, CheckpointTreeError> {
        if let Some((root, tree)) = self.checkpoint_trees.0.lock().get(&cp.number)
            && *root == cp.root
        {
            return Ok(tree.clone());
        }
        let mut leaves = Vec::new();
        for n in cp.start..=cp.end {
            let header = self
                .db
                .header_by_number(n)?
                .ok_or(CheckpointTreeError::MissingBlock {
                    number: n,
                    checkpoint: cp.number,
                })?;
            leaves.push(block_leaf(header.hash, &header.header).hash());
        }
        let tree = Arc::new(MerkleTree::new(leaves));
        if tree.root() != cp.root {
            return Err(CheckpointTreeError::RootMismatch {
                checkpoint: cp.number,
                l1: cp.root,
                local: tree.root(),
            });
        }
        let mut trees = self.checkpoint_trees.0.lock();
        trees.insert(cp.number, (cp.root, tree.clone()));
        while trees.len() > CheckpointTrees::KEEP {
            trees.pop_first();
        }
        Ok(tree)
    }

    /// Base fee the next block will have.
    pub fn next_base_fee(&self) -> u64 {
        self.spec.base_fee_after(&self.db.head().header)
    }

    /// State and header for a resolved block; the head uses the fast plain tables.
    ///
    /// The plain tables move on with the chain: a reader that resolves a tag and then
    /// reads state should read both from one [`koma_storage::Database::snapshot`], as
    /// the RPC handlers do.
    pub fn state_for(&self, header: &SealedHeader) -> StateAt {
        if header.hash == self.db.head().hash {
            StateAt::Latest(self.db.latest())
        } else {
            StateAt::Historical(self.db.state_at(header.header.state_root))
        }
    }
}
