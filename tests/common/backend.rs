//! The storage configurations the end-to-end suite runs over (issue 11: one suite over
//! every backend, as Tessera runs one conformance binary over every driver).
//!
//! [`Backend::all`] is the POSIX data directory (the embedded default) and, when
//! `.ci/services.sh` has started them, the tiles in a radosgw bucket with the checkpoint,
//! lease and batch journal in PostgreSQL. Under `CI` a missing server is a failure, so
//! CI can never pass the suite on POSIX alone.

use std::path::Path;
use std::process::Command;

use super::services::{self, unique_prefix};
use super::Server;

/// Where a test's log lives.
#[derive(Debug, Clone)]
pub enum Backend {
    /// `serve --data DIR`: everything in the data directory.
    Posix,
    /// `serve --store s3://… --coordinator postgres://…`: the local parts (keys, blobs,
    /// records) in the data directory, the log in the bucket and the database.
    Cluster {
        /// `s3://BUCKET/PREFIX`, a prefix of its own.
        store: String,
        /// `postgres://…`.
        coordinator: String,
        /// The bucket's endpoint and credentials, for the server's environment.
        env: Vec<(&'static str, String)>,
    },
}

impl Backend {
    /// Every backend `test` runs over: POSIX, then the cluster when its servers are up.
    pub fn all(test: &str) -> Vec<Backend> {
        let mut all = vec![Backend::Posix];
        all.extend(Backend::cluster(test));
        all
    }

    /// The cluster backend on a fresh prefix, or `None` (skipped; a failure under CI).
    pub fn cluster(test: &str) -> Option<Backend> {
        let s3 = services::s3(test)?;
        let coordinator = services::postgres_url(test)?;
        Some(Backend::Cluster {
            store: format!("s3://{}/{}", s3.bucket, unique_prefix(test)),
            coordinator,
            env: s3.client_env(),
        })
    }

    /// A name for assertion messages.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Posix => "posix",
            Backend::Cluster { .. } => "s3+postgres",
        }
    }

    /// Whether the log's files are in the data directory (what `fsck --data` reads).
    pub fn is_posix(&self) -> bool {
        matches!(self, Backend::Posix)
    }

    /// `serve --data DATA --listen 127.0.0.1:0` on this backend, then `extra`.
    pub fn serve_command(&self, data: &Path, extra: &[&str]) -> Command {
        let mut command = Command::new(super::bin());
        command.args(["serve", "--data"]);
        command.arg(data);
        command.args(["--listen", "127.0.0.1:0"]);
        if let Backend::Cluster {
            store,
            coordinator,
            env,
        } = self
        {
            command.args(["--store", store, "--coordinator", coordinator]);
            for (k, v) in env {
                command.env(k, v);
            }
        }
        command.args(extra);
        command
    }

    /// Starts `serve` on this backend and waits until it listens.
    pub fn start(&self, data: &Path, extra: &[&str]) -> Server {
        Server::spawn_command(self.serve_command(data, extra), data)
    }
}
