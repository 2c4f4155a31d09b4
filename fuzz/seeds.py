#!/usr/bin/env python3
"""Seeds every fuzz corpus from the project's test vectors and from a real local log.

Usage: seeds.py DATA_DIR CORPUS_DIR. DATA_DIR is a log made by the CLI in --data mode
(run.sh makes one by following the README walkthrough); its entries, envelopes,
payloads, tiles, checkpoint and receipts become seeds beside the vectors in
log-format/vectors and tests/fixtures.
"""
import base64
import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def put(corpus: Path, target: str, data: bytes) -> None:
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)


def bundle_entries(data: bytes):
    i = 0
    while i + 2 <= len(data):
        n = int.from_bytes(data[i : i + 2], "big")
        yield data[i + 2 : i + 2 + n]
        i += 2 + n


def main() -> None:
    data, corpus = Path(sys.argv[1]), Path(sys.argv[2])
    vectors = ROOT / "log-format" / "vectors"
    for f in (vectors / "note").iterdir():
        b = f.read_bytes()
        for t in ("signed_note", "checkpoint", "tlog_proof", "key_strings"):
            put(corpus, t, b)
            put(corpus, t, b.strip())
    for f in sorted((vectors / "merkle").rglob("*")):
        if f.is_file():
            put(corpus, "merkle_proofs", f.read_bytes()[:4096])
    put(corpus, "receipt", (vectors / "receipt" / "receipt.json").read_bytes())
    fixtures = ROOT / "tests" / "fixtures"
    put(corpus, "request_payloads", (fixtures / "request.json").read_bytes())
    for f in sorted((fixtures / "reports").rglob("*.json")):
        b = f.read_bytes()
        for kind in range(7):
            put(corpus, "evidence", bytes([kind]) + b)
    log = data / "log"
    for f in sorted(log.rglob("*")):
        if not f.is_file():
            continue
        rel = f.relative_to(log).as_posix()
        b = f.read_bytes()
        if rel == "checkpoint":
            put(corpus, "checkpoint", b)
            put(corpus, "signed_note", b)
            continue
        put(corpus, "tiles", rel.encode())
        put(corpus, "tiles", b[:8192])
        if rel.startswith("tile/entries/"):
            for entry in bundle_entries(b):
                put(corpus, "leaf", entry)
                leaf = json.loads(entry)
                env = leaf.get("envelope")
                if env is None:
                    continue
                put(corpus, "dsse_submission", json.dumps(env).encode())
                payload = base64.b64decode(env["payload"])
                put(corpus, "request_payloads", payload)
                for kind in range(5):
                    put(corpus, "decision_payloads", bytes([kind]) + payload)
    for f in sorted(Path.cwd().glob("*.json")):
        b = f.read_bytes()
        if b'"tlogProof"' in b:
            put(corpus, "receipt", b)
            tlog = json.loads(b).get("tlogProof", "")
            put(corpus, "tlog_proof", tlog.encode())
    put(corpus, "witness_add_checkpoint", b"old 0\n\n" + (data / "log" / "checkpoint").read_bytes())


if __name__ == "__main__":
    main()
