package segments

import (
	"context"
	"fmt"
	"time"

	"github.com/idgraph/idgraph/segments/lang"
)

// SizeSample is a segment's number of members at a time: the engine takes
// one per segment every EngineOptions.SampleEvery, for the size-over-time
// chart. Sizes are counts, not people, so erasure leaves them.
type SizeSample struct {
	Segment string    `json:"segment"`
	At      time.Time `json:"at"`
	Size    int       `json:"size"`
}

// Sampling defaults: hourly samples kept 400 days (about 9,600 per segment).
const (
	DefaultSampleEvery = time.Hour
	DefaultSampleKeep  = 400 * 24 * time.Hour
)

// SampleSizes stores every segment's size at the start of the sampling
// period containing now, and deletes samples older than the keep period.
// Several processes sampling one store write the same keys, so the result
// is the same as one process sampling.
func (e *Engine) SampleSizes(ctx context.Context) error {
	at := e.samplePeriod()
	defs, err := e.store.Definitions(ctx)
	if err != nil {
		return fmt.Errorf("segments: sample sizes: %w", err)
	}
	var samples []SizeSample
	for _, d := range defs {
		if d.Kind != lang.KindSegment {
			continue
		}
		n, err := e.store.MemberCount(ctx, d.Key)
		if err != nil {
			return fmt.Errorf("segments: sample sizes: %w", err)
		}
		samples = append(samples, SizeSample{Segment: d.Key, At: at, Size: n})
	}
	if err := e.store.PutSizeSamples(ctx, samples); err != nil {
		return fmt.Errorf("segments: sample sizes: %w", err)
	}
	if err := e.store.DeleteSizeSamples(ctx, at.Add(-e.opt.SampleKeep)); err != nil {
		return fmt.Errorf("segments: sample sizes: %w", err)
	}
	return nil
}

// samplePeriod is the start of the sampling period containing now.
func (e *Engine) samplePeriod() time.Time {
	return e.opt.Now().UTC().Truncate(max(e.opt.SampleEvery, time.Nanosecond))
}

// nextSample is how long until the next sampling period starts.
func (e *Engine) nextSample() time.Duration {
	now := e.opt.Now().UTC()
	return now.Truncate(e.opt.SampleEvery).Add(e.opt.SampleEvery).Sub(now)
}

// Thin keeps at most n samples spread over the series, always keeping the
// newest: a chart of a year of hourly samples needs a few hundred points.
func Thin(samples []SizeSample, n int) []SizeSample {
	if n <= 0 || len(samples) <= n {
		return samples
	}
	out := make([]SizeSample, 0, n)
	for i := range n {
		// The last sample of each of n equal runs.
		out = append(out, samples[(i+1)*len(samples)/n-1])
	}
	return out
}
