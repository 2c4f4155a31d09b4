//! The threads expensive catalog reads run on (a state digest at a fresh size, the
//! browser's pages): a fixed few, at a lower CPU priority than the rest of the server.
//!
//! Why not tokio's blocking pool: its threads are shared with every other blocking call
//! and are many, so a burst of anonymous readers could take every core from the
//! sequencer and the handlers. Here the reads get at most `threads` cores, and since
//! those threads are `nice` 10 the scheduler gives a publication's work about nine times
//! their share of a contended core (issue 10: expensive reads may not stall writes).

use std::sync::mpsc;
use std::sync::Mutex;

/// Nice value of the read threads (0 is the server's; 19 the lowest priority).
pub const READ_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of low-priority threads that run submitted reads in order.
pub struct ReadPool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// The pool's threads have stopped (only when it is being dropped).
#[derive(Debug, thiserror::Error)]
#[error("the catalog read threads have stopped")]
pub struct PoolStopped;

impl ReadPool {
    /// Starts `threads` (at least one) read threads; they stop when the pool is dropped.
    pub fn new(threads: usize) -> ReadPool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("catalog-read-{n}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start a catalog read thread");
            }
        }
        ReadPool {
            jobs: Mutex::new(tx),
        }
    }

    /// Runs `read` on a read thread; its answer arrives when it is done.
    pub async fn run<R: Send + 'static>(
        &self,
        read: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PoolStopped> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(read());
        });
        self.jobs
            .lock()
            .map_err(|_| PoolStopped)?
            .send(job)
            .map_err(|_| PoolStopped)?;
        rx.await.map_err(|_| PoolStopped)
    }
}

/// Lowers the calling thread's CPU priority to [`READ_NICE`] (Linux: a nice value is
/// per thread). Best effort: a failure leaves the thread at the server's priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), READ_NICE)
    {
        tracing::debug!(error = %e, "could not lower the catalog read thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::{ReadPool, READ_NICE};

    #[tokio::test]
    async fn reads_run_on_the_pool_at_a_lower_priority() {
        let pool = ReadPool::new(1);
        let (name, nice) = pool
            .run(|| {
                let name = std::thread::current().name().map(str::to_string);
                let nice =
                    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
                (name, nice)
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("catalog-read-0"));
        assert_eq!(nice, READ_NICE);
        // Answers come back in order, and the pool keeps serving.
        for i in 0..10 {
            assert_eq!(pool.run(move || i * 2).await.unwrap(), i * 2);
        }
    }
}
