package retention

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
)

// AuditAction is the action of the audit entry each sweep writes.
const AuditAction = "retentionSweep"

// Sweeper applies a Policy to a store, one sweep at a time.
type Sweeper struct {
	Store Store
	// Erasure deletes expired profiles (required when
	// Policy.InactiveProfiles is set).
	Erasure erase.Store
	Policy  Policy
	// Batch is how many events or profiles one transaction deletes
	// (DefaultBatch when 0).
	Batch int
	// Every is the pause between sweeps of Loop (DefaultEvery when 0;
	// negative: Loop returns at once, and only SweepNow sweeps).
	Every time.Duration
	Now   func() time.Time
	Log   *slog.Logger
	// Audit, when set, gets an entry per sweep.
	Audit *audit.Log
	// Broker, when set, hears of expired profiles (caches drop them).
	Broker *graph.Broker
	// Changed, when set, is called after a sweep that marked profiles as
	// changed: it wakes the segments engine.
	Changed func()
	// Settings, when set, keeps the time of the last sweep for Loop.
	Settings Settings

	mu      sync.Mutex // one sweep at a time in this process
	metrics *metrics
	once    sync.Once

	lastMu  sync.Mutex // apart from mu: Last answers while a sweep runs
	last    *Run
	lastErr error
}

// Run is what one sweep did.
type Run struct {
	Started  time.Time
	Duration time.Duration
	// Events counts the events deleted by event type.
	Events map[string]int
	// Touched counts the profiles marked as changed for the deleted
	// events (a profile touched by several batches counts each time).
	Touched int
	// Profiles counts the profiles expired; Records the records their
	// erasure removed, by kind (erase.Count*).
	Profiles int
	Records  map[string]int
	Batches  int
}

// EventTotal is the number of events deleted.
func (r *Run) EventTotal() int { return sum(r.Events) }

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Sweeper) batch() int {
	if s.Batch > 0 {
		return s.Batch
	}
	return DefaultBatch
}

// Check refuses a sweeper that cannot do what its policy asks.
func (s *Sweeper) Check() error {
	if s.Store == nil {
		return fmt.Errorf("retention: the store does not implement retention")
	}
	if s.Policy.InactiveProfiles > 0 && s.Erasure == nil {
		return fmt.Errorf("retention: expiring inactive profiles needs a store that erases")
	}
	return nil
}

// Sweep deletes every event past its cutoff and every profile inactive
// past Policy.InactiveProfiles, a batch at a time, all cutoffs taken at
// the sweep's start. It stops at the first error, keeping what committed;
// the next sweep goes on from there (deleting is idempotent).
func (s *Sweeper) Sweep(ctx context.Context) (*Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Check(); err != nil {
		return nil, err
	}
	start := s.now()
	run := &Run{Started: start, Events: map[string]int{}, Records: map[string]int{}}
	err := s.sweepEvents(ctx, start, run)
	if err == nil {
		err = s.expireProfiles(ctx, start, run)
	}
	run.Duration = s.now().Sub(start)
	s.report(ctx, run, err)
	s.lastMu.Lock()
	s.last, s.lastErr = run, err
	s.lastMu.Unlock()
	if err != nil {
		return run, fmt.Errorf("retention: sweep: %w", err)
	}
	return run, nil
}

func (s *Sweeper) sweepEvents(ctx context.Context, now time.Time, run *Run) error {
	cut := s.Policy.Cutoffs(now)
	if cut.None() {
		return nil
	}
	req := EventsRequest{Cutoffs: cut, Limit: s.batch()}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := s.Store.DeleteExpiredEvents(ctx, req)
		if err != nil {
			return err
		}
		run.Batches++
		run.Touched += len(res.Profiles)
		for t, n := range res.Deleted {
			run.Events[t] += n
			s.m().events.WithLabelValues(s.label(t)).Add(float64(n))
		}
		if len(res.Profiles) > 0 && s.Changed != nil {
			s.Changed()
		}
		if res.Next == "" {
			return nil
		}
		req.After = res.Next
	}
}

// Last returns the last sweep this process ran and its error; nil before
// the first. A failed sweep's Run holds what committed before the error.
func (s *Sweeper) Last() (*Run, error) {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	return s.last, s.lastErr
}

// SweepNow runs a sweep at once (an admin's request) and records its time
// as Loop's do, so the next periodic sweep comes a period after it. A
// sweep already running in this process is waited for, then this one runs.
func (s *Sweeper) SweepNow(ctx context.Context) (*Run, error) {
	run, err := s.Sweep(ctx)
	if run != nil {
		s.recordSweep(ctx, run)
	}
	return run, err
}

// recordSweep keeps the sweep's start in the store (kept even when ctx
// ended meanwhile: the sweep happened).
func (s *Sweeper) recordSweep(ctx context.Context, run *Run) {
	if s.Settings == nil {
		return
	}
	if err := s.Settings.PutSetting(context.WithoutCancel(ctx), lastSweepSetting, run.Started.Format(time.RFC3339Nano)); err != nil && s.Log != nil {
		s.Log.Error("retention sweep: record its time", "err", err)
	}
}

// label is an event type's metric label: a type the policy names, or
// "default" (track event names are unbounded).
func (s *Sweeper) label(t string) string {
	if _, ok := s.Policy.ByType[t]; ok {
		return t
	}
	return "default"
}

func (s *Sweeper) expireProfiles(ctx context.Context, now time.Time, run *Run) error {
	if s.Policy.InactiveProfiles <= 0 {
		return nil
	}
	before := now.Add(-s.Policy.InactiveProfiles)
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids, err := s.Store.InactiveProfiles(ctx, before, after, s.batch())
		if err != nil {
			return err
		}
		run.Batches++
		for _, id := range ids {
			done, err := s.Erasure.ErasePerson(ctx, erase.Request{
				ID: "retention-" + now.Format(time.RFC3339), Profile: id, At: now,
				Reason: segments.ReasonExpired, InactiveBefore: before,
			})
			if err != nil {
				return fmt.Errorf("expire %s: %w", id, err)
			}
			if len(done.Profiles) == 0 {
				continue // updated since it was listed: kept
			}
			run.Profiles++
			for k, n := range done.Counts {
				run.Records[k] += n
			}
			s.m().profiles.Inc()
			s.publish(done.Profiles, now)
		}
		if len(ids) < s.batch() {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

func (s *Sweeper) publish(ids []string, at time.Time) {
	if s.Broker == nil {
		return
	}
	cs := make([]graph.ProfileChange, len(ids))
	for i, id := range ids {
		cs[i] = graph.ProfileChange{ProfileID: id, Kind: graph.ChangeUpdated, At: at}
	}
	s.Broker.Publish(cs)
}

// report logs the sweep, updates the metrics and writes its audit entry.
func (s *Sweeper) report(ctx context.Context, run *Run, err error) {
	m := s.m()
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.runs.WithLabelValues(outcome).Inc()
	m.lastRun.Set(float64(run.Started.Unix()))
	m.lastDuration.Set(run.Duration.Seconds())
	if s.Log != nil {
		attrs := []any{"events", run.EventTotal(), "profilesTouched", run.Touched, "profilesExpired", run.Profiles,
			"batches", run.Batches, "duration", run.Duration.Round(time.Millisecond).String()}
		for _, t := range slices.Sorted(maps.Keys(run.Events)) {
			attrs = append(attrs, slog.Int("events."+s.label(t), run.Events[t]))
		}
		if err != nil {
			s.Log.Error("retention sweep", append(attrs, "err", err)...)
		} else {
			s.Log.Info("retention sweep", attrs...)
		}
	}
	if s.Audit != nil {
		target := fmt.Sprintf("events=%d profiles=%d duration=%s", run.EventTotal(), run.Profiles, run.Duration.Round(time.Millisecond))
		if _, aerr := s.Audit.Append(ctx, audit.Record{Action: AuditAction, Target: target, Err: err,
			Request: audit.Request{Role: "system"}}); aerr != nil && s.Log != nil {
			s.Log.Error("retention sweep: audit entry", "err", aerr)
		}
	}
}

// Settings keeps the time of the last sweep (a graph.Store is one).
type Settings interface {
	InitSetting(ctx context.Context, name, value string) (string, error)
	PutSetting(ctx context.Context, name, value string) error
}

// lastSweepSetting names the setting that holds the last sweep's start.
const lastSweepSetting = "retention_last_sweep"

// Loop sweeps every Every until ctx ends. With Settings, the time of the
// last sweep is kept in the store, so that a process restarted more often
// than Every still sweeps; a store never swept is first swept one period
// after it is first served, never at once (an upgrade does not start by
// deleting a backlog while it serves).
func (s *Sweeper) Loop(ctx context.Context) {
	if s.Every < 0 {
		return
	}
	every := cmp.Or(s.Every, DefaultEvery)
	for {
		wait := every
		if last, ok := s.lastSweep(ctx); ok {
			wait = max(last.Add(every).Sub(s.now()), 0)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if s.sweptSince(ctx, every) {
			continue // an admin's sweep (or another process's) came meanwhile
		}
		// Errors are logged by Sweep's report; the next period retries.
		_, _ = s.SweepNow(ctx)
	}
}

// sweptSince says whether a sweep started less than a period ago.
func (s *Sweeper) sweptSince(ctx context.Context, every time.Duration) bool {
	due := func(at time.Time) bool { return at.Add(every).After(s.now()) }
	if run, _ := s.Last(); run != nil && due(run.Started) {
		return true
	}
	last, ok := s.lastSweep(ctx)
	return ok && due(last)
}

// lastSweep reads the last sweep's start, stamping now when there was
// none.
func (s *Sweeper) lastSweep(ctx context.Context) (time.Time, bool) {
	if s.Settings == nil {
		return time.Time{}, false
	}
	v, err := s.Settings.InitSetting(ctx, lastSweepSetting, s.now().Format(time.RFC3339Nano))
	if err == nil {
		var at time.Time
		if at, err = time.Parse(time.RFC3339Nano, v); err == nil {
			return at, true
		}
	}
	if s.Log != nil && ctx.Err() == nil {
		s.Log.Error("retention sweep: read the last one's time", "err", err)
	}
	return time.Time{}, false
}

// Collectors are the sweeper's Prometheus metrics.
func (s *Sweeper) Collectors() []prometheus.Collector {
	m := s.m()
	return []prometheus.Collector{m.events, m.profiles, m.runs, m.lastRun, m.lastDuration}
}

type metrics struct {
	events       *prometheus.CounterVec
	profiles     prometheus.Counter
	runs         *prometheus.CounterVec
	lastRun      prometheus.Gauge
	lastDuration prometheus.Gauge
}

func (s *Sweeper) m() *metrics {
	s.once.Do(func() {
		s.metrics = &metrics{
			events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_retention_events_deleted_total",
				Help: "Events deleted by retention, by the rule that expired them (an event type named by --retention, or default)."}, []string{"type"}),
			profiles: prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_retention_profiles_expired_total",
				Help: "Inactive profiles expired by retention."}),
			runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_retention_sweeps_total",
				Help: "Retention sweeps, by outcome (ok, error)."}, []string{"outcome"}),
			lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: "idgraph_retention_last_sweep_timestamp_seconds",
				Help: "Start of the last retention sweep (Unix time)."}),
			lastDuration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "idgraph_retention_last_sweep_duration_seconds",
				Help: "Duration of the last retention sweep."}),
		}
	})
	return s.metrics
}
