//! PostgreSQL drivers: [`PgLock`], the checkpoint lock with the sequencer lease, its
//! fencing epoch, the journal of staged batches and the exact dedup rows; [`PgObserver`],
//! a frontend's read-only view of the same row (head and lease holder). See
//! docs/adr/0004-scale-out.md.
//!
//! May import: the storage ports, `tiles`, and [`super::remote`].

mod lock;
mod migrations;
mod observer;

pub use lock::{PgLock, PgLockOptions};
pub use observer::{LeaseHolder, PgObserver};
