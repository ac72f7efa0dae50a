package pebble

import (
	"errors"
	"fmt"
	"strconv"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
)

// FormatVersion is the version of the records this code writes and reads.
// Records are the JSON of graph's domain types (so a renamed JSON tag is a
// format change: the golden files in testdata/ fail when one happens) and
// the keys listed at the prefixes in store.go. Bump it, and keep a
// migration from the previous version, whenever either changes in a way
// this version's reader would misread; add golden files for the new
// version and keep the old ones, which later versions must still read.
//
// Version 1 is the format of every store written before the version key
// existed: a store without the key is version 1 (Open stamps it).
const FormatVersion = 1

var formatKey = key(pSetting, []byte("format_version"))

// checkFormat reads the store's format version, stamping a store without
// one, and refuses a version this code does not know.
func checkFormat(db *cpebble.DB, dir string) error {
	v, closer, err := db.Get(formatKey)
	if errors.Is(err, cpebble.ErrNotFound) {
		// A new store, or one from before versions were recorded: both are
		// version 1.
		if err := db.Set(formatKey, []byte(strconv.Itoa(FormatVersion)), cpebble.Sync); err != nil {
			return fmt.Errorf("pebble: open %s: record format version: %w", dir, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("pebble: open %s: read format version: %w", dir, err)
	}
	text := string(v)
	closer.Close()
	n, err := strconv.Atoi(text)
	if err != nil {
		return fmt.Errorf("pebble: open %s: %w: unreadable format version %q", dir, graph.ErrStoreFormat, text)
	}
	if err := graph.CheckFormatVersion(n, FormatVersion); err != nil {
		return fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	return nil
}
