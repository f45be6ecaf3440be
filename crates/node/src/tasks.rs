//! Supervision of the node's long-lived tasks.
//!
//! Every long-lived task (producer, chain sync, gossip event loop and its import and
//! pool workers, transaction broadcaster, KoMaBFT, the RPC server) is *critical*: if
//! it panics, or returns while the node is not stopping, the node reports one line
//! naming the task and why ([`Node::failed`](crate::Node::failed)), and the binary
//! stops with a non-zero exit code. A node never goes on half-alive, answering RPC
//! while it no longer syncs, finalizes or gossips. (Restarting a task in place would
//! need its state rebuilt from storage, which is exactly what restarting the process
//! does; an operator's supervisor, e.g. systemd, does that.)
//!
//! Short-lived tasks (answering one peer request, fetching one batch) are not
//! supervised: their failure costs one answer, and the long-lived task that spawned
//! them retries.

use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Spawns critical tasks; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct TaskSpawner {
    failures: mpsc::UnboundedSender<String>,
    stop: watch::Receiver<bool>,
}

impl TaskSpawner {
    /// A spawner, and the receiver of failure reports.
    pub fn new(stop: watch::Receiver<bool>) -> (Self, mpsc::UnboundedReceiver<String>) {
        let (failures, rx) = mpsc::unbounded_channel();
        (Self { failures, stop }, rx)
    }

    /// Spawns `task`; its panic, or its return before the node stops, is reported
    /// as a failure of the node.
    pub fn critical(
        &self,
        name: &'static str,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let failures = self.failures.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let outcome = AssertUnwindSafe(task).catch_unwind().await;
            if *stop.borrow() {
                return;
            }
            let why = match outcome {
                Ok(()) => "stopped unexpectedly".to_string(),
                Err(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
            };
            tracing::error!(task = name, "critical task {why}");
            let _ = failures.send(format!("critical task `{name}` {why}"));
        })
    }
}

/// The message of a panic payload (`panic!` with a literal or a formatted string).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn next_failure(rx: &mut mpsc::UnboundedReceiver<String>) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn a_panic_is_reported_with_its_message() {
        let (_stop_tx, stop) = watch::channel(false);
        let (spawner, mut rx) = TaskSpawner::new(stop);
        spawner.critical("sync", async {
            let peer_value: u64 = std::hint::black_box(u64::MAX);
            let _ = peer_value.checked_add(1).expect("gas overflow");
        });
        let failure = next_failure(&mut rx).await.expect("a failure report");
        assert!(failure.contains("`sync` panicked"), "{failure}");
        assert!(failure.contains("gas overflow"), "{failure}");
    }

    #[tokio::test]
    async fn an_early_return_is_a_failure() {
        let (_stop_tx, stop) = watch::channel(false);
        let (spawner, mut rx) = TaskSpawner::new(stop);
        spawner.critical("gossip", async {});
        let failure = next_failure(&mut rx).await.expect("a failure report");
        assert_eq!(failure, "critical task `gossip` stopped unexpectedly");
    }

    #[tokio::test]
    async fn returning_while_the_node_stops_is_not_a_failure() {
        let (stop_tx, stop) = watch::channel(false);
        let (spawner, mut rx) = TaskSpawner::new(stop.clone());
        let mut stop_seen = stop;
        let task = spawner.critical("producer", async move {
            let _ = stop_seen.changed().await;
        });
        stop_tx.send(true).expect("receivers alive");
        task.await.expect("task ends");
        drop(spawner);
        assert_eq!(rx.recv().await, None);
    }
}
