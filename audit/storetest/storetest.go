// Package storetest is the contract suite of audit.Store, and of the
// chain Log and Verify build over it: every backend passes it.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
)

// Tamper rewrites the stored entry seq of a backend behind its API, as an
// attacker with access to the database would: edit gets the stored bytes
// and returns the new ones, or nil to delete the entry.
type Tamper func(t *testing.T, g graph.Store, seq uint64, edit func(data []byte) []byte)

var pepper = []byte("0123456789abcdef0123456789abcdef")

// chain is what a contract test gets: the graph and the log over it.
type chain struct {
	g graph.Store
	l *audit.Log
}

func with(fn func(*testing.T, graph.Store, *audit.Log)) func(*testing.T, chain) {
	return func(t *testing.T, x chain) { fn(t, x.g, x.l) }
}

// Run runs every contract test against the backend. open returns an empty
// graph store that also keeps the audit chain.
func Run(t *testing.T, open graphtest.Opener, tamper Tamper) {
	graphtest.RunCases(t, open, func(t *testing.T, g graph.Store) chain {
		l, err := audit.Open(g, pepper)
		if err != nil {
			t.Fatal(err)
		}
		return chain{g, l}
	}, map[string]func(*testing.T, chain){
		"AppendLinksEntries":          with(testAppendLinks),
		"FailedActionRecorded":        with(testFailedOutcome),
		"ConcurrentAppendsStayLinear": with(testConcurrent),
		"EntriesForSubject":           with(testEntriesFor),
		"RedactKeepsChainValid":       with(testRedact),
	})
	// Each tampering is found, and named at the entry it touched.
	for _, tc := range []struct {
		name string
		seq  uint64
		edit func([]byte) []byte
		want string
	}{
		{"ActionChanged", 3, replace(`"action":"revokeApiKey"`, `"action":"createApiKey"`), "does not match its hash"},
		{"OutcomeChanged", 2, replace(`"outcome":"forbidden"`, `"outcome":"ok"`), "does not match its hash"},
		{"TimeChanged", 4, replace(`"at":"2026-`, `"at":"2025-`), "does not match its hash"},
		{"TargetRewritten", 3, replace(`"target":"key k-3"`, `"target":"key k-9"`), "target does not match"},
		{"EntryDeleted", 3, func([]byte) []byte { return nil }, "entry 3 is missing"},
		// A forger who rehashes entry 3 breaks the link from 4 to it.
		{"RehashedButUnlinked", 3, rehash(func(e *audit.Entry) { e.Action = "nothing" }), "prev does not match the hash of entry 3"},
		{"RedactionForged", 2, replace(`"target":"key k-2"`, `"target":"","redacted":"2026-01-01T00:00:00Z"`), ""},
	} {
		t.Run("Tamper"+tc.name, func(t *testing.T) {
			g := open(t)
			l, err := audit.Open(g, pepper)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := 1; i <= 5; i++ {
				r := audit.Record{Action: []string{"revokeApiKey", "createApiKey", "rotateApiKey"}[i%3], Target: fmt.Sprintf("key k-%d", i)}
				if i == 2 {
					r.Err = graph.Errorf(graph.KindForbidden, "no")
				}
				mustAppend(t, l, r)
			}
			rep, err := audit.Verify(ctx, l.Store(), pepper)
			if err != nil || rep.Broken != nil || rep.Entries != 5 {
				t.Fatalf("before tampering: %+v, %v", rep, err)
			}
			tamper(t, g, tc.seq, tc.edit)
			rep, err = audit.Verify(ctx, l.Store(), pepper)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" { // a forged redaction hides a target but breaks nothing: documented
				if rep.Broken != nil || rep.Redacted != 1 {
					t.Fatalf("forged redaction: %+v", rep)
				}
				return
			}
			at := tc.seq
			if strings.HasPrefix(tc.name, "Rehashed") {
				at++
			}
			if rep.Broken == nil || rep.Broken.Seq != at || !strings.Contains(rep.Broken.Reason, tc.want) {
				t.Fatalf("verify after tampering entry %d: %+v, want a break there: %q", tc.seq, rep.Broken, tc.want)
			}
			if rep.Entries != int(at)-1 {
				t.Fatalf("verified %d entries before the break, want %d", rep.Entries, at-1)
			}
		})
	}
}

func replace(old, new string) func([]byte) []byte {
	return func(b []byte) []byte {
		if !bytes.Contains(b, []byte(old)) {
			panic(fmt.Sprintf("tamper: %s not in %s", old, b))
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
}

// rehash edits an entry and recomputes its own hash, as a forger who knows
// the format would: the next entry's prev then gives it away.
func rehash(fn func(*audit.Entry)) func([]byte) []byte {
	return func(b []byte) []byte {
		e, err := audit.Unmarshal(b)
		if err != nil {
			panic(err)
		}
		fn(e)
		e.Hash = e.ComputeHash()
		out, _ := audit.Marshal(e)
		return out
	}
}

func mustAppend(t *testing.T, l *audit.Log, r audit.Record) *audit.Entry {
	t.Helper()
	e, err := l.Append(context.Background(), r)
	if err != nil {
		t.Fatalf("append %s: %v", r.Action, err)
	}
	return e
}

func mustVerify(t *testing.T, l *audit.Log, entries int) *audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), l.Store(), pepper)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Broken != nil || rep.Entries != entries {
		t.Fatalf("verify: %d entries, broken %v; want %d entries, none broken", rep.Entries, rep.Broken, entries)
	}
	return rep
}

func testAppendLinks(t *testing.T, _ graph.Store, l *audit.Log) {
	ctx := audit.WithRequest(context.Background(), audit.Request{KeyID: "Q3vK8zPa", Role: "admin", RequestID: "req-1", Remote: "192.0.2.7"})
	rep, err := audit.Verify(ctx, l.Store(), pepper)
	if err != nil || rep.Entries != 0 || rep.Broken != nil {
		t.Fatalf("empty chain: %+v, %v", rep, err)
	}
	var prev *audit.Entry
	for i := range 3 {
		e, err := l.Append(ctx, audit.Record{Action: "createApiKey", Target: fmt.Sprintf("key k-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.Follows(prev, e); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		prev = e
	}
	es, err := l.Store().Entries(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 {
		t.Fatalf("%d entries, want 3", len(es))
	}
	e := es[1]
	if e.Seq != 2 || e.KeyID != "Q3vK8zPa" || e.Role != "admin" || e.RequestID != "req-1" || e.Remote != "192.0.2.7" ||
		e.Action != "createApiKey" || e.Target != "key k-1" || e.Outcome != audit.OutcomeOK || e.Prev != es[0].Hash ||
		e.Hash != e.ComputeHash() || e.At.IsZero() {
		t.Fatalf("stored entry: %+v", e)
	}
	if page, err := l.Store().Entries(ctx, 2, 10); err != nil || len(page) != 1 || page[0].Seq != 3 {
		t.Fatalf("entries after 2: %v, %v", page, err)
	}
	if page, err := l.Store().Entries(ctx, 0, 2); err != nil || len(page) != 2 {
		t.Fatalf("entries limited to 2: %d, %v", len(page), err)
	}
	if rep := mustVerify(t, l, 3); rep.Head != es[2].Hash {
		t.Fatalf("head %s, want %s", rep.Head, es[2].Hash)
	}
	if _, err := l.Append(ctx, audit.Record{}); graph.ErrorKind(err) != graph.KindInvalid {
		t.Fatalf("an entry without action: %v, want invalid", err)
	}
}

func testFailedOutcome(t *testing.T, _ graph.Store, l *audit.Log) {
	for _, tc := range []struct {
		r    audit.Record
		want string
	}{
		{audit.Record{Action: "link", Err: graph.Errorf(graph.KindNotFound, "no identifier")}, "not_found"},
		{audit.Record{Action: "link", Err: graph.Errorf(graph.KindForbidden, "no")}, "forbidden"},
		{audit.Record{Action: "link", Err: fmt.Errorf("wrapped: %w", graph.FieldErrorf("a", "bad"))}, "invalid"},
		{audit.Record{Action: "link", Err: fmt.Errorf("boom")}, "internal"},
		{audit.Record{Action: "link", Outcome: "denied"}, "denied"},
		{audit.Record{Action: "link"}, "ok"},
	} {
		if e := mustAppend(t, l, tc.r); e.Outcome != tc.want {
			t.Errorf("%v: outcome %q, want %q", tc.r.Err, e.Outcome, tc.want)
		}
	}
	mustVerify(t, l, 6)
}

// testConcurrent: 8 writers append at once; the chain has every entry once,
// numbered without gaps, each linked to the one before.
// countingStore counts the writes a log makes.
type countingStore struct {
	audit.Store
	writes atomic.Int64
}

func (c *countingStore) AppendEntries(ctx context.Context, next func(*audit.Entry) ([]*audit.Entry, error)) ([]*audit.Entry, error) {
	c.writes.Add(1)
	return c.Store.AppendEntries(ctx, next)
}

// testConcurrent: concurrent appends keep one linear chain, each entry an
// appender was given is the one stored at its place, and the appends
// share writes (group commit).
func testConcurrent(t *testing.T, _ graph.Store, l *audit.Log) {
	const writers, each = 8, 12
	store := &countingStore{Store: l.Store()}
	l = audit.New(store, pepper)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	acked := make(chan *audit.Entry, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				ctx := audit.WithRequest(context.Background(), audit.Request{RequestID: fmt.Sprintf("w%d-%d", w, i)})
				e, err := l.Append(ctx, audit.Record{Action: "link", Target: "x"})
				if err != nil {
					errs <- err
					continue
				}
				acked <- e
			}
		})
	}
	wg.Wait()
	close(errs)
	close(acked)
	for err := range errs {
		t.Fatal(err)
	}
	mustVerify(t, l, writers*each)
	es, err := l.Store().Entries(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.RequestID] {
			t.Fatalf("request %s recorded twice", e.RequestID)
		}
		seen[e.RequestID] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d requests recorded, want %d", len(seen), writers*each)
	}
	for e := range acked {
		if s := es[e.Seq-1]; s.Hash != e.Hash || s.RequestID != e.RequestID {
			t.Errorf("appender of %s was given entry %d %s, stored is %s of %s", e.RequestID, e.Seq, e.Hash, s.Hash, s.RequestID)
		}
	}
	if n := store.writes.Load(); n >= writers*each {
		t.Errorf("%d appends made %d writes: none shared one", writers*each, n)
	}
}

func testEntriesFor(t *testing.T, _ graph.Store, l *audit.Log) {
	ctx := context.Background()
	mustAppend(t, l, audit.Record{Action: "link", Target: "email:ann@corp.io ~ user_id:u1", Subjects: []string{"email:ann@corp.io", "user_id:u1"}})
	mustAppend(t, l, audit.Record{Action: "exportSubject", Target: "email:bob@corp.io", Subjects: []string{"email:bob@corp.io"}})
	mustAppend(t, l, audit.Record{Action: "split", Target: "user_id:u1", Subjects: []string{"user_id:u1", "user_id:u1"}})
	mustAppend(t, l, audit.Record{Action: "createApiKey", Target: "key k"})
	for subject, want := range map[string][]uint64{"user_id:u1": {1, 3}, "email:bob@corp.io": {2}, "email:ann@corp.io": {1}, "email:ann@corp.i": nil} {
		es, err := l.EntriesFor(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range es {
			got = append(got, e.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("entries for %s: %v, want %v", subject, got, want)
		}
	}
	es, _ := l.Store().Entries(ctx, 2, 1)
	if len(es[0].Subjects) != 1 {
		t.Fatalf("a subject named twice is stored twice: %v", es[0].Subjects)
	}
	for _, e := range es {
		for _, s := range e.Subjects {
			if strings.Contains(s, "u1") || len(s) != 64 {
				t.Fatalf("subject stored as %q, not as its hash", s)
			}
		}
	}
}

func testRedact(t *testing.T, _ graph.Store, l *audit.Log) {
	ctx := context.Background()
	ann := "email:ann@corp.io"
	mustAppend(t, l, audit.Record{Action: "link", Target: "email:ann@corp.io ~ user_id:u1", Subjects: []string{ann, "user_id:u1"}})
	mustAppend(t, l, audit.Record{Action: "exportSubject", Target: "email:bob@corp.io", Subjects: []string{"email:bob@corp.io"}})
	mustAppend(t, l, audit.Record{Action: "exportSubject", Target: ann, Subjects: []string{ann}})
	n, err := l.Redact(ctx, l.SubjectHash(ann))
	if err != nil || n != 2 {
		t.Fatalf("redact: %d, %v; want 2", n, err)
	}
	es, err := l.Store().Entries(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.Contains(e.Target, "ann") || (e.Seq != 2) != !e.Redacted.IsZero() {
			t.Fatalf("entry %d after redaction: target %q, redacted %v", e.Seq, e.Target, e.Redacted)
		}
	}
	if es[1].Target != "email:bob@corp.io" {
		t.Fatalf("another person's entry lost its target: %q", es[1].Target)
	}
	mustVerify(t, l, 3)
	// New entries still link after redacted ones; redacting again is a no-op.
	mustAppend(t, l, audit.Record{Action: "erase", Target: "", Subjects: []string{ann}})
	if n, err := l.Redact(ctx, l.SubjectHash(ann)); err != nil || n != 1 {
		t.Fatalf("second redaction: %d, %v; want only the new entry", n, err)
	}
	if n, err := l.Redact(ctx, l.SubjectHash(ann)); err != nil || n != 0 {
		t.Fatalf("third redaction: %d, %v; want 0", n, err)
	}
	mustVerify(t, l, 4)
	for _, bad := range []string{"", "zz", strings.Repeat("g", 64), ann} {
		if _, err := l.Redact(ctx, bad); graph.ErrorKind(err) != graph.KindInvalid {
			t.Errorf("redact %q: %v, want invalid", bad, err)
		}
	}
}
