//! The sparse Merkle tree itself: a persistent binary trie over 256-bit key hashes in
//! which a subtree holding one key is that key's leaf (no chain of empty siblings down
//! to depth 256), an empty subtree is [`empty_hash`], and any other subtree is the node
//! hash of its two halves (`log-format/state.md` §2).
//!
//! Persistent: an update copies only the O(log n) nodes on its path and shares the rest,
//! so a snapshot of the tree at a committed size is a clone of its root (one reference
//! count), and proofs for old sizes are served from the snapshot.

use std::sync::Arc;

use super::hash::{bit, empty_hash, leaf_hash, node_hash, value_hash};
use super::proof::Proof;
use crate::merkle::Hash;

/// One key and its value.
#[derive(Debug)]
struct LeafData {
    key: Hash,
    value: Arc<[u8]>,
    value_hash: Hash,
    hash: Hash,
}

/// An interior node: two keys or more below it.
#[derive(Debug)]
struct Inner {
    hash: Hash,
    left: Option<Node>,
    right: Option<Node>,
}

#[derive(Clone, Debug)]
enum Node {
    Leaf(Arc<LeafData>),
    Inner(Arc<Inner>),
}

impl Node {
    fn hash(&self) -> &Hash {
        match self {
            Node::Leaf(l) => &l.hash,
            Node::Inner(n) => &n.hash,
        }
    }
}

fn hash_of(node: &Option<Node>) -> Hash {
    node.as_ref().map_or_else(empty_hash, |n| *n.hash())
}

fn inner(left: Option<Node>, right: Option<Node>) -> Node {
    let hash = node_hash(&hash_of(&left), &hash_of(&right));
    Node::Inner(Arc::new(Inner { hash, left, right }))
}

/// An authenticated map from 256-bit key hashes to byte values. Cloning is O(1) and the
/// clone is an immutable snapshot: later updates of either copy do not show in the other.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    root: Option<Node>,
    len: usize,
}

impl Tree {
    /// The empty map.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root hash ([`empty_hash`] for the empty map).
    pub fn root(&self) -> Hash {
        hash_of(&self.root)
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &Hash) -> Option<&Arc<[u8]>> {
        let mut node = self.root.as_ref();
        let mut depth = 0;
        while let Some(n) = node {
            match n {
                Node::Leaf(l) => return (l.key == *key).then_some(&l.value),
                Node::Inner(i) => {
                    node = if bit(key, depth) {
                        i.right.as_ref()
                    } else {
                        i.left.as_ref()
                    };
                    depth += 1;
                }
            }
        }
        None
    }

    /// Sets `key` to `value`, or removes it when `value` is `None`.
    pub fn set(&mut self, key: Hash, value: Option<Arc<[u8]>>) {
        match value {
            Some(value) => {
                let leaf = new_leaf(key, value);
                let (root, added) = insert(self.root.as_ref(), 0, leaf);
                self.root = Some(root);
                self.len += usize::from(added);
            }
            None => {
                let (root, removed) = remove(self.root.as_ref(), 0, &key);
                self.root = root;
                self.len -= usize::from(removed);
            }
        }
    }

    /// Applies many updates at once (`None` removes the key; of two updates of one key
    /// the later wins): the same tree as calling [`Tree::set`] for each in order, but
    /// every node on the updated paths is built and hashed once, not once per update.
    /// A batch of `b` updates in a map of `n` keys hashes about `b·(log2 n − log2 b)`
    /// nodes instead of `b·log2 n`, and makes no intermediate nodes to free again.
    pub fn set_many(&mut self, updates: impl IntoIterator<Item = (Hash, Option<Arc<[u8]>>)>) {
        // Sorted by key and one update per key (the last given): what `update` relies on
        // to split them. Reversed, then sorted stably, the last update of a key comes
        // first among its equals, and `dedup` keeps the first.
        let mut sorted: Vec<(Hash, Option<Arc<[u8]>>)> = updates.into_iter().collect();
        if sorted.is_empty() {
            return;
        }
        sorted.reverse();
        sorted.sort_by_key(|a| a.0);
        sorted.dedup_by(|later, first| later.0 == first.0);
        let ups: Vec<Update> = sorted
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => Update::Put(new_leaf(key, value)),
                None => Update::Remove(key),
            })
            .collect();
        let (root, delta) = update(self.root.as_ref(), 0, &ups);
        self.root = root;
        self.len = self.len.saturating_add_signed(delta);
    }

    /// The proof for `key`: of its value if present, of its absence otherwise.
    pub fn prove(&self, key: &Hash) -> Proof {
        let mut siblings = Vec::new();
        let mut node = self.root.as_ref();
        let mut depth = 0;
        loop {
            match node {
                None => {
                    return Proof {
                        siblings,
                        terminal: None,
                    }
                }
                Some(Node::Leaf(l)) => {
                    return Proof {
                        siblings,
                        terminal: Some((l.key, l.value_hash)),
                    }
                }
                Some(Node::Inner(i)) => {
                    let (next, other) = if bit(key, depth) {
                        (&i.right, &i.left)
                    } else {
                        (&i.left, &i.right)
                    };
                    siblings.push(hash_of(other));
                    node = next.as_ref();
                    depth += 1;
                }
            }
        }
    }
}

/// The leaf for `key` and `value`, its hashes computed.
fn new_leaf(key: Hash, value: Arc<[u8]>) -> Arc<LeafData> {
    let vh = value_hash(&value);
    Arc::new(LeafData {
        key,
        hash: leaf_hash(&key, &vh),
        value_hash: vh,
        value,
    })
}

/// One update of [`Tree::set_many`].
enum Update {
    Put(Arc<LeafData>),
    Remove(Hash),
}

impl Update {
    fn key(&self) -> &Hash {
        match self {
            Update::Put(l) => &l.key,
            Update::Remove(k) => k,
        }
    }
}

/// The subtree at `depth` that `node` becomes after `ups` (sorted by key, one per key,
/// all sharing the `depth` bits of the path to `node`), and the change in the number of
/// keys. Untouched subtrees are shared; each changed node is built once.
fn update(node: Option<&Node>, depth: usize, ups: &[Update]) -> (Option<Node>, isize) {
    if ups.is_empty() {
        return (node.cloned(), 0);
    }
    match node {
        None => build(depth, ups),
        Some(Node::Leaf(old)) => {
            // The old leaf joins the updates unless one of them is for its key.
            match ups.binary_search_by(|u| u.key().cmp(&old.key)) {
                Ok(_) => {
                    // The old key is replaced or removed; either way it was counted
                    // before and `build` counts only what is there after.
                    let (node, delta) = build(depth, ups);
                    (node, delta - 1)
                }
                Err(i) => {
                    let mut merged: Vec<Update> = Vec::with_capacity(ups.len() + 1);
                    merged.extend(ups[..i].iter().map(Update::share));
                    merged.push(Update::Put(old.clone()));
                    merged.extend(ups[i..].iter().map(Update::share));
                    let (node, delta) = build(depth, &merged);
                    (node, delta - 1)
                }
            }
        }
        Some(Node::Inner(i)) => {
            let split = ups.partition_point(|u| !bit(u.key(), depth));
            let (left, dl) = update(i.left.as_ref(), depth + 1, &ups[..split]);
            let (right, dr) = update(i.right.as_ref(), depth + 1, &ups[split..]);
            (join(left, right), dl + dr)
        }
    }
}

impl Update {
    fn share(&self) -> Update {
        match self {
            Update::Put(l) => Update::Put(l.clone()),
            Update::Remove(k) => Update::Remove(*k),
        }
    }
}

/// The subtree at `depth` holding exactly the puts of `ups` (an empty subtree before),
/// and how many keys it holds.
fn build(depth: usize, ups: &[Update]) -> (Option<Node>, isize) {
    let mut puts = ups.iter().filter_map(|u| match u {
        Update::Put(l) => Some(l),
        Update::Remove(_) => None,
    });
    let first = puts.next();
    match (first, puts.next()) {
        (None, _) => (None, 0),
        (Some(only), None) => (Some(Node::Leaf(only.clone())), 1),
        _ => {
            let split = ups.partition_point(|u| !bit(u.key(), depth));
            let (left, dl) = build(depth + 1, &ups[..split]);
            let (right, dr) = build(depth + 1, &ups[split..]);
            (join(left, right), dl + dr)
        }
    }
}

/// The node over two halves, kept canonical: an empty pair is empty, and a single leaf
/// with an empty sibling is that leaf (it moves up); anything else is an inner node.
fn join(left: Option<Node>, right: Option<Node>) -> Option<Node> {
    match (left, right) {
        (None, None) => None,
        (Some(l @ Node::Leaf(_)), None) => Some(l),
        (None, Some(r @ Node::Leaf(_))) => Some(r),
        (left, right) => Some(inner(left, right)),
    }
}

/// Inserts `leaf` below `node` (at `depth`); true if the key was not there before.
fn insert(node: Option<&Node>, depth: usize, leaf: Arc<LeafData>) -> (Node, bool) {
    match node {
        None => (Node::Leaf(leaf), true),
        Some(Node::Leaf(old)) if old.key == leaf.key => (Node::Leaf(leaf), false),
        Some(Node::Leaf(old)) => (split(depth, Node::Leaf(old.clone()), leaf), true),
        Some(Node::Inner(i)) => {
            if bit(&leaf.key, depth) {
                let (right, added) = insert(i.right.as_ref(), depth + 1, leaf);
                (inner(i.left.clone(), Some(right)), added)
            } else {
                let (left, added) = insert(i.left.as_ref(), depth + 1, leaf);
                (inner(Some(left), i.right.clone()), added)
            }
        }
    }
}

/// The subtree at `depth` holding the existing leaf `old` and the new `leaf` (distinct
/// keys, so they part at some depth below 256).
fn split(depth: usize, old: Node, leaf: Arc<LeafData>) -> Node {
    let old_key = match &old {
        Node::Leaf(l) => l.key,
        Node::Inner(_) => unreachable!("split is only called on a leaf"),
    };
    let (a, b) = (bit(&old_key, depth), bit(&leaf.key, depth));
    if a == b {
        let below = split(depth + 1, old, leaf);
        if a {
            inner(None, Some(below))
        } else {
            inner(Some(below), None)
        }
    } else if b {
        inner(Some(old), Some(Node::Leaf(leaf)))
    } else {
        inner(Some(Node::Leaf(leaf)), Some(old))
    }
}

/// Removes `key` below `node`; a subtree left with one leaf becomes that leaf, so the
/// tree stays the canonical one for its set of keys. True if the key was there.
fn remove(node: Option<&Node>, depth: usize, key: &Hash) -> (Option<Node>, bool) {
    match node {
        None => (None, false),
        Some(Node::Leaf(l)) if l.key == *key => (None, true),
        Some(n @ Node::Leaf(_)) => (Some(n.clone()), false),
        Some(n @ Node::Inner(i)) => {
            let right_side = bit(key, depth);
            let (child, other) = if right_side {
                (i.right.as_ref(), i.left.clone())
            } else {
                (i.left.as_ref(), i.right.clone())
            };
            let (child, removed) = remove(child, depth + 1, key);
            if !removed {
                return (Some(n.clone()), false);
            }
            let node = match (child, other) {
                (None, None) => None,
                (Some(c @ Node::Leaf(_)), None) | (None, Some(c @ Node::Leaf(_))) => Some(c),
                (child, other) if right_side => Some(inner(other, child)),
                (child, other) => Some(inner(child, other)),
            };
            (node, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::hash::key_hash;

    fn v(s: &str) -> Option<Arc<[u8]>> {
        Some(Arc::from(s.as_bytes()))
    }

    #[test]
    fn empty_and_single() {
        let mut t = Tree::new();
        assert_eq!(t.root(), empty_hash());
        let k = key_hash(b"a");
        t.set(k, v("1"));
        assert_eq!(t.root(), leaf_hash(&k, &value_hash(b"1")));
        assert_eq!(t.len(), 1);
        t.set(k, None);
        assert_eq!(t.root(), empty_hash());
        assert!(t.is_empty());
    }

    #[test]
    fn two_keys_by_definition() {
        // Keys whose hashes part at bit 0 and at a deeper bit.
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        b[0] = 0x80;
        let mut t = Tree::new();
        t.set(a, v("x"));
        t.set(b, v("y"));
        let (la, lb) = (
            leaf_hash(&a, &value_hash(b"x")),
            leaf_hash(&b, &value_hash(b"y")),
        );
        assert_eq!(t.root(), node_hash(&la, &lb));
        // Part at bit 2: two inner nodes with an empty sibling each, above the pair.
        a[0] = 0x00;
        b[0] = 0x20;
        let mut t = Tree::new();
        t.set(b, v("y"));
        t.set(a, v("x"));
        let (la, lb) = (
            leaf_hash(&a, &value_hash(b"x")),
            leaf_hash(&b, &value_hash(b"y")),
        );
        let e = empty_hash();
        let pair = node_hash(&la, &lb);
        assert_eq!(t.root(), node_hash(&node_hash(&pair, &e), &e));
        // Removing one collapses back to the other's leaf.
        t.set(a, None);
        assert_eq!(t.root(), lb);
    }

    #[test]
    fn snapshots_do_not_move() {
        let mut t = Tree::new();
        for i in 0..100u32 {
            t.set(key_hash(&i.to_be_bytes()), v("v"));
        }
        let snap = t.clone();
        let root = snap.root();
        for i in 0..50u32 {
            t.set(key_hash(&i.to_be_bytes()), None);
        }
        assert_eq!(snap.root(), root);
        assert_eq!(snap.len(), 100);
        assert_eq!(t.len(), 50);
        assert!(snap.get(&key_hash(&0u32.to_be_bytes())).is_some());
        assert!(t.get(&key_hash(&0u32.to_be_bytes())).is_none());
    }

    /// `set_many` gives the tree (root, length, values) that the same updates one by one
    /// give, from empty and from a populated tree, with removals, overwrites, repeated
    /// keys (the later wins) and removals of absent keys.
    #[test]
    fn set_many_equals_one_by_one() {
        let k = |i: u32| key_hash(&i.to_be_bytes());
        let mut base = Tree::new();
        for i in 0..300u32 {
            base.set(k(i), v("base"));
        }
        type Batch = Vec<(Hash, Option<Arc<[u8]>>)>;
        let cases: Vec<(&str, Tree, Batch)> = vec![
            ("empty batch", base.clone(), vec![]),
            ("one put into empty", Tree::new(), vec![(k(1), v("a"))]),
            (
                "puts into empty",
                Tree::new(),
                (0..50).map(|i| (k(i), v("a"))).collect(),
            ),
            (
                "removals only, some absent",
                base.clone(),
                (250..350).map(|i| (k(i), None)).collect(),
            ),
            (
                "remove all",
                base.clone(),
                (0..300).map(|i| (k(i), None)).collect(),
            ),
            (
                "remove all but one",
                base.clone(),
                (1..300).map(|i| (k(i), None)).collect(),
            ),
            (
                "mixed, repeated keys",
                base.clone(),
                (0..400)
                    .map(|i| {
                        (
                            k(i % 320),
                            (i % 3 != 0).then(|| Arc::from(format!("{i}").as_bytes())),
                        )
                    })
                    .collect(),
            ),
            (
                "overwrite one leaf of a two-leaf tree and add one",
                {
                    let mut t = Tree::new();
                    t.set(k(1), v("x"));
                    t.set(k(2), v("y"));
                    t
                },
                vec![(k(1), v("z")), (k(3), v("w")), (k(2), None)],
            ),
        ];
        for (what, start, batch) in cases {
            let mut one = start.clone();
            for (key, value) in batch.clone() {
                one.set(key, value);
            }
            let mut many = start.clone();
            many.set_many(batch);
            assert_eq!(many.root(), one.root(), "{what}");
            assert_eq!(many.len(), one.len(), "{what}");
            for i in 0..400u32 {
                assert_eq!(many.get(&k(i)), one.get(&k(i)), "{what}: key {i}");
            }
            // The start tree is a snapshot: unchanged.
            assert_eq!(start.root(), start.clone().root());
        }
    }

    #[test]
    fn order_does_not_matter() {
        let keys: Vec<Hash> = (0..200u32).map(|i| key_hash(&i.to_le_bytes())).collect();
        let mut a = Tree::new();
        for k in &keys {
            a.set(*k, v("v"));
        }
        let mut b = Tree::new();
        for k in keys.iter().rev() {
            b.set(*k, v("w"));
            b.set(*k, v("v"));
        }
        assert_eq!(a.root(), b.root());
    }
}
