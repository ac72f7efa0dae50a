package graph

import (
	"context"
	"log/slog"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Profile change kinds.
const (
	ChangeUpdated  = "updated"  // new identifiers, events or traits
	ChangeMerged   = "merged"   // another profile was merged into it
	ChangeAbsorbed = "absorbed" // it was merged into another
	ChangeSplit    = "split"    // a steward moved identifiers out of it (split, undone merge)
)

// ProfileChange says that a profile changed.
type ProfileChange struct {
	ProfileID  string
	Kind       string
	At         time.Time
	MergedInto string // for ChangeAbsorbed: the survivor
}

// Broker fans profile changes out to subscribers: GraphQL subscriptions
// and cache invalidation. Publish never blocks: a subscriber that does not
// keep up misses changes rather than stalling ingestion.
type Broker struct {
	mu   sync.Mutex
	subs map[chan ProfileChange]string // channel → profile ID, "" for all
	// recent remembers the last change published per profile, so that the
	// change feed does not announce this process's own changes again.
	recent *lru.Cache[string, time.Time]
}

// NewBroker returns an empty broker.
func NewBroker() *Broker {
	recent, _ := lru.New[string, time.Time](100_000)
	return &Broker{subs: map[chan ProfileChange]string{}, recent: recent}
}

// Subscribe returns changes of one profile (or of all, for id ""), and a
// function that ends the subscription.
func (b *Broker) Subscribe(id string, buffer int) (<-chan ProfileChange, func()) {
	ch := make(chan ProfileChange, buffer)
	b.mu.Lock()
	b.subs[ch] = id
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, ch)
			b.mu.Unlock()
			close(ch)
		})
	}
}

// Publish delivers the changes.
func (b *Broker) Publish(changes []ProfileChange) {
	if len(changes) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range changes {
		b.recent.Add(c.ProfileID, c.At)
	}
	for ch, id := range b.subs {
		for _, c := range changes {
			if id != "" && id != c.ProfileID {
				continue
			}
			select {
			case ch <- c:
			default:
			}
		}
	}
}

// FollowChanges polls a shared store's change feed and publishes the
// changes other processes made, until ctx ends.
func FollowChanges(ctx context.Context, feed ChangeFeed, b *Broker, every time.Duration, log *slog.Logger) {
	since := time.Now().UTC()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ps, err := feed.ChangedSince(ctx, since, 1000)
		if err != nil {
			log.Warn("change feed", "err", err)
			continue
		}
		var changes []ProfileChange
		for _, p := range ps {
			// The feed is inclusive (>=): profiles at the boundary come
			// again next time and are skipped as recent.
			since = maxTime(since, p.UpdatedAt)
			if at, ok := b.recent.Get(p.ID); ok && at.Equal(p.UpdatedAt) {
				continue
			}
			c := ProfileChange{ProfileID: p.ID, Kind: ChangeUpdated, At: p.UpdatedAt}
			if p.MergedInto != "" {
				c.Kind, c.MergedInto = ChangeAbsorbed, p.MergedInto
			}
			changes = append(changes, c)
		}
		b.Publish(changes)
	}
}
