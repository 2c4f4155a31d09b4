//! Addresses of complete (perfect) subtrees.
//!
//! A stored hash is only ever needed for a subtree whose leaves are all
//! present, because such a hash never changes once the log has grown past it.
//! Those subtrees are named by `(level, index)`, the same scheme C2SP
//! tlog-tiles uses for its tile entries.

/// A complete subtree: `level` L and `index` N cover leaves `[N << L, (N + 1) << L)`.
///
/// Level 0 is a single leaf. Ordering is by level, then index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves; the subtree holds `2^level` leaves.
    pub level: u8,
    /// Position among the subtrees of the same level, counted from the left.
    pub index: u64,
}

impl NodeId {
    /// The subtree at `level` with position `index`.
    pub fn new(level: u8, index: u64) -> Self {
        NodeId { level, index }
    }

    /// Index of the first leaf covered by this subtree.
    ///
    /// Saturates at `u64::MAX` when the id lies beyond the range of `u64` leaf
    /// indices (such ids never occur in a real tree), so hostile ids cannot panic.
    pub fn first_leaf(&self) -> u64 {
        shl_saturating(self.index, self.level)
    }

    /// Index one past the last leaf covered by this subtree (exclusive end).
    ///
    /// Saturates at `u64::MAX` like [`NodeId::first_leaf`]; the only real
    /// subtree affected is one ending exactly at leaf 2^64, which no `u64`-sized
    /// tree can contain.
    pub fn end_leaf(&self) -> u64 {
        match self.index.checked_add(1) {
            Some(next) => shl_saturating(next, self.level),
            None => u64::MAX,
        }
    }
}

/// `value << shift`, or `u64::MAX` if any set bit would be shifted out.
fn shl_saturating(value: u64, shift: u8) -> u64 {
    if value == 0 {
        return 0;
    }
    if u32::from(shift) >= u64::BITS || value.leading_zeros() < u32::from(shift) {
        return u64::MAX;
    }
    value << shift
}
