//! Real swarms on 127.0.0.1, every wait bounded by a timeout. Keys come from fixed seeds.

use std::time::Duration;

use alloy_primitives::{B256, U256};
use koma_network::{
    ChainStatus, Keypair, MAX_SYNC_ITEMS, Misbehaviour, Network, NetworkConfig, NetworkError,
    NetworkEvent, NetworkHandle, PeerId, PublishOutcome, SyncError, SyncRequest, SyncResponse,
    Topic, load_or_create_identity,
};
use tokio::{sync::mpsc::Receiver, time::timeout};

const WAIT: Duration = Duration::from_secs(20);

fn key(seed: u8) -> Keypair {
    Keypair::ed25519_from_bytes([seed; 32]).unwrap()
}

fn config(chain_id: u64, seed: u8) -> NetworkConfig {
    let mut config = NetworkConfig::new(chain_id, key(seed));
    config.gossip_heartbeat = Duration::from_millis(100);
    config.bootnode_redial_interval = Duration::from_millis(500);
    config.discovery = false;
    config
}

async fn start(config: NetworkConfig) -> (NetworkHandle, Receiver<NetworkEvent>) {
    Network::start(config).await.unwrap()
}

fn bootnode(handle: &NetworkHandle) -> koma_network::Multiaddr {
    handle.bootnode_addrs().into_iter().next().unwrap()
}

/// Receives events until `pick` accepts one; panics after [`WAIT`].
async fn next_matching<T>(
    rx: &mut Receiver<NetworkEvent>,
    mut pick: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    timeout(WAIT, async {
        loop {
            let event = rx.recv().await.expect("event channel closed");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("timed out waiting for a network event")
}

async fn connected_to(rx: &mut Receiver<NetworkEvent>, peer: PeerId) {
    next_matching(rx, |e| {
        matches!(e, NetworkEvent::PeerConnected(p) if p == peer).then_some(())
    })
    .await;
}

/// Publishes unique probes until `rx` sees one: meshes need a few heartbeats to form.
async fn warm_up(publisher: &NetworkHandle, rx: &mut Receiver<NetworkEvent>, topic: Topic) {
    timeout(WAIT, async {
        for i in 0u32.. {
            let probe = format!("probe-{topic}-{i}").into_bytes();
            publisher.publish(topic, probe).await.unwrap();
            let got = timeout(Duration::from_millis(200), async {
                loop {
                    if let Some(NetworkEvent::Gossip { topic: t, data, .. }) = rx.recv().await
                        && t == topic
                        && data.starts_with(b"probe-")
                    {
                        return;
                    }
                }
            })
            .await;
            if got.is_ok() {
                return;
            }
        }
    })
    .await
    .expect("gossip never arrived");
}

async fn gossip_on(
    rx: &mut Receiver<NetworkEvent>,
    topic: Topic,
    data: &[u8],
) -> (PeerId, Option<PeerId>) {
    next_matching(rx, |e| match e {
        NetworkEvent::Gossip {
            topic: t,
            from,
            origin,
            data: d,
            validation,
        } if t == topic && d == data => {
            validation.accept();
            Some((from, origin))
        }
        _ => None,
    })
    .await
}

/// Collects gossip payloads that arrive within `window`.
async fn gossip_within(rx: &mut Receiver<NetworkEvent>, window: Duration) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    let _ = timeout(window, async {
        while let Some(event) = rx.recv().await {
            if let NetworkEvent::Gossip { data, .. } = event {
                seen.push(data);
            }
        }
    })
    .await;
    seen
}

#[tokio::test]
async fn publish_without_peers_is_benign_and_local_limits_hold() {
    let (a, _rx) = start(config(1, 1)).await;
    assert_eq!(
        a.publish(Topic::Txs, b"lonely".to_vec()).await.unwrap(),
        PublishOutcome::NoPeers
    );
    let err = a
        .publish(Topic::Txs, vec![0; 128 * 1024 + 1])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetworkError::MessageTooLarge {
                topic: Topic::Txs,
                ..
            }
        ),
        "{err}"
    );
    a.shutdown().await.unwrap();
    assert!(matches!(
        a.publish(Topic::Txs, vec![1]).await,
        Err(NetworkError::ServiceStopped)
    ));
}

#[tokio::test]
async fn two_nodes_connect_and_gossip_txs_and_blocks() {
    let datadir = tempfile::tempdir().unwrap();
    let identity = load_or_create_identity(datadir.path()).unwrap();
    let (a, mut a_rx) = start(NetworkConfig {
        keypair: identity.clone(),
        ..config(1, 10)
    })
    .await;
    assert_eq!(a.local_peer_id(), identity.public().to_peer_id());

    let mut b_config = config(1, 11);
    b_config.bootnodes = vec![bootnode(&a)];
    let (b, mut b_rx) = start(b_config).await;

    connected_to(&mut a_rx, b.local_peer_id()).await;
    connected_to(&mut b_rx, a.local_peer_id()).await;
    assert_eq!(a.peers(), vec![b.local_peer_id()]);

    warm_up(&a, &mut b_rx, Topic::Txs).await;
    warm_up(&a, &mut b_rx, Topic::Blocks).await;

    let tx = b"rlp-encoded tx".to_vec();
    assert_eq!(
        a.publish(Topic::Txs, tx.clone()).await.unwrap(),
        PublishOutcome::Sent
    );
    let (from, origin) = gossip_on(&mut b_rx, Topic::Txs, &tx).await;
    assert_eq!((from, origin), (a.local_peer_id(), Some(a.local_peer_id())));
    assert_eq!(
        a.publish(Topic::Txs, tx.clone()).await.unwrap(),
        PublishOutcome::Duplicate
    );

    let block = vec![7u8; 1024 * 1024];
    assert_eq!(
        a.publish(Topic::Blocks, block.clone()).await.unwrap(),
        PublishOutcome::Sent
    );
    gossip_on(&mut b_rx, Topic::Blocks, &block).await;

    // And the other way round.
    warm_up(&b, &mut a_rx, Topic::Txs).await;
    b.publish(Topic::Txs, b"from b".to_vec()).await.unwrap();
    gossip_on(&mut a_rx, Topic::Txs, b"from b").await;

    b.shutdown().await.unwrap();
    next_matching(&mut a_rx, |e| {
        matches!(e, NetworkEvent::PeerDisconnected(p) if p == b.local_peer_id()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn other_chain_ids_do_not_receive_gossip() {
    let (a, mut a_rx) = start(config(1, 21)).await;
    let mut b_config = config(1, 22);
    b_config.bootnodes = vec![bootnode(&a)];
    let (_b, mut b_rx) = start(b_config).await;
    let mut c_config = config(2, 23);
    c_config.bootnodes = vec![bootnode(&a)];
    let (c, mut c_rx) = start(c_config).await;

    connected_to(&mut a_rx, c.local_peer_id()).await;
    warm_up(&a, &mut b_rx, Topic::Txs).await;
    warm_up(&a, &mut b_rx, Topic::Blocks).await;
    a.publish(Topic::Txs, b"chain 1 tx".to_vec()).await.unwrap();
    a.publish(Topic::Blocks, b"chain 1 block".to_vec())
        .await
        .unwrap();
    gossip_on(&mut b_rx, Topic::Blocks, b"chain 1 block").await;

    let leaked = gossip_within(&mut c_rx, Duration::from_secs(1)).await;
    assert!(
        leaked.is_empty(),
        "chain 2 received chain 1 gossip: {leaked:?}"
    );
    // Nobody on chain 2 listens to C either.
    assert_ne!(
        c.publish(Topic::Txs, b"chain 2 tx".to_vec()).await.unwrap(),
        PublishOutcome::Sent
    );
}

#[tokio::test]
async fn sync_requests_are_served_and_bounded() {
    let (a, a_rx) = start(config(1, 31)).await;
    let mut a_rx = a_rx;
    let mut b_config = config(1, 32);
    b_config.bootnodes = vec![bootnode(&a)];
    let (b, mut b_rx) = start(b_config).await;
    connected_to(&mut b_rx, a.local_peer_id()).await;

    // A answers from canned data: block n is three bytes of n.
    let server = tokio::spawn(async move {
        while let Some(event) = a_rx.recv().await {
            if let NetworkEvent::Request {
                request, responder, ..
            } = event
            {
                let canned = |start: u64, count: u64| {
                    (start..start + count).map(|n| vec![n as u8; 3]).collect()
                };
                let response = match request {
                    SyncRequest::BlocksByRange { start, count } => {
                        SyncResponse::Blocks(canned(start, count))
                    }
                    SyncRequest::HeadersByRange { start, count } => {
                        SyncResponse::Headers(canned(start, count))
                    }
                    SyncRequest::BlockByHash(_) => SyncResponse::Error(SyncError::Unavailable),
                    SyncRequest::Units(hashes) => {
                        SyncResponse::Units(hashes.iter().map(|h| h.to_vec()).collect())
                    }
                    SyncRequest::LatestUnits(instance) => {
                        SyncResponse::Units(vec![instance.to_vec(); 2])
                    }
                    SyncRequest::Status => SyncResponse::Status(ChainStatus {
                        number: 7,
                        hash: B256::repeat_byte(7),
                        total_difficulty: U256::from(28),
                    }),
                };
                responder.respond(response).await.unwrap();
            }
        }
    });

    let a_id = a.local_peer_id();
    let blocks = b
        .request(a_id, SyncRequest::BlocksByRange { start: 5, count: 3 })
        .await
        .unwrap();
    assert_eq!(
        blocks,
        SyncResponse::Blocks(vec![vec![5; 3], vec![6; 3], vec![7; 3]])
    );
    let units = b
        .request(a_id, SyncRequest::Units(vec![B256::repeat_byte(3)]))
        .await
        .unwrap();
    assert_eq!(units, SyncResponse::Units(vec![vec![3; 32]]));
    let latest = b
        .request(a_id, SyncRequest::LatestUnits(B256::repeat_byte(4)))
        .await
        .unwrap();
    assert_eq!(latest, SyncResponse::Units(vec![vec![4; 32]; 2]));
    let status = b.request(a_id, SyncRequest::Status).await.unwrap();
    assert_eq!(
        status,
        SyncResponse::Status(ChainStatus {
            number: 7,
            hash: B256::repeat_byte(7),
            total_difficulty: U256::from(28),
        })
    );
    let headers = b
        .request(a_id, SyncRequest::HeadersByRange { start: 0, count: 2 })
        .await
        .unwrap();
    assert_eq!(headers, SyncResponse::Headers(vec![vec![0; 3], vec![1; 3]]));

    let too_many = b
        .request(
            a_id,
            SyncRequest::BlocksByRange {
                start: 0,
                count: MAX_SYNC_ITEMS + 1,
            },
        )
        .await;
    match too_many {
        Err(NetworkError::Remote {
            peer,
            error: SyncError::CountTooLarge { count, max },
        }) => {
            assert_eq!(
                (peer, count, max),
                (a_id, MAX_SYNC_ITEMS + 1, MAX_SYNC_ITEMS)
            );
        }
        other => panic!("expected CountTooLarge, got {other:?}"),
    }
    let unavailable = b
        .request(a_id, SyncRequest::BlockByHash(Default::default()))
        .await;
    assert!(matches!(
        unavailable,
        Err(NetworkError::Remote {
            error: SyncError::Unavailable,
            ..
        })
    ));

    let stranger = Keypair::ed25519_from_bytes([99; 32])
        .unwrap()
        .public()
        .to_peer_id();
    let unreachable = b
        .request(stranger, SyncRequest::BlocksByRange { start: 0, count: 1 })
        .await;
    assert!(
        matches!(unreachable, Err(NetworkError::RequestFailed { .. })),
        "{unreachable:?}"
    );
    server.abort();
}

#[tokio::test]
async fn oversized_gossip_is_counted_and_reports_lead_to_a_ban() {
    // A allows big transactions, B does not: A's 200 KiB tx is oversized for B.
    let mut a_config = config(1, 41);
    a_config.max_tx_message_size = 1024 * 1024;
    let (a, mut a_rx) = start(a_config).await;
    let mut b_config = config(1, 42);
    b_config.bootnodes = vec![bootnode(&a)];
    b_config.ban_duration = Duration::from_secs(4);
    let (b, mut b_rx) = start(b_config).await;
    let a_id = a.local_peer_id();
    connected_to(&mut b_rx, a_id).await;
    warm_up(&a, &mut b_rx, Topic::Txs).await;

    let big = vec![0xAB; 200 * 1024];
    assert_eq!(
        a.publish(Topic::Txs, big.clone()).await.unwrap(),
        PublishOutcome::Sent
    );
    timeout(WAIT, async {
        while b.peer_score(&a_id) > -20 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("oversized gossip was not penalised");
    assert!(!b.is_banned(&a_id));
    // Small gossip from A still flows; the oversized message never reached B's node.
    a.publish(Topic::Txs, b"small".to_vec()).await.unwrap();
    let mut before_small = Vec::new();
    next_matching(&mut b_rx, |e| match e {
        NetworkEvent::Gossip { data, .. } if data == b"small" => Some(()),
        NetworkEvent::Gossip { data, .. } => {
            before_small.push(data);
            None
        }
        _ => None,
    })
    .await;
    assert!(
        before_small.iter().all(|d| d.len() < big.len()),
        "oversized gossip was delivered"
    );

    b.report(a_id, Misbehaviour::InvalidBlock);
    b.report(a_id, Misbehaviour::InvalidBlock);
    next_matching(&mut b_rx, |e| {
        matches!(e, NetworkEvent::PeerBanned(p) if p == a_id).then_some(())
    })
    .await;
    next_matching(&mut b_rx, |e| {
        matches!(e, NetworkEvent::PeerDisconnected(p) if p == a_id).then_some(())
    })
    .await;
    assert!(b.is_banned(&a_id));
    connected_to(&mut a_rx, b.local_peer_id()).await; // drain A's first connection event

    // A keeps knocking; B refuses while the ban lasts (B's own bootnode redial skips A too).
    let knocks = async {
        for _ in 0..5 {
            let _ = a.dial(bootnode(&b)).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let watch = timeout(
        Duration::from_millis(1500),
        next_matching(&mut b_rx, |e| {
            matches!(e, NetworkEvent::PeerConnected(p) if p == a_id).then_some(())
        }),
    );
    let (_, reconnected) = tokio::join!(knocks, watch);
    assert!(reconnected.is_err(), "banned peer got a connection");
    assert!(!b.peers().contains(&a_id));

    // After the ban B's bootnode redial brings A back.
    connected_to(&mut b_rx, a_id).await;
    assert!(!b.is_banned(&a_id));
    assert_eq!(b.peer_score(&a_id), 0);
}

#[tokio::test]
async fn gossip_crosses_a_line_of_three_nodes() {
    let (b, mut b_rx) = start(config(1, 52)).await;
    let mut a_config = config(1, 51);
    a_config.bootnodes = vec![bootnode(&b)];
    let (a, _a_rx) = start(a_config).await;
    let mut c_config = config(1, 53);
    c_config.bootnodes = vec![bootnode(&b)];
    let (c, mut c_rx) = start(c_config).await;

    connected_to(&mut b_rx, a.local_peer_id()).await;
    connected_to(&mut b_rx, c.local_peer_id()).await;
    // B forwards what its "node" accepts and holds back what it does not.
    let b_node = tokio::spawn(async move {
        while let Some(event) = b_rx.recv().await {
            if let NetworkEvent::Gossip {
                data, validation, ..
            } = event
            {
                if data.starts_with(b"bad") {
                    validation.ignore();
                } else {
                    validation.accept();
                }
            }
        }
    });
    warm_up(&a, &mut c_rx, Topic::Blocks).await;

    a.publish(Topic::Blocks, b"block from A".to_vec())
        .await
        .unwrap();
    let (from, origin) = gossip_on(&mut c_rx, Topic::Blocks, b"block from A").await;
    assert_eq!(from, b.local_peer_id(), "C only hears through B");
    assert_eq!(origin, Some(a.local_peer_id()));
    assert!(
        !c.peers().contains(&a.local_peer_id()),
        "discovery is off: A and C stay apart"
    );

    a.publish(Topic::Blocks, b"bad block from A".to_vec())
        .await
        .unwrap();
    a.publish(Topic::Blocks, b"next block from A".to_vec())
        .await
        .unwrap();
    next_matching(&mut c_rx, |e| match e {
        NetworkEvent::Gossip { data, .. } => {
            assert!(
                !data.starts_with(b"bad"),
                "B forwarded a message it ignored"
            );
            (data == b"next block from A").then_some(())
        }
        _ => None,
    })
    .await;
    let leaked = gossip_within(&mut c_rx, Duration::from_millis(500)).await;
    assert!(
        !leaked.iter().any(|d| d.starts_with(b"bad")),
        "B forwarded a message its node did not accept"
    );
    b_node.abort();
}

#[tokio::test]
async fn kademlia_discovers_peers_beyond_the_bootnode() {
    let discovering = |seed| NetworkConfig {
        discovery: true,
        ..config(1, seed)
    };
    let (b, _b_rx) = start(discovering(62)).await;
    let (_a, mut a_rx) = start(NetworkConfig {
        bootnodes: vec![bootnode(&b)],
        ..discovering(61)
    })
    .await;
    connected_to(&mut a_rx, b.local_peer_id()).await;
    let (c, _c_rx) = start(NetworkConfig {
        bootnodes: vec![bootnode(&b)],
        ..discovering(63)
    })
    .await;
    connected_to(&mut a_rx, c.local_peer_id()).await;
}

#[tokio::test]
async fn blocked_peer_stays_out_until_unblocked() {
    let (a, mut a_rx) = start(config(1, 41)).await;
    let mut b_config = config(1, 42);
    b_config.bootnodes = vec![bootnode(&a)];
    let (b, mut b_rx) = start(b_config).await;
    connected_to(&mut b_rx, a.local_peer_id()).await;
    connected_to(&mut a_rx, b.local_peer_id()).await;

    a.block_peer(b.local_peer_id()).await.unwrap();
    next_matching(&mut a_rx, |e| {
        matches!(e, NetworkEvent::PeerDisconnected(p) if p == b.local_peer_id()).then_some(())
    })
    .await;
    assert_eq!(a.blocked_peers(), vec![b.local_peer_id()]);
    // B keeps redialing its bootnode every 500 ms; A refuses every attempt.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.peers().is_empty(), "blocked peer got back in");

    a.unblock_peer(b.local_peer_id()).await.unwrap();
    connected_to(&mut a_rx, b.local_peer_id()).await;
    assert!(a.blocked_peers().is_empty());
}
