package segments_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// Run samples every segment's size once per period (hourly by default)
// from the maintained counts, computed traits not included.
func TestRunSamplesSizes(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f.define(lang.KindSegment, "pro", `trait("plan") = "pro"`)
		f.define(lang.KindComputed, "plan_copy", `trait("plan")`)
		join := func(user string) {
			t.Helper()
			o := graphtest.Obs("m-"+user, t0, "user_id:"+user)
			o.Event, o.Traits = graph.Event{Type: "identify"}, map[string]any{"plan": "pro"}
			f.ingest(o)
			f.update("user_id:"+user, segments.Change{Traits: []string{"plan"}})
		}
		join("ann")
		join("bob")
		wake := make(chan struct{}, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.e.Run(ctx, wake, time.Hour, func(err error) { t.Error(err) })
		}()
		sizes := func(n int) []int {
			t.Helper()
			deadline := time.Now().Add(20 * time.Second)
			for {
				got, err := f.s.SizeSamples(ctx, "pro", t0.Add(-time.Hour), t0.Add(24*time.Hour), 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) >= n || time.Now().After(deadline) {
					var out []int
					for _, s := range got {
						out = append(out, s.Size)
					}
					return out
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		if got := sizes(1); !slices.Equal(got, []int{2}) {
			t.Fatalf("first sample %v, want [2]", got)
		}
		join("cy")
		f.clock.Set(t0.Add(90 * time.Minute)) // the next hour's period
		wake <- struct{}{}
		if got := sizes(2); !slices.Equal(got, []int{2, 3}) {
			t.Fatalf("samples %v, want [2 3]", got)
		}
		got, _ := f.s.SizeSamples(ctx, "pro", t0.Add(-time.Hour), t0.Add(24*time.Hour), 100)
		if !got[1].At.Equal(t0.Add(time.Hour)) {
			t.Errorf("second sample at %s, want the start of its hour %s", got[1].At, t0.Add(time.Hour))
		}
		if ps, _ := f.s.SizeSamples(ctx, "plan_copy", t0.Add(-time.Hour), t0.Add(24*time.Hour), 100); len(ps) != 0 {
			t.Errorf("a computed trait was sampled: %v", ps)
		}
		cancel()
		<-done
	})
}

func TestThin(t *testing.T) {
	var in []segments.SizeSample
	for i := range 10 {
		in = append(in, segments.SizeSample{Size: i})
	}
	for _, tc := range []struct {
		n    int
		want []int
	}{{0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, {20, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, {3, []int{2, 5, 9}}, {1, []int{9}}} {
		var got []int
		for _, s := range segments.Thin(in, tc.n) {
			got = append(got, s.Size)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Thin(10 samples, %d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}
