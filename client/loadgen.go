package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// LoadOptions configure a load run against /v1/batch.
type LoadOptions struct {
	Messages  int // total messages to send
	Clients   int // concurrent senders
	BatchSize int
	// Visitors is the number of distinct visitors; each starts anonymous
	// and about a third identify with a user ID and an email.
	Visitors int
	Seed     uint64
}

// LoadResult is a load run's outcome.
type LoadResult struct {
	Messages    int
	Elapsed     time.Duration
	PerSecond   float64
	BatchP50    time.Duration
	BatchP99    time.Duration
	FailedCalls int
}

func (r LoadResult) String() string {
	return fmt.Sprintf("%d messages in %v: %.0f messages/s, batch latency p50 %v p99 %v, %d failed calls",
		r.Messages, r.Elapsed.Round(time.Millisecond), r.PerSecond, r.BatchP50.Round(time.Microsecond), r.BatchP99.Round(time.Microsecond), r.FailedCalls)
}

// Load sends opts.Messages messages through /v1/batch from opts.Clients
// goroutines: a mix of page (60%), track (30%) and identify (10%) calls by
// visitors who are anonymous at first and later identified.
func (c *Client) Load(ctx context.Context, opts LoadOptions) (LoadResult, error) {
	if opts.Clients <= 0 {
		opts.Clients = 4
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Visitors <= 0 {
		opts.Visitors = max(opts.Messages/20, 1)
	}
	batches := (opts.Messages + opts.BatchSize - 1) / opts.BatchSize
	res, err := drive(ctx, opts.Clients, batches, opts.Seed, func(ctx context.Context, rng *rand.Rand, b int) error {
		n := min(opts.BatchSize, opts.Messages-b*opts.BatchSize)
		msgs := make([]map[string]any, n)
		for i := range msgs {
			msgs[i] = loadMessage(rng, opts.Visitors, b*opts.BatchSize+i)
		}
		return c.PostWrite(ctx, "/v1/batch", map[string]any{"batch": msgs, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)}, nil)
	})
	res.Messages, res.PerSecond = opts.Messages, float64(opts.Messages)/res.Elapsed.Seconds()
	return res, err
}

// loadMessage builds message i: visitor v is anonymous "anon-v"; visitors
// with v%3==0 identify as "user-v" with an email and keep their user ID.
func loadMessage(rng *rand.Rand, visitors, i int) map[string]any {
	v := rng.IntN(visitors)
	m := map[string]any{
		"messageId":   fmt.Sprintf("load-%d-%d", time.Now().UnixNano(), i),
		"anonymousId": fmt.Sprintf("anon-%d", v),
		"timestamp":   time.Now().UTC().Format(time.RFC3339Nano),
		"context":     map[string]any{"ip": "127.0.0.1", "userAgent": "idgraph-loadgen"},
	}
	identified := v%3 == 0
	if identified {
		m["userId"] = fmt.Sprintf("user-%d", v)
	}
	switch r := rng.IntN(10); {
	case r < 6:
		m["type"], m["name"] = "page", "Home"
		m["properties"] = map[string]any{"path": fmt.Sprintf("/p/%d", rng.IntN(100))}
	case r < 9:
		m["type"], m["event"] = "track", "Product Viewed"
		m["properties"] = map[string]any{"sku": fmt.Sprintf("sku-%d", rng.IntN(1000)), "price": rng.IntN(100)}
	default:
		m["type"] = "identify"
		if identified {
			m["traits"] = map[string]any{"email": fmt.Sprintf("user%d@loadgen.io", v), "plan": "pro"}
		}
	}
	return m
}
