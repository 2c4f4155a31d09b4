// Command check is an independent verifier for srcos-catalog, written against
// golang.org/x/mod/sumdb/{note,tlog} (Debian's golang-golang-x-mod-dev, GOPATH mode).
// It shares no code with the Rust implementation. Usage:
//
//	check <base-url> <log-vkey>
//
// It exits non-zero with a message on the first disagreement.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var base string

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "interop FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func get(path string) []byte {
	resp, err := http.Get(base + path)
	if err != nil {
		fail("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fail("GET %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		fail("GET %s: status %d: %s", path, resp.StatusCode, body)
	}
	return body
}

// openCheckpoint verifies a signed checkpoint with note.Open and parses its body.
func openCheckpoint(msg []byte, verifiers note.Verifiers) (string, int64, tlog.Hash) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		fail("note.Open rejected the checkpoint: %v\n%s", err, msg)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint body has %d lines", len(lines))
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || strconv.FormatInt(size, 10) != lines[1] {
		fail("bad size line %q", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != 32 {
		fail("bad root line %q", lines[2])
	}
	var h tlog.Hash
	copy(h[:], raw)
	return lines[0], size, h
}

func decodeHashes(list []string) []tlog.Hash {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		raw, err := hex.DecodeString(s)
		if err != nil || len(raw) != 32 {
			fail("bad hash %q", s)
		}
		copy(out[i][:], raw)
	}
	return out
}

// tileReader reads C2SP tiles: Go's tile/8/L/N path minus the height element.
type tileReader struct{ reads int }

func (t *tileReader) Height() int { return 8 }

func (t *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		path := tile.Path()
		if !strings.HasPrefix(path, "tile/8/") {
			return nil, fmt.Errorf("unexpected tile path %s", path)
		}
		out[i] = get("/tile/" + strings.TrimPrefix(path, "tile/8/"))
		t.reads++
	}
	return out, nil
}

func (t *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func main() {
	if len(os.Args) != 3 {
		fail("usage: check <base-url> <log-vkey>")
	}
	base = strings.TrimRight(os.Args[1], "/")
	verifier, err := note.NewVerifier(strings.TrimSpace(os.Args[2]))
	if err != nil {
		fail("note.NewVerifier: %v", err)
	}
	verifiers := note.VerifierList(verifier)

	origin, size, root := openCheckpoint(get("/checkpoint"), verifiers)
	if origin != verifier.Name() {
		fail("origin %q differs from the key name %q", origin, verifier.Name())
	}
	if size < 2 {
		fail("need a log with at least 2 entries, got %d", size)
	}

	// Every entry: our leaf hash, then CheckRecord on the server's inclusion proof.
	for i := int64(0); i < size; i++ {
		entry := get(fmt.Sprintf("/v1/entries/%d", i))
		leaf := tlog.RecordHash(entry)
		var proof struct {
			LeafIndex int64    `json:"leafIndex"`
			TreeSize  int64    `json:"treeSize"`
			Hashes    []string `json:"hashes"`
		}
		body := get(fmt.Sprintf("/v1/proofs/inclusion?leaf_hash=%s&tree_size=%d", hex.EncodeToString(leaf[:]), size))
		if err := json.Unmarshal(body, &proof); err != nil {
			fail("inclusion proof JSON: %v", err)
		}
		if proof.LeafIndex != i {
			fail("leaf %d: server says index %d", i, proof.LeafIndex)
		}
		if err := tlog.CheckRecord(tlog.RecordProof(decodeHashes(proof.Hashes)), size, root, i, leaf); err != nil {
			fail("tlog.CheckRecord rejected the proof of entry %d in %d: %v", i, size, err)
		}
	}

	// Consistency from many earlier sizes: old roots come from signed checkpoints.
	pairs := 0
	for n := int64(1); n < size; n += 1 + n/8 {
		var receipt struct {
			Checkpoint string `json:"checkpoint"`
		}
		if err := json.Unmarshal(get(fmt.Sprintf("/v1/receipts/0?tree_size=%d", n)), &receipt); err != nil {
			fail("receipt JSON: %v", err)
		}
		_, oldSize, oldRoot := openCheckpoint([]byte(receipt.Checkpoint), verifiers)
		if oldSize != n {
			fail("checkpoint for size %d says %d", n, oldSize)
		}
		var proof struct {
			Hashes []string `json:"hashes"`
		}
		if err := json.Unmarshal(get(fmt.Sprintf("/v1/proofs/consistency?first=%d&second=%d", n, size)), &proof); err != nil {
			fail("consistency proof JSON: %v", err)
		}
		if err := tlog.CheckTree(tlog.TreeProof(decodeHashes(proof.Hashes)), size, root, n, oldRoot); err != nil {
			fail("tlog.CheckTree rejected %d -> %d: %v", n, size, err)
		}
		pairs++
	}

	// Tiles: Go's own tile code reads our tiles and must rebuild the root.
	reader := &tileReader{}
	hashReader := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, reader)
	th, err := tlog.TreeHash(size, hashReader)
	if err != nil {
		fail("tlog.TreeHash over our tiles: %v", err)
	}
	if th != root {
		fail("tiles rebuild root %x, checkpoint says %x", th, root)
	}
	last := size - 1
	p, err := tlog.ProveRecord(size, last, hashReader)
	if err != nil {
		fail("tlog.ProveRecord over our tiles: %v", err)
	}
	entry := get(fmt.Sprintf("/v1/entries/%d", last))
	if err := tlog.CheckRecord(p, size, root, last, tlog.RecordHash(entry)); err != nil {
		fail("proof built from our tiles does not check: %v", err)
	}
	fmt.Printf("interop OK: %s size %d, %d inclusion proofs, %d consistency proofs, %d tiles read\n", origin, size, size, pairs, reader.reads)
}
