package client

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// drive makes n calls from clients goroutines, each with its own seeded
// random source, and reports calls per second and latency percentiles.
func drive(ctx context.Context, clients, n int, seed uint64, call func(ctx context.Context, rng *rand.Rand, i int) error) (LoadResult, error) {
	clients = max(clients, 1)
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var failed int
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			mine := make([]time.Duration, 0, n/clients+1)
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				t := time.Now()
				err := call(ctx, rng, i)
				mine = append(mine, time.Since(t))
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	res := LoadResult{Messages: len(lat), Elapsed: elapsed, PerSecond: float64(len(lat)) / elapsed.Seconds(), FailedCalls: failed}
	if len(lat) > 0 {
		res.BatchP50 = lat[len(lat)/2]
		res.BatchP99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return res, firstErr
}
