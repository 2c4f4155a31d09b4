//! The bridge from the engine's blocking ports to the async clients of the remote
//! drivers (object_store, tokio-postgres): each remote driver owns a small tokio runtime
//! and waits for its futures on a plain channel.
//!
//! A channel instead of `Runtime::block_on` because the ports are also called from
//! inside the HTTP server's runtime (tile reads in handlers), where `block_on` panics;
//! waiting on a channel only blocks the calling thread, as a POSIX read would.
//!
//! May import: the storage error only.

use std::future::Future;
use std::time::Duration;

use super::StorageError;

/// A runtime of its own for one remote driver.
#[derive(Debug)]
pub(crate) struct Remote {
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    timeout: Duration,
}

impl Remote {
    /// A runtime with `threads` workers; every call gives up after `timeout`.
    pub fn new(name: &str, threads: usize, timeout: Duration) -> Result<Remote, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|e| StorageError::io(format!("starting the {name} runtime"), e))?;
        Ok(Remote {
            runtime: Some(runtime),
            timeout,
        })
    }

    /// Runs `future` on the driver's runtime and waits for it (at most the timeout: a
    /// hung server is an I/O error, which the committer retries).
    pub fn run<T, F>(&self, what: &str, future: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = self.timeout;
        let Some(runtime) = &self.runtime else {
            return Err(StorageError::io(
                what,
                std::io::Error::other("the storage runtime stopped"),
            ));
        };
        runtime.spawn(async move {
            let result = match tokio::time::timeout(timeout, future).await {
                Ok(result) => result,
                Err(_) => Err(StorageError::io(
                    "remote storage",
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
                )),
            };
            let _ = tx.send(result);
        });
        match rx.recv() {
            Ok(result) => result.map_err(|e| match e {
                StorageError::Io { context, source } => StorageError::Io {
                    context: format!("{what}: {context}"),
                    source,
                },
                other => other,
            }),
            Err(_) => Err(StorageError::io(
                what,
                std::io::Error::other("the storage runtime stopped"),
            )),
        }
    }

    /// Spawns `future` in the background (lease renewal).
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(future);
        }
    }
}

impl Drop for Remote {
    /// Without waiting: dropping a runtime that waits for its tasks panics inside another
    /// runtime, and a driver may be dropped from the HTTP server's.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// An I/O error for a failed remote call (transient: the committer retries it).
pub(crate) fn remote_error(
    context: impl Into<String>,
    error: impl std::fmt::Display,
) -> StorageError {
    StorageError::io(context, std::io::Error::other(error.to_string()))
}
