// Package storetest is the contract suite every suppression.Store runs.
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/suppression"
)

// Opener returns an empty graph store that keeps suppression lists.
type Opener func(t *testing.T) graph.Store

func open(t *testing.T, o Opener) suppression.Store {
	t.Helper()
	b, ok := o(t).(suppression.Backend)
	if !ok {
		t.Fatal("the store keeps no suppression lists (no SuppressionLists method)")
	}
	return b.SuppressionLists()
}

var (
	t0      = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	global  = suppression.Scope{Kind: suppression.Global}
	dst     = suppression.Scope{Kind: suppression.Destination, Target: "dst_0123456789abcdef"}
	email   = suppression.Scope{Kind: suppression.Channel, Target: "email"}
	emailer = suppression.Scope{Kind: suppression.Channel, Target: "email-2"} // "email" is its prefix
)

// hash is a well-formed hash for n.
func hash(n int) string { return fmt.Sprintf("%064x", n) }

func entry(s suppression.Scope, n int, typ string) suppression.Entry {
	return suppression.Entry{Scope: s, Hash: hash(n), Type: typ, CreatedAt: t0.Add(time.Duration(n) * time.Second)}
}

func sorted(es []suppression.Entry) []suppression.Entry {
	out := slices.Clone(es)
	suppression.SortEntries(out)
	return out
}

func mustAdd(t *testing.T, s suppression.Store, es ...suppression.Entry) int {
	t.Helper()
	n, err := s.AddSuppressionEntries(context.Background(), es)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// all pages through a scope two entries at a time.
func all(t *testing.T, s suppression.Store, sc suppression.Scope) []suppression.Entry {
	t.Helper()
	var out []suppression.Entry
	after := ""
	for {
		page, err := s.SuppressionEntries(context.Background(), sc, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 2 {
			return out
		}
		after = page[len(page)-1].Hash
	}
}

// counts reads the store's counts.
func counts(t *testing.T, s suppression.Store) []suppression.Count {
	t.Helper()
	cs, err := s.SuppressionCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// scanCounts counts the scopes' entries by paging through them all.
func scanCounts(t *testing.T, s suppression.Store, scopes []suppression.Scope) []suppression.Count {
	t.Helper()
	scanned := map[suppression.Count]int{}
	for _, sc := range scopes {
		for _, e := range all(t, s, sc) {
			scanned[suppression.Count{Scope: sc, Type: e.Type}]++
		}
	}
	out := []suppression.Count{}
	for c, n := range scanned {
		c.N = n
		out = append(out, c)
	}
	suppression.SortCounts(out)
	return out
}

// Reopener opens an empty store and returns it with a function that opens
// it again as a restarted process would (closing the one before where the
// backend needs that), returning the new store.
type Reopener func(t *testing.T) (graph.Store, func() graph.Store)

func lists(t *testing.T, g graph.Store) suppression.Store {
	t.Helper()
	b, ok := g.(suppression.Backend)
	if !ok {
		t.Fatal("the store keeps no suppression lists (no SuppressionLists method)")
	}
	return b.SuppressionLists()
}

// RunReopen checks that the counts survive a restart: counts equal a scan
// after reopening, and adds and removes after it keep them so.
func RunReopen(t *testing.T, o Reopener) {
	ctx := context.Background()
	first, reopen := o(t)
	s := lists(t, first)
	scopes := []suppression.Scope{global, dst, email}
	rng := rand.New(rand.NewPCG(5, 17))
	step := func() {
		t.Helper()
		sc := scopes[rng.IntN(len(scopes))]
		var es []suppression.Entry
		var hs []string
		for range 1 + rng.IntN(8) {
			n := rng.IntN(20)
			es = append(es, entry(sc, n, []string{"email", "phone"}[n%2]))
			hs = append(hs, hash(n))
		}
		var err error
		if rng.IntN(3) == 0 {
			_, err = s.RemoveSuppressionEntries(ctx, sc, hs)
		} else {
			_, err = s.AddSuppressionEntries(ctx, es)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		for range 20 {
			step()
		}
		before := counts(t, s)
		s = lists(t, reopen())
		got, want := counts(t, s), scanCounts(t, s, scopes)
		if !slices.Equal(got, want) || !slices.Equal(got, before) {
			t.Fatalf("round %d: after reopening, counts %+v; a scan counts %+v; before %+v", round, got, want, before)
		}
		if len(got) == 0 {
			t.Fatalf("round %d: nothing stored: the test checks no count", round)
		}
	}
}

// Run runs the contract.
func Run(t *testing.T, o Opener) {
	ctx := context.Background()
	t.Run("AddIsIdempotentAndScoped", func(t *testing.T) {
		s := open(t, o)
		if n := mustAdd(t, s, entry(global, 1, "email"), entry(dst, 1, "email"), entry(email, 2, "phone")); n != 3 {
			t.Fatalf("added %d, want 3", n)
		}
		again := entry(global, 1, "phone") // same scope and hash: kept as first stored
		again.CreatedAt = t0.Add(time.Hour)
		if n := mustAdd(t, s, again, entry(global, 3, "user_id"), entry(global, 3, "user_id")); n != 1 {
			t.Fatalf("added %d, want 1 (one new, one stored, one repeated)", n)
		}
		if got, want := all(t, s, global), []suppression.Entry{entry(global, 1, "email"), entry(global, 3, "user_id")}; !slices.Equal(got, want) {
			t.Fatalf("global = %+v, want %+v", got, want)
		}
		if got := all(t, s, dst); !slices.Equal(got, []suppression.Entry{entry(dst, 1, "email")}) {
			t.Fatalf("destination = %+v", got)
		}
		if got := all(t, s, emailer); len(got) != 0 {
			t.Fatalf("a channel whose name extends another's holds %+v", got)
		}
		if n := mustAdd(t, s); n != 0 {
			t.Fatalf("adding nothing added %d", n)
		}
	})
	t.Run("LookupAcrossScopes", func(t *testing.T) {
		s := open(t, o)
		mustAdd(t, s, entry(global, 1, "email"), entry(dst, 1, "email"), entry(email, 2, "phone"), entry(emailer, 4, "device_id"))
		got, err := s.SuppressionsOf(ctx, []string{hash(1), hash(2), hash(3), hash(1)})
		if err != nil {
			t.Fatal(err)
		}
		want := sorted([]suppression.Entry{entry(global, 1, "email"), entry(dst, 1, "email"), entry(email, 2, "phone")})
		if !slices.Equal(sorted(got), want) {
			t.Fatalf("SuppressionsOf = %+v, want %+v", got, want)
		}
		if got, err := s.SuppressionsOf(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("SuppressionsOf(nil) = %+v, %v", got, err)
		}
	})
	t.Run("RemoveAndCount", func(t *testing.T) {
		s := open(t, o)
		mustAdd(t, s, entry(global, 1, "email"), entry(global, 2, "email"), entry(global, 3, "phone"), entry(dst, 1, "email"))
		n, err := s.RemoveSuppressionEntries(ctx, global, []string{hash(1), hash(9), hash(1)})
		if err != nil || n != 1 {
			t.Fatalf("removed %d, %v; want 1", n, err)
		}
		if got, _ := s.SuppressionsOf(ctx, []string{hash(1)}); !slices.Equal(got, []suppression.Entry{entry(dst, 1, "email")}) {
			t.Fatalf("after removing from global, hash 1 is in %+v", got)
		}
		cs, err := s.SuppressionCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []suppression.Count{{Scope: dst, Type: "email", N: 1}, {Scope: global, Type: "email", N: 1}, {Scope: global, Type: "phone", N: 1}}
		if !slices.Equal(cs, want) {
			t.Fatalf("counts = %+v, want %+v", cs, want)
		}
		if n, err := s.RemoveSuppressionEntries(ctx, email, []string{hash(1)}); err != nil || n != 0 {
			t.Fatalf("removing from a scope that lacks it: %d, %v", n, err)
		}
	})
	t.Run("RandomAgainstModel", func(t *testing.T) {
		s := open(t, o)
		rng := rand.New(rand.NewPCG(7, 15))
		scopes := []suppression.Scope{global, dst, email, emailer}
		model := map[suppression.Scope]map[string]suppression.Entry{}
		for range 40 {
			sc := scopes[rng.IntN(len(scopes))]
			var es []suppression.Entry
			for range 1 + rng.IntN(6) {
				es = append(es, entry(sc, rng.IntN(12), "email"))
			}
			if model[sc] == nil {
				model[sc] = map[string]suppression.Entry{}
			}
			if rng.IntN(3) == 0 {
				hs := make([]string, len(es))
				want := 0
				for i, e := range es {
					hs[i] = e.Hash
					if _, ok := model[sc][e.Hash]; ok {
						want++
						delete(model[sc], e.Hash)
					}
				}
				if n, err := s.RemoveSuppressionEntries(ctx, sc, hs); err != nil || n != want {
					t.Fatalf("remove: %d, %v; want %d", n, err, want)
				}
				continue
			}
			want := 0
			for _, e := range es {
				if _, ok := model[sc][e.Hash]; !ok {
					want++
					model[sc][e.Hash] = e
				}
			}
			if n := mustAdd(t, s, es...); n != want {
				t.Fatalf("add: %d, want %d", n, want)
			}
		}
		for _, sc := range scopes {
			var want []suppression.Entry
			for _, e := range model[sc] {
				want = append(want, e)
			}
			if got := all(t, s, sc); !slices.Equal(got, sorted(want)) {
				t.Fatalf("%s = %+v, want %+v", sc, got, sorted(want))
			}
		}
	})
	t.Run("CountsEqualAScan", func(t *testing.T) {
		// After random adds and removes of two types, duplicates within a
		// call, entries listed already and removals of entries not listed
		// included, the counts are those of a scan of every scope.
		s := open(t, o)
		rng := rand.New(rand.NewPCG(3, 11))
		scopes := []suppression.Scope{global, dst, email, emailer}
		types := []string{"email", "phone"}
		for step := range 60 {
			sc := scopes[rng.IntN(len(scopes))]
			var es []suppression.Entry
			var hs []string
			for range 1 + rng.IntN(6) {
				n := rng.IntN(10)
				es = append(es, entry(sc, n, types[n%2])) // a hash has one type, as a normalised identifier does
				hs = append(hs, hash(n))
			}
			if rng.IntN(3) == 0 {
				if _, err := s.RemoveSuppressionEntries(ctx, sc, hs); err != nil {
					t.Fatal(err)
				}
			} else {
				mustAdd(t, s, es...)
			}
			if got, want := counts(t, s), scanCounts(t, s, scopes); !slices.Equal(got, want) {
				t.Fatalf("step %d: counts %+v, a scan counts %+v", step, got, want)
			}
		}
	})
	t.Run("ConcurrentCountsEqualAScan", func(t *testing.T) {
		// Workers add and remove at once, in overlapping scopes and
		// hashes: entries added twice by two calls, removed by two calls,
		// added and removed together, repeated within a call, and removed
		// while not listed. The counts must be those of a scan, and the
		// entries the calls reported added, less those reported removed,
		// must be the entries stored: a remove racing another for one
		// entry counts it once.
		s := open(t, o)
		scopes := []suppression.Scope{global, dst, email}
		types := []string{"email", "phone"}
		var wg sync.WaitGroup
		var net atomic.Int64
		for w := range 6 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 23))
				for range 25 {
					sc := scopes[rng.IntN(len(scopes))]
					var es []suppression.Entry
					var hs []string
					for range 1 + rng.IntN(12) {
						n := rng.IntN(30)
						es = append(es, entry(sc, n, types[n%2]))
						hs = append(hs, hash(n))
					}
					if rng.IntN(5) < 2 {
						n, err := s.RemoveSuppressionEntries(ctx, sc, hs)
						if err != nil {
							t.Error(err)
							return
						}
						net.Add(-int64(n))
						continue
					}
					n, err := s.AddSuppressionEntries(ctx, es)
					if err != nil {
						t.Error(err)
						return
					}
					net.Add(int64(n))
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		got, want := counts(t, s), scanCounts(t, s, scopes)
		if !slices.Equal(got, want) {
			t.Fatalf("counts %+v, a scan counts %+v", got, want)
		}
		stored := 0
		for _, c := range want {
			stored += c.N
		}
		if int64(stored) != net.Load() {
			t.Fatalf("%d entries stored; the calls reported %d added net of removals", stored, net.Load())
		}
		if stored == 0 {
			t.Fatal("nothing left stored: the test checks no count")
		}
	})
	t.Run("ConcurrentAddsStoreOnce", func(t *testing.T) {
		s := open(t, o)
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for w := range 4 {
			wg.Go(func() {
				es := make([]suppression.Entry, 50)
				for i := range es {
					es[i] = entry(global, (i+w*10)%60, "email")
				}
				n, err := s.AddSuppressionEntries(ctx, es)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		wg.Wait()
		if got := all(t, s, global); len(got) != 60 {
			t.Fatalf("%d entries stored, want 60", len(got))
		}
		cs, err := s.SuppressionCounts(ctx)
		if err != nil || len(cs) != 1 || cs[0].N != 60 {
			t.Fatalf("counts = %+v, %v", cs, err)
		}
		if total != 60 {
			t.Fatalf("adds reported %d new entries for 60 stored", total)
		}
	})
}
