// Package retention deletes what is kept too long: events older than their
// type's time to live, and (optionally) whole profiles inactive for too
// long. A background Sweeper does it in bounded batches, each one
// transaction of the store, and marks every profile it touched as changed
// so that segments and computed traits are evaluated again over the events
// that remain (docs/security.md, "Retention").
package retention

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// DefaultTTL is the time to live of an event type no rule names: 395 days
// (13 months, the usual analytics retention).
const DefaultTTL = 395 * 24 * time.Hour

// DefaultBatch is how many events (or profiles) one transaction deletes.
const DefaultBatch = 1000

// MaxBatch bounds a batch: a transaction's size (and, on Neo4j, its
// memory) grows with it.
const MaxBatch = 100000

// DefaultEvery is the pause between sweeps.
const DefaultEvery = time.Hour

// EventType is the type retention rules name: a track event's name, and
// for every other call its type (page, screen, identify, group, alias).
// A track event without a name is "track".
func EventType(ev *graph.Event) string {
	if ev.Type == "track" && ev.Name != "" {
		return ev.Name
	}
	return ev.Type
}

// Policy is what retention keeps. Zero durations keep forever.
type Policy struct {
	// Default is the time to live of event types ByType does not name.
	Default time.Duration
	// ByType is the time to live by event type (EventType).
	ByType map[string]time.Duration
	// InactiveProfiles, when set, expires a live profile not updated for
	// this long (no message carried one of its identifiers, no steward
	// action): the whole profile goes, as an erasure without suppression.
	InactiveProfiles time.Duration
}

var _ graph.EventRetention = Policy{}

// Expired reports whether ev is past its type's time to live at now: the
// same test as Cutoffs(now).Expired(ev), without building every cutoff
// (ingest asks it of each event).
func (p Policy) Expired(ev *graph.Event, now time.Time) bool {
	ttl, ok := p.ByType[EventType(ev)]
	if !ok {
		ttl = p.Default
	}
	return ttl > 0 && ev.Timestamp.Before(now.Add(-ttl))
}

// Cutoffs are a policy's limits at one instant. An event expires when its
// timestamp is strictly before its type's cutoff: the interval kept is
// [cutoff, ∞), so an event exactly TTL old is kept until the next sweep.
type Cutoffs struct {
	// Default applies to the types ByType does not name; zero keeps them.
	Default time.Time
	// ByType by event type; a zero time keeps that type forever.
	ByType map[string]time.Time
}

// Cutoffs returns the policy's event cutoffs at now.
func (p Policy) Cutoffs(now time.Time) Cutoffs {
	c := Cutoffs{ByType: map[string]time.Time{}}
	if p.Default > 0 {
		c.Default = now.Add(-p.Default)
	}
	for t, d := range p.ByType {
		if d > 0 {
			c.ByType[t] = now.Add(-d)
		} else {
			c.ByType[t] = time.Time{}
		}
	}
	return c
}

// Of returns the cutoff of an event type (zero: kept forever).
func (c Cutoffs) Of(typ string) time.Time {
	if t, ok := c.ByType[typ]; ok {
		return t
	}
	return c.Default
}

// Expired reports whether ev is past its type's cutoff.
func (c Cutoffs) Expired(ev *graph.Event) bool {
	cut := c.Of(EventType(ev))
	return !cut.IsZero() && ev.Timestamp.Before(cut)
}

// Latest is the latest cutoff: no event at or after it expires. Zero when
// nothing expires.
func (c Cutoffs) Latest() time.Time {
	out := c.Default
	for _, t := range c.ByType {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// None reports whether no event can expire.
func (c Cutoffs) None() bool { return c.Latest().IsZero() }

// EventsRequest is one batch of event deletion.
type EventsRequest struct {
	Cutoffs Cutoffs
	// After is the cursor a previous batch returned ("" to start).
	After string
	// Limit bounds the events one batch deletes.
	Limit int
	// Scan bounds the events one batch reads (expired or not), so that a
	// batch's time is bounded when few events expire; 0 takes 20×Limit.
	Scan int
}

// ScanLimit is the number of events a batch may read.
func (r EventsRequest) ScanLimit() int {
	if r.Scan > 0 {
		return max(r.Scan, r.Limit)
	}
	return 20 * r.Limit
}

// EventsResult is what one batch deleted.
type EventsResult struct {
	// Deleted counts the events deleted by event type.
	Deleted map[string]int
	// Profiles are the live profiles whose events were deleted, each
	// marked as changed (a pending data change) in the same transaction.
	Profiles []string
	// Next is the cursor for the next batch; "" when the sweep is done.
	Next string
}

// Total is the number of events deleted.
func (r *EventsResult) Total() int { return sum(r.Deleted) }

func sum(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// Store is what a backend provides for retention. Every backend passes
// retention/storetest. Profile expiry goes through erase.Store.ErasePerson
// with Request.InactiveBefore set.
type Store interface {
	// DeleteExpiredEvents deletes, in one transaction, up to req.Limit
	// events past their cutoff (with every timeline entry), reading at most
	// req.ScanLimit events, starting after req.After. Every live profile an
	// event was seen with gets a pending data change naming the deleted
	// track events, in the same transaction. Deleting an event another
	// sweep deleted first is not an error: it is skipped.
	DeleteExpiredEvents(ctx context.Context, req EventsRequest) (*EventsResult, error)
	// InactiveProfiles returns up to limit live profiles last updated
	// before before, with an ID after after, in ID order.
	InactiveProfiles(ctx context.Context, before time.Time, after string, limit int) ([]string, error)
}

// Backend is a graph store that implements retention.
type Backend interface {
	Retention() Store
}

// TrackNames are the names of the track events among evs, sorted, each
// once: what a pending data change lists (segments read track events
// only).
func TrackNames(evs []*graph.Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == "track" && ev.Name != "" {
			out = append(out, ev.Name)
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(out)))
}

// ParseDuration reads a retention duration: Go's durations (36h, 90m)
// and whole days (395d). "0" is zero (keep forever).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*366 {
			return 0, fmt.Errorf("%q is not a number of days such as 395d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 395d or 36h", s)
	}
	return d, nil
}

// ParseRules reads "Page Viewed=30d,Order Completed=2000d": event types
// (EventType) and their time to live ("0" keeps that type forever).
func ParseRules(s string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		typ, ttl, ok := strings.Cut(part, "=")
		typ = strings.TrimSpace(typ)
		if !ok || typ == "" {
			return nil, fmt.Errorf("%q is not type=duration, e.g. Page Viewed=30d", strings.TrimSpace(part))
		}
		if _, dup := out[typ]; dup {
			return nil, fmt.Errorf("event type %q is given twice", typ)
		}
		d, err := ParseDuration(ttl)
		if err != nil {
			return nil, fmt.Errorf("event type %q: %w", typ, err)
		}
		out[typ] = d
	}
	return out, nil
}

// String renders the policy for logs.
func (p Policy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "default=%s", p.Default)
	for _, t := range slices.Sorted(maps.Keys(p.ByType)) {
		fmt.Fprintf(&b, " %q=%s", t, p.ByType[t])
	}
	fmt.Fprintf(&b, " inactive-profiles=%s", p.InactiveProfiles)
	return b.String()
}
