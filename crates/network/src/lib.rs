//! KOMA's peer-to-peer layer on libp2p.
//!
//! One [`Network`] per chain id: [`Network::start`] builds a swarm (TCP + noise + yamux;
//! identify, ping, gossipsub, request-response, Kademlia, a block list and connection
//! limits) and spawns a tokio task that owns it. The node talks to that task only through a
//! cloneable [`NetworkHandle`] (commands) and an `mpsc::Receiver<NetworkEvent>` (events),
//! so nothing outside the task touches libp2p state.
//!
//! - **Gossip**: topics `koma/<chain_id>/{txs,blocks,consensus}` ([`Topic`]), signed
//!   messages, content-addressed ids, per-topic size limits checked before gossipsub
//!   forwards a message; a message is forwarded only after the node accepts it
//!   ([`GossipValidation`]). Publishing before any peer subscribed is
//!   [`PublishOutcome::NoPeers`], not an error.
//! - **Sync**: request-response `/koma/<chain_id>/sync/1` with CBOR ([`SyncRequest`],
//!   [`SyncResponse`]); payloads are opaque RLP bytes so this crate does not know about
//!   storage. Counts are capped at [`MAX_SYNC_ITEMS`] and responses at a byte limit.
//! - **Discovery**: static bootnodes (redialed while disconnected) plus Kademlia on
//!   `/koma/<chain_id>/kad/1`. Peers whose identify version names another chain are
//!   disconnected.
//! - **Scoring**: [`PeerScores`] subtracts points for each [`Misbehaviour`] the node reports
//!   or the service detects (oversized gossip, malformed sync responses); at the threshold
//!   the peer is disconnected and refused for the ban period via libp2p's block list.
//! - **Identity**: [`load_or_create_identity`] keeps one ed25519 key in
//!   `<datadir>/network/identity` (mode 0600), so the peer id survives restarts.
//!
//! Invariants: the service never panics on peer input; every request a handle makes gets an
//! answer (response, error, timeout or [`NetworkError::ServiceStopped`]).

// Input from peers and RPC clients must never crash the node: no unwrap/expect/panic,
// no unchecked indexing or arithmetic outside tests.
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

mod config;
mod error;
mod identity;
mod protocol;
mod scoring;
mod service;

pub use config::{
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_MAX_TX_MESSAGE_SIZE,
    NetworkConfig, OPERATOR_LISTEN_ADDR, Topic, split_peer_addr,
};
pub use error::NetworkError;
pub use identity::{IDENTITY_FILE, NETWORK_DIR, identity_path, load_or_create_identity};
pub use libp2p::{Multiaddr, PeerId, identity::Keypair};
pub use protocol::{
    ChainStatus, MAX_REQUEST_BYTES, MAX_SYNC_ITEMS, SyncError, SyncRequest, SyncResponse,
};
pub use scoring::{DEFAULT_BAN_DURATION, DEFAULT_BAN_THRESHOLD, Misbehaviour, PeerScores, Verdict};
pub use service::{
    GossipValidation, Network, NetworkEvent, NetworkHandle, PublishOutcome, SyncResponder,
};
