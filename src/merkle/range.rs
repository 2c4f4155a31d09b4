//! Splitting a leaf range into complete subtrees, and folding their hashes.
//!
//! Every hash the RFC algorithms need (a root, a proof element, the right edge
//! of a growing tree) is `MTH` of a leaf range that starts on a boundary at
//! least as large as the range. Such a range is a run of complete subtrees of
//! decreasing size, so it can be rebuilt from O(log n) stored hashes.

use super::hash::{empty_root, node_hash, Hash};
use super::node::NodeId;

/// The decomposition of leaf range `[begin, end)` into maximal complete subtrees,
/// left to right (e.g. `[0, 7)` gives `(2,0), (1,2), (0,6)`).
///
/// Each step takes the largest subtree that starts at `begin` (limited by the
/// alignment of `begin`) and still fits before `end`. Returns an empty list
/// when `begin >= end`. At most 2 × 64 nodes are returned.
pub fn range_nodes(begin: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    let mut begin = begin;
    while begin < end {
        // Largest level allowed by the alignment of `begin` (0 is aligned to everything).
        let align = begin.trailing_zeros();
        // Largest level that still fits in what is left of the range.
        let fit = floor_log2(end - begin);
        let level = align.min(fit);
        // `level <= 63` because `fit <= 63`, so the casts and the shift are exact,
        // and `begin + 2^level <= end` cannot overflow.
        nodes.push(NodeId::new(level as u8, begin >> level));
        begin += 1u64 << level;
    }
    nodes
}

/// Folds the hashes of `range_nodes(begin, end)` right to left into `MTH(D[begin:end])`.
///
/// This equals the RFC tree hash whenever `begin` is a multiple of the smallest
/// power of two `>= end - begin`; that holds for `begin == 0` and for every
/// range that occurs in an RFC 9162 inclusion or consistency proof. An empty
/// slice gives [`empty_root`].
pub fn fold_range(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return empty_root();
    };
    // The rightmost (smallest) subtree is the right child of every merge.
    iter.fold(*last, |right, left| node_hash(left, &right))
}

/// `floor(log2(n))` for `n >= 1` (0 for `n == 0`, never used that way).
pub(crate) fn floor_log2(n: u64) -> u32 {
    (u64::BITS - 1).saturating_sub(n.leading_zeros())
}

/// The largest power of two strictly below `n`, for `n >= 2` (the RFC's `k`).
pub(crate) fn split_point(n: u64) -> u64 {
    // n - 1 >= 1, so the shift amount is at most 63.
    1u64 << floor_log2(n.saturating_sub(1))
}
