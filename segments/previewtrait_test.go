package segments_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// PreviewValues evaluates an unsaved computed trait over the first
// profiles by ID, reading events and saved values as a backfill does,
// and saves nothing; bad input is refused naming its field.
func TestPreviewValues(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.define(lang.KindComputed, "orders", `events("Order").count()`)
		f.ingest(track("m1", "Order", t0, `{"revenue": 40}`, "user_id:ann"), track("m2", "Order", t0, `{"revenue": 60}`, "user_id:ann"))
		f.ingest(track("m3", "Page", t0, "", "user_id:bob"))
		f.update("user_id:ann", segments.Change{All: true})
		f.update("user_id:bob", segments.Change{All: true})
		ann, bob := f.profile("user_id:ann"), f.profile("user_id:bob")
		before, err := f.s.LastChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			src, typ string
			want     map[string]string // profile: value, "<nil>" when missing
		}{
			{`events("Order").max(prop("revenue"))`, "number", map[string]string{ann: "60", bob: "<nil>"}},
			{`computed("orders") + 1`, "number", map[string]string{ann: "3", bob: "1"}},
			{`if(has_id("user_id"), "known", "anonymous")`, "string", map[string]string{ann: "known", bob: "known"}},
		} {
			p, err := f.e.PreviewValues(ctx, c.src, 10)
			if err != nil {
				t.Fatalf("%s: %v", c.src, err)
			}
			got := map[string]string{}
			for _, s := range p.Samples {
				got[s.Profile] = fmt.Sprint(s.Value.Interface())
			}
			if p.Type.String() != c.typ || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: %s %v, want %s %v", c.src, p.Type, got, c.typ, c.want)
			}
		}
		if p, err := f.e.PreviewValues(ctx, `1`, 1); err != nil || len(p.Samples) != 1 || p.Samples[0].Profile != min(ann, bob) {
			t.Errorf("a sample of 1: %+v %v", p, err)
		}
		for _, c := range []struct {
			src    string
			sample int
			want   string
		}{
			{`1`, 0, "sample: must be between 1 and 100"},
			{`1`, 101, "sample: must be between 1 and 100"},
			{`events("Order")`, 10, "TYPE"},
			{`1 +`, 10, "SYNTAX"},
		} {
			if _, err := f.e.PreviewValues(ctx, c.src, c.sample); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q, sample %d: %v, want %s", c.src, c.sample, err, c.want)
			}
		}
		if after, err := f.s.LastChange(ctx); err != nil || after != before {
			t.Errorf("previews wrote change records: %d, then %d (%v)", before, after, err)
		}
	})
}
