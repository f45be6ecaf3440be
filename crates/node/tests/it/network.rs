//! Nodes in one process over real libp2p on loopback: two producers take turns, gossip
//! their blocks to each other, and a late joiner syncs the chain from them.

use crate::{launch, wait_for};
use alloy_primitives::{Address, B256};
use koma_node::{NetworkSettings, Node};
use koma_primitives::{ChainSpec, dev};

fn network(bootnodes: Vec<koma_network::Multiaddr>) -> Option<NetworkSettings> {
    Some(NetworkSettings {
        listen_addrs: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootnodes,
        discovery: true,
        max_peers: 10,
    })
}

fn hash_at(node: &Node, number: u64) -> Option<B256> {
    node.db.canonical_hash(number).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_take_turns_and_a_late_joiner_syncs() {
    let mut spec = ChainSpec::devnet_with_producers(2);
    spec.producers.sprint = 2;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = launch(&spec, &dirs[0], Some(0), network(vec![])).await;
    let boot = a.network.as_ref().unwrap().bootnode_addrs();
    let b = launch(&spec, &dirs[1], Some(1), network(boot.clone())).await;

    wait_for("six blocks on both producers", || {
        a.db.head().number() >= 6 && b.db.head().number() >= 6
    })
    .await;
    let c = launch(&spec, &dirs[2], None, network(boot)).await;
    wait_for("the late joiner to reach block 8", || {
        c.db.head().number() >= 8
    })
    .await;
    wait_for("all three to agree on block 8", || {
        let h = hash_at(&a, 8);
        h.is_some() && h == hash_at(&b, 8) && h == hash_at(&c, 8)
    })
    .await;

    // Sprints of two blocks: blocks 2-3 are producer 1's turn, 4-5 producer 0's
    // (`producers[i]` sealed block i + 1).
    let producers: Vec<Address> = (1..=8)
        .map(|n| {
            c.db.header_by_number(n)
                .unwrap()
                .unwrap()
                .header
                .beneficiary
        })
        .collect();
    let (p0, p1) = (
        dev::dev_producer_key(0).address(),
        dev::dev_producer_key(1).address(),
    );
    assert!(
        producers.contains(&p0) && producers.contains(&p1),
        "{producers:?}"
    );
    assert_eq!(producers[1..3], [p1, p1], "{producers:?}");
    assert_eq!(producers[3..5], [p0, p0], "{producers:?}");
    assert!(a.network.as_ref().unwrap().peers().len() >= 2);

    for node in [c, b, a] {
        node.shutdown().await.unwrap();
    }
}
