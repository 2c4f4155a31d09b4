//! The model: the catalog state and the records it is made of.
//!
//! - `records`: grant, policy, revocation and publication records;
//! - `entry`: entry records, their decisions, and the fold that gives an entry's status;
//! - `store`: the [`RecordStore`](store::RecordStore) port the per-publication records sit
//!   behind, and [`MemoryStore`](store::MemoryStore);
//! - `snapshot`: the admin-side state as a snapshot carries it;
//! - `state`: [`Catalog`](state::Catalog), its read API and its one-record writes.
//!
//! Layer 2 of `catalog`: may import `error` and `wire`, never `rules`, `admit`, `apply` or
//! `read`. Inside, the order is `records` → `entry` → `store` → `snapshot` → `state`.

pub mod entry;
pub mod records;
pub mod snapshot;
pub mod state;
pub mod store;
