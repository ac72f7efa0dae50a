package server

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Costly refusals. Each hostile request (a body too large or nested too
// deeply, a GraphQL document past its token, selection, depth or cost
// limit) is refused in a millisecond or so, but a client that loops over
// them still takes a core's share from everyone else. No SDK or honest
// client sends such requests more than by mistake, so a client whose
// refusals exceed a small burst is answered 429 before its next body is
// read, until its budget refills.

// DefaultRefusalBurst is how many costly refusals a client gets in a row;
// the budget refills at RefusalBurst/10 per second.
const DefaultRefusalBurst = 10

// refusalClients bounds the clients the limiter remembers (an LRU): an
// attacker cycling through addresses evicts old entries, never grows the
// heap.
const refusalClients = 10_000

// buckets are token buckets, one per client (or key), in an LRU: the
// refusal limiter, the failed-authentication throttle and the per-key
// rate limits are each one.
type buckets struct {
	burst, perSecond float64
	now              func() time.Time
	mu               sync.Mutex
	clients          *lru.Cache[string, *refusalBudget]
}

type refusalBudget struct {
	tokens float64
	at     time.Time
}

// newRefusalLimiter returns nil (no limit) for burst ≤ 0.
func newRefusalLimiter(burst int, now func() time.Time) *buckets {
	return newBuckets(float64(burst), float64(burst)/10, now)
}

// newBuckets returns buckets of burst tokens refilled at perSecond, or nil
// (no limit) for burst ≤ 0.
func newBuckets(burst, perSecond float64, now func() time.Time) *buckets {
	if burst <= 0 || perSecond <= 0 {
		return nil
	}
	clients, _ := lru.New[string, *refusalBudget](refusalClients) // size is positive: no error
	return &buckets{burst: burst, perSecond: perSecond, now: now, clients: clients}
}

// budget returns the client's budget refilled to now. The caller holds mu.
func (l *buckets) budget(client string) *refusalBudget {
	now := l.now()
	b, ok := l.clients.Get(client)
	if !ok {
		b = &refusalBudget{tokens: l.burst, at: now}
		l.clients.Add(client, b)
		return b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.perSecond)
	b.at = now
	return b
}

// wait says how long (a nil limiter: never) the client must wait before it is served again (0:
// serve it now).
func (l *buckets) wait(client string) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.clients.Contains(client) {
		return 0
	}
	b := l.budget(client)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / l.perSecond * float64(time.Second))
}

// take takes a token from the client's bucket if it has one (0), or says
// how long until it has (and takes nothing).
func (l *buckets) take(client string) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.budget(client)
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / l.perSecond * float64(time.Second))
}

// charge takes one refusal from the client's budget.
func (l *buckets) charge(client string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.budget(client)
	b.tokens = max(b.tokens-1, -l.burst) // a long flood does not lock a client out for longer than a refill
}

// clientOf names the client by its address. X-Forwarded-For is not
// trusted: behind a proxy every client shares the proxy's address, so turn
// the limit off there (--refusal-burst 0) and let the proxy limit.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type costlyKey struct{}

// costlyMark is set by whatever refuses a request as too large or too
// costly; route charges the client for it once the handler returns.
// Atomic: gqlgen resolves fields concurrently, and each field's error is
// presented (and may mark the request) from its own goroutine.
type costlyMark struct{ costly atomic.Bool }

func withCostlyMark(ctx context.Context) (context.Context, *costlyMark) {
	m := &costlyMark{}
	return context.WithValue(ctx, costlyKey{}, m), m
}

// markCostly records that the request is being refused for its size or
// cost.
func markCostly(ctx context.Context) {
	if m, ok := ctx.Value(costlyKey{}).(*costlyMark); ok {
		m.costly.Store(true)
	}
}

// retryAfter formats a wait as Retry-After's whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
