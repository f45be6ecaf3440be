//! The node's integration tests, in one test binary: each file of its own would link
//! (and monomorphize) the whole node again, which cost about 35 s of build per file.

mod import;
mod network;
mod supervision;

use koma_node::{NetworkSettings, Node, NodeConfig};
use koma_primitives::{ChainSpec, dev};
use koma_rpc::{ApiConfig, ServerSettings};
use std::time::Duration;

/// Launches a node of `spec` in `dir` with RPC on a free loopback port: producer and
/// staker `producer` (a dev key index) or a follower, with `network` or alone.
pub async fn launch(
    spec: &ChainSpec,
    dir: &tempfile::TempDir,
    producer: Option<u32>,
    network: Option<NetworkSettings>,
) -> Node {
    Node::launch(NodeConfig {
        spec: spec.clone(),
        datadir: dir.path().to_path_buf(),
        rpc: ServerSettings {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
        api: ApiConfig::default(),
        producer_key: producer.map(dev::dev_producer_key),
        equivocate: false,
        forge_deposits: koma_node::ForgeDeposits::No,
        double_seal: false,
        staker_key: producer.map(dev::dev_producer_key),
        pool: None,
        admission: Default::default(),
        max_reorg_depth: 64,
        network,
        checkpoint: None,
    })
    .await
    .unwrap()
}

/// Waits up to 40 s for `done`.
pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
