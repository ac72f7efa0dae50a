// Package storetest is the contract suite every consent.Store runs.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
)

// Opener returns an empty graph store that keeps consent records.
type Opener func(t *testing.T) graph.Store

func open(t *testing.T, o Opener) consent.Store {
	t.Helper()
	b, ok := o(t).(consent.Backend)
	if !ok {
		t.Fatal("the store keeps no consent records (no Consent method)")
	}
	return b.Consent()
}

var (
	t0  = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ann = graph.Key{Type: graph.TypeEmail, Value: "ann@example.com"}
	bob = graph.Key{Type: graph.TypeEmail, Value: "bob@example.com"}
	// annA differs from ann only in type: records must not leak across types.
	annA = graph.Key{Type: graph.TypeAnonymousID, Value: "ann@example.com"}
)

// Run runs the contract.
func Run(t *testing.T, o Opener) {
	ctx := context.Background()
	t.Run("AppendAndRead", func(t *testing.T) {
		s := open(t, o)
		recs := []consent.Record{
			{ID: "m2/analytics", Key: ann, Purpose: "analytics", Status: consent.Denied, Time: t0.Add(time.Hour), Source: "segment"},
			{ID: "m1/analytics", Key: ann, Purpose: "analytics", Status: consent.Granted, Time: t0, Expires: t0.Add(48 * time.Hour), Source: "segment"},
			{ID: "m1/analytics", Key: annA, Purpose: "analytics", Status: consent.Granted, Time: t0, Source: "segment"},
			{ID: "x", Key: bob, Purpose: "marketing", Status: consent.Granted, Time: t0, Source: "api", RecordedBy: "abcd1234"},
		}
		if err := s.AppendConsent(ctx, recs); err != nil {
			t.Fatal(err)
		}
		got, err := s.ConsentOf(ctx, []graph.Key{ann})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != "m1/analytics" || got[1].ID != "m2/analytics" {
			t.Fatalf("ann's records = %+v, want m1 then m2", got)
		}
		if !got[0].Expires.Equal(t0.Add(48*time.Hour)) || !got[0].Time.Equal(t0) || got[0].Source != "segment" || got[0].Key != ann {
			t.Fatalf("record not kept whole: %+v", got[0])
		}
		got, err = s.ConsentOf(ctx, []graph.Key{bob, annA})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != "m1/analytics" || got[0].Key != annA || got[1].RecordedBy != "abcd1234" {
			t.Fatalf("bob+annA records = %+v", got)
		}
		if got, err := s.ConsentOf(ctx, []graph.Key{{Type: graph.TypeEmail, Value: "nobody@example.com"}}); err != nil || len(got) != 0 {
			t.Fatalf("unknown key: %v, %v", got, err)
		}
		if got, err := s.ConsentOf(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("no keys: %v, %v", got, err)
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		s := open(t, o)
		r := consent.Record{ID: "m1/ads", Key: ann, Purpose: "advertising", Status: consent.Granted, Time: t0, Source: "segment"}
		for range 3 {
			if err := s.AppendConsent(ctx, []consent.Record{r}); err != nil {
				t.Fatal(err)
			}
		}
		// The same ID stored again with other content keeps the first.
		r2 := r
		r2.Status = consent.Denied
		if err := s.AppendConsent(ctx, []consent.Record{r2}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ConsentOf(ctx, []graph.Key{ann})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Status != consent.Granted {
			t.Fatalf("after re-appends: %+v, want the first record once", got)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		s := open(t, o)
		bad := []consent.Record{
			{Key: ann, Purpose: "analytics", Status: consent.Granted, Time: t0},
			{ID: "a", Key: ann, Purpose: "analytics", Status: "MAYBE", Time: t0},
			{ID: "a", Key: ann, Purpose: "", Status: consent.Granted, Time: t0},
			{ID: "a", Purpose: "analytics", Status: consent.Granted, Time: t0},
		}
		for _, r := range bad {
			err := s.AppendConsent(ctx, []consent.Record{r})
			if graph.ErrorKind(err) != graph.KindInvalid {
				t.Errorf("AppendConsent(%+v) = %v, want invalid", r, err)
			}
		}
		if got, _ := s.ConsentOf(ctx, []graph.Key{ann}); len(got) != 0 {
			t.Fatalf("invalid records stored: %+v", got)
		}
	})
	t.Run("Many", func(t *testing.T) {
		s := open(t, o)
		var recs []consent.Record
		for i := range 300 {
			recs = append(recs, consent.Record{ID: string(rune('a'+i%26)) + time.Duration(i).String(), Key: ann, Purpose: "analytics",
				Status: consent.Granted, Time: t0.Add(time.Duration(300-i) * time.Second), Source: "segment"})
		}
		if err := s.AppendConsent(ctx, recs); err != nil {
			t.Fatal(err)
		}
		got, err := s.ConsentOf(ctx, []graph.Key{ann, bob})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 300 {
			t.Fatalf("%d records, want 300", len(got))
		}
		for i := 1; i < len(got); i++ {
			if got[i].Time.Before(got[i-1].Time) {
				t.Fatalf("records out of time order at %d", i)
			}
		}
	})
}
