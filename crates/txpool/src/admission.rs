//! Admission at background priority: transactions from RPC clients and from peers are
//! validated (decoding, signature recovery, account reads, the pool insert) on a few
//! dedicated threads that run at a lowered OS scheduling priority.
//!
//! Admission is the one CPU-heavy job whose volume outsiders choose. When it shares
//! the CPU with block production, block import and KoMaBFT at equal priority, a burst
//! of transactions delays the import of the very blocks that would include them, and
//! with it finality (on the 4-node devnet under a 60,000-transfer load, p99 8.3 s from
//! announcement to final). On threads with a higher `nice` value the kernel runs the
//! node's critical work first and admission takes the rest: under load the pool fills
//! more slowly (RPC callers wait on the bounded queue, which is the backpressure they
//! should feel) while blocks keep their pace. On an idle machine a lowered priority
//! costs nothing: the threads get every cycle nobody else wants.
//!
//! The priority is per thread (`setpriority(PRIO_PROCESS, tid)`, Linux only; elsewhere
//! the threads run at the process's priority). Raising `nice` needs no privilege.

use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How admission runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Validation threads. Default: the number of CPUs (at least 1).
    pub threads: usize,
    /// How many `nice` levels below the node's other threads they run (added to the
    /// nice value they inherit, at most 19; 0 = the same priority). Default: 10, which
    /// under Linux's fair scheduler gives a runnable thread about a tenth of the weight
    /// of one at the base priority.
    pub nice: i32,
    /// Jobs waiting for a thread; a caller beyond this waits for room. Default: 1024.
    pub queue: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            nice: 10,
            queue: 1024,
        }
    }
}

/// The admission stopped (its threads are gone); only during shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("transaction admission has stopped")]
pub struct AdmissionStopped;

/// Runs admission jobs on the background threads; cheap to clone. The threads end
/// when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Admission {
    jobs: mpsc::Sender<Job>,
}

impl Admission {
    /// Starts `config.threads` threads named `tx-admission-N`.
    pub fn start(config: &AdmissionConfig) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>(config.queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..config.threads.max(1) {
            let queue = Arc::clone(&queue);
            let nice = config.nice;
            std::thread::Builder::new()
                .name(format!("tx-admission-{i}"))
                .spawn(move || worker(&queue, nice))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `job` on an admission thread and returns its result. Waits while the queue
    /// is full.
    pub async fn run<R, F>(&self, job: F) -> Result<R, AdmissionStopped>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(job());
        });
        self.jobs.send(job).await.map_err(|_| AdmissionStopped)?;
        // A job that panicked drops `reply`: the caller sees the admission as stopped
        // for this request, the thread itself lives on.
        answer.await.map_err(|_| AdmissionStopped)
    }
}

fn worker(queue: &Mutex<mpsc::Receiver<Job>>, nice: i32) {
    lower_priority(nice);
    loop {
        // One thread waits on the channel while holding the lock; the others wait for
        // the lock. A job runs without it.
        let job = queue.lock().blocking_recv();
        let Some(job) = job else { return };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            tracing::error!("a transaction admission job panicked");
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    let tid = rustix::thread::gettid();
    let base = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    let target = base.saturating_add(nice).clamp(-20, 19);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), target) {
        tracing::warn!(nice, error = %e, "cannot lower the admission thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(nice: i32) {
    if nice != 0 {
        tracing::debug!(nice, "thread priorities are only set on Linux");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_on_named_low_priority_threads() {
        let base = own_nice();
        let admission = Admission::start(&AdmissionConfig {
            threads: 2,
            nice: 7,
            queue: 4,
        })
        .unwrap();
        // more jobs at once than threads and queue slots: callers wait for room
        let jobs: Vec<_> = (0..32usize)
            .map(|i| {
                let admission = admission.clone();
                tokio::spawn(async move {
                    admission
                        .run(move || {
                            let name = std::thread::current().name().map(str::to_owned);
                            (i * 2, name, own_nice())
                        })
                        .await
                })
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            let (double, name, nice) = job.await.unwrap().unwrap();
            assert_eq!(double, i * 2);
            let name = name.unwrap();
            assert!(name.starts_with("tx-admission-"), "{name}");
            if let Some(base) = base {
                assert_eq!(
                    nice,
                    Some((base + 7).min(19)),
                    "job {i} ran at the wrong priority"
                );
            }
        }
        // the caller's own thread keeps its priority
        assert_eq!(own_nice(), base);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let admission = Admission::start(&AdmissionConfig {
            threads: 1,
            nice: 0,
            queue: 1,
        })
        .unwrap();
        let failed = admission.run(|| -> u8 { panic!("bad job") }).await;
        assert_eq!(failed, Err(AdmissionStopped));
        // the one thread survived and takes the next job
        assert_eq!(admission.run(|| 5u8).await, Ok(5));
    }

    /// The calling thread's nice value, read from the kernel.
    fn own_nice() -> Option<i32> {
        #[cfg(target_os = "linux")]
        {
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}
