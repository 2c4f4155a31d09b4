//! Reading a log through its C2SP tlog-tiles endpoints alone (`/tile/<L>/<N>` and
//! `/tile/entries/<N>`), so that a monitor works against a static mirror or CDN as
//! well as against the server: proofs and roots are computed here from the tiles.
//!
//! May import `http` (the client), `tiles` and `merkle`.

use std::collections::HashMap;
use std::time::Duration;

use crate::http::HttpClient;
use crate::merkle::{root_of_leaf_hashes, Hash, HashSource, NodeId};
use crate::tiles::{
    decode_bundle, hashes_of, tile_for_hash, TileId, TileKind, HASH_BYTES, TILE_HEIGHT,
};

/// Why a tile could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// No usable answer (transport error, timeout, or an error status): the server is
    /// unreachable as far as the monitor is concerned.
    #[error("{0}")]
    Unreachable(String),
    /// An answer of the wrong shape for what the checkpoint commits to.
    #[error("{0}")]
    Bad(String),
}

/// A node the fetched tiles cannot give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The node's leaf range overflows.
    #[error("node {level}/{index} is out of range")]
    OutOfRange {
        /// Merkle level.
        level: u8,
        /// Index at that level.
        index: u64,
    },
    /// The node is not in the tree of that size.
    #[error("node {level}/{index} is not in the tree of size {size}")]
    NotInTree {
        /// Merkle level.
        level: u8,
        /// Index at that level.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The tile holding it was not fetched.
    #[error("{0} was not fetched")]
    NotFetched(String),
    /// The tile holding it is too short.
    #[error("{0} is short")]
    Short(String),
}

/// GETs with a per-request timeout.
pub struct Fetcher<'a> {
    client: &'a HttpClient,
    timeout: Duration,
}

impl<'a> Fetcher<'a> {
    /// A fetcher over `client`.
    pub fn new(client: &'a HttpClient, timeout: Duration) -> Fetcher<'a> {
        Fetcher { client, timeout }
    }

    /// `GET path`: the status and body, or [`FetchError::Unreachable`].
    pub async fn get(&self, path: &str) -> Result<(u16, Vec<u8>), FetchError> {
        match tokio::time::timeout(self.timeout, self.client.get(path)).await {
            Ok(Ok(response)) => Ok((response.status.as_u16(), response.body.to_vec())),
            Ok(Err(e)) => Err(FetchError::Unreachable(e.to_string())),
            Err(_) => Err(FetchError::Unreachable(format!(
                "{}{path}: no answer within {} ms",
                self.client.base(),
                self.timeout.as_millis()
            ))),
        }
    }

    /// One tile, checked to have the shape its width says (hash count or entry count).
    pub async fn tile(&self, tile: TileId) -> Result<Vec<u8>, FetchError> {
        let path = format!("/{}", tile.path());
        let (status, body) = self.get(&path).await?;
        if status != 200 {
            return Err(FetchError::Unreachable(format!(
                "GET {path}: HTTP {status}"
            )));
        }
        let width = usize::from(tile.width);
        let ok = match tile.kind {
            TileKind::Hash(_) => body.len() == width * HASH_BYTES,
            TileKind::Entries => decode_bundle(&body).is_some_and(|e| e.len() == width),
        };
        if !ok {
            return Err(FetchError::Bad(format!(
                "{path} does not hold {width} {}",
                if tile.kind == TileKind::Entries {
                    "entries"
                } else {
                    "hashes"
                }
            )));
        }
        Ok(body)
    }

    /// Fetches every hash tile that `nodes` of the tree of `size` need.
    pub async fn hashes_for(&self, nodes: &[NodeId], size: u64) -> Result<TileHashes, FetchError> {
        let mut hashes = TileHashes {
            size,
            tiles: HashMap::new(),
        };
        for node in nodes {
            let (tile, _, _) = locate(*node, size).map_err(|e| FetchError::Bad(e.to_string()))?;
            if let std::collections::hash_map::Entry::Vacant(slot) = hashes.tiles.entry(tile) {
                slot.insert(self.tile(tile).await?);
            }
        }
        Ok(hashes)
    }
}

/// Where node `node` of the tree of `size` lives: a node at Merkle level L is the root
/// of 2^(L mod 8) consecutive hashes of tile level L / 8. Returns the tile, the offset
/// of the first hash in it and the number of hashes.
fn locate(node: NodeId, size: u64) -> Result<(TileId, usize, usize), TileError> {
    let tile_level = node.level / TILE_HEIGHT;
    let within = u32::from(node.level % TILE_HEIGHT);
    let count = 1u64 << within;
    let first = node
        .index
        .checked_shl(within)
        .filter(|f| f >> within == node.index)
        .ok_or(TileError::OutOfRange {
            level: node.level,
            index: node.index,
        })?;
    let last = first.saturating_add(count - 1);
    let tile = tile_for_hash(tile_level, last, size).ok_or(TileError::NotInTree {
        level: node.level,
        index: node.index,
        size,
    })?;
    let offset = (first % 256) as usize;
    Ok((tile, offset, count as usize))
}

/// Hash tiles fetched for one tree size, usable as a [`HashSource`] for roots and
/// consistency proofs.
pub struct TileHashes {
    size: u64,
    tiles: HashMap<TileId, Vec<u8>>,
}

impl HashSource for TileHashes {
    type Error = TileError;

    fn hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, TileError> {
        ids.iter()
            .map(|id| {
                let (tile, offset, count) = locate(*id, self.size)?;
                let data = self
                    .tiles
                    .get(&tile)
                    .ok_or_else(|| TileError::NotFetched(tile.path()))?;
                let bytes = data
                    .get(offset * HASH_BYTES..(offset + count) * HASH_BYTES)
                    .ok_or_else(|| TileError::Short(tile.path()))?;
                let leaves: Vec<Hash> = hashes_of(bytes);
                Ok(match leaves.as_slice() {
                    [one] => *one,
                    many => root_of_leaf_hashes(many),
                })
            })
            .collect()
    }
}
