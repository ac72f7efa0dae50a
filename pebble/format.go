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
// existed: a store without the key is version 1. Version 2 keeps a member
// count per segment (sn/, written with the memberships); opening a
// version 1 store counts them once (countMembers) and stamps it 2.
// Version 3 writes segment states (ss/) and change records (sc/) in a
// compact encoding (segments.EncodeState, EncodeChange) instead of JSON;
// the readers take both, so a version 2 store is only stamped 3 and each
// state is rewritten at its next save. The
// version tells an older idgraph, which reads only JSON states, to stop.
// Version 4 keeps each live profile's data column (pd/, written with the
// profile record: what bulk reads of traits and counts read); opening an
// older store writes them once (writeDataColumns) and stamps it 4.
// Version 5 keeps each identifier's type and value in its member index
// entries (pi/, after the hash: what a members export reads instead of a
// lookup of each identifier record); opening an older store rewrites
// them once (writeMemberKeys) and stamps it 5.
// Version 6 keeps the erasure indexes (eraseindex.go: hk/, pb/, xp/, xk/)
// that name a person's hub markings, blocking entries and search entries,
// so that an erasure reads only those instead of scanning every one;
// opening an older store writes them once (writeEraseIndexes) and stamps
// it 6.
// Version 7 keeps the event time index (eventtime.go: et/, what a
// retention sweep reads instead of every event) and the sent state's
// index by destination (destsent.go: dsentd/, what paging one
// destination's sent state reads instead of every destination's rows);
// opening an older store writes them once (writeEventTimes,
// writeSentByDestination) and stamps it 7.
const FormatVersion = 7

var formatKey = key(pSetting, []byte("format_version"))

// checkFormat reads the store's format version, stamping a store without
// one, and refuses a version this code does not know.
func checkFormat(db *cpebble.DB, dir string) error {
	v, closer, err := db.Get(formatKey)
	n := 1 // a new store, or one from before versions were recorded
	switch {
	case errors.Is(err, cpebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("pebble: open %s: read format version: %w", dir, err)
	default:
		text := string(v)
		closer.Close()
		if n, err = strconv.Atoi(text); err != nil {
			return fmt.Errorf("pebble: open %s: %w: unreadable format version %q", dir, graph.ErrStoreFormat, text)
		}
	}
	if err := graph.CheckFormatVersion(n, FormatVersion); err != nil {
		return fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	if n == FormatVersion {
		return nil
	}
	// Migrate and stamp the version last: a crash in between migrates
	// again (each step only rewrites what it derives). The data columns
	// and the member, erasure, event time and sent state index entries
	// are committed as they are written, unsynced; the stamp's synced
	// batch makes them durable.
	if n < 4 {
		if err := writeDataColumns(db); err != nil {
			return fmt.Errorf("pebble: open %s: migrate to format version %d: %w", dir, FormatVersion, err)
		}
	}
	if n < 5 {
		if err := writeMemberKeys(db); err != nil {
			return fmt.Errorf("pebble: open %s: migrate to format version %d: %w", dir, FormatVersion, err)
		}
	}
	if n < 6 {
		if err := writeEraseIndexes(db); err != nil {
			return fmt.Errorf("pebble: open %s: migrate to format version %d: %w", dir, FormatVersion, err)
		}
	}
	if n < 7 {
		if err := writeEventTimes(db); err != nil {
			return fmt.Errorf("pebble: open %s: migrate to format version %d: %w", dir, FormatVersion, err)
		}
		if err := writeSentByDestination(db); err != nil {
			return fmt.Errorf("pebble: open %s: migrate to format version %d: %w", dir, FormatVersion, err)
		}
	}
	b := db.NewBatch()
	defer b.Close()
	err = nil // the read's ErrNotFound of a store without a version
	if n < 2 {
		err = countMembers(db, b)
	}
	if err == nil {
		err = b.Set(formatKey, []byte(strconv.Itoa(FormatVersion)), nil)
	}
	if err == nil {
		err = b.Commit(cpebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("pebble: open %s: migrate to format version %d: %w", dir, FormatVersion, err)
	}
	return nil
}
