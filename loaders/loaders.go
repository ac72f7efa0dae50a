// Package loaders batches the GraphQL layer's reads: one set of dataloaders
// per request (so a page of profiles costs a bounded number of store
// calls), over a profile cache shared by all requests.
package loaders

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vikstrous/dataloadgen"

	"github.com/idgraph/idgraph/graph"
)

// Cache holds profiles across requests. It is correct when several idgraph
// processes share one store: it drops a profile on every change the broker
// reports, and the broker hears this process's commits at once and other
// processes' through the store's change feed (see graph.FollowChanges), so
// a cached profile is at most one poll interval stale. When the broker
// drops changes because this cache fell behind, the cache hears that it
// lagged and empties itself.
type Cache struct {
	profiles *lru.Cache[string, *graph.Profile]
	// identifiers holds each live profile's identifier list, dropped with
	// the profile: every observation that adds or updates an identifier
	// touches its profile.
	identifiers *lru.Cache[string, []*graph.Identifier]

	// A load that read the store before a change was invalidated must not
	// put its (now stale) answer in the cache after the invalidation: mu
	// orders invalidations and additions, gen counts invalidations, and
	// dropped remembers each recently invalidated profile's gen. A profile
	// no longer in dropped counts as invalidated at floor.
	mu      sync.Mutex
	gen     uint64
	dropped *lru.Cache[string, uint64]
	floor   uint64

	Hits   atomic.Int64
	Misses atomic.Int64
	// Purges counts the times the cache emptied itself after falling behind
	// the broker.
	Purges atomic.Int64
}

// changeBuffer is how many changes the cache's subscription holds before
// the broker drops changes (and the cache purges).
const changeBuffer = 4096

// NewCache returns a cache of size profiles, invalidated by the broker's
// changes until ctx ends.
func NewCache(ctx context.Context, size int, broker *graph.Broker) *Cache {
	return newCache(ctx, size, broker, changeBuffer)
}

func newCache(ctx context.Context, size int, broker *graph.Broker, buffer int) *Cache {
	c, _ := lru.New[string, *graph.Profile](size)
	ids, _ := lru.New[string, []*graph.Identifier](size)
	cache := &Cache{profiles: c, identifiers: ids}
	// Called with cache.mu held, from dropped's Add and Purge.
	cache.dropped, _ = lru.NewWithEvict(4*size, func(_ string, gen uint64) { cache.floor = max(cache.floor, gen) })
	changes, cancel := broker.Subscribe("", buffer)
	go func() {
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				return
			case ch, ok := <-changes:
				if !ok {
					return
				}
				if ch.Kind == graph.ChangeLagged {
					cache.Purges.Add(1)
					cache.Purge()
					continue
				}
				cache.invalidate(ch.ProfileID)
			}
		}
	}()
	return cache
}

// Purge empties the cache.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.dropped.Purge()
	c.floor = c.gen
	c.profiles.Purge()
	c.identifiers.Purge()
}

// invalidate drops profiles from the cache.
func (c *Cache) invalidate(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range ids {
		c.profiles.Remove(id)
		c.identifiers.Remove(id)
		c.dropped.Add(id, c.gen)
	}
}

// version returns the invalidation count, taken before a load reads the
// store.
func (c *Cache) version() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// add caches a value loaded after version v, unless the profile was
// invalidated since: then the value may predate the change.
func add[V any](c *Cache, to *lru.Cache[string, V], v uint64, id string, value V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.dropped.Peek(id)
	if !ok {
		at = c.floor
	}
	if at <= v {
		to.Add(id, value)
	}
}

// Loaders are one request's dataloaders.
type Loaders struct {
	cache *Cache
	// Profile loads profiles by ID (live or absorbed).
	Profile *dataloadgen.Loader[string, *graph.Profile]
	// Identifiers loads a live profile's identifiers by its ID.
	Identifiers *dataloadgen.Loader[string, []*graph.Identifier]
	// Edges loads the edges touching an identifier.
	Edges *dataloadgen.Loader[graph.Key, []*graph.Edge]
	// Events loads a page of a profile's timeline.
	Events *dataloadgen.Loader[EventsKey, []*graph.Event]
}

// Forget drops profiles from the shared cache and from this request's
// loaders: a mutation's answer must show its own writes, which the
// broker's invalidation (asynchronous) may not have reached yet.
func (l *Loaders) Forget(ids ...string) {
	l.cache.invalidate(ids...)
	for _, id := range ids {
		l.Profile.Clear(id)
		l.Identifiers.Clear(id)
	}
}

// EventsKey asks for one page of a profile's timeline.
type EventsKey struct {
	Profile string
	After   graph.EventCursor // zero: from the newest
	Limit   int
}

const wait = 500 * time.Microsecond

// New returns fresh loaders over the reader and the shared cache.
func New(r graph.Reader, cache *Cache) *Loaders {
	l := &Loaders{cache: cache}
	l.Profile = dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([]*graph.Profile, []error) {
		v := cache.version()
		out, missing, at := fromCache(cache, cache.profiles, ids)
		if len(missing) > 0 {
			ps, err := r.GetProfiles(ctx, missing)
			if err != nil {
				return nil, fill(len(ids), err)
			}
			for j, p := range ps {
				out[at[j]] = p
				if p != nil {
					add(cache, cache.profiles, v, p.ID, p)
				}
			}
		}
		return out, nil
	}, dataloadgen.WithWait(wait))
	l.Identifiers = dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([][]*graph.Identifier, []error) {
		v := cache.version()
		out, missing, at := fromCache(cache, cache.identifiers, ids)
		if len(missing) == 0 {
			return out, nil
		}
		ps, err := l.Profile.LoadAll(ctx, missing)
		if err != nil {
			return nil, fill(len(ids), err)
		}
		var live []*graph.Profile
		var liveAt []int
		for j, p := range ps {
			if p != nil {
				live = append(live, p)
				liveAt = append(liveAt, at[j])
			}
		}
		lists, err := r.IdentifiersOf(ctx, live)
		if err != nil {
			return nil, fill(len(ids), err)
		}
		for j, p := range live {
			out[liveAt[j]] = lists[j]
			add(cache, cache.identifiers, v, p.ID, lists[j])
		}
		return out, nil
	}, dataloadgen.WithWait(wait))
	l.Edges = dataloadgen.NewLoader(func(ctx context.Context, keys []graph.Key) ([][]*graph.Edge, []error) {
		es, err := r.EdgesOf(ctx, keys)
		if err != nil {
			return nil, fill(len(keys), err)
		}
		at := map[graph.Key]int{}
		for i, k := range keys {
			at[k] = i
		}
		out := make([][]*graph.Edge, len(keys))
		for _, e := range es {
			if i, ok := at[e.A]; ok {
				out[i] = append(out[i], e)
			}
			if i, ok := at[e.B]; ok {
				out[i] = append(out[i], e)
			}
		}
		return out, nil
	}, dataloadgen.WithWait(wait))
	l.Events = dataloadgen.NewLoader(func(ctx context.Context, keys []EventsKey) ([][]*graph.Event, []error) {
		profiles := make([]string, len(keys))
		for i, k := range keys {
			profiles[i] = k.Profile
		}
		lists, err := l.Identifiers.LoadAll(ctx, profiles)
		if err != nil {
			return nil, fill(len(keys), err)
		}
		qs := make([]graph.TimelineQuery, len(keys))
		for i, k := range keys {
			qs[i] = graph.TimelineQuery{Limit: k.Limit}
			if !k.After.Timestamp.IsZero() {
				after := k.After
				qs[i].After = &after
			}
			for _, n := range lists[i] {
				qs[i].Keys = append(qs[i].Keys, n.Key)
			}
		}
		evs, err := r.Timelines(ctx, qs)
		return evs, fill(len(keys), err)
	}, dataloadgen.WithWait(wait))
	return l
}

// CachedProfile loads a profile, from the shared cache without waiting for
// a batch when it is there: a cache hit should not pay the batch delay.
func (l *Loaders) CachedProfile(ctx context.Context, id string) (*graph.Profile, error) {
	if p, ok := l.cache.profiles.Get(id); ok {
		l.cache.Hits.Add(1)
		return p, nil
	}
	return l.Profile.Load(ctx, id)
}

// CachedIdentifiers loads a live profile's identifiers, likewise.
func (l *Loaders) CachedIdentifiers(ctx context.Context, id string) ([]*graph.Identifier, error) {
	if list, ok := l.cache.identifiers.Get(id); ok {
		l.cache.Hits.Add(1)
		return list, nil
	}
	return l.Identifiers.Load(ctx, id)
}

// fromCache answers what it can from c and returns the rest: the missing
// IDs and their positions in the answer.
func fromCache[V any](cache *Cache, c *lru.Cache[string, V], ids []string) (out []V, missing []string, at []int) {
	out = make([]V, len(ids))
	for i, id := range ids {
		if v, ok := c.Get(id); ok {
			cache.Hits.Add(1)
			out[i] = v
			continue
		}
		cache.Misses.Add(1)
		missing = append(missing, id)
		at = append(at, i)
	}
	return out, missing, at
}

// fill repeats err for every key (nil stays nil).
func fill(n int, err error) []error {
	if err == nil {
		return nil
	}
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

type ctxKey struct{}

type source struct {
	r       graph.Reader
	cache   *Cache
	loaders *Loaders // nil: fresh loaders for every call
}

// Middleware gives each request its own loaders. A WebSocket connection
// lives for many operations and events, so it gets fresh loaders on every
// call instead: a loader caches what it loaded for its whole life.
func Middleware(r graph.Reader, cache *Cache, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		src := &source{r: r, cache: cache}
		if req.Header.Get("Upgrade") == "" {
			src.loaders = New(r, cache)
		}
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), ctxKey{}, src)))
	})
}

// For returns the request's loaders.
func For(ctx context.Context) *Loaders {
	src := ctx.Value(ctxKey{}).(*source)
	if src.loaders != nil {
		return src.loaders
	}
	return New(src.r, src.cache)
}
