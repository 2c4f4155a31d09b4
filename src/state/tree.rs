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
                let vh = value_hash(&value);
                let leaf = Arc::new(LeafData {
                    key,
                    hash: leaf_hash(&key, &vh),
                    value_hash: vh,
                    value,
                });
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
