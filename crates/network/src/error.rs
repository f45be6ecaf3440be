//! Errors of the network service.

use std::path::PathBuf;

use libp2p::{Multiaddr, PeerId};

use crate::{Topic, protocol::SyncError};

/// Everything that can go wrong when starting or talking to the [`crate::Network`].
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The identity file could not be read, written or its permissions set.
    #[error("identity file {path}: {source}")]
    IdentityIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The identity file exists but does not hold a libp2p keypair.
    #[error("identity file {path} does not hold a valid libp2p keypair: {reason}")]
    InvalidIdentity { path: PathBuf, reason: String },
    /// A bootnode address is unusable (for example it lacks the `/p2p/<peer id>` suffix).
    #[error("invalid bootnode address {addr}: {reason}")]
    InvalidBootnode {
        addr: Multiaddr,
        reason: &'static str,
    },
    /// A protocol name built from the chain id was rejected by libp2p.
    #[error("invalid protocol name {name}: {reason}")]
    InvalidProtocol { name: String, reason: String },
    /// Building the transport or a behaviour failed.
    #[error("transport setup failed: {0}")]
    Transport(String),
    /// Listening on a configured address failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    /// The payload exceeds this node's limit for the topic.
    #[error("message of {size} bytes exceeds the {max}-byte limit of topic {topic}")]
    MessageTooLarge {
        topic: Topic,
        size: usize,
        max: usize,
    },
    /// Gossipsub refused to publish for another reason.
    #[error("publish on topic {topic} failed: {reason}")]
    Publish { topic: Topic, reason: String },
    /// The request could not be delivered or no response came back in time.
    #[error("sync request to {peer} failed: {reason}")]
    RequestFailed { peer: PeerId, reason: String },
    /// The peer answered with an error.
    #[error("peer {peer} refused the sync request: {error}")]
    Remote { peer: PeerId, error: SyncError },
    /// The peer's answer does not fit the request (wrong kind or too many items).
    #[error("peer {peer} sent an invalid sync response: {reason}")]
    InvalidResponse { peer: PeerId, reason: &'static str },
    /// Dialing an address failed immediately.
    #[error("cannot dial {addr}: {reason}")]
    Dial { addr: Multiaddr, reason: String },
    /// The service task has stopped (shutdown or crash); the handle is useless.
    #[error("the network service has stopped")]
    ServiceStopped,
}
