//! Network configuration and gossip topics.

use std::{fmt, time::Duration};

use libp2p::{Multiaddr, PeerId, identity::Keypair, multiaddr::Protocol};

use crate::{
    NetworkError,
    scoring::{DEFAULT_BAN_DURATION, DEFAULT_BAN_THRESHOLD},
};

/// The listen address an operator's node uses unless told otherwise.
pub const OPERATOR_LISTEN_ADDR: &str = "/ip4/0.0.0.0/tcp/30303";
/// Default limit of block and consensus gossip; a full block is far smaller.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Default limit of transaction gossip (the pool rejects larger transactions anyway).
pub const DEFAULT_MAX_TX_MESSAGE_SIZE: usize = 128 * 1024;
/// Default limit of one sync response.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 16 * 1024 * 1024;

/// A gossip topic. On the wire its name is `koma/<chain_id>/<name>`, so chains never
/// see each other's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Txs,
    Blocks,
    Consensus,
    /// Checkpoint signatures (BLS votes on the L1 checkpoint of a range of blocks).
    Checkpoints,
}

impl Topic {
    pub const ALL: [Topic; 4] = [
        Topic::Txs,
        Topic::Blocks,
        Topic::Consensus,
        Topic::Checkpoints,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Txs => "txs",
            Self::Blocks => "blocks",
            Self::Consensus => "consensus",
            Self::Checkpoints => "checkpoints",
        }
    }

    /// The gossipsub topic string for a chain.
    pub fn for_chain(self, chain_id: u64) -> String {
        format!("koma/{chain_id}/{}", self.name())
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything the network service needs; no hidden defaults beyond [`NetworkConfig::new`].
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    pub chain_id: u64,
    /// The node's identity (see [`crate::load_or_create_identity`]).
    pub keypair: Keypair,
    /// Addresses to listen on. [`NetworkConfig::new`] uses `127.0.0.1:0`; operators use
    /// [`OPERATOR_LISTEN_ADDR`].
    pub listen_addrs: Vec<Multiaddr>,
    /// Static peers, each ending in `/p2p/<peer id>`. They are dialed at start and redialed
    /// every `bootnode_redial_interval` while disconnected.
    pub bootnodes: Vec<Multiaddr>,
    /// Limit of block and consensus gossip.
    pub max_message_size: usize,
    /// Limit of transaction gossip.
    pub max_tx_message_size: usize,
    /// Limit of one encoded sync response; larger answers are trimmed.
    pub max_response_size: usize,
    /// Most inbound connections; discovery stops dialing at this many peers.
    pub max_peers: u32,
    /// Kademlia discovery on top of the bootnodes.
    pub discovery: bool,
    /// Gossipsub heartbeat (mesh maintenance); short in tests.
    pub gossip_heartbeat: Duration,
    pub request_timeout: Duration,
    pub bootnode_redial_interval: Duration,
    /// Score at or below which a peer is banned, and for how long.
    pub ban_threshold: i32,
    pub ban_duration: Duration,
    /// Capacity of the event channel; events beyond it are dropped with a warning.
    pub event_buffer: usize,
}

impl NetworkConfig {
    /// A configuration listening on `127.0.0.1:0` with no bootnodes and default limits.
    pub fn new(chain_id: u64, keypair: Keypair) -> Self {
        Self {
            chain_id,
            keypair,
            listen_addrs: vec![loopback_any_port()],
            bootnodes: Vec::new(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_tx_message_size: DEFAULT_MAX_TX_MESSAGE_SIZE,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            max_peers: 50,
            discovery: true,
            gossip_heartbeat: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            bootnode_redial_interval: Duration::from_secs(10),
            ban_threshold: DEFAULT_BAN_THRESHOLD,
            ban_duration: DEFAULT_BAN_DURATION,
            event_buffer: 4096,
        }
    }

    /// Limit of gossip on `topic`.
    pub fn max_size_for(&self, topic: Topic) -> usize {
        match topic {
            Topic::Txs => self.max_tx_message_size,
            Topic::Blocks | Topic::Consensus | Topic::Checkpoints => self.max_message_size,
        }
    }
}

fn loopback_any_port() -> Multiaddr {
    Multiaddr::empty()
        .with(Protocol::Ip4([127, 0, 0, 1].into()))
        .with(Protocol::Tcp(0))
}

/// Splits `.../p2p/<peer id>` into the peer id and the address without its suffix.
pub fn split_peer_addr(addr: &Multiaddr) -> Result<(PeerId, Multiaddr), NetworkError> {
    let mut base = addr.clone();
    match base.pop() {
        Some(Protocol::P2p(peer)) if !base.is_empty() => Ok((peer, base)),
        Some(Protocol::P2p(_)) => Err(NetworkError::InvalidBootnode {
            addr: addr.clone(),
            reason: "no transport address before /p2p",
        }),
        _ => Err(NetworkError::InvalidBootnode {
            addr: addr.clone(),
            reason: "must end in /p2p/<peer id>",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_namespaced_by_chain() {
        assert_eq!(Topic::Txs.for_chain(42), "koma/42/txs");
        assert_eq!(Topic::Blocks.for_chain(42), "koma/42/blocks");
        assert_eq!(Topic::Consensus.for_chain(7), "koma/7/consensus");
    }

    #[test]
    fn bootnode_needs_peer_id() {
        let peer = PeerId::random();
        let ok: Multiaddr = format!("/ip4/10.0.0.1/tcp/30303/p2p/{peer}")
            .parse()
            .unwrap();
        let (id, base) = split_peer_addr(&ok).unwrap();
        assert_eq!(id, peer);
        assert_eq!(base.to_string(), "/ip4/10.0.0.1/tcp/30303");
        let bare: Multiaddr = "/ip4/10.0.0.1/tcp/30303".parse().unwrap();
        assert!(split_peer_addr(&bare).is_err());
        let only_id: Multiaddr = format!("/p2p/{peer}").parse().unwrap();
        assert!(split_peer_addr(&only_id).is_err());
    }

    #[test]
    fn operator_default_parses() {
        let addr: Multiaddr = OPERATOR_LISTEN_ADDR.parse().unwrap();
        assert_eq!(addr.to_string(), OPERATOR_LISTEN_ADDR);
    }
}
