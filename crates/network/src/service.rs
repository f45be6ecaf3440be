//! The network service: a tokio task that owns the libp2p `Swarm`, and the handle and
//! events through which the node talks to it.

use std::{
    collections::{HashMap, HashSet},
    num::NonZeroUsize,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::keccak256;
use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, allow_block_list, connection_limits,
    gossipsub::{
        self, IdentTopic, MessageAcceptance, MessageAuthenticity, TopicHash, ValidationMode,
    },
    identify,
    identity::Keypair,
    kad::{self, store::MemoryStore},
    multiaddr::Protocol,
    noise, ping,
    request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel},
    swarm::{
        NetworkBehaviour, SwarmEvent,
        behaviour::toggle::Toggle,
        dial_opts::{DialOpts, PeerCondition},
    },
    tcp, yamux,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::{
    NetworkConfig, NetworkError, Topic,
    config::split_peer_addr,
    protocol::{MAX_REQUEST_BYTES, SyncRequest, SyncResponse},
    scoring::{Misbehaviour, PeerScores, Verdict},
};

/// Room for the gossipsub envelope (signature, key, topic, protobuf framing) on top of the
/// largest payload we accept.
const GOSSIP_FRAME_OVERHEAD: usize = 64 * 1024;
/// Capacity of the command channel from handles to the service.
const COMMAND_BUFFER: usize = 1024;
/// How long `start` waits for the listeners to come up.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Points a score recovers per second.
const SCORE_DECAY_PER_SECOND: i32 = 1;
/// How long an idle connection (no open streams) is kept.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The behaviours of a KOMA node, polled together by the swarm.
#[derive(NetworkBehaviour)]
struct Behaviour {
    block_list: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    kad: Toggle<kad::Behaviour<MemoryStore>>,
}

/// Something the network tells the node.
#[derive(Debug)]
pub enum NetworkEvent {
    /// First connection to a peer established.
    PeerConnected(PeerId),
    /// Last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// A peer's score reached the ban threshold: it was disconnected and is refused until
    /// the ban period ends.
    PeerBanned(PeerId),
    /// A gossip message within the topic's size limit. `from` is the peer that forwarded it
    /// (the one to [`NetworkHandle::report`] if it is invalid), `origin` its signed author.
    /// It is forwarded to other peers only once the node accepts it through `validation`
    /// (dropping `validation` ignores the message), so invalid data stops at the first
    /// honest node and honest forwarders are never blamed for it.
    Gossip {
        topic: Topic,
        from: PeerId,
        origin: Option<PeerId>,
        data: Vec<u8>,
        validation: GossipValidation,
    },
    /// A sync request (already checked against the count limits). Answer it through
    /// `responder`; dropping the responder makes the request fail on the peer's side.
    Request {
        peer: PeerId,
        request: SyncRequest,
        responder: SyncResponder,
    },
}

/// What came of a publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Handed to at least one peer.
    Sent,
    /// No peer is subscribed to the topic yet (alone, or right after connecting): nothing
    /// was sent. Not an error: the data reaches peers later through sync or re-gossip.
    NoPeers,
    /// The same payload was already published on this topic recently.
    Duplicate,
}

/// The node's verdict on one gossip message: [`accept`](Self::accept) forwards it,
/// [`reject`](Self::reject) drops it and lowers the forwarder's gossipsub score, and
/// [`ignore`](Self::ignore) (or dropping this value) drops it without blame.
#[derive(Debug)]
pub struct GossipValidation {
    id: Option<(gossipsub::MessageId, PeerId)>,
    commands: mpsc::WeakSender<Command>,
    /// The message's topic, for the verdict metrics.
    topic: &'static str,
}

impl GossipValidation {
    pub fn accept(mut self) {
        self.send(MessageAcceptance::Accept);
    }
    pub fn reject(mut self) {
        self.send(MessageAcceptance::Reject);
    }
    pub fn ignore(mut self) {
        self.send(MessageAcceptance::Ignore);
    }
    fn send(&mut self, acceptance: MessageAcceptance) {
        let Some((id, from)) = self.id.take() else {
            return;
        };
        let outcome = match acceptance {
            MessageAcceptance::Accept => "accept",
            MessageAcceptance::Reject => "reject",
            MessageAcceptance::Ignore => "ignore",
        };
        koma_metrics::gossip_verdict(self.topic, outcome);
        let Some(commands) = self.commands.upgrade() else {
            return;
        };
        let command = Command::Validate {
            id,
            from,
            acceptance,
        };
        if commands.try_send(command).is_err() {
            debug!("network busy: gossip verdict dropped (the message times out)");
        }
    }
}

impl Drop for GossipValidation {
    fn drop(&mut self) {
        self.send(MessageAcceptance::Ignore);
    }
}

/// Answers one inbound sync request.
#[derive(Debug)]
pub struct SyncResponder {
    channel: ResponseChannel<SyncResponse>,
    commands: mpsc::Sender<Command>,
}

impl SyncResponder {
    /// Sends the response (trimmed to the configured response size limit).
    pub async fn respond(self, response: SyncResponse) -> Result<(), NetworkError> {
        self.commands
            .send(Command::Respond {
                channel: self.channel,
                response,
            })
            .await
            .map_err(|_| NetworkError::ServiceStopped)
    }
}

enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<PublishOutcome, NetworkError>>,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, NetworkError>>,
    },
    Respond {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    Report {
        peer: PeerId,
        misbehaviour: Misbehaviour,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    SetBlocked {
        peer: PeerId,
        blocked: bool,
    },
    Validate {
        id: gossipsub::MessageId,
        from: PeerId,
        acceptance: MessageAcceptance,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// State the service publishes for cheap synchronous reads from handles.
#[derive(Debug)]
struct Shared {
    local_peer_id: PeerId,
    peers: RwLock<HashSet<PeerId>>,
    listen_addrs: RwLock<Vec<Multiaddr>>,
    scores: Mutex<PeerScores>,
    /// Peers the operator blocked by hand (not by score): never dialed, never accepted.
    blocked: RwLock<HashSet<PeerId>>,
}

/// Cloneable handle to the running service.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl NetworkHandle {
    /// Publishes `data` on `topic`. Data above the topic's size limit is refused; having no
    /// subscribed peer yet is the benign [`PublishOutcome::NoPeers`].
    pub async fn publish(
        &self,
        topic: Topic,
        data: Vec<u8>,
    ) -> Result<PublishOutcome, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Publish { topic, data, reply }).await?;
        rx.await.map_err(|_| NetworkError::ServiceStopped)?
    }

    /// Sends a sync request and waits for the answer (bounded by the request timeout). A
    /// refusal by the peer is [`NetworkError::Remote`]; a response of the wrong kind or with
    /// too many items is [`NetworkError::InvalidResponse`] and costs the peer points.
    pub async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request {
            peer,
            request,
            reply,
        })
        .await?;
        rx.await.map_err(|_| NetworkError::ServiceStopped)?
    }

    /// Penalises a peer; enough penalties get it disconnected and banned. Never blocks: if
    /// the service is overloaded the report is dropped with a warning.
    pub fn report(&self, peer: PeerId, misbehaviour: Misbehaviour) {
        if let Err(e) = self
            .commands
            .try_send(Command::Report { peer, misbehaviour })
        {
            warn!(%peer, ?misbehaviour, error = %e, "dropping misbehaviour report");
        }
    }

    /// Dials an address (with or without `/p2p/<peer id>`).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Dial { addr, reply }).await?;
        rx.await.map_err(|_| NetworkError::ServiceStopped)?
    }

    /// Disconnects `peer` and refuses it (both directions, discovery and bootnode
    /// redials included) until [`NetworkHandle::unblock_peer`]. An operator's tool, also
    /// how tests split a network.
    pub async fn block_peer(&self, peer: PeerId) -> Result<(), NetworkError> {
        self.send(Command::SetBlocked {
            peer,
            blocked: true,
        })
        .await
    }

    /// Lifts [`NetworkHandle::block_peer`]; bootnodes are redialed at the next interval.
    pub async fn unblock_peer(&self, peer: PeerId) -> Result<(), NetworkError> {
        self.send(Command::SetBlocked {
            peer,
            blocked: false,
        })
        .await
    }

    /// Peers blocked by hand.
    pub fn blocked_peers(&self) -> Vec<PeerId> {
        self.shared.blocked.read().iter().copied().collect()
    }

    /// Peers with at least one open connection.
    pub fn peers(&self) -> Vec<PeerId> {
        self.shared.peers.read().iter().copied().collect()
    }

    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// Addresses the node listens on (without the `/p2p` suffix).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.shared.listen_addrs.read().clone()
    }

    /// Listen addresses with `/p2p/<local peer id>` appended: what other nodes put in their
    /// bootnode lists.
    pub fn bootnode_addrs(&self) -> Vec<Multiaddr> {
        let id = self.shared.local_peer_id;
        self.listen_addrs()
            .into_iter()
            .map(|a| a.with(Protocol::P2p(id)))
            .collect()
    }

    /// The application score of a peer (0 for unknown peers).
    pub fn peer_score(&self, peer: &PeerId) -> i32 {
        self.shared.scores.lock().score(peer)
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.shared.scores.lock().is_banned(peer, Instant::now())
    }

    /// Stops the service and waits until its connections are closed.
    pub async fn shutdown(&self) -> Result<(), NetworkError> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Shutdown { done }).await?;
        rx.await.map_err(|_| NetworkError::ServiceStopped)
    }

    async fn send(&self, command: Command) -> Result<(), NetworkError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetworkError::ServiceStopped)
    }
}

/// Entry point: builds the swarm and spawns the service task.
#[derive(Debug)]
pub struct Network;

impl Network {
    /// Starts listening, dials the bootnodes and spawns the service on the current tokio
    /// runtime. Returns once every listener has an address, so
    /// [`NetworkHandle::listen_addrs`] is filled.
    pub async fn start(
        config: NetworkConfig,
    ) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
        let local_peer_id = config.keypair.public().to_peer_id();
        let bootnodes = config
            .bootnodes
            .iter()
            .map(split_peer_addr)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|(peer, _)| *peer != local_peer_id)
            .collect::<Vec<_>>();

        let behaviour = build_behaviour(&config)?;
        let mut swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetworkError::Transport(e.to_string()))?
            .with_dns()
            .map_err(|e| NetworkError::Transport(format!("dns: {e}")))?
            .with_behaviour(move |_| behaviour)
            .map_err(|e| match e {})?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();

        let mut topics = HashMap::new();
        for topic in Topic::ALL {
            let ident = IdentTopic::new(topic.for_chain(config.chain_id));
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&ident)
                .map_err(|e| NetworkError::Transport(format!("subscribe to {topic}: {e}")))?;
            topics.insert(ident.hash(), topic);
        }

        let listen_addrs = listen(&mut swarm, &config.listen_addrs).await?;
        info!(%local_peer_id, addrs = ?listen_addrs, chain_id = config.chain_id, "p2p listening");

        let shared = Arc::new(Shared {
            local_peer_id,
            peers: RwLock::new(HashSet::new()),
            listen_addrs: RwLock::new(listen_addrs),
            scores: Mutex::new(PeerScores::new(config.ban_threshold, config.ban_duration)),
            blocked: RwLock::new(HashSet::new()),
        });
        let (command_tx, command_rx) = mpsc::channel(COMMAND_BUFFER);
        let (event_tx, event_rx) = mpsc::channel(config.event_buffer.max(1));

        let mut service = Service {
            swarm,
            commands: command_rx,
            command_tx: command_tx.downgrade(),
            events: event_tx,
            shared: shared.clone(),
            topics,
            pending: HashMap::new(),
            bootnodes,
            identify_version: identify_version(config.chain_id),
            config,
        };
        service.dial_bootnodes();
        if let Some(kad) = service.swarm.behaviour_mut().kad.as_mut()
            && !service.bootnodes.is_empty()
        {
            // Fails only with no known peers; the bootnodes were just added.
            let _ = kad.bootstrap();
        }
        tokio::spawn(service.run());

        Ok((
            NetworkHandle {
                commands: command_tx,
                shared,
            },
            event_rx,
        ))
    }
}

fn identify_version(chain_id: u64) -> String {
    format!("/koma/{chain_id}/1.0.0")
}

fn protocol(name: String) -> Result<StreamProtocol, NetworkError> {
    StreamProtocol::try_from_owned(name.clone()).map_err(|e| NetworkError::InvalidProtocol {
        name,
        reason: e.to_string(),
    })
}

fn build_behaviour(config: &NetworkConfig) -> Result<Behaviour, NetworkError> {
    let key: &Keypair = &config.keypair;
    let local_peer_id = key.public().to_peer_id();
    let chain_id = config.chain_id;

    let largest = config.max_message_size.max(config.max_tx_message_size);
    let gossip_config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(config.gossip_heartbeat)
        .validation_mode(ValidationMode::Strict)
        // We check sizes (and count offenders) before gossipsub forwards anything.
        .validate_messages()
        // The codec limit sits above our per-topic limits so oversized messages reach the
        // service, which rejects them and penalises the sender.
        .max_transmit_size(largest.saturating_add(GOSSIP_FRAME_OVERHEAD))
        // Content addressing: the same payload from two publishers is one message.
        .message_id_fn(|m: &gossipsub::Message| {
            let mut preimage =
                Vec::with_capacity(m.topic.as_str().len().saturating_add(m.data.len()));
            preimage.extend_from_slice(m.topic.as_str().as_bytes());
            preimage.extend_from_slice(&m.data);
            gossipsub::MessageId::from(keccak256(&preimage).to_vec())
        })
        .build()
        .map_err(|e| NetworkError::Transport(format!("gossipsub config: {e}")))?;
    let gossipsub =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)
            .map_err(|e| NetworkError::Transport(format!("gossipsub: {e}")))?;

    let codec = request_response::cbor::codec::Codec::<SyncRequest, SyncResponse>::default()
        .set_request_size_maximum(MAX_REQUEST_BYTES)
        .set_response_size_maximum(u64::try_from(config.max_response_size).unwrap_or(u64::MAX));
    let sync = request_response::Behaviour::with_codec(
        codec,
        [(
            protocol(format!("/koma/{chain_id}/sync/1"))?,
            ProtocolSupport::Full,
        )],
        request_response::Config::default().with_request_timeout(config.request_timeout),
    );

    let kad = if config.discovery {
        let mut kad_config = kad::Config::new(protocol(format!("/koma/{chain_id}/kad/1"))?);
        kad_config.set_query_timeout(Duration::from_secs(30));
        if let Some(parallelism) = NonZeroUsize::new(3) {
            kad_config.set_parallelism(parallelism);
        }
        let mut kad =
            kad::Behaviour::with_config(local_peer_id, MemoryStore::new(local_peer_id), kad_config);
        // Without confirmed external addresses kad would stay a client and nobody could
        // discover us; every KOMA node serves the DHT.
        kad.set_mode(Some(kad::Mode::Server));
        Some(kad)
    } else {
        None
    };

    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_incoming(Some(config.max_peers))
        .with_max_established_per_peer(Some(2));

    Ok(Behaviour {
        block_list: allow_block_list::Behaviour::default(),
        limits: connection_limits::Behaviour::new(limits),
        identify: identify::Behaviour::new(
            identify::Config::new(identify_version(chain_id), key.public())
                .with_agent_version(format!("koma/{}", env!("CARGO_PKG_VERSION"))),
        ),
        ping: ping::Behaviour::new(ping::Config::new()),
        gossipsub,
        sync,
        kad: Toggle::from(kad),
    })
}

/// Starts every listener and waits for each to report an address.
async fn listen(
    swarm: &mut Swarm<Behaviour>,
    addrs: &[Multiaddr],
) -> Result<Vec<Multiaddr>, NetworkError> {
    let mut waiting = HashMap::new();
    for addr in addrs {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NetworkError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        waiting.insert(id, addr.clone());
    }
    let mut bound = Vec::new();
    let wait = async {
        while !waiting.is_empty() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                } => {
                    waiting.remove(&listener_id);
                    bound.push(address);
                }
                SwarmEvent::ListenerError { listener_id, error }
                | SwarmEvent::ListenerClosed {
                    listener_id,
                    reason: Err(error),
                    ..
                } => {
                    if let Some(addr) = waiting.remove(&listener_id) {
                        return Err(NetworkError::Listen {
                            addr,
                            reason: error.to_string(),
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    };
    match tokio::time::timeout(LISTEN_TIMEOUT, wait).await {
        Ok(result) => result?,
        Err(_) => {
            let addr = waiting
                .values()
                .next()
                .cloned()
                .unwrap_or_else(Multiaddr::empty);
            return Err(NetworkError::Listen {
                addr,
                reason: "no listen address in time".into(),
            });
        }
    }
    Ok(bound)
}

struct PendingRequest {
    peer: PeerId,
    request: SyncRequest,
    reply: oneshot::Sender<Result<SyncResponse, NetworkError>>,
}

struct Service {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    /// Weak, so the service stops once every handle and responder is dropped.
    command_tx: mpsc::WeakSender<Command>,
    events: mpsc::Sender<NetworkEvent>,
    shared: Arc<Shared>,
    topics: HashMap<TopicHash, Topic>,
    pending: HashMap<OutboundRequestId, PendingRequest>,
    bootnodes: Vec<(PeerId, Multiaddr)>,
    identify_version: String,
    config: NetworkConfig,
}

impl Service {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut redial = tokio::time::interval(
            self.config
                .bootnode_redial_interval
                .max(Duration::from_millis(100)),
        );
        tick.tick().await;
        redial.tick().await;
        let done = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { done }) => break Some(done),
                    Some(command) => self.on_command(command),
                    // Every handle is gone: nobody can use the network any more.
                    None => break None,
                },
                _ = tick.tick() => self.on_tick(),
                _ = redial.tick() => self.dial_bootnodes(),
            }
        };
        info!(peer_id = %self.shared.local_peer_id, "p2p service stopped");
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(NetworkError::ServiceStopped));
        }
        drop(self.swarm);
        self.shared.peers.write().clear();
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    fn emit(&self, event: NetworkEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                let kind = match &event {
                    NetworkEvent::PeerConnected(_) => "peer connected",
                    NetworkEvent::PeerDisconnected(_) => "peer disconnected",
                    NetworkEvent::PeerBanned(_) => "peer banned",
                    NetworkEvent::Gossip { .. } => "gossip",
                    NetworkEvent::Request { .. } => "sync request",
                };
                warn!(kind, "network event channel full; dropping event");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => debug!("network event receiver dropped"),
        }
    }

    fn dial_bootnodes(&mut self) {
        let now = Instant::now();
        for (peer, addr) in self.bootnodes.clone() {
            if self.swarm.is_connected(&peer)
                || self.shared.scores.lock().is_banned(&peer, now)
                || self.shared.blocked.read().contains(&peer)
            {
                continue;
            }
            if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                kad.add_address(&peer, addr.clone());
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(%peer, %addr, error = %e, "bootnode dial failed");
            }
        }
    }

    fn on_tick(&mut self) {
        let expired = {
            let mut scores = self.shared.scores.lock();
            scores.decay(SCORE_DECAY_PER_SECOND);
            scores.expire_bans(Instant::now())
        };
        for peer in expired {
            if self.shared.blocked.read().contains(&peer) {
                continue;
            }
            info!(%peer, "ban expired");
            self.swarm.behaviour_mut().block_list.unblock_peer(peer);
        }
    }

    fn penalize(&mut self, peer: PeerId, misbehaviour: Misbehaviour) {
        let verdict = self
            .shared
            .scores
            .lock()
            .penalize(peer, misbehaviour, Instant::now());
        match verdict {
            Verdict::Penalized { score } => debug!(%peer, ?misbehaviour, score, "peer penalised"),
            Verdict::Banned { score } => {
                warn!(%peer, ?misbehaviour, score, ban = ?self.config.ban_duration, "banning peer");
                koma_metrics::metrics().peers_banned.inc();
                let behaviour = self.swarm.behaviour_mut();
                // Closes its connections and refuses new ones in both directions.
                behaviour.block_list.block_peer(peer);
                if let Some(kad) = behaviour.kad.as_mut() {
                    kad.remove_peer(&peer);
                }
                self.emit(NetworkEvent::PeerBanned(peer));
            }
            Verdict::AlreadyBanned => {}
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data, reply } => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, request.clone());
                self.pending.insert(
                    id,
                    PendingRequest {
                        peer,
                        request,
                        reply,
                    },
                );
            }
            Command::Respond { channel, response } => {
                let response = response.truncate_to(self.config.max_response_size);
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response)
                    .is_err()
                {
                    debug!("sync response dropped: the requester is gone or timed out");
                }
            }
            Command::Report { peer, misbehaviour } => self.penalize(peer, misbehaviour),
            Command::Dial { addr, reply } => {
                let result = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|e| NetworkError::Dial {
                        addr,
                        reason: e.to_string(),
                    });
                let _ = reply.send(result);
            }
            Command::SetBlocked { peer, blocked } => {
                let behaviour = self.swarm.behaviour_mut();
                if blocked {
                    info!(%peer, "peer blocked by operator");
                    self.shared.blocked.write().insert(peer);
                    behaviour.block_list.block_peer(peer);
                    if let Some(kad) = behaviour.kad.as_mut() {
                        kad.remove_peer(&peer);
                    }
                } else {
                    info!(%peer, "peer unblocked by operator");
                    self.shared.blocked.write().remove(&peer);
                    if !self.shared.scores.lock().is_banned(&peer, Instant::now()) {
                        behaviour.block_list.unblock_peer(peer);
                    }
                }
            }
            Command::Validate {
                id,
                from,
                acceptance,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &from, acceptance);
            }
            Command::Shutdown { .. } => {}
        }
    }

    fn publish(&mut self, topic: Topic, data: Vec<u8>) -> Result<PublishOutcome, NetworkError> {
        let max = self.config.max_size_for(topic);
        if data.len() > max {
            return Err(NetworkError::MessageTooLarge {
                topic,
                size: data.len(),
                max,
            });
        }
        let hash = IdentTopic::new(topic.for_chain(self.config.chain_id)).hash();
        let size = data.len();
        match self.swarm.behaviour_mut().gossipsub.publish(hash, data) {
            Ok(_) => Ok(PublishOutcome::Sent),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Ok(PublishOutcome::NoPeers),
            Err(gossipsub::PublishError::Duplicate) => Ok(PublishOutcome::Duplicate),
            Err(gossipsub::PublishError::MessageTooLarge) => {
                Err(NetworkError::MessageTooLarge { topic, size, max })
            }
            Err(e) => Err(NetworkError::Publish {
                topic,
                reason: e.to_string(),
            }),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } if num_established.get() == 1 => {
                debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "peer connected");
                self.shared.peers.write().insert(peer_id);
                self.emit(NetworkEvent::PeerConnected(peer_id));
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                debug!(peer = %peer_id, "peer disconnected");
                self.shared.peers.write().remove(&peer_id);
                self.emit(NetworkEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let mut addrs = self.shared.listen_addrs.write();
                if !addrs.contains(&address) {
                    addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.shared.listen_addrs.write().retain(|a| *a != address);
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, %error, "outgoing connection failed");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                debug!(addr = %send_back_addr, %error, "incoming connection refused or failed");
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let Some(&topic) = self.topics.get(&message.topic) else {
            // Strict validation only delivers subscribed topics; be defensive anyway.
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    MessageAcceptance::Ignore,
                );
            return;
        };
        koma_metrics::gossip_received(topic.name());
        let max = self.config.max_size_for(topic);
        if message.data.len() > max {
            koma_metrics::gossip_verdict(topic.name(), "reject");
            warn!(peer = %propagation_source, %topic, size = message.data.len(), max, "oversized gossip");
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    MessageAcceptance::Reject,
                );
            self.penalize(propagation_source, Misbehaviour::Oversized);
            return;
        }
        // Content checks (decoding, validity) are the node's: it forwards the message by
        // accepting it. If the node cannot take the event, the message is ignored.
        let validation = GossipValidation {
            id: Some((message_id, propagation_source)),
            commands: self.command_tx.clone(),
            topic: topic.name(),
        };
        self.emit(NetworkEvent::Gossip {
            topic,
            from: propagation_source,
            origin: message.source,
            data: message.data,
            validation,
        });
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if let Err(error) = request.validate() {
                        debug!(%peer, ?request, %error, "refusing sync request");
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(channel, SyncResponse::Error(error));
                        return;
                    }
                    // The weak sender upgrades while any handle lives, which it does for as
                    // long as the service runs.
                    if let Some(commands) = self.command_tx.upgrade() {
                        let responder = SyncResponder { channel, commands };
                        self.emit(NetworkEvent::Request {
                            peer,
                            request,
                            responder,
                        });
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some(pending) = self.pending.remove(&request_id) else {
                        return;
                    };
                    let result = match response.check_matches(&pending.request) {
                        Err(reason) => {
                            self.penalize(pending.peer, Misbehaviour::InvalidResponse);
                            Err(NetworkError::InvalidResponse {
                                peer: pending.peer,
                                reason,
                            })
                        }
                        Ok(()) => match response {
                            SyncResponse::Error(error) => Err(NetworkError::Remote {
                                peer: pending.peer,
                                error,
                            }),
                            response => Ok(response),
                        },
                    };
                    let _ = pending.reply.send(result);
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(pending) = self.pending.remove(&request_id) {
                    let _ = pending.reply.send(Err(NetworkError::RequestFailed {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if info.protocol_version != self.identify_version {
            // Another chain (or an unrelated libp2p node): it cannot share any topic or
            // protocol with us, so it only wastes a peer slot.
            debug!(peer = %peer_id, theirs = %info.protocol_version, "disconnecting peer of another network");
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        }
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            for addr in info.listen_addrs {
                kad.add_address(&peer_id, addr);
            }
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        if let kad::Event::RoutingUpdated {
            peer,
            is_new_peer: true,
            ..
        } = event
        {
            let connected = self.shared.peers.read().len();
            let wanted = usize::try_from(self.config.max_peers).map_or(true, |max| connected < max);
            if wanted
                && !self.swarm.is_connected(&peer)
                && !self.shared.scores.lock().is_banned(&peer, Instant::now())
                && !self.shared.blocked.read().contains(&peer)
            {
                debug!(%peer, "dialing discovered peer");
                let opts = DialOpts::peer_id(peer)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                let _ = self.swarm.dial(opts);
            }
        }
    }
}
