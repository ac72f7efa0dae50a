package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
)

// A segment's size over time: stored samples in a range, thinned to the
// points asked for; without `to`, the size now as the last point; bad
// ranges and point counts refused with the argument named. Both backends.
func TestSegmentSizeHistory(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			f.send(t, "/v1/track", orderMsg("u-1", "m1", time.Now().Add(-time.Hour)))
			f.mustAs(t, stewKey, createSeg, map[string]any{"key": "buyer", "def": buyerSrc})
			f.awaitLive(t, "buyer")
			f.await(t, `{ segment(key: "buyer") { size } }`, "segment.size", "1")

			day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			var samples []segments.SizeSample
			for h := range 48 {
				samples = append(samples, segments.SizeSample{Segment: "buyer", At: day.Add(time.Duration(h) * time.Hour), Size: 100 + h})
			}
			if err := f.store.(segments.Backend).Segments().PutSizeSamples(context.Background(), samples); err != nil {
				t.Fatal(err)
			}
			const q = `query($from: Time, $to: Time, $n: Int) { segment(key: "buyer") { sizeHistory(from: $from, to: $to, points: $n) { at size } } }`
			sizes := func(vars map[string]any) string {
				t.Helper()
				var out []string
				for _, p := range get(f.must(t, q, vars), "segment.sizeHistory").([]any) {
					out = append(out, fmt.Sprint(get(p, "size")))
				}
				return strings.Join(out, " ")
			}
			rng := func(from, to time.Duration, n int) map[string]any {
				return map[string]any{"from": day.Add(from).Format(time.RFC3339), "to": day.Add(to).Format(time.RFC3339), "n": n}
			}
			for _, c := range []struct {
				name string
				vars map[string]any
				want string
			}{
				{"hours 10 to 13", rng(10*time.Hour, 13*time.Hour, 200), "110 111 112"},
				{"a day thinned to 4", rng(0, 24*time.Hour, 4), "105 111 117 123"},
				{"before any sample", rng(-48*time.Hour, -24*time.Hour, 200), ""},
				{"up to now: the samples, then the size now", map[string]any{"from": day.Add(46 * time.Hour).Format(time.RFC3339)}, "146 147 1"},
			} {
				if got := sizes(c.vars); got != c.want {
					t.Errorf("%s: sizes %q, want %q", c.name, got, c.want)
				}
			}
			f.refused(t, readKey, q, rng(time.Hour, 0, 10), "BAD_USER_INPUT", "from")
			f.refused(t, readKey, q, rng(0, time.Hour, 0), "BAD_USER_INPUT", "points")
			f.refused(t, readKey, q, rng(0, time.Hour, 1001), "BAD_USER_INPUT", "points")
		})
	}
}
