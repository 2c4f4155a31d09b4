//! The storage ports' driver contracts as assertions, the same for every driver: the
//! conformance suite (`storage_conformance.rs`) runs them over the memory, POSIX, object
//! store and PostgreSQL drivers.

use std::sync::Arc;

use srcos_catalog::storage::blobs::{BlobError, BlobStore};
use srcos_catalog::storage::{
    CheckpointLock, LockedCheckpoint, StorageError, TileStore, TileWrite,
};
use srcos_catalog::tiles::{TileId, TileKind};

/// Whether `r` is the compare-and-swap / create-only refusal.
pub fn conflict<T: std::fmt::Debug>(r: Result<T, StorageError>) -> bool {
    matches!(r, Err(StorageError::Conflict(_)))
}

/// A tile store keeps what it acknowledged; on a second put of a path it replaces
/// (`create_only() == false`) or accepts only the same bytes (`true`); `delete` removes
/// a tile's partials (or, create-only, keeps everything).
pub fn tile_store_contract(name: &str, store: &dyn TileStore) {
    assert_eq!(store.get("tile/0/000").unwrap(), None, "{name}");
    store.put("tile/0/000.p/5", b"five").unwrap();
    assert_eq!(
        store.get("tile/0/000.p/5").unwrap().as_deref(),
        Some(&b"five"[..])
    );
    // The same bytes again: always fine (a retry, or a batch redone from the journal).
    store.put("tile/0/000.p/5", b"five").unwrap();
    let second = store.put("tile/0/000.p/5", b"FIVE");
    if store.create_only() {
        assert!(
            conflict(second),
            "{name}: a create-only store replaced an object"
        );
        assert_eq!(
            store.get("tile/0/000.p/5").unwrap().as_deref(),
            Some(&b"five"[..]),
            "{name}"
        );
    } else {
        second.unwrap();
        assert_eq!(
            store.get("tile/0/000.p/5").unwrap().as_deref(),
            Some(&b"FIVE"[..]),
            "{name}"
        );
    }
    let tile = |width: u16| TileId {
        kind: TileKind::Entries,
        index: 1,
        width,
    };
    let writes: Vec<TileWrite> = [7u16, 256]
        .iter()
        .map(|&w| TileWrite {
            tile: tile(w),
            data: vec![w as u8; 3],
        })
        .collect();
    store.put_batch(&writes).unwrap();
    store.put_batch(&writes).unwrap();
    for write in &writes {
        assert_eq!(
            store.get(&write.tile.path()).unwrap(),
            Some(write.data.clone()),
            "{name}"
        );
    }
    if store.create_only() {
        let mut changed = writes.clone();
        changed[1].data = vec![0xaa; 3];
        let result = store.put_batch(&changed);
        assert!(
            matches!(result, Err(StorageError::Conflict(_))),
            "{name}: {result:?}"
        );
        assert_eq!(
            store.get(&tile(256).path()).unwrap(),
            Some(writes[1].data.clone())
        );
    }
    store.put("tile/0/000.p/7", b"seven").unwrap();
    store.put("tile/0/000", b"full").unwrap();
    store.put("tile/0/001.p/3", b"other").unwrap();
    store.delete("tile/0/000.p").unwrap();
    store.delete("tile/0/000.p").unwrap();
    if !store.create_only() {
        assert_eq!(store.get("tile/0/000.p/5").unwrap(), None, "{name}");
        assert_eq!(store.get("tile/0/000.p/7").unwrap(), None, "{name}");
    }
    assert_eq!(
        store.get("tile/0/000").unwrap().as_deref(),
        Some(&b"full"[..]),
        "{name}"
    );
    assert_eq!(
        store.get("tile/0/001.p/3").unwrap().as_deref(),
        Some(&b"other"[..]),
        "{name}"
    );
    store.delete(&format!("{}.p", tile(256).path())).unwrap();
    if !store.create_only() {
        assert_eq!(store.get(&tile(7).path()).unwrap(), None, "{name}");
    }
    bundle_entry_contract(name, store);
}

/// One entry read from a bundle is the entry `get` + `decode_bundle` gives; a bundle
/// with no entry there, or not a bundle, is corrupt; no object is `None`.
fn bundle_entry_contract(name: &str, store: &dyn TileStore) {
    use srcos_catalog::tiles::{decode_bundle, encode_bundle};
    let entries: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 * usize::from(i)]).collect();
    let bundle = encode_bundle(entries.iter().map(Vec::as_slice)).unwrap();
    let path = "tile/entries/x001/002.p/40";
    store.put(path, &bundle).unwrap();
    let decoded = store.get(path).unwrap().unwrap();
    let decoded = decode_bundle(&decoded).unwrap();
    for (position, entry) in entries.iter().enumerate() {
        let read = store.get_bundle_entry(path, position).unwrap();
        assert_eq!(read.as_ref(), Some(entry), "{name}: position {position}");
        assert_eq!(decoded[position], entry.as_slice());
    }
    let past = store.get_bundle_entry(path, 40);
    assert!(
        matches!(past, Err(StorageError::Corrupt(_))),
        "{name}: {past:?}"
    );
    store
        .put("tile/entries/x001/003.p/2", &bundle[..bundle.len() / 2])
        .unwrap();
    let torn = store.get_bundle_entry("tile/entries/x001/003.p/2", 39);
    assert!(
        matches!(torn, Err(StorageError::Corrupt(_))),
        "{name}: {torn:?}"
    );
    let none = store.get_bundle_entry("tile/entries/x001/004", 0).unwrap();
    assert_eq!(none, None, "{name}");
}

/// A lock swaps only from the checkpoint it holds (compare-and-swap), and keeps what it
/// installed across a reopen (`open` gives the same lock again, after the last is gone).
pub fn lock_contract(name: &str, open: &dyn Fn() -> Arc<dyn CheckpointLock>) {
    let at = |size, signed| LockedCheckpoint { size, signed };
    let lock = open();
    assert_eq!(lock.read().unwrap(), None, "{name}");
    assert_eq!(lock.interrupted().unwrap(), None, "{name}");
    assert!(
        conflict(lock.swap(Some(at(1, b"one")), at(2, b"two"))),
        "{name}"
    );
    lock.swap(None, at(1, b"one")).unwrap();
    assert!(conflict(lock.swap(None, at(2, b"two"))), "{name}");
    assert_eq!(lock.read().unwrap().as_deref(), Some(&b"one"[..]), "{name}");
    lock.swap(Some(at(1, b"one")), at(2, b"two")).unwrap();
    assert!(
        conflict(lock.swap(Some(at(1, b"one")), at(3, b"three"))),
        "{name}"
    );
    drop(lock);
    let lock = open();
    assert_eq!(lock.read().unwrap().as_deref(), Some(&b"two"[..]), "{name}");
    assert_eq!(lock.interrupted().unwrap(), None, "{name}");
    lock.swap(Some(at(2, b"two")), at(3, b"three")).unwrap();
    drop(lock);
    assert_eq!(
        open().read().unwrap().as_deref(),
        Some(&b"three"[..]),
        "{name}"
    );
}

/// The SHA-256 of `bytes`, hex: a blob's name.
pub fn blob_name(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A blob store keeps what it acknowledged under its digest, attributed to its uploader;
/// the same bytes again are accepted and cost nothing; bytes that do not hash to the
/// name are refused and leave nothing behind; reopened (`reopen`), it counts what each
/// uploader holds.
pub fn blob_store_contract(name: &str, store: &BlobStore, reopen: &dyn Fn() -> BlobStore) {
    let hello = blob_name(b"hello");
    assert!(!store.contains(&hello), "{name}");
    assert_eq!(store.get(&hello).unwrap(), None, "{name}");
    assert!(store.put(&hello, b"hello", "k1").unwrap(), "{name}: new");
    assert!(
        !store.put(&hello, b"hello", "k2").unwrap(),
        "{name}: the same bytes again are accepted as already held"
    );
    assert!(store.contains(&hello), "{name}");
    assert_eq!(store.get(&hello).unwrap().as_deref(), Some(&b"hello"[..]));
    assert_eq!(
        store.owner(&hello),
        "k1",
        "{name}: the first uploader owns it"
    );
    assert_eq!(
        (store.usage().held_by("k1"), store.usage().held_by("k2")),
        (5, 0),
        "{name}"
    );
    let other = blob_name(b"other");
    assert!(
        matches!(
            store.put(&other, b"OTHER", "k1"),
            Err(BlobError::DigestMismatch { .. })
        ),
        "{name}: bytes under another digest's name"
    );
    assert!(
        !store.contains(&other),
        "{name}: a refused upload is not visible"
    );
    assert_eq!(
        store.usage().total(),
        5,
        "{name}: refusals release their reservation"
    );
    let held = store.held().unwrap();
    assert_eq!(held, vec![(hello.clone(), 5)], "{name}");
    let reopened = reopen();
    assert_eq!(reopened.usage().held_by("k1"), 5, "{name}: counted at open");
    assert_eq!(
        reopened.get(&hello).unwrap().as_deref(),
        Some(&b"hello"[..]),
        "{name}"
    );
}
