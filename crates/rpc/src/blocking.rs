//! The bounded pool that runs storage- and CPU-heavy RPC handlers off the async
//! workers (as reth's `spawn_blocking_io` / `BlockingTaskGuard` do).
//!
//! A handler that reads storage or runs the EVM would otherwise occupy one of the few
//! tokio workers (2 on a 2-core machine) for as long as it runs, and the block
//! producer, block import, gossip and the KoMaBFT timers run on those same workers. So
//! every such handler runs on a blocking thread, and only after it holds a permit:
//!
//! - [`Work::Io`]: at most `max_blocking_tasks` at once;
//! - [`Work::Evm`]: additionally at most `max_evm_tasks` at once (`eth_call`,
//!   `eth_estimateGas`), so executions cannot take every slot from cheaper reads.
//!
//! Requests waiting for a permit hold memory (their decoded parameters), so at most
//! `max_queued_tasks` may wait; more are refused at once with -32005 `server busy`.
//! Waiting is FIFO (tokio's semaphore is fair). A request whose client goes away
//! while waiting leaves the queue; one already running finishes and frees its permit.

use crate::error::{self, internal};
use crate::state::ApiConfig;
use jsonrpsee::core::RpcResult;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

/// What a blocking handler does, for the permits it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Storage reads and the CPU work on their results.
    Io,
    /// EVM execution (`eth_call`, `eth_estimateGas`).
    Evm,
}

/// Permits for blocking handlers; cheap to clone (all clones share the permits).
#[derive(Debug, Clone)]
pub struct BlockingPool {
    io: Arc<Semaphore>,
    evm: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    max_queued: usize,
}

/// Counts one waiting request for as long as it lives.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl BlockingPool {
    pub fn new(config: &ApiConfig) -> Self {
        Self {
            io: Arc::new(Semaphore::new(config.max_blocking_tasks.max(1))),
            evm: Arc::new(Semaphore::new(config.max_evm_tasks.max(1))),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued: config.max_queued_tasks,
        }
    }

    fn enqueue(&self) -> RpcResult<Queued<'_>> {
        let before = self.queued.fetch_add(1, Ordering::AcqRel);
        let guard = Queued(&self.queued);
        if before >= self.max_queued {
            drop(guard);
            return Err(error::limit("server busy: too many requests queued"));
        }
        Ok(guard)
    }

    /// Runs `f` on a blocking thread once a permit for `work` is free.
    pub async fn run<R, F>(&self, work: Work, f: F) -> RpcResult<R>
    where
        F: FnOnce() -> RpcResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let (evm, io) = {
            let _queued = self.enqueue()?;
            let evm = match work {
                Work::Evm => Some(
                    self.evm
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| internal("blocking pool closed"))?,
                ),
                Work::Io => None,
            };
            let io = self
                .io
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| internal("blocking pool closed"))?;
            (evm, io)
        };
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            let _permits = (io, evm);
            span.in_scope(f)
        });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(internal("request handler panicked")),
            Err(e) => Err(internal(e)),
        }
    }

    /// Requests waiting for a permit now.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn pool(io: usize, evm: usize, queued: usize) -> BlockingPool {
        BlockingPool::new(&ApiConfig {
            max_blocking_tasks: io,
            max_evm_tasks: evm,
            max_queued_tasks: queued,
            ..ApiConfig::default()
        })
    }

    /// Runs `n` jobs of `work` at once and returns the most that ran concurrently.
    async fn peak(pool: &BlockingPool, work: Work, n: usize) -> usize {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..n).map(|_| {
            let (running, peak) = (running.clone(), peak.clone());
            pool.run(work, move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        });
        for r in futures::future::join_all(jobs).await {
            r.unwrap();
        }
        peak.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrency_is_bounded_per_kind() {
        let p = pool(3, 1, 1_000);
        assert_eq!(peak(&p, Work::Io, 12).await, 3);
        assert_eq!(peak(&p, Work::Evm, 6).await, 1);
        assert_eq!(p.queued(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let p = pool(1, 1, 2);
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(parking_lot::Mutex::new(gate));
        // One running (holds the only permit), two waiting: the queue is full.
        let mut held = Vec::new();
        for _ in 0..3 {
            let (p, gate) = (p.clone(), gate.clone());
            held.push(tokio::spawn(async move {
                p.run(Work::Io, move || {
                    let _ = gate.lock().recv();
                    Ok(())
                })
                .await
            }));
        }
        while p.queued() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let err = p.run(Work::Io, || Ok(())).await.unwrap_err();
        assert_eq!(err.code(), error::LIMIT_EXCEEDED);
        assert_eq!(err.message(), "server busy: too many requests queued");
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for h in held {
            h.await.unwrap().unwrap();
        }
        assert_eq!(p.queued(), 0);
        p.run(Work::Io, || Ok(())).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_handler_is_an_internal_error() {
        let p = pool(1, 1, 10);
        let err = p
            .run::<(), _>(Work::Io, || panic!("boom"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), error::INTERNAL_ERROR);
        // The permit came back.
        p.run(Work::Io, || Ok(())).await.unwrap();
    }
}
