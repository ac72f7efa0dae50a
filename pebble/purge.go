package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	cpebble "github.com/cockroachdb/pebble/v2"
)

// Purge rewrites the embedded store in dir so that deleted records (an
// erased person's) no longer sit in its files. It runs with the server
// stopped (Pebble's lock refuses a store in use): it flushes the memtable,
// compacts the whole key space to the bottom level (which drops deleted
// keys and the values they shadowed), then writes a checkpoint with a
// flushed WAL, which holds only the live tables, a new MANIFEST with no
// history and no old WAL, and puts it in place of the store. What the file
// system does with the freed blocks is beyond it (see docs/security.md).
func Purge(ctx context.Context, dir string) error {
	s, err := Open(dir)
	if err != nil {
		return fmt.Errorf("pebble: purge: %w", err)
	}
	db := s.db
	err = db.Flush()
	if err == nil {
		err = db.Compact(ctx, []byte{0}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true)
	}
	live := filepath.Join(dir, "graph")
	fresh, old := live+".purged", live+".old"
	if err == nil {
		_ = os.RemoveAll(fresh)
		err = db.Checkpoint(fresh, cpebble.WithFlushedWAL())
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pebble: purge: %w", err)
	}
	// Swap: the old directory is removed only once the new one is in place;
	// a crash in between leaves graph.old and graph.purged to finish by
	// hand (both are whole stores).
	if err := os.Rename(live, old); err != nil {
		return fmt.Errorf("pebble: purge: %w", err)
	}
	if err := os.Rename(fresh, live); err != nil {
		return errors.Join(fmt.Errorf("pebble: purge: %w", err), os.Rename(old, live))
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("pebble: purge: removing the old files: %w", err)
	}
	return nil
}

// ScanFiles reports which of the markers appear, as raw bytes, in any
// file of the embedded store in dir (tables, WAL, MANIFEST, options).
func ScanFiles(dir string, markers []string) (map[string][]string, error) {
	found := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range markers {
			if m != "" && containsBytes(data, m) {
				found[m] = append(found[m], path)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebble: scan files: %w", err)
	}
	return found, nil
}

func containsBytes(data []byte, m string) bool { return bytes.Contains(data, []byte(m)) }
