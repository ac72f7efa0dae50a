package retention_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/retention"
)

// failing is a retention store whose batches fail: a sweep that cannot
// delete must still be logged, counted and audited.
type failing struct{ retention.Store }

func (failing) DeleteExpiredEvents(context.Context, retention.EventsRequest) (*retention.EventsResult, error) {
	return nil, errors.New("store down")
}

// A sweep logs its counts, updates the metrics and writes one audit
// entry, on both backends; a failed sweep is logged, counted and audited
// as failed.
func TestSweepReports(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			g := b.Open(t)
			old := graphtest.Obs("old", now.Add(-40*day), "user_id:u")
			old.Event = graph.Event{Type: "track", Name: "Page Viewed"}
			older := graphtest.Obs("older", now.Add(-400*day), "user_id:u")
			graphtest.Ingest(t, g, old, older, graphtest.Obs("new", now, "user_id:u"))
			chain, err := audit.Open(g, []byte("pepper-for-the-audit-chain-test!"))
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			sw := &retention.Sweeper{Store: g.(retention.Backend).Retention(), Erasure: g.(erase.Backend).Erasure(),
				Policy: retention.Policy{Default: 395 * day, ByType: map[string]time.Duration{"Page Viewed": 30 * day}},
				Now:    func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(&logs, nil)), Audit: chain}
			run, err := sw.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if run.EventTotal() != 2 {
				t.Fatalf("deleted %v, want old and older", run.Events)
			}
			got := gather(t, sw.Collectors())
			for name, v := range map[string]float64{
				`idgraph_retention_events_deleted_total{type="Page Viewed"}`: 1,
				`idgraph_retention_events_deleted_total{type="default"}`:     1,
				`idgraph_retention_sweeps_total{outcome="ok"}`:               1,
				`idgraph_retention_profiles_expired_total`:                   0,
				`idgraph_retention_last_sweep_timestamp_seconds`:             float64(now.Unix()),
			} {
				if got[name] != v {
					t.Errorf("%s = %v, want %v (all: %v)", name, got[name], v, got)
				}
			}
			if line := logs.String(); !strings.Contains(line, "retention sweep") || !strings.Contains(line, "events=2") ||
				!strings.Contains(line, `events.Page Viewed`) {
				t.Errorf("log: %s", line)
			}
			sw.Store = failing{sw.Store}
			if _, err := sw.Sweep(ctx); err == nil || !strings.Contains(err.Error(), "store down") {
				t.Errorf("failed sweep: %v", err)
			}
			if !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("failed sweep not logged as an error: %s", logs.String())
			}
			es, err := chain.Store().Entries(ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 2 || es[0].Action != retention.AuditAction || es[0].Outcome != audit.OutcomeOK ||
				!strings.Contains(es[0].Target, "events=2") || es[1].Outcome == audit.OutcomeOK || es[0].Role != "system" {
				for _, e := range es {
					t.Logf("entry %+v", e)
				}
				t.Errorf("audit entries: want an ok and a failed %s", retention.AuditAction)
			}
		})
	}
}

// Loop sweeps once a period and stops with its context.
func TestLoopStops(t *testing.T) {
	g := backends.OpenPebble(t)
	sweeps := make(chan struct{}, 10)
	sw := &retention.Sweeper{Store: g.(retention.Backend).Retention(), Policy: retention.Policy{Default: time.Hour},
		Every: time.Millisecond, Changed: func() {}}
	sw.Log = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		if bytes.Contains(p, []byte("retention sweep")) {
			sweeps <- struct{}{}
		}
		return len(p), nil
	}), nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sw.Loop(ctx); close(done) }()
	<-sweeps
	<-sweeps
	cancel()
	<-done
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// gather returns the collectors' samples by name{labels}.
func gather(t *testing.T, cs []prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			if ls := m.GetLabel(); len(ls) > 0 {
				var parts []string
				for _, l := range ls {
					parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
				}
				name += "{" + strings.Join(parts, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// With Settings, Loop sweeps one period after the last sweep kept in the
// store (at once when that is past), and keeps the new sweep's time.
func TestLoopKeepsLastSweep(t *testing.T) {
	ctx := context.Background()
	g := backends.OpenPebble(t)
	start := time.Now().UTC()
	if err := g.PutSetting(ctx, "retention_last_sweep", start.Add(-2*time.Hour).Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	sweeps := make(chan struct{}, 10)
	sw := &retention.Sweeper{Store: g.(retention.Backend).Retention(), Policy: retention.Policy{Default: time.Hour},
		Every: time.Hour, Settings: g}
	sw.Log = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		if bytes.Contains(p, []byte("msg=\"retention sweep\"")) {
			sweeps <- struct{}{}
		}
		return len(p), nil
	}), nil))
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { sw.Loop(lctx); close(done) }()
	select {
	case <-sweeps:
	case <-time.After(time.Minute): // a bound for failing: the loop waits an hour if it ignores the setting
		t.Fatal("no sweep: the loop did not see that the last one was two hours ago")
	}
	cancel()
	<-done
	v, ok, err := g.Setting(ctx, "retention_last_sweep")
	at, perr := time.Parse(time.RFC3339Nano, v)
	if err != nil || !ok || perr != nil || at.Before(start) {
		t.Errorf("last sweep kept as %q (%v, %v), want at or after %s", v, err, perr, start)
	}
}

// SweepNow runs a sweep at once, keeps its time for Loop and is what Last
// returns; Last is nil before any sweep.
func TestSweepNowRecordsAndLast(t *testing.T) {
	ctx := context.Background()
	g := backends.OpenPebble(t)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	graphtest.Ingest(t, g, graphtest.Obs("old", now.Add(-40*24*time.Hour), "user_id:u"), graphtest.Obs("new", now, "user_id:u"))
	sw := &retention.Sweeper{Store: g.(retention.Backend).Retention(), Policy: retention.Policy{Default: 30 * 24 * time.Hour},
		Settings: g, Now: func() time.Time { return now }}
	if run, err := sw.Last(); run != nil || err != nil {
		t.Fatalf("Last before any sweep = %+v, %v", run, err)
	}
	run, err := sw.SweepNow(ctx)
	if err != nil || run.EventTotal() != 1 {
		t.Fatalf("SweepNow = %+v, %v; want the old event deleted", run, err)
	}
	if last, err := sw.Last(); last != run || err != nil {
		t.Errorf("Last = %p, %v; want the sweep just run (%p)", last, err, run)
	}
	v, ok, err := g.Setting(ctx, "retention_last_sweep")
	if err != nil || !ok || v != now.Format(time.RFC3339Nano) {
		t.Errorf("last sweep kept as %q (%v, %v), want %s", v, ok, err, now.Format(time.RFC3339Nano))
	}
}
