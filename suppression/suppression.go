// Package suppression keeps the suppression lists that deliveries to
// destinations are checked against (docs/activation.md, "Suppression
// lists"): identifiers of any type that must not be sent to a destination,
// to a channel of destinations (email, sms, ads, …) or to any destination.
//
// An entry is stored only as the keyed hash HMAC-SHA256(pepper,
// "type:normalised value"), the hash erasure suppression uses
// (erase.Hasher): a copy of the store without the pepper says nothing
// about who is listed. These lists are not erasure's suppression, which
// drops ingest of an erased person's identifiers; they only withhold
// deliveries.
package suppression

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
)

// Scope kinds: an entry applies to every destination, to one, or to every
// destination of a channel.
const (
	Global      = "global"
	Destination = "destination"
	Channel     = "channel"
)

// Scope is where an entry applies. Target is the destination's id or the
// channel's name; empty for Global.
type Scope struct {
	Kind   string `json:"kind"`
	Target string `json:"target,omitempty"`
}

// String is the scope's stored form: "global", "destination:<id>" or
// "channel:<name>".
func (s Scope) String() string {
	if s.Kind == Global {
		return Global
	}
	return s.Kind + ":" + s.Target
}

// ParseScope reads a scope's stored form.
func ParseScope(v string) (Scope, error) {
	kind, target, _ := strings.Cut(v, ":")
	s := Scope{Kind: kind, Target: target}
	return s, s.Check()
}

var (
	channelPattern     = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	destinationPattern = regexp.MustCompile(`^dst_[0-9a-f]{16}$`)
)

// CheckChannel refuses a channel name that is not a short lower-case
// token (a letter, then up to 31 letters, digits, '_' or '-').
func CheckChannel(name string) error {
	if !channelPattern.MatchString(name) {
		return graph.FieldErrorf("channel", "a channel is a lower-case letter then up to 31 of a-z, 0-9, _ and -, not %q", name)
	}
	return nil
}

// Check refuses an unknown kind, a global scope with a target, and a
// malformed destination id or channel.
func (s Scope) Check() error {
	switch s.Kind {
	case Global:
		if s.Target != "" {
			return graph.FieldErrorf("scope", "a global scope names no destination or channel")
		}
		return nil
	case Destination:
		if !destinationPattern.MatchString(s.Target) {
			return graph.FieldErrorf("scope", "%q is not a destination id", s.Target)
		}
		return nil
	case Channel:
		if err := CheckChannel(s.Target); err != nil {
			return graph.FieldErrorf("scope", "%s", err.(*graph.Error).Msg)
		}
		return nil
	}
	return graph.FieldErrorf("scope", "scope %q is not global, destination or channel", s.Kind)
}

// Entry is one suppressed identifier in one scope. Its value is never
// kept: Hash is HMAC-SHA256(pepper, "type:normalised value") in hex.
type Entry struct {
	Scope     Scope     `json:"scope"`
	Hash      string    `json:"hash"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"createdAt"`
}

// Count is how many entries a scope holds of a type.
type Count struct {
	Scope Scope
	Type  string
	N     int
}

// Store keeps the entries. Every backend implements it (see
// suppression/storetest).
type Store interface {
	// AddSuppressionEntries stores the entries whose (scope, hash) is not
	// stored yet, atomically, and returns how many it stored; an entry
	// already there keeps its type and creation time.
	AddSuppressionEntries(ctx context.Context, es []Entry) (int, error)
	// RemoveSuppressionEntries deletes the scope's entries with the
	// hashes, atomically, and returns how many were there.
	RemoveSuppressionEntries(ctx context.Context, scope Scope, hashes []string) (int, error)
	// SuppressionEntries pages through a scope's entries in hash order,
	// after the hash after ("": from the first).
	SuppressionEntries(ctx context.Context, scope Scope, after string, limit int) ([]Entry, error)
	// SuppressionCounts counts the entries by scope and type, sorted by
	// scope then type.
	SuppressionCounts(ctx context.Context) ([]Count, error)
	// SuppressionsOf returns every entry, of any scope, whose hash is one
	// of hashes: the delivery-time lookup, one read for a profile's
	// identifiers.
	SuppressionsOf(ctx context.Context, hashes []string) ([]Entry, error)
}

// Backend is a graph store that also keeps suppression lists.
type Backend interface {
	SuppressionLists() Store
}

// SortEntries orders entries by scope then hash, as pages and lookups
// return them.
func SortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Scope.String(), b.Scope.String()), cmp.Compare(a.Hash, b.Hash))
	})
}

// SortCounts orders counts by scope then type.
func SortCounts(cs []Count) {
	slices.SortFunc(cs, func(a, b Count) int {
		return cmp.Or(cmp.Compare(a.Scope.String(), b.Scope.String()), cmp.Compare(a.Type, b.Type))
	})
}

// MaxEntries bounds the entries of one add or remove.
const MaxEntries = 10000

// Input is an identifier as an admin gives it.
type Input struct {
	Type  string
	Value string
}

// Lists manages the suppression lists: it normalises and hashes what
// admins give, and answers the delivery-time check.
type Lists struct {
	Store  Store
	Hasher erase.Hasher
	Norm   *graph.Normalizer
	// Types returns the configured identifier types accepted besides the
	// built-in ones (--limits, --priority, imported record-ID types, which
	// an import may add at any time); a type neither built in nor
	// configured is refused as unknown, most likely a typo (nil: built-in
	// types only).
	Types func() []string
	Now   func() time.Time
}

// builtinTypes are the identifier types every server knows.
var builtinTypes = []string{graph.TypeEmail, graph.TypePhone, graph.TypeUserID, graph.TypeAnonymousID,
	graph.TypeDeviceID, graph.TypeAdvertisingID, graph.TypeCRMID}

func (l *Lists) now() time.Time {
	if l.Now == nil {
		return time.Now().UTC()
	}
	return l.Now()
}

// keys checks the scope and normalises the inputs, refusing the whole
// call on the first bad one (named by its index), and drops repeats
// (several spellings of one address normalise to one key).
func (l *Lists) keys(scope Scope, in []Input) ([]graph.Key, int, error) {
	if err := scope.Check(); err != nil {
		return nil, 0, err
	}
	if len(in) == 0 {
		return nil, 0, graph.FieldErrorf("entries", "give 1 to %d entries", MaxEntries)
	}
	if len(in) > MaxEntries {
		return nil, 0, graph.FieldErrorf("entries", "%d entries in one call: at most %d", len(in), MaxEntries)
	}
	var configured []string
	if l.Types != nil {
		configured = l.Types()
	}
	seen := make(map[graph.Key]bool, len(in))
	keys := make([]graph.Key, 0, len(in))
	for i, e := range in {
		if !slices.Contains(builtinTypes, e.Type) && !slices.Contains(configured, e.Type) {
			return nil, 0, graph.FieldErrorf(fmt.Sprintf("entries[%d].type", i), "unknown identifier type %q", e.Type)
		}
		k, err := l.Norm.Normalize(e.Type, e.Value)
		if err != nil {
			// The value is personal data: say why, not what.
			return nil, 0, graph.FieldErrorf(fmt.Sprintf("entries[%d].value", i), "not a valid %s: %s", e.Type, reasonOf(err))
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys, len(in) - len(keys), nil
}

// reasonOf is a normalisation error's reason without the value it quotes.
func reasonOf(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "placeholder"):
		return "a placeholder value"
	case strings.Contains(msg, "empty"):
		return "empty"
	case strings.Contains(msg, "longer than"):
		return fmt.Sprintf("longer than %d bytes", graph.MaxValueLen)
	case strings.Contains(msg, "UTF-8"), strings.Contains(msg, "control"):
		return "not printable UTF-8"
	}
	return "does not parse"
}

// Result is what an add or a remove did. Keys are the normalised
// identifiers, for the caller alone (AffectedProfiles): they are never
// stored or answered.
type Result struct {
	// Changed counts the entries added (or removed); Unchanged those
	// already there (or not there), repeats within the call included.
	Changed, Unchanged int
	Hashes             []string
	Keys               []graph.Key
}

// Add puts identifiers on the scope's list. Entries already listed, and
// repeats, are counted as unchanged: adding is idempotent.
func (l *Lists) Add(ctx context.Context, scope Scope, in []Input) (Result, error) {
	keys, repeats, err := l.keys(scope, in)
	if err != nil {
		return Result{}, err
	}
	now := l.now()
	es := make([]Entry, len(keys))
	res := Result{Keys: keys, Hashes: make([]string, len(keys))}
	for i, k := range keys {
		res.Hashes[i] = l.Hasher.Hash(k)
		es[i] = Entry{Scope: scope, Hash: res.Hashes[i], Type: k.Type, CreatedAt: now}
	}
	n, err := l.Store.AddSuppressionEntries(ctx, es)
	if err != nil {
		return Result{}, fmt.Errorf("suppression: add: %w", err)
	}
	res.Changed, res.Unchanged = n, len(keys)-n+repeats
	return res, nil
}

// Remove takes identifiers off the scope's list; those not listed are
// counted as unchanged.
func (l *Lists) Remove(ctx context.Context, scope Scope, in []Input) (Result, error) {
	keys, repeats, err := l.keys(scope, in)
	if err != nil {
		return Result{}, err
	}
	res := Result{Keys: keys, Hashes: make([]string, len(keys))}
	for i, k := range keys {
		res.Hashes[i] = l.Hasher.Hash(k)
	}
	n, err := l.Store.RemoveSuppressionEntries(ctx, scope, res.Hashes)
	if err != nil {
		return Result{}, fmt.Errorf("suppression: remove: %w", err)
	}
	res.Changed, res.Unchanged = n, len(keys)-n+repeats
	return res, nil
}

// MaxPage bounds a page of entries.
const MaxPage = 1000

// Entries pages through a scope's entries by hash.
func (l *Lists) Entries(ctx context.Context, scope Scope, after string, limit int) ([]Entry, error) {
	if err := scope.Check(); err != nil {
		return nil, err
	}
	if limit < 1 || limit > MaxPage {
		return nil, graph.FieldErrorf("first", "a page is 1 to %d entries", MaxPage)
	}
	es, err := l.Store.SuppressionEntries(ctx, scope, after, limit)
	if err != nil {
		return nil, fmt.Errorf("suppression: entries: %w", err)
	}
	return es, nil
}

// Counts counts the entries by scope and type.
func (l *Lists) Counts(ctx context.Context) ([]Count, error) {
	cs, err := l.Store.SuppressionCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("suppression: counts: %w", err)
	}
	return cs, nil
}

// Match is the entry that suppresses a delivery.
type Match struct {
	Scope Scope
	Type  string
}

// Check reports whether any of keys is suppressed for the destination: in
// the global scope, the destination's own, or its channel's (channel ""
// : none). It reads the store every time, so an entry added by any
// process applies to the next attempt.
func (l *Lists) Check(ctx context.Context, keys []graph.Key, destination, channel string) (Match, bool, error) {
	if len(keys) == 0 {
		return Match{}, false, nil
	}
	hashes := make([]string, len(keys))
	for i, k := range keys {
		hashes[i] = l.Hasher.Hash(k)
	}
	es, err := l.Store.SuppressionsOf(ctx, hashes)
	if err != nil {
		return Match{}, false, fmt.Errorf("suppression: check: %w", err)
	}
	for _, e := range es {
		switch {
		case e.Scope.Kind == Global,
			e.Scope.Kind == Destination && e.Scope.Target == destination,
			e.Scope.Kind == Channel && channel != "" && e.Scope.Target == channel:
			return Match{Scope: e.Scope, Type: e.Type}, true, nil
		}
	}
	return Match{}, false, nil
}

// live returns the profile that id is, or was merged into.
func live(ctx context.Context, r graph.Reader, id string) (*graph.Profile, error) {
	p, err := r.Profile(ctx, id)
	// The bound only guards against a corrupt cycle of merges.
	for i := 0; err == nil && p.MergedInto != "" && i < 64; i++ {
		p, err = r.Profile(ctx, p.MergedInto)
	}
	return p, err
}

// LiveIdentifiers returns the identifiers of the live profile that
// profileID is or was merged into (nil when it is not stored: erased).
func LiveIdentifiers(ctx context.Context, r graph.Reader, profileID string) ([]graph.Key, error) {
	p, err := live(ctx, r, profileID)
	if graph.ErrorKind(err) == graph.KindNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ids, err := graph.ProfileIdentifiers(ctx, r, p)
	if err != nil {
		return nil, err
	}
	keys := make([]graph.Key, len(ids))
	for i, n := range ids {
		keys[i] = n.Key
	}
	return keys, nil
}

// AffectedProfiles returns the live profiles that hold any of keys (an
// add's Result.Keys), sorted: those whose deliveries the add now
// withholds, for a caller that sends them exits.
func AffectedProfiles(ctx context.Context, r graph.Reader, keys []graph.Key) ([]string, error) {
	ids, err := r.GetIdentifiers(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("suppression: affected profiles: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range ids {
		if n == nil || n.Profile == "" {
			continue
		}
		p, err := live(ctx, r, n.Profile)
		if graph.ErrorKind(err) == graph.KindNotFound {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("suppression: affected profiles: %w", err)
		}
		if !seen[p.ID] {
			seen[p.ID] = true
			out = append(out, p.ID)
		}
	}
	slices.Sort(out)
	return out, nil
}
