package resolver

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/retention"
	"github.com/idgraph/idgraph/schema"
)

var errRetentionOff = graph.Errorf(graph.KindInvalid, "retention is not available on this server")

// sweeper returns the retention sweeper (nil when the server runs none)
// for an admin caller.
func (r *Resolver) sweeper(ctx context.Context) (*retention.Sweeper, error) {
	if err := admin(ctx); err != nil {
		return nil, err
	}
	return r.Retention, nil
}

// retentionOf is the sweeper's policy and last sweep.
func retentionOf(sw *retention.Sweeper) *schema.Retention {
	p := sw.Policy
	out := &schema.Retention{Rules: []*schema.RetentionRule{}, DefaultTTLSeconds: seconds(p.Default),
		InactiveProfilesSeconds: seconds(p.InactiveProfiles)}
	for _, t := range slices.Sorted(maps.Keys(p.ByType)) {
		out.Rules = append(out.Rules, &schema.RetentionRule{EventType: t, TTLSeconds: int(p.ByType[t] / time.Second)})
	}
	if sw.Every >= 0 {
		out.SweepEverySeconds = seconds(cmp.Or(sw.Every, retention.DefaultEvery))
	}
	if run, err := sw.Last(); run != nil {
		out.LastSweep = sweepOf(run, err)
	}
	return out
}

// sweepOf is one sweep's report; err is the error it stopped at.
func sweepOf(run *retention.Run, err error) *schema.RetentionSweep {
	out := &schema.RetentionSweep{StartedAt: run.Started, DurationMs: float64(run.Duration) / float64(time.Millisecond),
		Events: []*schema.RetentionCount{}, EventsDeleted: run.EventTotal(), ProfilesTouched: run.Touched,
		ProfilesExpired: run.Profiles, Batches: run.Batches}
	for _, t := range slices.Sorted(maps.Keys(run.Events)) {
		out.Events = append(out.Events, &schema.RetentionCount{EventType: t, Count: run.Events[t]})
	}
	if err != nil {
		msg := err.Error()
		out.Error = &msg
	}
	return out
}

// seconds is d in whole seconds; nil for zero (kept forever, or never).
func seconds(d time.Duration) *int {
	if d <= 0 {
		return nil
	}
	s := int(d / time.Second)
	return &s
}
