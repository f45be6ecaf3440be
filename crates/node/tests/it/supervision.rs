//! A node whose critical task dies reports it (the binary then exits non-zero) instead
//! of lingering, and what it had committed survives the stop.

use crate::{launch, wait_for};
use koma_node::Node;
use koma_primitives::ChainSpec;
use std::time::Duration;

async fn wait_for_block(node: &Node, number: u64) {
    wait_for(&format!("block {number}"), || {
        node.db.head().number() >= number
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dying_critical_task_is_reported_and_nothing_committed_is_lost() {
    let spec = ChainSpec::devnet_with_producers(1);
    let dir = tempfile::tempdir().unwrap();
    let mut node = launch(&spec, &dir, Some(0), None).await;
    wait_for_block(&node, 2).await;

    // No failure while every task is healthy.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), node.failed())
            .await
            .is_err(),
        "a healthy node reported a failure"
    );

    node.spawn_critical("injected", async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        panic!("fault injected by the test");
    });
    let failure = tokio::time::timeout(Duration::from_secs(10), node.failed())
        .await
        .expect("the panic was not reported");
    assert_eq!(
        failure,
        "critical task `injected` panicked: fault injected by the test"
    );
    let head = node.db.head();
    node.shutdown().await.unwrap();

    let node = launch(&spec, &dir, Some(0), None).await;
    let reloaded = node.db.head();
    assert!(
        reloaded.number() >= head.number(),
        "{reloaded:?} < {head:?}"
    );
    assert_eq!(
        node.db.canonical_hash(head.number()).unwrap(),
        Some(head.hash)
    );
    // And it produces again.
    wait_for_block(&node, reloaded.number() + 2).await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_task_that_returns_early_is_a_failure() {
    let spec = ChainSpec::devnet_with_producers(1);
    let dir = tempfile::tempdir().unwrap();
    let mut node = launch(&spec, &dir, Some(0), None).await;
    node.spawn_critical("short-lived", async {});
    let failure = tokio::time::timeout(Duration::from_secs(10), node.failed())
        .await
        .expect("the early return was not reported");
    assert_eq!(failure, "critical task `short-lived` stopped unexpectedly");
    node.shutdown().await.unwrap();
}
