package lang

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkWindowedAggregate evaluates a filtered 30-day sum over a profile
// with 1,000 events of that name spread over 60 days (the figure is in
// docs/benchmarks.md).
func BenchmarkWindowedAggregate(b *testing.B) {
	p, err := Compile(`events("Order Completed").where(prop("revenue") >= 50).within(30d).sum(prop("revenue")) > 500`, Options{})
	if err != nil {
		b.Fatal(err)
	}
	s := &Snapshot{}
	for i := range 1000 {
		s.Events = append(s.Events, Event{
			Name: "Order Completed", MessageID: fmt.Sprint("m", i),
			Timestamp:  now0.Add(-time.Duration(i) * 60 * 24 * time.Hour / 1000),
			Properties: map[string]any{"revenue": json.Number(fmt.Sprint(i % 100)), "sku": fmt.Sprint("s", i%7)},
		})
	}
	view := s.View()
	b.Run("Eval", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !Eval(p, view, now0).Value.Bool {
				b.Fatal("not a member")
			}
		}
	})
	b.Run("Evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, _ := Evaluate(p, view, now0); !v.Bool {
				b.Fatal("not a member")
			}
		}
	})
}
