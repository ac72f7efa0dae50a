package graph

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/idgraph/idgraph/internal/tick"
)

// Profile change kinds.
const (
	ChangeUpdated  = "updated"  // new identifiers, events or traits
	ChangeMerged   = "merged"   // another profile was merged into it
	ChangeAbsorbed = "absorbed" // it was merged into another
	ChangeSplit    = "split"    // a steward moved identifiers out of it or into it (split, undone merge): both sides
	// ChangeLagged is not a change of a profile: it tells a subscriber that
	// changes were dropped because it fell behind, so whatever it holds may
	// be stale and must be read again from the store. ProfileID is the
	// subscription's ("" for all profiles).
	ChangeLagged = "lagged"
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
// keep up misses changes rather than stalling ingestion, but it always
// finds out: it receives a ChangeLagged, after which it must re-read
// what it follows.
type Broker struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
	// recent remembers the last change published per profile, so that the
	// change feed does not announce this process's own changes again.
	recent *lru.Cache[string, time.Time]
	lags   atomic.Int64
}

// subscriber is one subscription. Its channel has one slot more than
// asked for, kept free for the ChangeLagged marker, so the marker always
// fits at the moment a change is dropped.
type subscriber struct {
	ch chan ProfileChange
	id string // the profile followed, "" for all
	// lagged: a ChangeLagged was sent and may be unread. While it is in the
	// channel later changes are dropped too: the subscriber re-reads after
	// taking the marker, which covers them (they were committed before they
	// were published). The channel empties only once the marker is read.
	lagged bool
}

// NewBroker returns an empty broker.
func NewBroker() *Broker {
	recent, _ := lru.New[string, time.Time](100_000)
	return &Broker{subs: map[*subscriber]struct{}{}, recent: recent}
}

// Subscribe returns changes of one profile (or of all, for id ""), and a
// function that ends the subscription. The subscriber must handle
// ChangeLagged by reading again what it follows.
func (b *Broker) Subscribe(id string, buffer int) (<-chan ProfileChange, func()) {
	s := &subscriber{ch: make(chan ProfileChange, max(buffer, 1)+1), id: id}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			close(s.ch)
		})
	}
}

// Lags counts the ChangeLagged markers sent: how often a subscriber fell
// behind.
func (b *Broker) Lags() int64 { return b.lags.Load() }

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
	for s := range b.subs {
		for _, c := range changes {
			if s.id == "" || s.id == c.ProfileID {
				b.deliver(s, c)
			}
		}
	}
}

// deliver sends c to s, or the lag marker when s has no room. b.mu is
// held, so this is the channel's only sender: its length can only shrink
// meanwhile, and the sends below never block.
func (b *Broker) deliver(s *subscriber, c ProfileChange) {
	if b.pending(s) {
		return
	}
	if len(s.ch) < cap(s.ch)-1 {
		s.ch <- c
		return
	}
	b.lag(s, c.At)
}

// pending reports whether s has not yet read its lag marker.
func (b *Broker) pending(s *subscriber) bool {
	if s.lagged && len(s.ch) == 0 {
		s.lagged = false // the marker was read
	}
	return s.lagged
}

func (b *Broker) lag(s *subscriber, at time.Time) {
	s.ch <- ProfileChange{ProfileID: s.id, Kind: ChangeLagged, At: at}
	s.lagged = true
	b.lags.Add(1)
}

// feedPage is how many changed profiles FollowChanges reads at a time.
const feedPage = 1000

// FeedOverlap is how far back each poll of the change feed reads again: a
// transaction stamps its profiles before it commits, so a slower one can
// commit changes stamped before those of a faster one the last poll saw,
// and processes' clocks differ. A change that commits later than this
// after its stamp (or a clock further off) can be missed. Changes read
// again are skipped as recent.
const FeedOverlap = 5 * time.Second

// FollowChanges polls a shared store's change feed and publishes the
// changes other processes made, until ctx ends. Each poll pages to the
// end of the feed, so a burst of any size is announced in full.
func FollowChanges(ctx context.Context, feed ChangeFeed, b *Broker, every time.Duration, log *slog.Logger) {
	newest := time.Now().UTC() // the newest stamp seen
	tick.Every(ctx, every, func(ctx context.Context) {
		since, after := newest.Add(-FeedOverlap), ""
		for {
			ps, err := feed.ChangedSince(ctx, since, after, feedPage)
			if err != nil {
				// Nothing is lost: the next poll starts from the same place.
				log.Warn("change feed", "err", err)
				return
			}
			b.Publish(b.unseen(ps))
			if len(ps) == 0 {
				return
			}
			last := ps[len(ps)-1]
			newest = maxTime(newest, last.UpdatedAt)
			if len(ps) < feedPage {
				return
			}
			since, after = last.UpdatedAt, last.ID
		}
	})
}

// unseen turns the feed's profiles into changes, leaving out those this
// broker already published (its own process's, or read again).
func (b *Broker) unseen(ps []*Profile) []ProfileChange {
	var changes []ProfileChange
	for _, p := range ps {
		if at, ok := b.recent.Get(p.ID); ok && at.Equal(p.UpdatedAt) {
			continue
		}
		c := ProfileChange{ProfileID: p.ID, Kind: ChangeUpdated, At: p.UpdatedAt}
		if p.MergedInto != "" {
			c.Kind, c.MergedInto = ChangeAbsorbed, p.MergedInto
		}
		changes = append(changes, c)
	}
	return changes
}
