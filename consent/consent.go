// Package consent keeps a person's consent per purpose and decides, with
// one check, whether a profile's data may leave idgraph for a purpose.
//
// Consent history belongs to identifiers, not to the merged profile: each
// record is attached to the identifier it was observed with (every
// identifier of the message that carried it, or the subject a steward
// named). A profile's consent is derived from the records of the
// identifiers it holds at the time of the check, so a merge brings both
// histories together (disagreeing current states become a conflict) and a
// split or undo gives each side back exactly its own records.
package consent

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// Statuses of a record.
const (
	Granted = "GRANTED"
	Denied  = "DENIED"
)

// States of a purpose for a profile: a record's status, or what the
// derivation made of several.
const (
	StateGranted  = "GRANTED"
	StateDenied   = "DENIED"
	StateExpired  = "EXPIRED"
	StateConflict = "CONFLICT"
	StateMissing  = "MISSING"
)

// Reasons a record is withheld (metric labels and response counts).
const (
	ReasonNotGranted = "not_granted"
	ReasonDenied     = "denied"
	ReasonExpired    = "expired"
	ReasonConflict   = "conflict"
)

// Reasons lists every withholding reason, for metrics and responses.
var Reasons = []string{ReasonNotGranted, ReasonDenied, ReasonExpired, ReasonConflict}

// Sources of records.
const (
	SourceSegment     = "segment"     // context.consent.categoryPreferences
	SourceRudderStack = "rudderstack" // context.consentManagement
	SourceAPI         = "api"         // the recordConsent mutation
)

// Record is one consent choice, attached to one identifier.
type Record struct {
	// ID identifies the choice; one choice attached to several identifiers
	// (a message's, or a profile's) has one ID and one record per
	// identifier. (Key, ID) is unique: storing it again changes nothing.
	ID      string    `json:"id"`
	Key     graph.Key `json:"key"`
	Purpose string    `json:"purpose"`
	Status  string    `json:"status"`
	Time    time.Time `json:"time"`
	// Expires, when set, ends the choice: from then on it counts as not
	// granted.
	Expires time.Time `json:"expires,omitzero"`
	Source  string    `json:"source"`
	// RecordedBy is the public id of the key that recorded an explicit
	// choice (never the secret).
	RecordedBy string `json:"recordedBy,omitempty"`
}

// Store keeps consent records. Every backend implements it (see
// consent/storetest).
type Store interface {
	// AppendConsent stores the records; a record whose (Key, ID) is
	// stored already is left as it is.
	AppendConsent(ctx context.Context, recs []Record) error
	// ConsentOf returns every record attached to any of the keys, ordered
	// by (Time, ID, Key).
	ConsentOf(ctx context.Context, keys []graph.Key) ([]Record, error)
}

// Backend is implemented by graph stores that also keep consent records.
type Backend interface {
	Consent() Store
}

// Sort orders records as ConsentOf returns them.
func Sort(recs []Record) {
	slices.SortFunc(recs, func(a, b Record) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID), a.Key.Compare(b.Key))
	})
}

// Validate checks a record before it is stored; bad input names the field.
func Validate(r *Record) error {
	switch {
	case r.ID == "":
		return graph.FieldErrorf("id", "is required")
	case r.Key.Type == "" || r.Key.Value == "":
		return graph.FieldErrorf("subject", "is required")
	case strings.TrimSpace(r.Purpose) == "" || len(r.Purpose) > 64:
		return graph.FieldErrorf("purpose", "must be 1 to 64 characters")
	case r.Status != Granted && r.Status != Denied:
		return graph.FieldErrorf("status", "must be GRANTED or DENIED, not %q", r.Status)
	case r.Time.IsZero():
		return graph.FieldErrorf("time", "is required")
	}
	return nil
}

// stateOf is what one record says at at.
func stateOf(r Record, at time.Time) string {
	if !r.Expires.IsZero() && !at.Before(r.Expires) {
		return StateExpired
	}
	if r.Status == Granted {
		return StateGranted
	}
	return StateDenied
}

// Derive returns the state of purpose for a profile whose identifiers'
// records are recs, at at. Each identifier's current choice is its latest
// record made at or before at; identifiers without one do not vote. No
// vote is MISSING; votes that all agree give their state (GRANTED, DENIED
// or EXPIRED); disagreeing votes are a CONFLICT, which only a newer choice
// recorded on every identifier (recordConsent on the profile) resolves.
func Derive(recs []Record, purpose string, at time.Time) string {
	latest := map[graph.Key]Record{}
	for _, r := range recs {
		if r.Purpose != purpose || r.Time.After(at) {
			continue
		}
		if old, ok := latest[r.Key]; !ok || r.Time.After(old.Time) || r.Time.Equal(old.Time) && r.ID > old.ID {
			latest[r.Key] = r
		}
	}
	state := StateMissing
	for _, r := range latest {
		s := stateOf(r, at)
		if state == StateMissing {
			state = s
		} else if s != state {
			return StateConflict
		}
	}
	return state
}

// Decision is the answer of Check.
type Decision struct {
	Allowed bool
	// State is the derived state; Reason is why data is withheld ("" when
	// allowed).
	State  string
	Reason string
}

// decide turns a state into a decision.
func decide(state string) Decision {
	d := Decision{State: state}
	switch state {
	case StateGranted:
		d.Allowed = true
	case StateDenied:
		d.Reason = ReasonDenied
	case StateExpired:
		d.Reason = ReasonExpired
	case StateConflict:
		d.Reason = ReasonConflict
	default:
		d.Reason = ReasonNotGranted
	}
	return d
}

// Checker answers the one consent check every export path calls.
type Checker struct {
	Store    Store
	Reader   graph.Reader
	Purposes *Purposes
}

// Check decides whether the profile's data may leave idgraph for purpose
// at at. Missing, expired, denied and conflicting consent are not granted.
// A purpose that is not configured is an invalid-input error naming the
// field "purpose".
func (c *Checker) Check(ctx context.Context, p *graph.Profile, purpose string, at time.Time) (Decision, error) {
	if err := c.Purposes.Require(purpose); err != nil {
		return Decision{}, err
	}
	recs, err := c.Records(ctx, p)
	if err != nil {
		return Decision{}, fmt.Errorf("consent check: %w", err)
	}
	return decide(Derive(recs, purpose, at)), nil
}

// CheckID is Check for a profile ID (the survivor's consent when the
// profile was merged away): what destinations, which know profiles by ID,
// call.
func (c *Checker) CheckID(ctx context.Context, profileID, purpose string, at time.Time) (Decision, error) {
	p, err := c.Reader.Profile(ctx, profileID)
	if graph.ErrorKind(err) == graph.KindNotFound {
		return decide(StateMissing), nil
	}
	if err != nil {
		return Decision{}, fmt.Errorf("consent check: %w", err)
	}
	if p.MergedInto != "" {
		if p, err = c.Reader.Profile(ctx, p.MergedInto); err != nil {
			return Decision{}, fmt.Errorf("consent check: %w", err)
		}
	}
	return c.Check(ctx, p, purpose, at)
}

// Records returns the records of every identifier the profile holds now.
func (c *Checker) Records(ctx context.Context, p *graph.Profile) ([]Record, error) {
	ids, err := graph.ProfileIdentifiers(ctx, c.Reader, p)
	if err != nil {
		return nil, err
	}
	keys := make([]graph.Key, len(ids))
	for i, n := range ids {
		keys[i] = n.Key
	}
	return c.Store.ConsentOf(ctx, keys)
}

// Current returns the state of every purpose configured or named by a
// record, sorted by purpose.
func Current(recs []Record, configured []string, at time.Time) [][2]string {
	seen := map[string]bool{}
	var names []string
	for _, n := range configured {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, r := range recs {
		if !seen[r.Purpose] {
			seen[r.Purpose] = true
			names = append(names, r.Purpose)
		}
	}
	slices.Sort(names)
	out := make([][2]string, len(names))
	for i, n := range names {
		out[i] = [2]string{n, Derive(recs, n, at)}
	}
	return out
}
