//! PostgreSQL drivers: [`PgLock`], the checkpoint lock with the sequencer lease, its
//! fencing epoch, the journal of staged batches and the exact dedup rows. See
//! docs/adr/0004-scale-out.md.
//!
//! May import: the storage ports, `tiles`, and [`super::remote`].

mod lock;
mod migrations;

pub use lock::{PgLock, PgLockOptions};
