package retention_test

import (
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/retention"
)

func TestEventType(t *testing.T) {
	for _, tc := range []struct {
		ev   graph.Event
		want string
	}{
		{graph.Event{Type: "track", Name: "Order Completed"}, "Order Completed"},
		{graph.Event{Type: "track"}, "track"},
		{graph.Event{Type: "page", Name: "Pricing"}, "page"},
		{graph.Event{Type: "identify"}, "identify"},
	} {
		if got := retention.EventType(&tc.ev); got != tc.want {
			t.Errorf("EventType(%+v) = %q, want %q", tc.ev, got, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{"395d": 395 * 24 * time.Hour, "0": 0, "0d": 0, "36h": 36 * time.Hour, " 90m ": 90 * time.Minute} {
		if got, err := retention.ParseDuration(s); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "d", "-1d", "1.5d", "1y", "-5h", "99999999d", "3 d"} {
		if _, err := retention.ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) accepted", s)
		}
	}
}

func TestParseRules(t *testing.T) {
	got, err := retention.ParseRules(" Page Viewed = 30d ,page=0")
	if err != nil || len(got) != 2 || got["Page Viewed"] != 30*24*time.Hour || got["page"] != 0 {
		t.Errorf("ParseRules = %v, %v", got, err)
	}
	if got, err := retention.ParseRules(""); err != nil || len(got) != 0 {
		t.Errorf("empty rules: %v, %v", got, err)
	}
	for _, s := range []string{"x", "=1d", "a=1d,a=1d", "a=1d,", "a=b"} {
		if _, err := retention.ParseRules(s); err == nil {
			t.Errorf("ParseRules(%q) accepted", s)
		}
	}
}

// An event expires strictly before its type's cutoff; a type with TTL 0
// never does, and a policy of zeros expires nothing. Ingest's test
// (Policy.Expired) agrees with the sweeper's (Cutoffs.Expired).
func TestCutoffs(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	p := retention.Policy{Default: 10 * day, ByType: map[string]time.Duration{"a": day, "kept": 0}}
	c := p.Cutoffs(now)
	for _, tc := range []struct {
		name string
		typ  string
		age  time.Duration
		want bool
	}{
		{"at the default cutoff", "x", 10 * day, false},
		{"past the default cutoff", "x", 10*day + 1, true},
		{"at a rule's cutoff", "a", day, false},
		{"past a rule's cutoff", "a", day + 1, true},
		{"a type kept forever", "kept", 10000 * day, false},
		{"a future event", "a", -day, false},
	} {
		ev := &graph.Event{Type: "track", Name: tc.typ, Timestamp: now.Add(-tc.age)}
		if got := c.Expired(ev); got != tc.want {
			t.Errorf("%s: expired %v, want %v", tc.name, got, tc.want)
		}
		if got := p.Expired(ev, now); got != tc.want {
			t.Errorf("%s: expired at ingest %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := c.Latest(); !got.Equal(now.Add(-day)) {
		t.Errorf("latest cutoff %v, want %v", got, now.Add(-day))
	}
	if !(retention.Policy{ByType: map[string]time.Duration{"a": 0}}).Cutoffs(now).None() {
		t.Error("a policy of zeros expires something")
	}
}
