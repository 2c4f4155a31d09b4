//! C2SP tlog-tiles addressing: which tiles exist for a tree size, and their paths.
//!
//! Pure arithmetic, no I/O. The storage backends, the HTTP server and the clients all
//! name tiles through [`TileId`], so the on-disk layout and the URL space are the same
//! thing: `tile/<L>/<N>[.p/<W>]` for hash tiles and `tile/entries/<N>[.p/<W>]` for entry
//! bundles (tlog-tiles v0.1.0).
//!
//! A pure core: it may import only std, nothing else of this crate.

use std::fmt;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Merkle levels covered by one tile level (256 = 2^8).
pub const TILE_HEIGHT: u8 = 8;
/// Highest tile level the spec allows.
pub const MAX_TILE_LEVEL: u8 = 63;
/// Size in bytes of one hash in a hash tile.
pub const HASH_BYTES: usize = 32;
/// Largest entry an entry bundle can frame (`uint16` length).
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;

/// What a tile holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// Merkle hashes; level L holds the hashes of Merkle level 8·L.
    Hash(u8),
    /// An entry bundle: `uint16 length || entry` for each entry of level-0 tile N.
    Entries,
}

/// One tile file: a kind, an index and a width (1..=256; 256 means full).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Hash level or entry bundle.
    pub kind: TileKind,
    /// The tile's index N within its level.
    pub index: u64,
    /// Number of hashes or entries, 1..=256.
    pub width: u16,
}

impl TileId {
    /// Whether the tile holds all 256 hashes or entries.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The same tile at full width (its immutable final name).
    pub fn full(&self) -> TileId {
        TileId {
            width: TILE_WIDTH as u16,
            ..*self
        }
    }

    /// The tile's path relative to the log prefix, e.g. `tile/0/x001/234.p/5`.
    pub fn path(&self) -> String {
        let mut path = String::with_capacity(32);
        path.push_str("tile/");
        match self.kind {
            TileKind::Hash(level) => path.push_str(&level.to_string()),
            TileKind::Entries => path.push_str("entries"),
        }
        path.push('/');
        path.push_str(&index_path(self.index));
        if !self.is_full() {
            path.push_str(".p/");
            path.push_str(&self.width.to_string());
        }
        path
    }

    /// Parses a path produced by [`TileId::path`]. Strict: no leading zeros where the
    /// spec forbids them, widths 1..=255 on partials, levels 0..=63.
    pub fn parse_path(path: &str) -> Option<TileId> {
        let rest = path.strip_prefix("tile/")?;
        let (kind_part, rest) = rest.split_once('/')?;
        let kind = if kind_part == "entries" {
            TileKind::Entries
        } else {
            let level = parse_canonical_decimal(kind_part)?;
            if level > u64::from(MAX_TILE_LEVEL) {
                return None;
            }
            TileKind::Hash(level as u8)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index_part, width_part)) => {
                let width = parse_canonical_decimal(width_part)?;
                if width == 0 || width >= TILE_WIDTH {
                    return None;
                }
                (index_part, width as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let index = parse_index_path(index_part)?;
        Some(TileId { kind, index, width })
    }

    /// The first leaf index covered by this tile (entry bundles and level-0 tiles cover
    /// their own entries; level L covers 256^(L+1) leaves per tile).
    pub fn first_leaf(&self) -> Option<u64> {
        let level = match self.kind {
            TileKind::Hash(level) => level,
            TileKind::Entries => 0,
        };
        let shift = u32::from(TILE_HEIGHT) * (u32::from(level) + 1);
        if shift >= 64 {
            return if self.index == 0 { Some(0) } else { None };
        }
        self.index.checked_mul(1u64 << shift)
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Formats N as zero-padded three-digit groups, all but the last prefixed with `x`.
fn index_path(index: u64) -> String {
    let mut groups = Vec::with_capacity(7);
    let mut n = index;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let mut out = String::with_capacity(groups.len() * 5);
    for (i, group) in groups.iter().rev().enumerate() {
        if i > 0 {
            out.push('/');
        }
        if i + 1 < groups.len() {
            out.push('x');
        }
        out.push_str(&format!("{group:03}"));
    }
    out
}

fn parse_index_path(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split('/').collect();
    let mut value: u64 = 0;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let digits = if last { *part } else { part.strip_prefix('x')? };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let group: u64 = digits.parse().ok()?;
        value = value.checked_mul(1000)?.checked_add(group)?;
    }
    // The leading group must not be zero when there are several groups: `x000/001`
    // would be a second name for 1.
    if parts.len() > 1 && parts.first().is_some_and(|p| *p == "x000") {
        return None;
    }
    Some(value)
}

/// Parses ASCII decimal without sign or leading zeros ("0" alone is fine).
pub fn parse_canonical_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// The number of hashes stored at tile level `level` for a tree of `size` leaves:
/// `floor(size / 256^level)`.
pub fn stored_hashes_at_level(size: u64, level: u8) -> u64 {
    let shift = u32::from(TILE_HEIGHT) * u32::from(level);
    if shift >= 64 {
        0
    } else {
        size >> shift
    }
}

/// The tile at `level` that contains stored hash `n`, as it is in a tree of `size`
/// leaves (full, or partial with the width the tree gives it).
pub fn tile_for_hash(level: u8, n: u64, size: u64) -> Option<TileId> {
    let count = stored_hashes_at_level(size, level);
    if n >= count {
        return None;
    }
    let index = n / TILE_WIDTH;
    let width = (count - index * TILE_WIDTH).min(TILE_WIDTH) as u16;
    Some(TileId {
        kind: TileKind::Hash(level),
        index,
        width,
    })
}

/// The entry bundle holding leaf `leaf` in a tree of `size` leaves.
pub fn bundle_for_leaf(leaf: u64, size: u64) -> Option<TileId> {
    let mut tile = tile_for_hash(0, leaf, size)?;
    tile.kind = TileKind::Entries;
    Some(tile)
}

/// The entry bundles of a tree of `size` leaves, in order (full ones, then the partial
/// one if `size` is not a multiple of 256).
pub fn entry_bundles(size: u64) -> impl Iterator<Item = TileId> {
    (0..size.div_ceil(TILE_WIDTH)).filter_map(move |n| bundle_for_leaf(n * TILE_WIDTH, size))
}

/// Splits a hash tile into its hashes (a trailing partial hash is ignored; callers check
/// the tile's length against its width first).
pub fn hashes_of(tile: &[u8]) -> Vec<[u8; HASH_BYTES]> {
    tile.chunks_exact(HASH_BYTES)
        .filter_map(|c| c.try_into().ok())
        .collect()
}

/// Every partial tile (hash tiles and the entry bundle) a checkpoint of `size` needs.
pub fn partial_tiles(size: u64) -> Vec<TileId> {
    let mut out = Vec::new();
    for level in 0..=MAX_TILE_LEVEL {
        let count = stored_hashes_at_level(size, level);
        if count == 0 {
            break;
        }
        let width = count % TILE_WIDTH;
        if width != 0 {
            let tile = TileId {
                kind: TileKind::Hash(level),
                index: count / TILE_WIDTH,
                width: width as u16,
            };
            if level == 0 {
                out.push(TileId {
                    kind: TileKind::Entries,
                    ..tile
                });
            }
            out.push(tile);
        }
    }
    out
}

/// Encodes entries as a tlog-tiles entry bundle: `uint16 big-endian length || bytes`.
/// Returns `None` if an entry is longer than 65535 bytes.
pub fn encode_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for entry in entries {
        append_bundle_entry(&mut out, entry)?;
    }
    Some(out)
}

/// Appends one `uint16 length || bytes` record to a bundle under construction.
pub fn append_bundle_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Option<()> {
    let len = u16::try_from(entry.len()).ok()?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Some(())
}

/// Reads the entry at `position` of an entry bundle from `bundle`, reading only as far as
/// that entry (the ones before it are skipped, not kept): a receipt at a scattered index
/// then costs a small buffer, not its whole bundle (~420 KB at 1.6 KB an entry).
/// `Ok(None)` if the bundle ends cleanly before `position`; an error if it ends inside a
/// record (broken framing) or cannot be read.
pub fn read_bundle_entry(
    bundle: &mut impl std::io::Read,
    position: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut skipped = 0;
    loop {
        let mut len = [0u8; 2];
        match bundle.read(&mut len[..1])? {
            0 => return Ok(None),
            _ => bundle.read_exact(&mut len[1..])?,
        }
        let len = u64::from(u16::from_be_bytes(len));
        if skipped == position {
            let mut entry = vec![0u8; len as usize];
            bundle.read_exact(&mut entry)?;
            return Ok(Some(entry));
        }
        let mut rest = <&mut _ as std::io::Read>::take(&mut *bundle, len);
        let copied = std::io::copy(&mut rest, &mut std::io::sink())?;
        if copied != len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        skipped += 1;
    }
}

/// Splits an entry bundle into its entries. `None` if the framing is broken.
pub fn decode_bundle(data: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = rest.get(2..2 + len)?;
        out.push(body);
        rest = &rest[2 + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle and its entries, or `None` for broken framing.
    type Bundle = (&'static [u8], Option<Vec<&'static [u8]>>);

    fn hash_tile(level: u8, index: u64, width: u16) -> TileId {
        TileId {
            kind: TileKind::Hash(level),
            index,
            width,
        }
    }

    #[test]
    fn paths_match_the_spec_examples() {
        assert_eq!(hash_tile(0, 1234067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(hash_tile(0, 0, 256).path(), "tile/0/000");
        assert_eq!(hash_tile(1, 1000, 256).path(), "tile/1/x001/000");
        let bundle = TileId {
            kind: TileKind::Entries,
            index: 5,
            width: 17,
        };
        assert_eq!(bundle.path(), "tile/entries/005.p/17");
    }

    #[test]
    fn paths_round_trip_and_reject_non_canonical_forms() {
        for tile in [
            hash_tile(0, 1234067, 256),
            hash_tile(3, 5, 2),
            hash_tile(63, 0, 1),
        ] {
            assert_eq!(TileId::parse_path(&tile.path()), Some(tile));
        }
        for bad in [
            "tile/00/000",
            "tile/64/000",
            "tile/0/0000",
            "tile/0/x000/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/07",
            "tile/0/01",
            "tile/0/x1/000",
            "tile/entries/",
            "tiles/0/000",
            "tile/0/000/",
        ] {
            assert_eq!(TileId::parse_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn partial_tiles_follow_the_spec_example_for_70000() {
        let tiles = partial_tiles(70_000);
        assert!(tiles.contains(&hash_tile(0, 273, 112)));
        assert!(tiles.contains(&hash_tile(1, 1, 17)));
        assert!(tiles.contains(&hash_tile(2, 0, 1)));
        assert_eq!(tiles.len(), 4);
        assert_eq!(partial_tiles(256), vec![hash_tile(1, 0, 1)]);
        assert!(partial_tiles(0).is_empty());
    }

    #[test]
    fn entry_bundles_cover_the_tree_in_order() {
        let bundles: Vec<TileId> = entry_bundles(600).collect();
        assert_eq!(bundles.len(), 3);
        assert_eq!((bundles[0].index, bundles[0].width), (0, 256));
        assert_eq!((bundles[2].index, bundles[2].width), (2, 88));
        assert_eq!(entry_bundles(512).count(), 2);
        assert_eq!(entry_bundles(0).count(), 0);
        assert_eq!(hashes_of(&[7u8; 70]), vec![[7u8; 32]; 2]);
    }

    #[test]
    fn bundles_round_trip_and_reject_broken_framing() {
        let entries: Vec<&[u8]> = vec![b"", b"a", &[7u8; 300]];
        let bundle = encode_bundle(entries.iter().copied()).unwrap();
        assert_eq!(decode_bundle(&bundle).unwrap(), entries);
        assert!(decode_bundle(&bundle[..bundle.len() - 1]).is_none());
        assert!(decode_bundle(&[0]).is_none());
        assert!(encode_bundle([&vec![0u8; 65536][..]]).is_none());
    }

    #[test]
    fn one_entry_is_read_from_a_bundle_without_the_others() {
        let entries: Vec<&[u8]> = vec![b"", b"a", &[7u8; 300], b"last"];
        let bundle = encode_bundle(entries.iter().copied()).unwrap();
        let read = |bytes: &[u8], position| read_bundle_entry(&mut &bytes[..], position);
        for (position, entry) in entries.iter().enumerate() {
            assert_eq!(read(&bundle, position).unwrap().as_deref(), Some(*entry));
        }
        // (bytes, position, expected: Ok(Some), Ok(None) or Err)
        let cut = |n: usize| &bundle[..bundle.len() - n];
        type Case<'a> = (&'a [u8], usize, Result<Option<&'a [u8]>, ()>);
        let cases: [Case; 7] = [
            (&bundle, 4, Ok(None)),               // past the last entry
            (&bundle, 1000, Ok(None)),            // far past it
            (&[], 0, Ok(None)),                   // an empty bundle
            (cut(1), 3, Err(())),                 // the wanted entry is torn
            (cut(1), 2, Ok(Some(&[7u8; 300]))),   // a torn entry after it is not read
            (&bundle[..6], 2, Err(())),           // inside a length prefix
            (&bundle[..3 + 2 + 100], 3, Err(())), // inside a skipped entry
        ];
        for (i, (bytes, position, expected)) in cases.into_iter().enumerate() {
            let got = read(bytes, position).map_err(|_| ());
            assert_eq!(
                got.as_ref().map(|e| e.as_deref()).map_err(|_| ()),
                expected,
                "case {i}"
            );
        }
    }

    #[test]
    fn index_paths_at_group_edges() {
        let cases = [
            (0, "000"),
            (7, "007"),
            (999, "999"),
            (1000, "x001/000"),
            (1001, "x001/001"),
            (999_999, "x999/999"),
            (1_000_000, "x001/x000/000"),
            (u64::MAX, "x018/x446/x744/x073/x709/x551/615"),
        ];
        for (index, path) in cases {
            assert_eq!(index_path(index), path);
            assert_eq!(parse_index_path(path), Some(index), "{path}");
        }
        for bad in [
            "",
            "1",
            "0001",
            "x001",
            "001/000",
            "x001/x000",
            "x000/999",
            "x001/00a",
            "x-01/000",
            "x018/x446/x744/x073/x709/x551/616",
            "x001//000",
        ] {
            assert_eq!(parse_index_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn canonical_decimals() {
        let cases = [
            ("0", Some(0)),
            ("7", Some(7)),
            ("256", Some(256)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("", None),
            ("00", None),
            ("07", None),
            ("+7", None),
            ("-7", None),
            (" 7", None),
            ("7 ", None),
            ("1_0", None),
            ("000000000000000000001", None),
        ];
        for (text, value) in cases {
            assert_eq!(parse_canonical_decimal(text), value, "{text:?}");
        }
    }

    #[test]
    fn widths_for_a_size() {
        // (level, stored hash n, tree size) -> (tile index, width), or None if the tree
        // does not have that hash.
        let cases = [
            (0, 0, 0, None),
            (0, 0, 1, Some((0, 1))),
            (0, 255, 256, Some((0, 256))),
            (0, 256, 256, None),
            (0, 256, 257, Some((1, 1))),
            (0, 300, 600, Some((1, 256))),
            (0, 599, 600, Some((2, 88))),
            (1, 0, 255, None),
            (1, 0, 256, Some((0, 1))),
            (1, 1, 70_000, Some((0, 256))),
            (1, 272, 70_000, Some((1, 17))),
            (1, 273, 70_000, None),
            (2, 0, 70_000, Some((0, 1))),
            (2, 0, 65_535, None),
            (7, 0, u64::MAX, Some((0, 255))),
            (8, 0, u64::MAX, None),
            (63, 0, u64::MAX, None),
        ];
        for (level, n, size, expected) in cases {
            let got = tile_for_hash(level, n, size).map(|t| (t.index, t.width));
            assert_eq!(got, expected, "level {level}, hash {n}, size {size}");
        }
        let stored = [
            (0, 70_000, 70_000),
            (1, 70_000, 273),
            (2, 70_000, 1),
            (3, 70_000, 0),
            (7, u64::MAX, 255),
            (8, u64::MAX, 0),
            (63, u64::MAX, 0),
        ];
        for (level, size, count) in stored {
            assert_eq!(stored_hashes_at_level(size, level), count, "{level}/{size}");
        }
    }

    #[test]
    fn bundles_for_leaves() {
        let cases = [
            (0, 0, None),
            (0, 1, Some((0, 1))),
            (255, 256, Some((0, 256))),
            (256, 256, None),
            (599, 600, Some((2, 88))),
        ];
        for (leaf, size, expected) in cases {
            let got = bundle_for_leaf(leaf, size);
            assert!(got.is_none_or(|t| t.kind == TileKind::Entries));
            assert_eq!(got.map(|t| (t.index, t.width)), expected, "{leaf}/{size}");
        }
    }

    #[test]
    fn first_leaves() {
        let entries = |index| TileId {
            kind: TileKind::Entries,
            index,
            width: 256,
        };
        let cases = [
            (entries(0), Some(0)),
            (entries(3), Some(768)),
            (hash_tile(0, 3, 256), Some(768)),
            (hash_tile(1, 3, 256), Some(3 << 16)),
            (hash_tile(7, 0, 256), Some(0)),
            (hash_tile(7, 1, 256), None),
            (hash_tile(6, 255, 256), Some(255 << 56)),
            (hash_tile(6, 256, 256), None),
            (hash_tile(63, 0, 1), Some(0)),
        ];
        for (tile, first) in cases {
            assert_eq!(tile.first_leaf(), first, "{tile}");
        }
    }

    #[test]
    fn partial_tiles_at_boundaries() {
        let entries = |index, width| TileId {
            kind: TileKind::Entries,
            index,
            width,
        };
        let cases: [(u64, Vec<TileId>); 5] = [
            (1, vec![entries(0, 1), hash_tile(0, 0, 1)]),
            (255, vec![entries(0, 255), hash_tile(0, 0, 255)]),
            (
                257,
                vec![entries(1, 1), hash_tile(0, 1, 1), hash_tile(1, 0, 1)],
            ),
            (65_536, vec![hash_tile(2, 0, 1)]),
            (512, vec![hash_tile(1, 0, 2)]),
        ];
        for (size, tiles) in cases {
            assert_eq!(partial_tiles(size), tiles, "size {size}");
        }
    }

    #[test]
    fn bundle_framing_edges() {
        let cases: [Bundle; 7] = [
            (b"", Some(vec![])),
            (b"\x00\x00", Some(vec![b""])),
            (b"\x00\x01a\x00\x00", Some(vec![b"a", b""])),
            (b"\x00", None),
            (b"\x00\x02a", None),
            (b"\x00\x01ab", None),
            (b"\xff\xff", None),
        ];
        for (bundle, entries) in cases {
            assert_eq!(decode_bundle(bundle), entries, "{bundle:?}");
        }
        let mut out = Vec::new();
        assert_eq!(
            append_bundle_entry(&mut out, &[9u8; MAX_ENTRY_BYTES]),
            Some(())
        );
        assert_eq!(out.len(), 2 + MAX_ENTRY_BYTES);
        assert_eq!(&out[..2], b"\xff\xff");
        assert_eq!(
            append_bundle_entry(&mut out, &[9u8; MAX_ENTRY_BYTES + 1]),
            None
        );
        assert_eq!(
            out.len(),
            2 + MAX_ENTRY_BYTES,
            "a refused entry appends nothing"
        );
    }
}
