package erase_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/pebble"
)

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

type fixture struct {
	store graph.Store
	norm  *graph.Normalizer
	svc   *erase.Service
	st    *graph.Stitcher
}

func newFixture(t *testing.T, store graph.Store, ledger string) *fixture {
	t.Helper()
	h := erase.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	norm := graph.NewNormalizer("US")
	svc := &erase.Service{Store: store.(erase.Backend).Erasure(), Graph: store, Norm: norm, Hasher: h, Set: erase.NewSet(h)}
	if ledger != "" {
		svc.Ledger = erase.OpenLedger(ledger)
	}
	if _, err := svc.Replay(context.Background()); err != nil {
		t.Fatalf("replay: %v", err)
	}
	st := graph.NewStitcher(store, graph.DefaultConfig())
	st.Suppressor = svc.Set
	return &fixture{store: store, norm: norm, svc: svc, st: st}
}

// obs builds an observation from raw "type:value" pairs, normalised as
// ingest normalises them.
func (f *fixture) obs(t *testing.T, msg string, raw ...string) *graph.Observation {
	t.Helper()
	o := graphtest.Obs(msg, t0)
	for _, r := range raw {
		typ, v := r[:indexColon(r)], r[indexColon(r)+1:]
		k, err := f.norm.Normalize(typ, v)
		if err != nil {
			t.Fatalf("normalise %s: %v", r, err)
		}
		o.Identifiers = append(o.Identifiers, k)
	}
	return o
}

func indexColon(s string) int {
	for i := range s {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}

func (f *fixture) ingest(t *testing.T, obs ...*graph.Observation) graph.Result {
	t.Helper()
	res, err := f.st.Ingest(context.Background(), obs)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res
}

func (f *fixture) exists(t *testing.T, raw string) bool {
	t.Helper()
	typ, v := raw[:indexColon(raw)], raw[indexColon(raw)+1:]
	k, err := f.norm.Normalize(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.store.Identifier(context.Background(), k)
	if err != nil && graph.ErrorKind(err) != graph.KindNotFound {
		t.Fatal(err)
	}
	return err == nil
}

const (
	ada      = "email:ada.lovelace@analytical.org"
	adaAnon  = "anonymous_id:anon-ada-7f3c"
	adaPhone = "phone:+1 415 555 0132"
	bob      = "email:bob@builders.net"
)

func seedAda(t *testing.T, f *fixture) {
	t.Helper()
	f.ingest(t, f.obs(t, "a1", adaAnon), f.obs(t, "a2", adaAnon, ada, adaPhone, "user_id:ada-1"), f.obs(t, "b1", bob))
}

// TestReturnSuppressed erases a person by a differently written email,
// then sends messages that carry one of their identifiers each: none is
// stored, whatever identifier or formatting, and nobody else is affected.
func TestReturnSuppressed(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), "")
			seedAda(t, f)
			rc, err := f.svc.Erase(context.Background(), "email: Ada.Lovelace@ANALYTICAL.org ", erase.EraseAndSuppress, "test")
			if err != nil {
				t.Fatal(err)
			}
			if !rc.Found || rc.Deleted[erase.CountIdentifiers] != 4 || rc.SuppressionsAdded != 4 || rc.Deleted[erase.CountEvents] != 2 {
				t.Errorf("receipt = %+v, want the person found, 4 identifiers, 2 events, 4 suppressions", rc)
			}
			for _, tc := range []struct {
				name string
				o    *graph.Observation
			}{
				{"email only", f.obs(t, "r1", "email:ADA.LOVELACE@analytical.org")},
				{"anonymousId only", f.obs(t, "r2", adaAnon)},
				{"phone written otherwise", f.obs(t, "r3", "phone:(415) 555-0132")},
				{"with a new identifier", f.obs(t, "r4", "user_id:someone-new", "phone:415.555.0132")},
				{"alias from the old anonymousId", &graph.Observation{MessageID: "r5", Source: "test", Time: t0,
					Identifiers: []graph.Key{{Type: "user_id", Value: "ada-2"}}, PreviousID: "anon-ada-7f3c", Event: graph.Event{Type: "alias"}}},
			} {
				res := f.ingest(t, tc.o)
				if res.Suppressed != 1 || res.Stored != 0 {
					t.Errorf("%s: result %+v, want it suppressed", tc.name, res)
				}
			}
			for _, k := range []string{ada, adaAnon, adaPhone, "user_id:someone-new", "user_id:ada-2"} {
				if f.exists(t, k) {
					t.Errorf("%s was re-created after erasure", k)
				}
			}
			// A batch mixing people drops only the suppressed message.
			res := f.ingest(t, f.obs(t, "m1", bob, "user_id:bob-1"), f.obs(t, "m2", ada))
			if res.Stored != 1 || res.Suppressed != 1 || !f.exists(t, "user_id:bob-1") {
				t.Errorf("mixed batch: %+v, want bob stored and ada dropped", res)
			}
			// The receipt can be read back by its request ID.
			back, err := f.svc.Receipt(context.Background(), rc.ID)
			if err != nil || back.SubjectHash != rc.SubjectHash || back.Deleted[erase.CountIdentifiers] != 4 {
				t.Errorf("receipt %s read back: %+v, %v", rc.ID, back, err)
			}
			// Idempotent: erasing again finds nobody and fails nothing.
			again, err := f.svc.Erase(context.Background(), adaAnon, erase.EraseAndSuppress, "test")
			if err != nil || again.Found {
				t.Errorf("erasing again: %+v, %v", again, err)
			}
			// Unsuppressing by any of the identifiers lets the person back,
			// reading only their own suppressions.
			f.svc.Store = listless{f.svc.Store}
			un, err := f.svc.Erase(context.Background(), "phone:4155550132", erase.Unsuppress, "test")
			if err != nil || un.SuppressionsRemoved != 4 {
				t.Fatalf("unsuppress: %+v, %v", un, err)
			}
			if res := f.ingest(t, f.obs(t, "r6", ada)); res.Stored != 1 || !f.exists(t, ada) {
				t.Errorf("after unsuppress: %+v, want ada stored", res)
			}
		})
	}
}

// TestModes checks ERASE_ONLY (the person may return) and SUPPRESS_ONLY
// (the data stays, new messages are dropped), and refused subjects.
func TestModes(t *testing.T) {
	f := newFixture(t, backends.OpenPebble(t), "")
	seedAda(t, f)
	ctx := context.Background()
	rc, err := f.svc.Erase(ctx, adaAnon, erase.SuppressOnly, "test")
	if err != nil || rc.SuppressionsAdded != 4 || len(rc.Deleted) != 0 {
		t.Fatalf("suppress only: %+v, %v", rc, err)
	}
	if !f.exists(t, ada) {
		t.Error("suppress only deleted data")
	}
	if res := f.ingest(t, f.obs(t, "s1", ada)); res.Suppressed != 1 {
		t.Errorf("suppress only: a new message was stored: %+v", res)
	}
	f2 := newFixture(t, backends.OpenPebble(t), "")
	seedAda(t, f2)
	if rc, err := f2.svc.Erase(ctx, ada, erase.EraseOnly, "test"); err != nil || rc.SuppressionsAdded != 0 || f2.exists(t, adaAnon) {
		t.Fatalf("erase only: %+v, %v", rc, err)
	}
	if res := f2.ingest(t, f2.obs(t, "e1", ada)); res.Stored != 1 {
		t.Errorf("erase only: the person could not return: %+v", res)
	}
	for _, bad := range []string{"", "ada", "email:", "email:not an email", "bad type:x"} {
		if _, err := f2.svc.Erase(ctx, bad, erase.EraseAndSuppress, "test"); graph.ErrorKind(err) != graph.KindInvalid {
			t.Errorf("subject %q: %v, want invalid", bad, err)
		}
	}
	if _, err := erase.ParseMode("DELETE"); graph.ErrorKind(err) != graph.KindInvalid {
		t.Errorf("mode DELETE accepted: %v", err)
	}
}

// TestLedgerReappliedToRestoredBackup erases a person, restores a copy
// of the embedded store taken before, and opens it again as serve does:
// the person is erased again and stays suppressed.
func TestLedgerReappliedToRestoredBackup(t *testing.T) {
	root := t.TempDir()
	dir, backup, ledger := filepath.Join(root, "data"), filepath.Join(root, "backup"), filepath.Join(root, "idgraph.erasures.jsonl")
	open := func() *pebble.Store {
		s, err := pebble.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	f := newFixture(t, s, ledger)
	seedAda(t, f)
	s.Close()
	if err := os.CopyFS(backup, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	s = open()
	f = newFixture(t, s, ledger)
	rc, err := f.svc.Erase(context.Background(), ada, erase.EraseAndSuppress, "test")
	if err != nil || !rc.Found {
		t.Fatalf("erase: %+v, %v", rc, err)
	}
	s.Close()
	// Restore the backup over the store; the ledger stays where it is.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	before := newFixture(t, s, "") // without the ledger: the backup holds ada
	if !before.exists(t, ada) {
		t.Fatal("the restored backup does not hold the person")
	}
	checkRestored(t, s, ledger, rc.ID)
}

// TestLedgerReappliedToRestoredNeo4j is the same on Neo4j. Community's
// backup (neo4j-admin database dump/load) needs the database stopped,
// which the shared test server cannot be, so the restore is logical: the
// database is emptied and the backup's content, the state before the
// erasure, written again without the ledger; then the service opens with
// the ledger as serve does.
func TestLedgerReappliedToRestoredNeo4j(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "idgraph.erasures.jsonl")
	s := backends.OpenNeo4j(t)
	f := newFixture(t, s, ledger)
	seedAda(t, f)
	rc, err := f.svc.Erase(context.Background(), ada, erase.EraseAndSuppress, "test")
	if err != nil || !rc.Found {
		t.Fatalf("erase: %+v, %v", rc, err)
	}
	if err := s.(interface{ Reset(context.Context) error }).Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := newFixture(t, s, "") // the restored backup, without the ledger
	seedAda(t, before)
	if !before.exists(t, ada) {
		t.Fatal("the restored backup does not hold the person")
	}
	checkRestored(t, s, ledger, rc.ID)
}

// checkRestored opens the erasure service over a restored store with the
// ledger, as serve does: none of the erased person's identifiers is left
// (0 resurrected), the other person is, a message carrying the person's
// identifier is suppressed, the receipt says it was replayed, and a second
// opening does nothing more.
func checkRestored(t *testing.T, s graph.Store, ledger, receipt string) {
	t.Helper()
	f := newFixture(t, s, ledger)
	resurrected := 0
	for _, k := range []string{ada, adaAnon, adaPhone, "user_id:ada-1"} {
		if f.exists(t, k) {
			resurrected++
			t.Errorf("%s resurrected by the restore", k)
		}
	}
	t.Logf("after the restore: %d of 4 erased identifiers resurrected", resurrected)
	if !f.exists(t, bob) {
		t.Error("the restore replay erased someone else")
	}
	if res := f.ingest(t, f.obs(t, "x1", adaAnon)); res.Suppressed != 1 {
		t.Errorf("after the restore a message was stored: %+v", res)
	}
	back, err := f.svc.Receipt(context.Background(), receipt)
	if err != nil || !back.Replayed {
		t.Errorf("replayed receipt: %+v, %v", back, err)
	}
	// Opening again does nothing more: the receipt is there.
	res, err := f.svc.Replay(context.Background())
	if err != nil || len(res.Requests) != 0 || res.Profiles != 0 {
		t.Errorf("second replay: %+v, %v", res, err)
	}
}

// TestErasureRedactsTheAuditChain: with Redact wired to the audit log as
// serve wires it, erasing a person blanks the targets of the audit
// entries naming any of their identifiers (the subject's too), leaves
// another person's entries readable, and the chain still verifies.
func TestErasureRedactsTheAuditChain(t *testing.T) {
	store := backends.OpenPebble(t)
	f := newFixture(t, store, "")
	pepper := []byte("0123456789abcdef0123456789abcdef")
	log, err := audit.Open(store, pepper)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Redact = func(ctx context.Context, keys []graph.Key) error {
		for _, k := range keys {
			if _, err := log.Redact(ctx, log.SubjectHash(k.String())); err != nil {
				return err
			}
		}
		return nil
	}
	seedAda(t, f)
	ctx := context.Background()
	subject := func(raw string) string {
		k, err := f.norm.Normalize(raw[:indexColon(raw)], raw[indexColon(raw)+1:])
		if err != nil {
			t.Fatal(err)
		}
		return k.String()
	}
	for _, who := range []string{adaPhone, bob} {
		if _, err := log.Append(ctx, audit.Record{Action: "link", Target: "steward linked " + who, Subjects: []string{subject(who)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.Erase(ctx, ada, erase.EraseAndSuppress, "test"); err != nil {
		t.Fatal(err)
	}
	for who, readable := range map[string]bool{adaPhone: false, bob: true} {
		es, err := log.EntriesFor(ctx, subject(who))
		if err != nil || len(es) != 1 {
			t.Fatalf("entries for %s: %v %v", who, es, err)
		}
		if got := es[0].Target != ""; got != readable {
			t.Errorf("%s's entry readable %v after erasing ada, want %v: %+v", who, got, readable, es[0])
		}
	}
	rep, err := audit.Verify(ctx, log.Store(), pepper)
	if err != nil || rep.Broken != nil || rep.Redacted != 1 {
		t.Fatalf("verify after the erasure: %+v %v", rep, err)
	}
}

// listless is a store that refuses to list every suppression: unsuppressing
// one person must read only theirs.
type listless struct{ erase.Store }

func (listless) Suppressions(context.Context) (map[string]string, error) {
	return nil, errors.New("read the whole suppression list")
}

// TestEraseSweepsWhatAStaleServerStored: with the set following the
// store, erase waits for other servers to read the suppressions, then
// erases again whoever holds an erased identifier: a server that had
// not yet read them may have stored a message of the person while the
// erasure ran (here one with no suppression set at all, after the
// erasure committed). Nobody else is touched.
func TestEraseSweepsWhatAStaleServerStored(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), "")
			f.svc.Set.Follow(3 * time.Second)
			seedAda(t, f)
			stale := graph.NewStitcher(f.store, graph.DefaultConfig())
			type result struct {
				rc  *erase.Receipt
				err error
			}
			done := make(chan result, 1)
			go func() {
				rc, err := f.svc.Erase(context.Background(), ada, erase.EraseAndSuppress, "test")
				done <- result{rc, err}
			}()
			for f.exists(t, ada) {
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := stale.Ingest(context.Background(), []*graph.Observation{f.obs(t, "late", ada, "anonymous_id:late-device")}); err != nil {
				t.Fatal(err)
			}
			if !f.exists(t, ada) {
				t.Fatal("the stale server did not store the message")
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute):
				t.Fatal("erase did not return")
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			for _, k := range []string{ada, "anonymous_id:late-device", adaAnon} {
				if f.exists(t, k) {
					t.Errorf("%s is still stored after erase returned", k)
				}
			}
			if !f.exists(t, bob) {
				t.Error("someone else was erased")
			}
			if r.rc.Deleted[erase.CountProfiles] != 3 || !f.svc.Set.Has(f.svc.Hasher.Hash(graph.Key{Type: graph.TypeAnonymousID, Value: "late-device"})) {
				t.Errorf("receipt %+v: want 3 profiles counted (2 erased, 1 swept) and the late device suppressed", r.rc)
			}
		})
	}
}

// TestSetCurrent: a following set reads the store's changes before
// answering once its last read is older than the bound (here always);
// a set that does not follow never reads, and ingest through it keeps
// what it loaded.
func TestSetCurrent(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			store := b.Open(t)
			h := erase.NewHasher([]byte("pepper"))
			e := store.(erase.Backend).Erasure()
			following, still := erase.NewSet(h), erase.NewSet(h)
			following.Follow(time.Nanosecond)
			for _, s := range []*erase.Set{following, still} {
				if err := s.Load(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			k := graph.Key{Type: graph.TypeEmail, Value: "x@y.io"}
			if err := e.AddSuppressions(ctx, "r1", []string{h.Hash(k)}); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*erase.Set{following, still} {
				if err := s.Current(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if !following.Suppressed(k) || still.Suppressed(k) {
				t.Errorf("after Current: following %v, not following %v; want true, false", following.Suppressed(k), still.Suppressed(k))
			}
			if err := e.RemoveSuppressions(ctx, []string{h.Hash(k)}); err != nil {
				t.Fatal(err)
			}
			st := graph.NewStitcher(store, graph.DefaultConfig())
			st.Suppressor = following
			if res, err := st.Ingest(ctx, []*graph.Observation{{MessageID: "m1", Identifiers: []graph.Key{k}, Time: t0}}); err != nil || res.Suppressed != 0 {
				t.Errorf("ingest after the unsuppression: %+v, %v; want it stored", res, err)
			}
		})
	}
}
