// gocheck verifies a Confide transparency log with Go's golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog, as an implementation independent of Confide's Python code.
//
// It fetches the checkpoint and verifies its signature with note.Open, reads the tree
// through tlog.TileHashReader (which checks every tile against the signed root), checks
// every entry in the bundles against its leaf hash, and checks Confide's inclusion and
// consistency proofs with tlog.CheckRecord and tlog.CheckTree (and that they equal the
// proofs Go computes itself from the tiles).
//
// Usage: gocheck -url <log prefix URL> -vkey <verifier key> -origin <origin>
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
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

func get(path string) ([]byte, error) {
	resp, err := http.Get(base + "/" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return body, nil
}

// confidePath maps Go's tile paths (tile/8/L/N, tile/8/data/N) to tlog-tiles paths.
func confidePath(t tlog.Tile) string {
	p := t.Path()
	p = strings.TrimPrefix(p, "tile/8/")
	if strings.HasPrefix(p, "data/") {
		return "tile/entries/" + strings.TrimPrefix(p, "data/")
	}
	return "tile/" + p
}

type tileReader struct{}

func (tileReader) Height() int { return 8 }

func (tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := get(confidePath(t))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func parseCheckpoint(text string) (string, int64, tlog.Hash, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return "", 0, tlog.Hash{}, errors.New("checkpoint has fewer than 3 lines")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return "", 0, tlog.Hash{}, err
	}
	h, err := tlog.ParseHash(lines[2])
	return lines[0], n, h, err
}

func parseHashes(lines []string) ([]tlog.Hash, error) {
	var out []tlog.Hash
	for _, l := range lines {
		if l == "" {
			continue
		}
		h, err := tlog.ParseHash(l)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func entries(n int64) ([][]byte, error) {
	var all [][]byte
	for start := int64(0); start < n; start += 256 {
		w := n - start
		if w > 256 {
			w = 256
		}
		t := tlog.Tile{H: 8, L: -1, N: start / 256, W: int(w)}
		data, err := get(confidePath(t))
		if err != nil {
			return nil, err
		}
		r := bufio.NewReader(bytes.NewReader(data))
		for i := int64(0); i < w; i++ {
			var l [2]byte
			if _, err := io.ReadFull(r, l[:]); err != nil {
				return nil, err
			}
			e := make([]byte, int(l[0])<<8|int(l[1]))
			if _, err := io.ReadFull(r, e); err != nil {
				return nil, err
			}
			all = append(all, e)
		}
		if r.Buffered() != 0 {
			return nil, errors.New("trailing bytes in entry bundle")
		}
	}
	return all, nil
}

func run(vkey, origin string) error {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	raw, err := get("checkpoint")
	if err != nil {
		return err
	}
	n, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		return fmt.Errorf("checkpoint signature: %v", err)
	}
	gotOrigin, size, root, err := parseCheckpoint(n.Text)
	if err != nil {
		return err
	}
	if gotOrigin != origin {
		return fmt.Errorf("origin %q", gotOrigin)
	}
	tree := tlog.Tree{N: size, Hash: root}
	thr := tlog.TileHashReader(tree, tileReader{})
	th, err := tlog.TreeHash(size, thr)
	if err != nil {
		return fmt.Errorf("tree hash from tiles: %v", err)
	}
	if th != root {
		return errors.New("tree hash from tiles differs from the checkpoint")
	}
	all, err := entries(size)
	if err != nil {
		return err
	}
	checked := 0
	for i := int64(0); i < size; i++ {
		leaf := tlog.RecordHash(all[i])
		stored, err := thr.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
		if err != nil {
			return err
		}
		if stored[0] != leaf {
			return fmt.Errorf("entry %d does not match its leaf hash", i)
		}
		if size > 300 && i%37 != 0 && i != size-1 {
			continue
		}
		body, err := get(fmt.Sprintf("proof/inclusion?index=%d", i))
		if err != nil {
			return err
		}
		head, cpNote, ok := strings.Cut(string(body), "\n\n")
		if !ok {
			return errors.New("tlog-proof without a blank line")
		}
		if _, err := note.Open([]byte(cpNote), note.VerifierList(verifier)); err != nil {
			return fmt.Errorf("tlog-proof checkpoint: %v", err)
		}
		lines := strings.Split(head, "\n")
		if lines[0] != "c2sp.org/tlog-proof@v1" || !strings.HasPrefix(lines[1], "extra ") ||
			lines[2] != fmt.Sprintf("index %d", i) {
			return fmt.Errorf("tlog-proof header for %d: %q", i, lines[:3])
		}
		extra, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[1], "extra "))
		if err != nil || !bytes.Equal(extra, all[i]) {
			return fmt.Errorf("tlog-proof extra for %d is not the entry", i)
		}
		proof, err := parseHashes(lines[3:])
		if err != nil {
			return err
		}
		if err := tlog.CheckRecord(proof, size, root, i, leaf); err != nil {
			return fmt.Errorf("inclusion proof %d: %v", i, err)
		}
		mine, err := tlog.ProveRecord(size, i, thr)
		if err != nil {
			return err
		}
		if fmt.Sprint(mine) != fmt.Sprint(tlog.RecordProof(proof)) {
			return fmt.Errorf("inclusion proof %d differs from Go's", i)
		}
		checked++
	}
	consistency := 0
	for old := int64(1); old < size; old++ {
		if size > 300 && old%41 != 0 && old != size-1 {
			continue
		}
		body, err := get(fmt.Sprintf("proof/consistency?old=%d&new=%d", old, size))
		if err != nil {
			return err
		}
		proof, err := parseHashes(strings.Split(string(body), "\n"))
		if err != nil {
			return err
		}
		oldHash, err := tlog.TreeHash(old, thr)
		if err != nil {
			return err
		}
		if err := tlog.CheckTree(proof, size, root, old, oldHash); err != nil {
			return fmt.Errorf("consistency proof %d -> %d: %v", old, size, err)
		}
		mine, err := tlog.ProveTree(size, old, thr)
		if err != nil {
			return err
		}
		if fmt.Sprint(mine) != fmt.Sprint(tlog.TreeProof(proof)) {
			return fmt.Errorf("consistency proof %d differs from Go's", old)
		}
		consistency++
	}
	fmt.Printf("OK size=%d entries=%d inclusion=%d consistency=%d\n", size, len(all), checked, consistency)
	return nil
}

func main() {
	url := flag.String("url", "", "log prefix URL")
	vkey := flag.String("vkey", "", "verifier key")
	origin := flag.String("origin", "", "checkpoint origin")
	flag.Parse()
	base = strings.TrimSuffix(*url, "/")
	if err := run(*vkey, *origin); err != nil {
		fmt.Println("FAIL", err)
		os.Exit(1)
	}
}
