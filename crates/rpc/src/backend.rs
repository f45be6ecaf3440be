//! What the RPC server needs from the rest of the node: KoMaBFT's finality and the
//! peer-to-peer side, as traits the node implements, and the types they return. The
//! server state ([`crate::state::RpcState`]) holds them; the `koma_*` and `admin_*`
//! handlers serve them.

use alloy_primitives::{Address, B256, Bytes, U256};
use futures::future::BoxFuture;
use koma_primitives::SyncProgress;
use serde::Serialize;

/// A checkpoint accepted on L1, as the node has seen it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    #[serde(with = "alloy::serde::quantity")]
    pub number: u64,
    /// The first and last L2 block it covers.
    #[serde(with = "alloy::serde::quantity")]
    pub start: u64,
    #[serde(with = "alloy::serde::quantity")]
    pub end: u64,
    /// The Merkle root over the range's block leaves.
    pub root: B256,
    /// The L1 transaction that submitted it, and its L1 block.
    pub l1_tx_hash: B256,
    #[serde(with = "alloy::serde::quantity")]
    pub l1_block: u64,
    /// L1 blocks on top of it, counting its own.
    #[serde(with = "alloy::serde::quantity")]
    pub confirmations: u64,
    /// At least the node's configured confirmations deep on L1.
    pub notarized: bool,
    /// The stakers whose signatures it carries (their KoMaBFT signer addresses) and
    /// their stake, with the staker set's total stake, in wei; `null` when the node could
    /// not read them from the L1 transaction (a submission relayed through another
    /// contract, say).
    pub signers: Option<Vec<Address>>,
    pub signing_stake: Option<U256>,
    pub total_stake: Option<U256>,
    /// Only in `checkpoints` subscription messages: the checkpoint's L1 transaction was
    /// reorged out of L1.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// The checkpoints the node follows on L1.
pub trait CheckpointApi: Send + Sync + std::fmt::Debug {
    /// Checkpoint `number`, or the latest accepted with `None`.
    fn checkpoint(&self, number: Option<u64>) -> Option<CheckpointInfo>;
    /// The accepted checkpoint whose range holds L2 block `block`.
    fn checkpoint_covering(&self, block: u64) -> Option<CheckpointInfo>;
    /// The last L2 block of the newest notarized checkpoint.
    fn notarized_end(&self) -> Option<u64>;
    /// Checkpoints as the node learns of them: once when accepted on L1, once when
    /// notarized, and with `removed` when an L1 reorg drops one.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<CheckpointInfo>;
}

/// The deposits a node read from the L1 bridge, past its confirmations.
pub trait DepositsApi: Send + Sync + std::fmt::Debug {
    /// Deposit `id`, if confirmed here.
    fn deposit(&self, id: u64) -> Option<koma_primitives::bridge::L1Deposit>;
    /// How many deposits are confirmed here, and the L1 block read up to.
    fn confirmed(&self) -> (u64, u64);
}

/// A block final at some threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalBlock {
    #[serde(with = "alloy::serde::quantity")]
    pub number: u64,
    pub hash: B256,
}

/// One configured threshold and how far the chain is final at it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdStatus {
    /// Fraction of stake that would have to equivocate to revert, e.g. `1/3`.
    pub threshold: String,
    /// The same as a number, for sorting and display.
    pub fraction: f64,
    /// Last final block at this threshold.
    pub last_final: Option<FinalBlock>,
}

/// A staker: a member of the node's current era with its latest unit, or (with the L1
/// stake table) a staker in the pending set on L1 that is in no era yet.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorStatus {
    /// Its index in the era (none for a staker that is not a member yet).
    pub index: Option<u32>,
    pub address: Address,
    /// Its weight in the era (for a pending staker: in the pending set on L1).
    pub stake: u64,
    /// Proven to have equivocated.
    pub faulty: bool,
    /// The KoMaBFT era this entry belongs to (the node's current one; none for a
    /// pending staker).
    pub era: Option<u64>,
    pub latest_unit: Option<B256>,
    pub latest_seq: Option<u64>,
    /// Timestamp (ms) of the latest unit.
    pub latest_timestamp: Option<u64>,
    /// The round length the staker's latest unit was made with (adaptive).
    pub round_length_ms: Option<u64>,
    /// `active`; `faulty` once proven to have equivocated in this era; and from the
    /// stake table on L1 (docs/staking.md): `slashed` (its key was slashed on L1),
    /// `unbonding` (it left or was removed: out of the pending set, it stays a member
    /// until the era ends), `pending` (in the pending set on L1, in no era yet).
    pub status: &'static str,
    /// The L1 block the era's set was read at (none for the genesis set).
    pub source_l1_block: Option<u64>,
    /// The root contract's set id the era's set is (none for the genesis set).
    pub set_id: Option<u64>,
}

/// KoMaBFT as the RPC handlers see it. Implemented by the node.
pub trait ConsensusApi: Send + Sync + std::fmt::Debug {
    /// Thresholds in ascending order.
    fn thresholds(&self) -> Vec<ThresholdStatus>;
    /// Index (into [`ConsensusApi::thresholds`]) that `safe`/`finalized` follow.
    fn node_threshold(&self) -> usize;
    fn validators(&self) -> Vec<ValidatorStatus>;
}

/// `admin_nodeInfo`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// libp2p peer id.
    pub id: String,
    /// Addresses other nodes can put in `--bootnodes` (`.../p2p/<id>`).
    pub listen_addrs: Vec<String>,
}

/// The network as the RPC handlers see it. Implemented by the node.
pub trait NetworkApi: Send + Sync + std::fmt::Debug {
    fn peer_count(&self) -> usize;
    /// `None` when the node is at the head of its peers' chain.
    fn sync_progress(&self) -> Option<SyncProgress>;
    /// A transaction the pool accepted over RPC: announce it to peers.
    fn broadcast_transaction(&self, raw: Bytes);
    fn node_info(&self) -> NodeInfo;
    fn peers(&self) -> Vec<String>;
    /// Dials `addr` (a multiaddr, ideally ending in `/p2p/<id>`).
    fn add_peer(&self, addr: String) -> BoxFuture<'static, Result<(), String>>;
    /// Disconnects and refuses `peer` (or lifts that) until told otherwise.
    fn set_blocked(&self, peer: String, blocked: bool) -> BoxFuture<'static, Result<(), String>>;
}

/// `koma_producers`: who produces a block (docs/producers.md).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanProducers {
    /// The block the schedule is for.
    #[serde(with = "alloy::serde::quantity")]
    pub block_number: u64,
    #[serde(with = "alloy::serde::quantity")]
    pub span: u64,
    /// The span's first and last blocks.
    #[serde(with = "alloy::serde::quantity")]
    pub span_start: u64,
    #[serde(with = "alloy::serde::quantity")]
    pub span_end: u64,
    /// `l1`: elected from the candidates ranked on L1; `genesis`: the chain spec's list
    /// (span 0, a chain without an L1, or an L1 with no candidate).
    pub elected_by: &'static str,
    /// The block whose L1 anchor the ranking was read at (none for span 0).
    #[serde(with = "alloy::serde::quantity::opt")]
    pub source_block: Option<u64>,
    /// That anchor: the L1 block (by hash) the ranking was read at.
    pub l1_block_hash: Option<B256>,
    /// The span's elected producers and its reserves, in order.
    pub elected: Vec<Address>,
    pub reserves: Vec<Address>,
    /// Producers replaced in the span before this block.
    pub replacements: Vec<ProducerReplacement>,
    /// The block's producers, in succession order, and the one in turn.
    pub producers: Vec<Address>,
    pub in_turn: Address,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerReplacement {
    /// The first block the replacement holds from.
    #[serde(with = "alloy::serde::quantity")]
    pub from_block: u64,
    pub replaced: Address,
    pub by: Address,
    /// How many blocks of its sprint the replaced producer sealed.
    #[serde(with = "alloy::serde::quantity")]
    pub sealed: u64,
}

/// The producer elections as the RPC handlers see them. Implemented by the node.
pub trait ProducersApi: Send + Sync + std::fmt::Debug {
    /// The producers of block `number`: in full up to the block after the head; for a
    /// later block of a span whose election is known (its source block is stored), the
    /// election without replacements; `None` beyond.
    fn producers_of_block(&self, number: u64) -> Result<Option<SpanProducers>, String>;
}
