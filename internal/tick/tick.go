// Package tick runs background work on an interval.
package tick

import (
	"context"
	"time"
)

// Every calls fn once per interval, the first time one interval after it
// starts, until ctx ends. A call that outlasts the interval delays the
// next instead of stacking calls up: the ticker drops the ticks missed.
func Every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
	}
}
