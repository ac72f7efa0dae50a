package destinations_test

import (
	"context"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
)

// A destination with a purpose sends an entry only for a profile whose
// consent is granted, through the one consent check over a real store
// (both backends);
// exits always go; the withheld are counted by reason.
func TestDestinationPurposeGatesEntries(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			g := b.Open(t)
			s := storetest.As[consentBackend](t, g)
			st := graph.NewStitcher(g, graph.DefaultConfig())
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			profile := map[string]string{}
			for i, u := range []string{"ann", "bob", "cat"} {
				k := graph.Key{Type: graph.TypeUserID, Value: u}
				if _, err := st.Ingest(ctx, []*graph.Observation{{MessageID: u, Time: at, Identifiers: []graph.Key{k}, Event: graph.Event{Type: "identify"}}}); err != nil {
					t.Fatal(err)
				}
				n, err := g.Identifier(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				profile[u] = n.Profile
				status := []string{consent.Granted, consent.Denied, ""}[i]
				if status != "" {
					if err := s.Consent().AppendConsent(ctx, []consent.Record{{ID: u, Key: k, Purpose: "analytics", Status: status, Time: at, Source: "test"}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			purposes, _ := consent.NewPurposes(nil, nil)
			chk := &consent.Checker{Store: s.Consent(), Reader: g, Purposes: purposes}
			f := newFixtureOn(t, s, func(o *destinations.Options) { o.Consent, o.Purposes = chk.CheckID, purposes })
			r := newReceiver(t, ok)
			d := f.connect(t, r, "vip")
			if _, err := f.m.SetPurpose(ctx, d.ID, "sales"); graph.ErrorKind(err) != graph.KindInvalid {
				t.Fatalf("an unconfigured purpose: %v", err)
			}
			d, err := f.m.SetPurpose(ctx, d.ID, "analytics")
			if err != nil || d.Purpose != "analytics" {
				t.Fatalf("SetPurpose = %+v, %v", d, err)
			}
			f.feed.add("vip", profile["ann"], segments.Entered)
			f.feed.add("vip", profile["bob"], segments.Entered)
			f.feed.add("vip", profile["cat"], segments.Entered)
			f.feed.add("vip", profile["bob"], segments.Exited)
			last := f.feed.add("vip", "p_gone", segments.Entered)
			eventually(t, "the cursor passes every record", func() bool {
				c, err := f.m.Cursor(ctx, d.ID)
				return err == nil && c.After == last
			})
			got := r.requests()
			if len(got) != 2 || got[0].msg.Data.Profile != profile["ann"] || got[1].msg.Data.Profile != profile["bob"] || got[1].msg.Type != "segment.exited" {
				t.Fatalf("delivered %d: %+v", len(got), got)
			}
			c, _ := f.m.Cursor(ctx, d.ID)
			if c.Withheld[consent.ReasonDenied] != 1 || c.Withheld[consent.ReasonNotGranted] != 2 || c.Delivered != 2 {
				t.Fatalf("cursor = %+v", c)
			}
		})
	}
}

// consentBackend is a store with consent records and destinations.
type consentBackend interface {
	consent.Backend
	destinations.Backend
}
