//! Object storage drivers (S3 and any S3-compatible store, through the `object_store`
//! crate): [`ObjectTiles`], the tile store on a bucket. See docs/adr/0004-scale-out.md.
//!
//! May import: the storage ports, `tiles`, and [`super::remote`].

mod config;
mod tiles;

pub use config::{ObjectStoreConfig, StoreUrl};
pub(crate) use tiles::connect;
pub use tiles::{ObjectTiles, OverwriteProbe};
