//! The POSIX drivers: the log as a C2SP tlog-tiles directory, identical to the URL space
//! so that the directory can be served as static files:
//! - `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`: [`PosixTiles`] (`tiles.rs`);
//! - `checkpoint`, replaced by renaming `checkpoint.pending` onto it: [`PosixLock`]
//!   (`lock.rs`);
//! - `DATA/lock`, beside them in the data directory: [`DataDirLock`], one writer per
//!   directory (`dir_lock.rs`).
//!
//! May import: `storage::durable` and the storage ports.

mod dir_lock;
mod lock;
mod tiles;

pub use dir_lock::{DataDirLock, LOCK_FILE};
pub use lock::PosixLock;
pub use tiles::PosixTiles;
