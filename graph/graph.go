// Package graph is the identity graph's domain: identifiers, observations,
// edges, profiles and merge events, the storage contract that every backend
// implements, and stitching, which turns observations into profiles.
package graph

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Edge kinds.
const (
	KindExact         = "exact"
	KindProbabilistic = "probabilistic"
	KindManual        = "manual"
)

// Edge statuses.
const (
	StatusAccepted = "accepted"
	StatusPending  = "pending"
	StatusRejected = "rejected"
)

// Reasons an edge is not accepted.
const (
	ReasonMergeProtection = "merge_protection"
	ReasonHub             = "hub"
	ReasonShared          = "shared" // joined through an identifier later found shared
)

// Observation is the set of identifiers seen together in one message or
// record, with where and when it was seen and what came with it.
type Observation struct {
	MessageID   string
	Source      string
	Time        time.Time // the event's (corrected) time
	Identifiers []Key
	// PreviousID is an alias call's previousId: it takes the type of the
	// identifier already stored with that value (user_id first), else
	// anonymous_id.
	PreviousID string
	// Traits are profile traits (identify calls and imported records).
	Traits map[string]any
	Event  Event
}

// Edge links two identifiers. A is always the lesser key.
type Edge struct {
	A      Key     `json:"a"`
	B      Key     `json:"b"`
	Score  float64 `json:"score"`
	Kind   string  `json:"kind"`
	Status string  `json:"status"`
	Reason string  `json:"reason,omitempty"`
	Evidence
	// Model is the matching model's version, for probabilistic edges.
	Model string `json:"model,omitempty"`
	// Explanation is the matching engine's account of the score: each
	// comparison's level and weight, the term-frequency adjustment, the
	// prior.
	Explanation json.RawMessage `json:"explanation,omitempty"`
	// Impact is how many identifiers accepting a pending edge would join
	// (both profiles' sizes when it was proposed): the review queue's order.
	Impact int `json:"impact,omitempty"`
	// Decision is the steward's, when a steward decided the edge.
	Decision *Decision `json:"decision,omitempty"`
}

// Evidence says where and how often an edge was seen.
type Evidence struct {
	Sources   []string  `json:"sources"`
	Count     int       `json:"count"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
}

// Pair returns the canonical (ordered) pair of keys.
func Pair(a, b Key) [2]Key {
	if b.Less(a) {
		a, b = b, a
	}
	return [2]Key{a, b}
}

// Trait is one profile trait with the provenance of its current value.
type Trait struct {
	Value  any       `json:"value"`
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
}

// DataQuery says what of a profile a bulk read (ProfilesData) wants.
type DataQuery struct {
	Traits []string // the trait paths whose values to return
	Keys   bool     // its identifiers' keys, the absorbed profiles' included
	Counts bool     // its identifier counts per type
	// Absorbed asks for the IDs of the profiles it absorbed: what a
	// segment backfill fingerprints (a merge it has not evaluated yet is
	// left to the one-profile path) without reading the whole profile.
	Absorbed bool
}

// ProfileData is part of a live profile, as a DataQuery asks for it.
type ProfileData struct {
	ID     string
	Keys   []Key          // sorted
	Traits map[string]any // the paths asked for that it has
	Counts map[string]int
	// Absorbed lists the profiles it absorbed, in no particular order,
	// when the query asks for them.
	Absorbed []string
}

// Profile is a connected component of accepted edges.
type Profile struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// MergedInto is set once the profile has been absorbed; it always names
	// a live profile (merges re-point earlier absorbed profiles).
	MergedInto string `json:"mergedInto,omitempty"`
	// Absorbed lists every profile merged into this one, transitively.
	Absorbed []string `json:"absorbed,omitempty"`
	// Anchor is the profile's first identifier: probabilistic edges join
	// two profiles' anchors.
	Anchor Key `json:"anchor"`
	// Counts is the number of identifiers per type, for merge protection.
	Counts map[string]int   `json:"counts"`
	Traits map[string]Trait `json:"traits"`
	// CannotLink names profiles a steward kept apart from this one: no
	// automatic decision merges them.
	CannotLink []string `json:"cannotLink,omitempty"`
}

// Older reports whether p was created before q (the older ID survives).
func (p *Profile) Older(q *Profile) bool {
	if !p.CreatedAt.Equal(q.CreatedAt) {
		return p.CreatedAt.Before(q.CreatedAt)
	}
	return p.ID < q.ID
}

// MergeEvent records one merge so that it can be audited and undone.
type MergeEvent struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	MessageID string    `json:"messageId"`
	Source    string    `json:"source"`
	Survivor  string    `json:"survivor"`
	Absorbed  string    `json:"absorbed"`
	Edge      [2]Key    `json:"edge"`
	// Sizes of both profiles (identifier counts) before the merge.
	SurvivorSize int `json:"survivorSize"`
	AbsorbedSize int `json:"absorbedSize"`
	// Group lists the profiles the absorbed one had absorbed before, which
	// an undo gives back to it.
	Group []string `json:"group,omitempty"`
}

// HubMarking records when and why a value was marked as a hub.
type HubMarking struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	Key       Key       `json:"key"`
	Strong    int       `json:"strong"`
	Limit     int       `json:"limit"`
	MessageID string    `json:"messageId"`
	// Rule is RuleShared when a shared limit marked it (Strong then counts
	// user IDs); empty for the hub limit.
	Rule string `json:"rule,omitempty"`
}

// RuleShared marks a hub found shared by Config.SharedLimits.
const RuleShared = "shared"

// Event is a stored message (track, page, screen, group, identify, alias)
// or imported record, kept with the identifiers it was seen with.
type Event struct {
	ID          string          `json:"id"`
	MessageID   string          `json:"messageId"`
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Source      string          `json:"source"`
	Timestamp   time.Time       `json:"timestamp"`
	ReceivedAt  time.Time       `json:"receivedAt"`
	Identifiers []Key           `json:"identifiers"`
	Properties  json.RawMessage `json:"properties,omitempty"`
	Traits      json.RawMessage `json:"traits,omitempty"`
	Context     json.RawMessage `json:"context,omitempty"`
}

// Changes is everything one stitching transaction writes.
type Changes struct {
	Identifiers []*Identifier
	// Unused are keys locked as alias candidates that were not used; a
	// backend that created placeholders for them while locking drops them.
	Unused   []Key
	Edges    []*Edge
	Profiles []*Profile
	Merges   []*MergeEvent
	Hubs     []*HubMarking
	Events   []*Event
	// Blocks files profiles under their blocking keys, for matching.
	Blocks []BlockEntry
	// Audit records steward actions.
	Audit []*AuditEntry
	// DataChanges say what changed in each profile's data (written only
	// with Stitcher.RecordDataChanges).
	DataChanges []DataChange
}

// Store is the storage contract every backend implements.
type Store interface {
	// Update runs fn in a read-write transaction. Changes applied through
	// the Tx are durable once Update returns nil. fn may run more than once
	// (backends retry transient conflicts), so it must not keep state
	// across calls.
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	Reader
	// Setting reads a small named value (instance secret, API keys); ok is
	// false when it is not set.
	Setting(ctx context.Context, name string) (value string, ok bool, err error)
	// InitSetting stores value under name unless a value is already there,
	// and returns the value that is stored: concurrent first starts agree.
	InitSetting(ctx context.Context, name, value string) (string, error)
	// PutSetting stores value under name, replacing any value there (the
	// last writer wins).
	PutSetting(ctx context.Context, name, value string) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// Tx is a stitching transaction. Every Lock method returns the current,
// committed state and keeps others from changing it until the transaction
// ends.
type Tx interface {
	// LockMessages returns which of the message IDs are already stored.
	LockMessages(ctx context.Context, ids []string) (map[string]bool, error)
	// LockIdentifiers returns the stored identifiers among keys.
	LockIdentifiers(ctx context.Context, keys []Key) (map[Key]*Identifier, error)
	// LockProfiles returns the stored profiles among ids.
	LockProfiles(ctx context.Context, ids []string) (map[string]*Profile, error)
	// Edges returns the stored edges among the given (ordered) pairs.
	Edges(ctx context.Context, pairs [][2]Key) (map[[2]Key]*Edge, error)
	// Candidates returns, for each blocking key, up to limit+1 IDs of the
	// profiles filed under it (a caller seeing limit+1 knows the block is
	// oversized). IDs may name profiles since absorbed.
	Candidates(ctx context.Context, keys []string, limit int) (map[string][]string, error)
	Apply(ctx context.Context, c *Changes) error
}

// Reader reads the graph outside of stitching. Batch methods take many
// keys at once so that a GraphQL query costs a bounded number of calls.
type Reader interface {
	// Identifier returns the identifier with the key, or a not_found error.
	Identifier(ctx context.Context, k Key) (*Identifier, error)
	// Profile returns the profile stored under id (live or absorbed), or a
	// not_found error.
	Profile(ctx context.Context, id string) (*Profile, error)
	// GetIdentifiers returns the identifiers stored under keys, in order,
	// nil where none is.
	GetIdentifiers(ctx context.Context, keys []Key) ([]*Identifier, error)
	// GetProfiles returns the profiles stored under ids, in order, nil where
	// none is.
	GetProfiles(ctx context.Context, ids []string) ([]*Profile, error)
	// IdentifiersOf returns each live profile's identifiers, including those
	// that joined profiles it absorbed, sorted by key.
	IdentifiersOf(ctx context.Context, ps []*Profile) ([][]*Identifier, error)
	// EdgesOf returns every edge touching any of the keys, each once,
	// ordered by (A, B).
	EdgesOf(ctx context.Context, keys []Key) ([]*Edge, error)
	// CountProfiles counts the live profiles (a full scan: for progress
	// reports, not for every request).
	CountProfiles(ctx context.Context) (int, error)
	// Profiles lists live profiles in ID order after the given ID.
	Profiles(ctx context.Context, after string, limit int) ([]*Profile, error)
	// ProfilesData returns part of each ID's live profile, what q asks
	// for, nil where the ID names no live profile (absent, or merged away).
	// It reads less than GetProfiles and IdentifiersOf: for bulk reads
	// such as a segment's members export.
	ProfilesData(ctx context.Context, ids []string, q DataQuery) ([]*ProfileData, error)
	// ScanProfilesData lists live profiles' data, what q asks for, in ID
	// order after the given ID: for scans such as a segment preview.
	ScanProfilesData(ctx context.Context, after string, limit int, q DataQuery) ([]*ProfileData, error)
	// Timelines answers several timeline queries in one call (one per
	// profile of a GraphQL page). Each answer holds up to Limit events seen
	// with any of the query's keys, each once, newest first (timestamp,
	// then ID, descending); with After set, only events that come after it
	// in that order. A page costs the same however many events there are.
	Timelines(ctx context.Context, qs []TimelineQuery) ([][]*Event, error)
	// Merges returns the merge events in which the profile took part,
	// oldest first.
	Merges(ctx context.Context, profileID string) ([]*MergeEvent, error)
	// MergeEvent returns one merge event, or a not_found error.
	MergeEvent(ctx context.Context, id string) (*MergeEvent, error)
	// AuditEntry returns one audit entry, or a not_found error.
	AuditEntry(ctx context.Context, id string) (*AuditEntry, error)
	// AuditLog lists audit entries, newest first.
	AuditLog(ctx context.Context, q AuditQuery) ([]*AuditEntry, error)
	// ReviewQueue lists pending edges in queue order (QueueRank, then
	// pair) after the cursor, which is an item's Cursor or "".
	ReviewQueue(ctx context.Context, after string, limit int) ([]QueueItem, error)
	// Hubs lists the hub markings.
	Hubs(ctx context.Context) ([]*HubMarking, error)
	// Search returns up to limit matches whose identifier value or name
	// word starts with prefix (lower case), best first: exact matches,
	// then shorter values, then by value.
	Search(ctx context.Context, prefix string, limit int) ([]SearchHit, error)
}

// TimelineQuery asks for one page of a timeline.
type TimelineQuery struct {
	Keys  []Key
	After *EventCursor
	Limit int
}

// Timeline reads one page of one timeline.
func Timeline(ctx context.Context, r Reader, keys []Key, after *EventCursor, limit int) ([]*Event, error) {
	evs, err := r.Timelines(ctx, []TimelineQuery{{Keys: keys, After: after, Limit: limit}})
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}

// EventCursor is a position in a timeline.
type EventCursor struct {
	Timestamp time.Time
	ID        string
}

// Before reports whether event e comes after cursor c in newest-first
// order, i.e. is older.
func (c EventCursor) Before(e *Event) bool {
	if !e.Timestamp.Equal(c.Timestamp) {
		return e.Timestamp.Before(c.Timestamp)
	}
	return e.ID < c.ID
}

// SearchHit is one search match. Profile is the profile the identifier
// joined or that holds the name; it may since have been absorbed.
type SearchHit struct {
	Profile string
	Field   string // identifier type, or "name"
	Value   string // the matched value as stored
	Exact   bool
}

// NameTraits are the traits whose words search matches.
var NameTraits = []string{"name", "firstName", "lastName", "first_name", "last_name"}

// Names returns the profile's current name trait values, each once.
func (p *Profile) Names() []string {
	var out []string
	for _, k := range NameTraits {
		if v, ok := p.Traits[k].Value.(string); ok && strings.TrimSpace(v) != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// SearchRank orders hits: exact first, then shorter values, then by value.
func SearchRank(a, b SearchHit) int {
	if a.Exact != b.Exact {
		if a.Exact {
			return -1
		}
		return 1
	}
	if len(a.Value) != len(b.Value) {
		return len(a.Value) - len(b.Value)
	}
	return strings.Compare(a.Value+a.Profile, b.Value+b.Profile)
}

// ChangeFeed is implemented by stores that several processes share: it
// lists profiles changed since a time, so that every process can
// invalidate caches and notify subscribers of others' writes.
type ChangeFeed interface {
	// ChangedSince pages through profiles (live or absorbed) in
	// (UpdatedAt, ID) order, from those stamped at since with an ID after
	// afterID ("": all of them).
	ChangedSince(ctx context.Context, since time.Time, afterID string, limit int) ([]*Profile, error)
}

// ProfileIdentifiers returns one live profile's identifiers.
func ProfileIdentifiers(ctx context.Context, r Reader, p *Profile) ([]*Identifier, error) {
	ids, err := r.IdentifiersOf(ctx, []*Profile{p})
	if err != nil {
		return nil, err
	}
	return ids[0], nil
}
