//! Progress of long work (replay, fsck, a monitor's audit catching up), reported to a
//! process-wide sink that only the command line installs (a progress bar on a terminal,
//! periodic lines otherwise: `cli::progress`). Without a sink, as in the server and in
//! tests, a report is one atomic load.
//!
//! A global rather than a parameter so that the library's signatures stay as they are:
//! reporting progress changes nothing a caller can observe but stderr.
//!
//! Imports nothing of the crate.

use std::sync::OnceLock;

/// Receives `(task, done, total)`: `done` of `total` units (entries) of `task`.
pub type Sink = Box<dyn Fn(&'static str, u64, u64) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the process's sink; `false` if one was already installed (it stays).
pub fn install(sink: Sink) -> bool {
    SINK.set(sink).is_ok()
}

/// Reports that `done` of `total` entries of `task` are done.
pub fn report(task: &'static str, done: u64, total: u64) {
    if let Some(sink) = SINK.get() {
        sink(task, done, total);
    }
}
