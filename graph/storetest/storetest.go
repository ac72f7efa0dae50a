// Package storetest is the contract suite every graph.Store backend passes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// Opener returns an empty store for one test.
type Opener func(t *testing.T) graph.Store

// Run runs every contract test against the backend.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s graph.Store)
	}{
		{"StitchesCoObservedIdentifiers", testStitch},
		{"OlderProfileSurvivesMerge", testMergeSurvivor},
		{"ChainedMergesPointAtRoot", testChainedMerges},
		{"FamilyTabletDoesNotMergeTwoUsers", testFamilyTablet},
		{"EmailLimitLeavesSixthOut", testEmailLimit},
		{"HubDetection", testHub},
		{"DeduplicatesByMessageID", testDedupe},
		{"ExpiredEventsStitchedNotKept", testExpiredAtIngest},
		{"TraitsNewestWins", testTraits},
		{"AliasTakesStoredType", testAlias},
		{"TimelineIsUnionOfIdentifiers", testTimeline},
		{"Settings", testSettings},
		{"BatchReads", testBatchReads},
		{"ProfilesData", testProfilesData},
		{"EdgesOf", testEdgesOf},
		{"TimelinePaging", testTimelinePaging},
		{"Search", testSearch},
		{"CountProfiles", testCountProfiles},
		{"ProbabilisticMatching", testProbabilisticMatching},
		{"MatchingAnchorNotInMessage", testMatchingAnchorNotInMessage},
		{"ApplyLinks", testApplyLinks},
		{"SharedDeviceRepaired", testSharedDeviceRepaired},
		{"RejectedPairNotProposedAgain", testRejectedPairNotProposedAgain},
		{"MatchingGuards", testMatchingGuards},
		{"ReviewQueue", testReviewQueue},
		{"ApproveAndAudit", testApproveAndAudit},
		{"RejectSticks", testRejectSticks},
		{"Link", testLink},
		{"SplitUndoRoundTrip", testSplitUndoRoundTrip},
		{"UndoMerge", testUndoMerge},
		{"ConcurrentDecisions", testConcurrentDecisions},
		{"DryRun", testDryRun},
		{"StewardDryRun", testStewardDryRun},
		{"SplitKeepsOwnTraits", testSplitKeepsOwnTraits},
		{"OutOfRangeTimesRefused", testOutOfRangeTimesRefused},
		{"NameGuardHousehold", testNameGuardHousehold},
		{"NameGuardApprove", testNameGuardApprove},
		{"NameGuardCases", testNameGuardCases},
		{"NameGuardNameChange", testNameGuardNameChange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
			CheckInvariants(t, s)
		})
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Obs builds an observation from "type:value" strings.
func Obs(msgID string, at time.Time, ids ...string) *graph.Observation {
	o := &graph.Observation{MessageID: msgID, Source: "test", Time: at, Event: graph.Event{Type: "track", Name: "Tested"}}
	for _, id := range ids {
		typ, v, _ := strings.Cut(id, ":")
		o.Identifiers = append(o.Identifiers, graph.Key{Type: typ, Value: v})
	}
	return o
}

// Ingest runs a stitcher with the default config over the observations,
// one Ingest call per argument.
func Ingest(t *testing.T, s graph.Store, obs ...*graph.Observation) graph.Result {
	t.Helper()
	return IngestWith(t, s, graph.DefaultConfig(), obs...)
}

// IngestWith is Ingest with a config.
func IngestWith(t *testing.T, s graph.Store, cfg graph.Config, obs ...*graph.Observation) graph.Result {
	t.Helper()
	st := graph.NewStitcher(s, cfg)
	var total graph.Result
	for _, o := range obs {
		r, err := st.Ingest(context.Background(), []*graph.Observation{o})
		if err != nil {
			t.Fatalf("ingest %s: %v", o.MessageID, err)
		}
		total.Stored += r.Stored
		total.Duplicates += r.Duplicates
		total.Merges += r.Merges
		total.Hubs += r.Hubs
		total.Repaired += r.Repaired
		total.RepairErrors = append(total.RepairErrors, r.RepairErrors...)
	}
	return total
}

func key(s string) graph.Key {
	typ, v, _ := strings.Cut(s, ":")
	return graph.Key{Type: typ, Value: v}
}

// ProfileOf returns the live profile of the identifier "type:value".
// ExactlyOneWins checks the errors of racing operations: one succeeded and
// every other lost with an error lost accepts (a conflict). what names the
// operations in the failure.
func ExactlyOneWins(t testing.TB, what string, errs []error, lost func(error) bool) {
	t.Helper()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !lost(err):
			t.Errorf("a losing %s failed with %v, not a conflict", what, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent %s succeeded, want exactly 1: %v", ok, what, errors.Join(errs...))
	}
}

// IsConflict reports a conflict error, the loss ExactlyOneWins expects of
// most races.
func IsConflict(err error) bool { return graph.ErrorKind(err) == graph.KindConflict }

func ProfileOf(t *testing.T, s graph.Store, id string) *graph.Profile {
	t.Helper()
	ctx := context.Background()
	n, err := s.Identifier(ctx, key(id))
	if err != nil {
		t.Fatalf("identifier %s: %v", id, err)
	}
	p, err := s.Profile(ctx, n.Profile)
	if err != nil {
		t.Fatalf("profile of %s: %v", id, err)
	}
	if p.MergedInto != "" {
		if p, err = s.Profile(ctx, p.MergedInto); err != nil {
			t.Fatalf("profile of %s: %v", id, err)
		}
		if p.MergedInto != "" {
			t.Fatalf("profile %s was merged into %s, which is not live", n.Profile, p.ID)
		}
	}
	return p
}

// Partition returns every live profile as its sorted identifier keys, the
// profiles sorted by their first key: two graphs with the same partition
// have the same profiles whatever their IDs.
func Partition(t *testing.T, s graph.Store) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	after := ""
	for {
		ps, err := s.Profiles(ctx, after, 100)
		if err != nil {
			t.Fatalf("profiles: %v", err)
		}
		if len(ps) == 0 {
			break
		}
		for _, p := range ps {
			ids, err := graph.ProfileIdentifiers(ctx, s, p)
			if err != nil {
				t.Fatalf("profile identifiers: %v", err)
			}
			var ks []string
			for _, n := range ids {
				ks = append(ks, n.Key.String())
			}
			slices.Sort(ks)
			out = append(out, strings.Join(ks, " "))
		}
		after = ps[len(ps)-1].ID
	}
	slices.Sort(out)
	return out
}

// CheckInvariants checks that every identifier of a live profile is listed
// once, that the per-type counts match, and that absorbed profiles point at
// live ones.
func CheckInvariants(t *testing.T, s graph.Store) {
	t.Helper()
	ctx := context.Background()
	seen := map[graph.Key]string{}
	after := ""
	for {
		ps, err := s.Profiles(ctx, after, 100)
		if err != nil {
			t.Fatalf("profiles: %v", err)
		}
		if len(ps) == 0 {
			return
		}
		for _, p := range ps {
			ids, err := graph.ProfileIdentifiers(ctx, s, p)
			if err != nil {
				t.Fatalf("profile identifiers: %v", err)
			}
			counts := map[string]int{}
			for _, n := range ids {
				if other, dup := seen[n.Key]; dup {
					t.Errorf("identifier %s is in profiles %s and %s", n.Key, other, p.ID)
				}
				seen[n.Key] = p.ID
				counts[n.Type]++
			}
			for typ, c := range p.Counts {
				if c != counts[typ] {
					t.Errorf("profile %s counts %d %s identifiers, holds %d", p.ID, c, typ, counts[typ])
				}
			}
			for _, id := range p.Absorbed {
				a, err := s.Profile(ctx, id)
				if err != nil {
					t.Fatalf("absorbed profile %s: %v", id, err)
				}
				if a.MergedInto != p.ID {
					t.Errorf("absorbed profile %s points at %s, not %s", id, a.MergedInto, p.ID)
				}
			}
		}
		after = ps[len(ps)-1].ID
	}
}

func wantPartition(t *testing.T, s graph.Store, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := Partition(t, s); !slices.Equal(got, want) {
		t.Errorf("profiles:\n got %q\nwant %q", got, want)
	}
}

func edge(t *testing.T, s graph.Store, a, b string) *graph.Edge {
	t.Helper()
	var got *graph.Edge
	err := s.Update(context.Background(), func(ctx context.Context, tx graph.Tx) error {
		p := graph.Pair(key(a), key(b))
		es, err := tx.Edges(ctx, [][2]graph.Key{p})
		got = es[p]
		if err != nil {
			return err
		}
		return tx.Apply(ctx, &graph.Changes{})
	})
	if err != nil {
		t.Fatalf("edges: %v", err)
	}
	if got == nil {
		t.Fatalf("no edge between %s and %s", a, b)
	}
	return got
}

func msg(i int) string { return fmt.Sprintf("m%d", i) }
