package pebble

import (
	"testing"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/retention"
)

// EditAuditEntry rewrites a stored audit entry behind the chain's API
// (nil deletes it), for the tampering tests.
func EditAuditEntry(s *Store, seq uint64, edit func([]byte) []byte) error {
	v, closer, err := s.db.Get(chainKey(seq))
	if err != nil {
		return err
	}
	data := edit(append([]byte(nil), v...))
	closer.Close()
	if data == nil {
		return s.db.Delete(chainKey(seq), cpebble.Sync)
	}
	return s.db.Set(chainKey(seq), data, cpebble.Sync)
}

// OpenChecked opens an embedded store in a temporary directory whose
// derived index entries are checked against their records when the test
// ends (checkIndexes): the contract suites run on it, so that every
// ingest, merge, split, erasure, sweep and delivery they make leaves the
// indexes exact.
func OpenChecked(t *testing.T) graph.Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Cleanup(func() { checkIndexes(t, s) }) // before the close: cleanups run last first
	return s
}

// checkIndexes: the event time index (et/) names exactly the stored
// events, at their times and with their retention types, and the sent
// state's destination index (dsentd/) and pending index (dsentq/) name
// exactly the rows (the pending index only those with a request).
func checkIndexes(t *testing.T, s *Store) {
	t.Helper()
	want, got := map[string]string{}, map[string]string{}
	add := func(m map[string]string) func(k, v []byte) error {
		return func(k, v []byte) error { m[string(k)] = string(v); return nil }
	}
	err := s.scan(pEvent, func(k, v []byte) error {
		var ev graph.Event
		if err := jsonUnmarshal(v, &ev); err != nil {
			return err
		}
		want[string(eventTimeKey(ev.Timestamp, k[len(pEvent):]))] = retention.EventType(&ev)
		return nil
	})
	if err == nil {
		err = s.scan(pSent, func(k, v []byte) error {
			var r destinations.Sent
			if err := jsonUnmarshal(v, &r); err != nil {
				return err
			}
			want[string(sentDestKey(r.Destination, r.Profile))] = ""
			if r.Pending != nil {
				want[string(sentPendingKey(r.Destination, r.Profile))] = ""
			}
			return nil
		})
	}
	for _, p := range [][]byte{pEventTime, pSentDest, pSentPending} {
		if err == nil {
			err = s.scan(p, add(got))
		}
	}
	if err != nil {
		t.Fatalf("check indexes: %v", err)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("index entry %q = %q (present %v), want %q", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("index entry %q names no record", k)
		}
	}
}
