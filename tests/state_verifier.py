#!/usr/bin/env python3
"""An independent verifier of the catalog state map and its proof bundles, written from
log-format/state.md (and receipts.md / note.md for the receipt) alone, sharing no code
with the Rust implementation.

Usage:
  state_verifier.py vectors FILE          check log-format/vectors/state/map.json
  state_verifier.py bundle LOG_VKEY_FILE  verify the proof bundle on stdin; prints
                                          "present <treeSize> <value JSON>" or
                                          "absent <treeSize>"; exit 1 when it does not verify
Needs `cryptography` (Ed25519) for bundles only. Used by tests/state_python.rs."""
import base64
import hashlib
import json
import sys


def sha(b):
    return hashlib.sha256(b).digest()


EMPTY = sha(b"\x12")


def leaf_hash(k, v):
    return sha(b"\x10" + k + v)


def node_hash(l, r):
    return sha(b"\x11" + l + r)


def bit(k, i):
    return (k[i // 8] >> (7 - i % 8)) & 1


def jcs(value):
    """RFC 8785 for the values of state.md §3: objects, arrays, strings, integers, bools."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Refused(Exception):
    pass


def decode_proof(b):
    if len(b) < 2:
        raise Refused("no sibling count")
    n = int.from_bytes(b[:2], "big")
    if n > 256:
        raise Refused("more than 256 siblings")
    nb = (n + 7) // 8
    bitmap = b[2:2 + nb]
    if len(bitmap) != nb:
        raise Refused("bitmap cut short")
    if n % 8 and bitmap[n // 8] & (0xFF >> (n % 8)):
        raise Refused("padding bits set")
    pos = 2 + nb
    sibs = []
    for i in range(n):
        if (bitmap[i // 8] >> (7 - i % 8)) & 1:
            h = b[pos:pos + 32]
            if len(h) != 32:
                raise Refused("sibling cut short")
            if h == EMPTY:
                raise Refused("empty hash written out")
            sibs.append(h)
            pos += 32
        else:
            sibs.append(EMPTY)
    rest = b[pos:]
    if rest == b"\x00":
        term = None
    elif len(rest) == 65 and rest[0] == 1:
        term = (rest[1:33], rest[33:65])
    else:
        raise Refused("bad terminal")
    return sibs, term


def verify_proof(root, k, value, sibs, term):
    n = len(sibs)
    if n and sibs[-1] == EMPTY:
        raise Refused("deepest sibling empty")
    if value is not None:
        if term is None or term[0] != k or term[1] != sha(value):
            raise Refused("the proof does not show this key with this value")
        h = leaf_hash(k, term[1])
    elif term is None:
        h = EMPTY
    else:
        if term[0] == k:
            raise Refused("the proof shows the key present")
        if any(bit(term[0], i) != bit(k, i) for i in range(n)):
            raise Refused("leaf off the key's path")
        h = leaf_hash(term[0], term[1])
    for i in reversed(range(n)):
        h = node_hash(sibs[i], h) if bit(k, i) else node_hash(h, sibs[i])
    if h != root:
        raise Refused("wrong root")


def check_vectors(path):
    v = json.load(open(path))
    assert v["emptyHash"] == EMPTY.hex()
    assert v["nodeHashOfEmpties"] == node_hash(EMPTY, EMPTY).hex()
    for e in v["encodings"]:
        key = json.loads(e["key"])
        assert jcs(key) == e["key"].encode(), e["key"]
        assert jcs(json.loads(e["value"])) == e["value"].encode(), e["value"]
        k, val = sha(e["key"].encode()), sha(e["value"].encode())
        assert k.hex() == e["keyHash"] and val.hex() == e["valueHash"]
        assert leaf_hash(k, val).hex() == e["leafHash"]
    # Roots recomputed from the definition (state.md §2), not from proofs.
    entries = {sha(e["key"].encode()): sha(e["value"].encode()) for e in v["encodings"]}

    def subtree(items, depth):
        if not items:
            return EMPTY
        if len(items) == 1:
            (k, val), = items
            return leaf_hash(k, val)
        left = [(k, x) for k, x in items if not bit(k, depth)]
        right = [(k, x) for k, x in items if bit(k, depth)]
        return node_hash(subtree(left, depth + 1), subtree(right, depth + 1))

    built = []
    for k in list(entries)[:4]:
        built.append((k, entries[k]))
        assert subtree(built, 0).hex() == v["rootsAfterEachOfTheFour"][len(built) - 1]
    for k, val in v["tree"]["extraEntries"]:
        built.append((sha(k.encode()), sha(val.encode())))
    root = bytes.fromhex(v["tree"]["root"])
    assert subtree(built, 0) == root
    cases = [(root, p) for p in v["tree"]["proofs"]]
    cases.append((bytes.fromhex(v["singleKeyTree"]["root"]), v["singleKeyTree"]["proof"]))
    cases.append((bytes.fromhex(v["emptyTree"]["root"]), v["emptyTree"]["proof"]))
    for r, p in cases:
        sibs, term = decode_proof(bytes.fromhex(p["encoded"]))
        assert [s.hex() for s in sibs] == p["siblings"], p["note"]
        k = sha(p["key"].encode())
        value = p["value"].encode() if p["value"] is not None else None
        verify_proof(r, k, value, sibs, term)
        # A forged value, or the other answer, is refused.
        for forged in ([b"{}"] if value is None else [b"{}", None]):
            try:
                verify_proof(r, k, forged, sibs, term)
            except Refused:
                continue
            raise AssertionError("forgery accepted: " + p["note"])
    print("vectors ok:", len(cases), "proofs")


# --- receipts (receipts.md, note.md): checkpoint signature and RFC 9162 inclusion ---

def vkey_parts(vkey):
    # The name holds no "+", but the base64 may.
    name, keyhash, b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64)
    if raw[0] != 1 or len(raw) != 33:
        raise Refused("not an Ed25519 verifier key")
    return name, bytes.fromhex(keyhash), raw[1:]


def open_checkpoint(note, vkey):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    name, keyhash, pub = vkey_parts(vkey)
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise Refused("no signature block")
    body += "\n"
    ok = False
    for line in sigs.splitlines():
        if not line.startswith("\u2014 " + name + " "):
            continue
        sig = base64.b64decode(line.split(" ")[2])
        if sig[:4] != keyhash:
            continue
        Ed25519PublicKey.from_public_bytes(pub).verify(sig[4:], body.encode())
        ok = True
    if not ok:
        raise Refused("no signature by the log key")
    lines = body.split("\n")
    return lines[0], int(lines[1]), base64.b64decode(lines[2])


def inclusion_root(index, size, leaf, path):
    # RFC 9162 §2.1.3.2
    if index >= size:
        raise Refused("index beyond size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Refused("proof too long")
        if fn & 1 or fn == sn:
            r = sha(b"\x01" + p + r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = sha(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Refused("proof too short")
    return r


def verify_bundle(bundle, vkey):
    if bundle["mediaType"] != "application/vnd.srcos.catalog.state-proof.v1+json":
        raise Refused("media type")
    key = bundle["key"]
    shapes = {"entry": 3, "head": 3, "subject": 2, "key": 2}
    if not key or shapes.get(key[0]) != len(key):
        raise Refused("key shape")
    c = bundle["commitment"]
    origin, size, root = open_checkpoint(c["checkpoint"], vkey)
    if size != c["treeSize"]:
        raise Refused("receipt tree size differs from its checkpoint")
    entry = base64.b64decode(c["entry"], validate=True)
    path = [bytes.fromhex(h) for h in c["inclusionProof"]]
    if inclusion_root(c["logIndex"], size, sha(b"\x00" + entry), path) != root:
        raise Refused("the commitment is not in the checkpoint")
    leaf = json.loads(entry)
    if jcs(leaf) != entry or leaf.get("kind") != "StateCommitment":
        raise Refused("not a canonical StateCommitment leaf")
    if set(leaf) != {"apiVersion", "committedAt", "kind", "root", "treeSize"}:
        raise Refused("commitment members")
    if not isinstance(leaf["treeSize"], int) or leaf["treeSize"] > c["logIndex"]:
        raise Refused("treeSize is after the leaf's index")
    map_root = bytes.fromhex(leaf["root"])
    k = sha(jcs(key))
    value = None if bundle["value"] is None else jcs(bundle["value"])
    sibs, term = decode_proof(base64.b64decode(bundle["mapProof"], validate=True))
    verify_proof(map_root, k, value, sibs, term)
    return leaf["treeSize"], value


def main():
    if sys.argv[1] == "vectors":
        check_vectors(sys.argv[2])
    elif sys.argv[1] == "bundle":
        vkey = open(sys.argv[2]).read()
        try:
            size, value = verify_bundle(json.load(sys.stdin), vkey)
        except (Refused, ValueError, KeyError) as e:
            print("refused:", e)
            sys.exit(1)
        if value is None:
            print("absent", size)
        else:
            print("present", size, value.decode())
    else:
        sys.exit("usage: vectors FILE | bundle LOG_VKEY_FILE < bundle.json")


if __name__ == "__main__":
    main()
