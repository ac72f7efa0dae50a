package graph

import (
	"fmt"
	"time"
)

// The times a store can hold. Every backend encoding represents them
// exactly and in order: Pebble's JSON (years 0–9999) and its nanosecond
// timeline keys (1677–2262), Neo4j datetimes. A time outside would be
// written and then fail to read back, breaking every read of the records
// around it, so Changes.Validate refuses it before anything is written.
// The zero time means "not set" and is allowed.
var (
	MinStoredTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxStoredTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CheckStoredTime returns an invalid-input error naming field when t is
// set and outside [MinStoredTime, MaxStoredTime).
func CheckStoredTime(field string, t time.Time) error {
	if t.IsZero() || (!t.Before(MinStoredTime) && t.Before(MaxStoredTime)) {
		return nil
	}
	return FieldErrorf(field, "%s is outside the times the store holds (%d to %d)",
		t.UTC().Format(time.RFC3339), MinStoredTime.Year(), MaxStoredTime.Year())
}

// Validate checks every time in c before a backend writes it: one
// out-of-range value fails the whole transaction rather than being stored
// unreadable. Backends call it first thing in Apply.
func (c *Changes) Validate() error {
	var errs timeChecks
	for _, n := range c.Identifiers {
		errs.check("identifier.firstSeen", n.FirstSeen)
		errs.check("identifier.lastSeen", n.LastSeen)
	}
	for _, e := range c.Edges {
		errs.edge(e)
	}
	for _, p := range c.Profiles {
		errs.check("profile.createdAt", p.CreatedAt)
		errs.check("profile.updatedAt", p.UpdatedAt)
		for path, tr := range p.Traits {
			errs.check(fmt.Sprintf("profile.traits[%q].time", path), tr.Time)
		}
	}
	for _, m := range c.Merges {
		errs.check("merge.at", m.At)
	}
	for _, h := range c.Hubs {
		errs.check("hub.at", h.At)
	}
	for _, e := range c.Events {
		errs.check("timestamp", e.Timestamp)
		errs.check("receivedAt", e.ReceivedAt)
	}
	for _, a := range c.Audit {
		errs.check("audit.at", a.At)
		for _, e := range a.Edges {
			errs.edge(e)
		}
	}
	return errs.err
}

// timeChecks keeps the first failed check.
type timeChecks struct{ err error }

func (c *timeChecks) check(field string, t time.Time) {
	if c.err == nil {
		c.err = CheckStoredTime(field, t)
	}
}

func (c *timeChecks) edge(e *Edge) {
	c.check("edge.firstSeen", e.FirstSeen)
	c.check("edge.lastSeen", e.LastSeen)
	if e.Decision != nil {
		c.check("edge.decision.at", e.Decision.At)
	}
}
