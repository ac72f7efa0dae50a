// Package segments maintains segments and computed traits: their saved
// definitions, each profile's memberships and computed values, the
// durable record of every membership change, and the timer index that
// lets time alone change a membership. The language they are written in
// is package segments/lang; the backends (pebble, neo4j) implement Store.
package segments

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments/lang"
)

// Ref names a definition: a segment or a computed trait.
type Ref = lang.Ref

// RefString is a reference's text, "segment:vip" or "computed:ltv_90d":
// the key of a profile's entry for it.
func RefString(r Ref) string { return KindName(r.Kind) + ":" + r.Key }

// KindName is a kind's name in references: "segment" or "computed".
func KindName(k lang.Kind) string {
	if k == lang.KindComputed {
		return "computed"
	}
	return "segment"
}

// ParseRef reads RefString's text.
func ParseRef(s string) (Ref, error) {
	kind, key, ok := strings.Cut(s, ":")
	switch {
	case !ok:
	case kind == KindName(lang.KindSegment):
		return Ref{Kind: lang.KindSegment, Key: key}, nil
	case kind == KindName(lang.KindComputed):
		return Ref{Kind: lang.KindComputed, Key: key}, nil
	}
	return Ref{}, fmt.Errorf("segments: bad reference %q", s)
}

// MaxKeyLen bounds a definition's key (in bytes).
const MaxKeyLen = 128

// CheckKey refuses a key that is empty, too long, or holds anything but
// letters (any script), digits, '_', '-' and '.': keys name definitions in
// the language (in_segment("vip")), in storage keys and in URLs.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return graph.FieldErrorf("key", "a key is 1 to %d bytes", MaxKeyLen)
	}
	for _, r := range key {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.' {
			return graph.FieldErrorf("key", "%q: a key holds letters, digits, '_', '-' and '.'", key)
		}
	}
	return nil
}

// Lifecycle states of a definition.
const (
	StateBackfilling = "BACKFILLING"
	StateLive        = "LIVE"
	StateFailed      = "FAILED"
	StateDisabled    = "DISABLED"
)

// Status is where a definition is in its lifecycle.
type Status struct {
	State    string  `json:"state"`
	Progress float64 `json:"progress,omitempty"` // BACKFILLING: 0 to 1
	Code     string  `json:"code,omitempty"`     // FAILED
	Message  string  `json:"message,omitempty"`  // FAILED
}

// Definition is a saved segment or computed trait. Every edit makes a new
// version; Version is 1 for a new definition.
type Definition struct {
	Kind      lang.Kind `json:"kind"`
	Key       string    `json:"key"`
	Source    string    `json:"source"`
	Version   int       `json:"version"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"` // when this version was saved
	// Author is who saved this version (the API key's actor, as the audit
	// log names it; AuthorOf); empty when not known.
	Author string `json:"author,omitempty"`
	// Change is what made this version: ChangeCreated, ChangeEdited,
	// ChangeDisabled or ChangeEnabled (empty for versions saved before
	// it was recorded).
	Change string `json:"change,omitempty"`
}

// What made a version of a definition (Definition.Change).
const (
	ChangeCreated  = "created"
	ChangeEdited   = "edited"
	ChangeDisabled = "disabled"
	ChangeEnabled  = "enabled"
)

type authorKey struct{}

// WithAuthor returns a context whose definition writes (Engine.Define,
// SetEnabled) name author as the new version's author.
func WithAuthor(ctx context.Context, author string) context.Context {
	return context.WithValue(ctx, authorKey{}, author)
}

// AuthorOf returns the author WithAuthor set ("" when none).
func AuthorOf(ctx context.Context) string {
	a, _ := ctx.Value(authorKey{}).(string)
	return a
}

// Ref returns the definition's reference.
func (d *Definition) Ref() Ref { return Ref{Kind: d.Kind, Key: d.Key} }

// Value is a computed trait's value as stored: a single typed value (the
// language's lists and durations are missing as computed values, and are
// not stored).
type Value struct {
	Type   string    `json:"type"` // boolean, number, string or timestamp
	Bool   bool      `json:"bool,omitempty"`
	Number float64   `json:"number,omitempty"`
	String string    `json:"string,omitempty"`
	Time   time.Time `json:"time,omitzero"`
}

// ValueOf converts an evaluated value for storage; nil when it is missing
// or not a single value.
func ValueOf(v lang.Value) *Value {
	switch v.Type {
	case lang.TypeBool:
		return &Value{Type: v.Type.String(), Bool: v.Bool}
	case lang.TypeNumber:
		return &Value{Type: v.Type.String(), Number: v.Num}
	case lang.TypeString:
		return &Value{Type: v.Type.String(), String: v.Str}
	case lang.TypeTimestamp:
		return &Value{Type: v.Type.String(), Time: v.Time.UTC()}
	}
	return nil
}

// Interface returns the value as the evaluator reads a computed value
// (lang.ProfileView.Computed); nil for nil.
func (v *Value) Interface() any {
	if v == nil {
		return nil
	}
	switch v.Type {
	case lang.TypeBool.String():
		return v.Bool
	case lang.TypeNumber.String():
		return v.Number
	case lang.TypeString.String():
		return v.String
	case lang.TypeTimestamp.String():
		return v.Time
	}
	return nil
}

// Equal reports whether two stored values are the same (nil: missing).
func (v *Value) Equal(w *Value) bool {
	if v == nil || w == nil {
		return v == w
	}
	return v.Type == w.Type && v.Bool == w.Bool && v.Number == w.Number && v.String == w.String && v.Time.Equal(w.Time)
}

// Entry is one definition's result for one profile. Entries that say
// nothing (not a member, no value, no deadline) are not stored.
type Entry struct {
	Version int       `json:"version"`
	Member  bool      `json:"member,omitempty"` // segments
	Since   time.Time `json:"since,omitzero"`   // when the profile entered
	Value   *Value    `json:"value,omitempty"`  // computed traits
	// Deadline is when the result can next change with time alone (the
	// timer index holds it); zero when it cannot.
	Deadline time.Time `json:"deadline,omitzero"`
}

// Empty reports whether the entry says nothing worth storing.
func (e Entry) Empty() bool { return !e.Member && e.Value == nil && e.Deadline.IsZero() }

// ProfileState is one profile's memberships and computed values, keyed by
// RefString. Rev counts its saves: a save names the revision it read and
// is refused if another came in between, so that no evaluation of older
// data overwrites a newer one.
type ProfileState struct {
	Profile string           `json:"profile"`
	Rev     int64            `json:"rev"`
	Entries map[string]Entry `json:"entries,omitempty"`
	// Identity is the profile's identity when the entries were computed:
	// the engine compares it with the profile's to see merges, splits and
	// identifier changes that no event announced.
	Identity Identity `json:"identity,omitzero"`
	// Definitions fingerprints the definitions (and versions) the entries
	// were computed with: when they differ from the loaded ones, every
	// definition is evaluated again (entries that say nothing are not
	// stored, so their versions are not known one by one).
	Definitions string `json:"definitions,omitempty"`
}

// Identity is what a profile's entries were computed from besides its
// events and traits.
type Identity struct {
	// Absorbed fingerprints the profiles it had absorbed (AbsorbedPrint).
	Absorbed string         `json:"absorbed,omitempty"`
	Counts   map[string]int `json:"counts,omitempty"`
}

// Member reports whether the profile is in the segment.
func (s *ProfileState) Member(key string) bool {
	return s.Entries[RefString(Ref{Kind: lang.KindSegment, Key: key})].Member
}

// Directions of a change record: a membership change, or a computed
// trait's new value.
const (
	Entered = "entered"
	Exited  = "exited"
	Changed = "changed" // a computed trait's value (ChangeRecord.Trait)
)

// Reasons for a membership change.
const (
	ReasonData       = "data"       // an event, trait or identifier changed
	ReasonTime       = "time"       // a window passed (the timer index)
	ReasonDefinition = "definition" // the definition was created, edited or deleted
	ReasonMerged     = "profile_merged"
	ReasonErased     = "erased"  // the person was erased (package erase)
	ReasonExpired    = "expired" // the profile expired, inactive past retention (package retention)
)

// ChangeRecord is one membership change, or one change of a computed
// trait's value, written atomically with it. Sequence is a store-wide,
// strictly increasing number: readers (destinations, subscriptions,
// exports) page through the records by it.
//
// A membership change names its Segment and has Direction Entered or
// Exited. A computed trait's change names its Trait (Segment is empty, so
// readers that look for a segment's records skip it), has Direction
// Changed, and carries the value before and after (nil: missing); the two
// always differ.
type ChangeRecord struct {
	Sequence  uint64    `json:"sequence"`
	Segment   string    `json:"segment"`
	Trait     string    `json:"trait,omitempty"`
	Version   int       `json:"version"`
	Profile   string    `json:"profile"`
	Direction string    `json:"direction"`
	Reason    string    `json:"reason"`
	Time      time.Time `json:"time"`
	Previous  *Value    `json:"previous,omitempty"`
	Value     *Value    `json:"value,omitempty"`
}

// IsTrait reports whether the record is a computed trait's change.
func (c *ChangeRecord) IsTrait() bool { return c.Trait != "" }

// Save is one profile's new state. State.Rev is the revision it was
// computed from; the store writes it as Rev+1.
type Save struct {
	State  *ProfileState
	Reason string // for the change records
	// Reasons overrides Reason for some segments (by RefString).
	Reasons map[string]string
	At      time.Time // the evaluation time, the change records' time
	// Read is the stored state the save was computed from, as the engine
	// read it (nil: not given). A store may take it as the state it
	// replaces when it is exactly the stored one, instead of decoding
	// that again under its lock; it never trusts it otherwise.
	Read *ProfileState
}

// Timer is one entry of the timer index: the (profile, definition) whose
// result can change with time alone at At.
type Timer struct {
	At      time.Time
	Profile string
	Ref     Ref
}

// Store is the storage contract of segments, which every backend
// implements. Saves are atomic: a profile's new entries, the change
// records they imply, its timers and its membership index are written in
// one transaction.
type Store interface {
	// PutDefinition creates a definition (expectedVersion 0; conflict if
	// the key is taken) or replaces version expectedVersion (conflict if
	// the stored one differs, not_found if there is none). It stores and
	// returns d with Version expectedVersion+1.
	PutDefinition(ctx context.Context, d *Definition, expectedVersion int) (*Definition, error)
	// SetStatus changes a definition's status without a new version;
	// conflict if the stored version is not version.
	SetStatus(ctx context.Context, r Ref, version int, st Status) error
	// DeleteDefinition deletes version expectedVersion of a definition.
	DeleteDefinition(ctx context.Context, r Ref, expectedVersion int) error
	// Definition returns one definition, or a not_found error.
	Definition(ctx context.Context, r Ref) (*Definition, error)
	// Definitions lists every definition, by kind then key.
	Definitions(ctx context.Context) ([]*Definition, error)
	// Versions pages through a definition's versions, newest first: the
	// stored one, then each one it replaced (as it was when replaced),
	// those with a version below before (0: from the newest), up to
	// limit. PutDefinition keeps the replaced version in the same write;
	// DeleteDefinition deletes them all. not_found when the definition is
	// not stored.
	Versions(ctx context.Context, r Ref, before, limit int) ([]*Definition, error)

	// States returns the profiles' states in order; a profile with none
	// has an empty state of revision 0.
	States(ctx context.Context, profiles []string) ([]*ProfileState, error)
	// StatesPage pages through every stored state, by profile: up to
	// limit of those whose profile sorts after after ("": from the
	// first). A resync of a computed trait reads its values this way
	// (there is no index by computed trait).
	StatesPage(ctx context.Context, after string, limit int) ([]*ProfileState, error)
	// SaveStates writes the states in one transaction, with the change
	// records Diff gives between each stored state and the new one, and
	// returns those records. A state whose stored revision is not the one
	// it was computed from is refused (conflict), and so is a membership
	// of a profile or segment that is not stored (not_found), and a
	// profile merged away entering a segment (ErrStale: evaluated from
	// data read before the merge, it is evaluated again, as its survivor).
	SaveStates(ctx context.Context, saves []Save) ([]*ChangeRecord, error)
	// Changes pages through the change records after a sequence number.
	Changes(ctx context.Context, after uint64, limit int) ([]*ChangeRecord, error)
	// LastChange returns the sequence number of the newest change record
	// (0 when there is none): a reader that wants only what comes next
	// starts after it.
	LastChange(ctx context.Context) (uint64, error)
	// DueTimers returns up to limit timers due at or before until, in
	// (At, Profile, Ref) order.
	DueTimers(ctx context.Context, until time.Time, limit int) ([]Timer, error)
	// Members pages through a segment's members in profile ID order.
	Members(ctx context.Context, segment, after string, limit int) ([]string, error)
	// MemberCount returns a segment's number of members without reading
	// them (0 for an unknown segment).
	MemberCount(ctx context.Context, segment string) (int, error)
	// PutSizeSamples stores segment sizes; a sample for the same (segment,
	// At) replaces the stored one, so processes sampling together agree.
	PutSizeSamples(ctx context.Context, samples []SizeSample) error
	// SizeSamples returns up to limit of a segment's samples with from <=
	// At < to, oldest first. Deleting a segment deletes its samples.
	SizeSamples(ctx context.Context, segment string, from, to time.Time, limit int) ([]SizeSample, error)
	// DeleteSizeSamples deletes every sample taken before a time.
	DeleteSizeSamples(ctx context.Context, before time.Time) error

	// PendingChanges returns up to limit profiles' pending data changes
	// (written with the events, graph.Changes.DataChanges) of profiles
	// after the given ID (all: ""), in profile ID order.
	PendingChanges(ctx context.Context, after string, limit int) ([]Pending, error)
	// DonePending removes pending changes once evaluated, each unless more
	// was added to it since it was read (its Mark moved on), in one write.
	DonePending(ctx context.Context, ps ...Pending) error
}

// MembersDataStore is a Store that reads a page of a segment's members
// together with what a graph.DataQuery asks of their profiles, in one
// call: on Neo4j one statement, where a page of IDs and then a lookup of
// them are two statements and seek every member's profile twice.
type MembersDataStore interface {
	// MembersData is Members with data[i] for ids[i]: nil for a member
	// whose profile is merged away or erased. data is nil when the page
	// was read without them (a wrapper of a store that reads none).
	MembersData(ctx context.Context, segment, after string, limit int, q graph.DataQuery) (ids []string, data []*graph.ProfileData, err error)
}

// MembersData reads a page of members with their data when s is a
// MembersDataStore, and only their IDs (nil data) when it is not: what a
// wrapper of a Store forwards MembersData to.
func MembersData(ctx context.Context, s Store, segment, after string, limit int, q graph.DataQuery) ([]string, []*graph.ProfileData, error) {
	if ds, ok := s.(MembersDataStore); ok {
		return ds.MembersData(ctx, segment, after, limit, q)
	}
	ids, err := s.Members(ctx, segment, after, limit)
	return ids, nil, err
}

// Pending is a profile's data changes not yet evaluated, merged since the
// last evaluation; Mark counts the transactions that added to it.
type Pending struct {
	graph.DataChange
	Mark int64 `json:"mark"`
}

// Backend is implemented by graph stores that also store segments.
type Backend interface {
	Segments() Store
}

// Diff returns the changes a save makes to the stored entries old, in
// reference order (computed traits, then segments; by key), without
// sequence numbers: a membership that changed, and a computed value that
// changed (to or from missing included). A record's version is the
// definition version of the entry that decided it: the new one, or the
// old one when there is no new entry.
func Diff(sv Save, old map[string]Entry) []*ChangeRecord {
	next := sv.State.Entries
	var refs []string
	for r, e := range old {
		if n := next[r]; e.Member != n.Member || !e.Value.Equal(n.Value) {
			refs = append(refs, r)
		}
	}
	for r, e := range next {
		if _, seen := old[r]; (e.Member || e.Value != nil) && !seen {
			refs = append(refs, r)
		}
	}
	slices.Sort(refs)
	out := make([]*ChangeRecord, 0, len(refs))
	for _, rs := range refs {
		ref, err := ParseRef(rs)
		if err != nil {
			continue
		}
		reason := sv.Reason
		if r, ok := sv.Reasons[rs]; ok {
			reason = r
		}
		c := &ChangeRecord{Profile: sv.State.Profile, Reason: reason, Time: sv.At.UTC(), Version: old[rs].Version}
		e, ok := next[rs]
		if ok {
			c.Version = e.Version
		}
		if ref.Kind == lang.KindComputed {
			c.Trait, c.Direction, c.Previous, c.Value = ref.Key, Changed, old[rs].Value, e.Value
		} else {
			c.Segment, c.Direction = ref.Key, Exited
			if e.Member {
				c.Direction = Entered
			}
		}
		out = append(out, c)
	}
	return out
}

// ErasureRecords are the change records of erasing a profile whose stored
// entries are old: an exit of every segment it was in and a change to
// missing of every computed value it had, with reason (erase's
// ExitReason). The records do not repeat an erased value: Previous is
// left missing.
func ErasureRecords(profile string, old map[string]Entry, reason string, at time.Time) []*ChangeRecord {
	out := Diff(Save{State: &ProfileState{Profile: profile}, Reason: reason, At: at}, old)
	for _, c := range out {
		c.Previous = nil
	}
	return out
}

// Timers returns the timer index entries of a state.
func Timers(s *ProfileState) []Timer {
	var out []Timer
	for rs, e := range s.Entries {
		if e.Deadline.IsZero() {
			continue
		}
		if ref, err := ParseRef(rs); err == nil {
			out = append(out, Timer{At: e.Deadline.UTC(), Profile: s.Profile, Ref: ref})
		}
	}
	return out
}

// TimerChanges returns the timers of old that next no longer has and
// those next adds: what a save writes to the timer index.
func TimerChanges(old, next *ProfileState) (gone, added []Timer) {
	for rs, e := range old.Entries {
		if n := next.Entries[rs]; !n.Deadline.Equal(e.Deadline) && !e.Deadline.IsZero() {
			if ref, err := ParseRef(rs); err == nil {
				gone = append(gone, Timer{At: e.Deadline.UTC(), Profile: next.Profile, Ref: ref})
			}
		}
	}
	for rs, e := range next.Entries {
		if o := old.Entries[rs]; !o.Deadline.Equal(e.Deadline) && !e.Deadline.IsZero() {
			if ref, err := ParseRef(rs); err == nil {
				added = append(added, Timer{At: e.Deadline.UTC(), Profile: next.Profile, Ref: ref})
			}
		}
	}
	return gone, added
}

// MembershipWrites returns the memberships of next a save writes to the
// member index: those old did not have, or had with another version or
// start. After a change of definitions, all of them: a segment deleted
// and created again took its index with it, while old may still hold an
// equal entry.
func MembershipWrites(old, next *ProfileState) map[string]Entry {
	is, was := SegmentMemberships(next.Entries), SegmentMemberships(old.Entries)
	maps.DeleteFunc(is, func(k string, e Entry) bool { return !WritesMembership(old, next, was, k, e) })
	return is
}

// WritesMembership reports whether a save of next over old writes next's
// membership k (entry e) to the member index (MembershipWrites); was is
// SegmentMemberships of old.
func WritesMembership(old, next *ProfileState, was map[string]Entry, k string, e Entry) bool {
	w, ok := was[k]
	return old.Definitions != next.Definitions || !ok || w.Version != e.Version || !w.Since.Equal(e.Since)
}

// SegmentMemberships returns the segments a state is a member of, with
// their entries (nil for none: most states of a backfill or of a new
// profile).
func SegmentMemberships(entries map[string]Entry) map[string]Entry {
	var out map[string]Entry
	for rs, e := range entries {
		if !e.Member {
			continue
		}
		if ref, err := ParseRef(rs); err == nil && ref.Kind == lang.KindSegment {
			if out == nil {
				out = map[string]Entry{}
			}
			out[ref.Key] = e
		}
	}
	return out
}

// CheckSaves validates saves before a backend writes them: states name a
// profile, each profile is saved once, and only segments have members.
func CheckSaves(saves []Save) error {
	seen := map[string]bool{}
	for _, s := range saves {
		if s.State == nil || s.State.Profile == "" {
			return fmt.Errorf("segments: save: a state without a profile")
		}
		if seen[s.State.Profile] {
			return fmt.Errorf("segments: save: profile %s saved twice", s.State.Profile)
		}
		seen[s.State.Profile] = true
		for rs, e := range s.State.Entries {
			ref, err := ParseRef(rs)
			if err != nil {
				return err
			}
			if e.Member && ref.Kind != lang.KindSegment {
				return fmt.Errorf("segments: save: %s: only segments have members", rs)
			}
		}
	}
	return nil
}

// ErrStale is the conflict of a save computed from a revision that is no
// longer the stored one: the caller evaluates again.
var ErrStale = graph.Errorf(graph.KindConflict, "segments: profile state changed since it was read")

// CheckPut validates a definition before a backend stores it.
func CheckPut(d *Definition, expectedVersion int) error {
	if err := CheckKey(d.Key); err != nil {
		return err
	}
	if d.Kind != lang.KindSegment && d.Kind != lang.KindComputed {
		return graph.FieldErrorf("kind", "unknown kind %d", d.Kind)
	}
	if expectedVersion < 0 {
		return graph.FieldErrorf("expectedVersion", "a version is 0 (create) or more")
	}
	return nil
}

// CheckVersion refuses a write of a definition that expected another
// version than the stored d (nil: none is stored, version 0).
func CheckVersion(r Ref, d *Definition, expected int) error {
	stored := 0
	if d != nil {
		stored = d.Version
	}
	if stored != expected {
		return versionConflict(r, expected, stored)
	}
	return nil
}

// CheckStored is CheckVersion for a change to a stored definition: none
// stored is not_found, whatever was expected.
func CheckStored(r Ref, d *Definition, expected int) error {
	if d == nil {
		return NotFound(r)
	}
	return CheckVersion(r, d, expected)
}

// versionConflict is the error of a definition write that expected
// another version.
func versionConflict(r Ref, expected, stored int) error {
	if stored == 0 {
		return &graph.Error{Kind: graph.KindNotFound, Field: "key", Msg: fmt.Sprintf("no %s %q", r.Kind, r.Key)}
	}
	if expected == 0 {
		return &graph.Error{Kind: graph.KindConflict, Field: "key", Msg: fmt.Sprintf("%s %q exists (version %d)", r.Kind, r.Key, stored)}
	}
	return &graph.Error{Kind: graph.KindConflict, Field: "expectedVersion", Msg: fmt.Sprintf("%s %q is at version %d, not %d", r.Kind, r.Key, stored, expected)}
}

// NotFound is the error of a definition that is not stored.
func NotFound(r Ref) error {
	return &graph.Error{Kind: graph.KindNotFound, Msg: fmt.Sprintf("no %s %q", r.Kind, r.Key)}
}

// VersionsBound checks Versions' arguments against the stored definition
// d and returns whether d itself is on the page and the bound below which
// the replaced versions are: those stored below d's version, so that a
// version replaced while they are read is not listed twice.
func VersionsBound(d *Definition, before, limit int) (current bool, below int, err error) {
	if before < 0 {
		return false, 0, graph.FieldErrorf("before", "is a version, 1 or more (0: from the newest), not %d", before)
	}
	if limit < 1 {
		return false, 0, graph.FieldErrorf("limit", "is 1 or more, not %d", limit)
	}
	current, below = before == 0 || before > d.Version, d.Version
	if !current {
		below = before
	}
	return current, below, nil
}
