package destinations

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
)

// Identifier modes of an IdentifierPolicy.
const (
	// IdentifiersAll sends every identifier of each type.
	IdentifiersAll = "all"
	// IdentifiersFirst sends one identifier per type: the one the profile
	// has held longest (earliest FirstSeen; ties by value), so that it
	// does not change when newer identifiers of the type join.
	IdentifiersFirst = "first"
)

// MaxPolicyTypes bounds the types of an identifier policy.
const MaxPolicyTypes = 20

// IdentifierPolicy says which of a profile's identifiers a destination's
// segment.entered messages carry. A destination without one (nil, as
// every destination made before policies) is sent none: its payloads are
// as they were.
type IdentifierPolicy struct {
	// Types are the identifier types sent, in the order given.
	Types []string `json:"types"`
	// Mode is IdentifiersAll or IdentifiersFirst.
	Mode string `json:"mode"`
}

// CheckIdentifierPolicy refuses an empty or overlong list, a malformed or
// repeated type, and a mode other than all or first, naming the field.
// Types are open (any well-formed name: custom types are allowed), so a
// type no profile has yet is accepted.
func CheckIdentifierPolicy(p IdentifierPolicy) error {
	if len(p.Types) == 0 || len(p.Types) > MaxPolicyTypes {
		return graph.FieldErrorf("types", "an identifier policy names 1 to %d identifier types", MaxPolicyTypes)
	}
	for i, t := range p.Types {
		if err := graph.ValidateType(t); err != nil {
			return graph.FieldErrorf("types", "type %d: %v", i+1, err)
		}
		if slices.Contains(p.Types[:i], t) {
			return graph.FieldErrorf("types", "type %q is named twice", t)
		}
	}
	if p.Mode != IdentifiersAll && p.Mode != IdentifiersFirst {
		return graph.FieldErrorf("mode", "mode %q is not %q or %q", p.Mode, IdentifiersAll, IdentifiersFirst)
	}
	return nil
}

// Identifier is one identifier in a message.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Apply picks the identifiers the policy sends from a profile's
// identifiers: by the policy's type order, then (all) by value, or (first)
// the earliest seen of each type.
func (p *IdentifierPolicy) Apply(ids []*graph.Identifier) []Identifier {
	if p == nil {
		return nil
	}
	out := []Identifier{}
	for _, typ := range p.Types {
		var of []*graph.Identifier
		for _, n := range ids {
			if n.Type == typ {
				of = append(of, n)
			}
		}
		if p.Mode == IdentifiersFirst {
			slices.SortStableFunc(of, func(a, b *graph.Identifier) int {
				return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.Value, b.Value))
			})
			of = of[:min(len(of), 1)]
		} else {
			slices.SortFunc(of, func(a, b *graph.Identifier) int { return cmp.Compare(a.Value, b.Value) })
		}
		for _, n := range of {
			out = append(out, Identifier{Type: n.Type, Value: n.Value})
		}
	}
	return out
}

// Sent is what a destination was sent about one profile: the segments it
// holds them in and every identifier it was sent. It is written when a
// delivery succeeds, kept after the person left every segment (so an
// erasure still reaches the destination) and removed once the erasure
// was sent.
type Sent struct {
	Destination string `json:"destination"`
	Profile     string `json:"profile"`
	// Segments holds, per segment, the last change applied: an exit stays
	// as a tombstone, so that a record sent again (a retry, a replay)
	// that is older than it changes nothing.
	Segments map[string]Held `json:"segments,omitempty"`
	// Traits holds, per computed trait, the last value change applied
	// (In: a value was sent, not null), the sequence of its record (where
	// a forwarder reads the value again) and tombstones alike: a resync
	// sends null for a value held that is missing now.
	Traits map[string]Held `json:"traits,omitempty"`
	// Identifiers are the identifiers sent, in the order first sent.
	Identifiers []Identifier `json:"identifiers,omitempty"`
	// Pending is a withdrawal or erasure to send (nil: none).
	Pending *Pending `json:"pending,omitempty"`
	// GivenUp is the last withdrawal or erasure given up on after the
	// whole retry schedule (its dead letter), with its attempts and the
	// receiver's last answer; a later request of the row that is sent
	// clears it (it covers what the one given up on said).
	GivenUp   *Pending  `json:"givenUp,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
	// ProfileGone is set by UpdateSent, never stored: the profile was not
	// stored when the row was read under the profile's lock. An erasure
	// takes that lock too, so the person was erased before this update,
	// and the erasure either marked this row or found none to mark.
	ProfileGone bool `json:"-"`
}

// Held is the last change of one segment (or computed trait) applied to
// a Sent.
type Held struct {
	In       bool   `json:"in"`
	Sequence uint64 `json:"sequence"`
	Version  int    `json:"version"`
}

// Pending kinds.
const (
	PendingWithdraw = "withdraw"
	PendingErase    = "erase"
	// PendingCatchUp sends the entries a grant of consent allows
	// (consentgrant.go).
	PendingCatchUp = "catchup"
)

// Pending is a request stored on a Sent for the destination's worker: it
// is sent once the worker has delivered every change record up to After,
// so it never overtakes what was recorded before it.
type Pending struct {
	Kind string `json:"kind"`
	// ID names the request (an erasure's id, a withdrawal's): the webhook
	// ids of its messages derive from it, so a resend has the same ones.
	ID     string    `json:"id"`
	Reason string    `json:"reason"`
	After  uint64    `json:"after"`
	At     time.Time `json:"at"`
	// CatchUp asks a withdrawal to become a catch-up once its exits are
	// sent: consent was granted again after the revocation.
	CatchUp bool `json:"catchUp,omitempty"`
	// NotBefore and Recheck are when a catch-up (or the one a withdrawal
	// becomes) may run: the earliest and the latest start of the grants
	// it was asked for (zero: at once). A grant dated in the future
	// allows nothing before its time.
	NotBefore time.Time `json:"notBefore,omitzero"`
	Recheck   time.Time `json:"recheck,omitzero"`
	// The retry state of a withdrawal's or an erasure's failed sends, as
	// a change record's is on its destination's cursor (Head): stored on
	// the row, so a restart goes on along the schedule. Absent on rows
	// written before it (and on requests never tried): none failed yet.
	Attempts   int       `json:"attempts,omitempty"`
	FirstTryAt time.Time `json:"firstTryAt,omitzero"`
	NextAt     time.Time `json:"nextAt,omitzero"`
	LastStatus int       `json:"lastStatus,omitempty"`
	LastError  string    `json:"lastError,omitempty"`
}

// empty reports a row that says nothing: no segment, trait, identifier or
// request.
func (s *Sent) empty() bool {
	return len(s.Segments) == 0 && len(s.Traits) == 0 && len(s.Identifiers) == 0 && s.Pending == nil && s.GivenUp == nil
}

// withdrawn returns the segments a withdrawal takes the person out of:
// those held by changes up to its After (an entry recorded after the
// request stands), sorted.
func (s *Sent) withdrawn(p *Pending) []string {
	var out []string
	for _, k := range s.HeldSegments() {
		if s.Segments[k].Sequence <= p.After {
			out = append(out, k)
		}
	}
	return out
}

// HeldSegments returns the segments the destination holds the person in,
// sorted.
func (s *Sent) HeldSegments() []string { return held(s.Segments) }

// HeldTraits returns the computed traits a forwarder sent the person a
// value of (not null since), sorted.
func (s *Sent) HeldTraits() []string { return held(s.Traits) }

func held(hs map[string]Held) []string {
	var out []string
	for k, h := range hs {
		if h.In {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Apply records a delivered change record and the identifiers it carried.
// It is idempotent: a record no newer than the segment's (or trait's)
// last applied one changes nothing.
func (s *Sent) Apply(r *segments.ChangeRecord, ids []Identifier, at time.Time) bool {
	hs, key := &s.Segments, r.Segment
	if r.IsTrait() {
		hs, key = &s.Traits, r.Trait
	}
	if h, ok := (*hs)[key]; ok && h.Sequence >= r.Sequence {
		return false
	}
	if *hs == nil {
		*hs = map[string]Held{}
	}
	(*hs)[key] = Held{In: carriesProfile(r), Sequence: r.Sequence, Version: r.Version}
	for _, n := range ids {
		if !slices.Contains(s.Identifiers, n) {
			s.Identifiers = append(s.Identifiers, n)
		}
	}
	s.UpdatedAt = at
	return true
}

// MarkErased asks for the person's erasure to be sent (an erasure marks
// every Sent of the profiles it removes, in its own transaction). It
// replaces a pending withdrawal: the erasure says more.
func (s *Sent) MarkErased(request string, after uint64, at time.Time) {
	s.Pending = &Pending{Kind: PendingErase, ID: request, Reason: segments.ReasonErased, After: after, At: at}
	s.UpdatedAt = at
}

// SentStore keeps what each destination was sent about each profile.
// Both backends implement it (see destinations/storetest); their erasure
// marks the Sent of every profile it removes (Sent.MarkErased) in the
// erasure's transaction.
type SentStore interface {
	// SentOf returns the destination's Sent for each of the profiles that
	// has one.
	SentOf(ctx context.Context, destination string, profiles []string) (map[string]*Sent, error)
	// UpdateSent applies fn to the destination's Sent for the profile (a
	// new one, with Destination and Profile set, when none is stored) and
	// writes it, atomically; keep false deletes it. fn's error is returned
	// and nothing is written. It holds the profile's lock, the one an
	// erasure takes, from the read to the write, and sets ProfileGone
	// when the profile is not stored then: a delivery racing an erasure
	// either lands before it (and the erasure marks the row) or sees the
	// profile gone.
	UpdateSent(ctx context.Context, destination, profile string, fn func(*Sent) (keep bool, err error)) error
	// SentPage returns up to limit of the destination's Sents whose
	// profile sorts after after (""; from the first), by profile: what
	// the destination was told, for a resync's exits and the consent
	// sweep.
	SentPage(ctx context.Context, destination, after string, limit int) ([]*Sent, error)
	// SentTo returns every destination's Sent for the profiles.
	SentTo(ctx context.Context, profiles []string) ([]*Sent, error)
	// PendingSent returns up to limit of the destination's Sents with a
	// Pending request, by profile.
	PendingSent(ctx context.Context, destination string, limit int) ([]*Sent, error)
}

// SentBackend is implemented by graph stores that keep sent state.
type SentBackend interface {
	SentState() SentStore
}

// SetIdentifierPolicy sets which identifiers a destination's entries carry
// (nil: none, as before policies).
func (m *Manager) SetIdentifierPolicy(ctx context.Context, id string, p *IdentifierPolicy) (*Destination, error) {
	if p != nil {
		if err := CheckIdentifierPolicy(*p); err != nil {
			return nil, err
		}
		if m.o.Profiles == nil {
			return nil, graph.FieldErrorf("types", "this server cannot read profiles' identifiers")
		}
	}
	return m.update(ctx, id, func(d *Destination) { d.Identifiers = p })
}

// batchState is what the worker reads once for a batch of change
// records: the identifiers each profile is sent, the destination's Sent
// for each profile, and (for a forwarder) the profile each merged one
// went into and what survivorValue needs.
type batchState struct {
	ids      map[string][]Identifier
	sent     map[string]*Sent
	survivor map[string]string // a merged profile → the profile it went into
	// values are the change records of the computed values the sent
	// state says a forwarder holds for merges' survivors, by sequence.
	values map[uint64]*segments.ChangeRecord
	// latest is, per profile and computed trait, the last value message a
	// forwarder built from these records: a batched call's values are in
	// the sent state only once the call succeeds.
	latest map[[2]string]sentValue
}

// sentValue is a computed value message: the record and the address.
type sentValue struct {
	rec                 *segments.ChangeRecord
	userID, anonymousID string
}

// prefetch reads, in a few batched reads, the current identifiers of the
// entering profiles (when the destination has a policy; a forwarder's of
// every profile, as it addresses exits never sent under sent state by
// the identifiers now), the Sent of every profile of the wanted records
// and, for a forwarder, the survivors of profiles merged away and their
// Sent.
func (m *Manager) prefetch(ctx context.Context, d *Destination, recs []*segments.ChangeRecord) (*batchState, error) {
	b := &batchState{ids: map[string][]Identifier{}, sent: map[string]*Sent{}, survivor: map[string]string{},
		values: map[uint64]*segments.ChangeRecord{}, latest: map[[2]string]sentValue{}}
	policy := d.policy()
	forwarder := d.Kind == KindSegment
	var profiles, addressed []string
	for _, r := range recs {
		if !d.Wants(r) {
			continue
		}
		profiles = append(profiles, r.Profile)
		if policy != nil && (r.Direction == segments.Entered || forwarder) {
			addressed = append(addressed, r.Profile)
		}
	}
	if len(profiles) == 0 {
		return b, nil
	}
	var live []*graph.Profile
	if len(addressed) > 0 && m.o.Profiles != nil {
		ps, err := m.o.Profiles.GetProfiles(ctx, dedupe(addressed))
		if err != nil {
			return nil, fmt.Errorf("destinations: identifiers: %w", err)
		}
		// A profile merged away or erased since holds no identifiers: its
		// entry carries none (the survivor's own entry carries them).
		for _, p := range ps {
			switch {
			case p == nil:
			case p.MergedInto == "":
				live = append(live, p)
			case forwarder:
				b.survivor[p.ID] = p.MergedInto
				profiles = append(profiles, p.MergedInto)
			}
		}
	}
	if m.o.Sent != nil {
		sent, err := m.o.Sent.SentOf(ctx, d.ID, dedupe(profiles))
		if err != nil {
			return nil, fmt.Errorf("destinations: sent state: %w", err)
		}
		b.sent = sent
	}
	if forwarder {
		if err := m.survivorValues(ctx, d, recs, b); err != nil {
			return nil, err
		}
	}
	if len(live) == 0 {
		return b, nil
	}
	idss, err := m.o.Profiles.IdentifiersOf(ctx, live)
	if err != nil {
		return nil, fmt.Errorf("destinations: identifiers: %w", err)
	}
	for i, p := range live {
		b.ids[p.ID] = policy.Apply(idss[i])
	}
	return b, nil
}

func dedupe(xs []string) []string {
	slices.Sort(xs)
	return slices.Compact(xs)
}

// identifiers returns what a record's message carries: an entry (or a
// computed value), the profile's identifiers now under the policy; an
// exit (or a value going missing), those the destination was sent before
// (a forwarder, which must address every message, falls back to the
// identifiers now).
func (b *batchState) identifiers(d *Destination, r *segments.ChangeRecord) []Identifier {
	if carriesProfile(r) {
		if d.policy() == nil {
			return nil
		}
		if ids := b.ids[r.Profile]; ids != nil {
			return ids
		}
		return []Identifier{}
	}
	if s := b.sent[r.Profile]; s != nil && len(s.Identifiers) > 0 {
		return s.Identifiers
	}
	if d.Kind == KindSegment {
		return b.ids[r.Profile]
	}
	return nil
}

// heldBySurvivor reports a merge's exit of a profile whose survivor the
// destination holds in the segment: the person is still in the audience.
func (b *batchState) heldBySurvivor(r *segments.ChangeRecord) bool {
	if r.Direction != segments.Exited || r.Reason != segments.ReasonMerged {
		return false
	}
	s := b.sent[b.survivor[r.Profile]]
	return s != nil && s.Segments[r.Segment].In
}

// mergedAway reports a merge's record of an absorbed profile's computed
// value going missing.
func mergedAway(r *segments.ChangeRecord) bool {
	return r.IsTrait() && r.Value == nil && r.Reason == segments.ReasonMerged
}

// survivorHeld returns, for a mergedAway record, the sequence of the
// value the sent state says a forwarder holds for the survivor (0: not
// such a record, or none held).
func (b *batchState) survivorHeld(r *segments.ChangeRecord) uint64 {
	if !mergedAway(r) {
		return 0
	}
	if h := b.sent[b.survivor[r.Profile]].trait(r.Trait); h.In {
		return h.Sequence
	}
	return 0
}

// trait is the Sent's last change of a computed trait (none on nil).
func (s *Sent) trait(key string) Held {
	if s == nil {
		return Held{}
	}
	return s.Traits[key]
}

// survivorValue returns, for a mergedAway record, the value a forwarder
// holds for the survivor, with the address it went to (nil: none): the
// one built earlier from these records, else the one the sent state holds
// (survivorValues). The null clears the absorbed profile's receiving
// profile, and this value is sent again after it, so that a receiver that
// joins the two (the IDs are one person's now) is not left without the
// person's value.
func (b *batchState) survivorValue(r *segments.ChangeRecord) *sentValue {
	if !mergedAway(r) {
		return nil
	}
	survivor := b.survivor[r.Profile]
	if v, ok := b.latest[[2]string{survivor, r.Trait}]; ok {
		if v.rec.Value == nil {
			return nil
		}
		return &v
	}
	rec := b.values[b.survivorHeld(r)]
	if rec == nil {
		return nil
	}
	userID, anonymousID := address(b.sent[survivor].Identifiers)
	return &sentValue{rec: rec, userID: userID, anonymousID: anonymousID}
}

// survivorValues reads, one by one (merges are rare), the change records
// of the values the sent state says the forwarder holds for the
// survivors of the merges among recs. On a destination with a purpose, a
// value is sent again only with the survivor's consent now, as a new
// value would be.
func (m *Manager) survivorValues(ctx context.Context, d *Destination, recs []*segments.ChangeRecord, b *batchState) error {
	for _, r := range recs {
		seq := b.survivorHeld(r)
		if seq == 0 || !d.Wants(r) || b.values[seq] != nil {
			continue
		}
		got, err := m.o.Segments.Changes(ctx, seq-1, 1)
		if err != nil {
			return fmt.Errorf("destinations: a survivor's value: %w", err)
		}
		if len(got) != 1 || got[0].Sequence != seq {
			continue
		}
		if m.consentGated(d) {
			if reason, err := m.withheld(ctx, d, got[0]); err != nil {
				return fmt.Errorf("destinations: a survivor's value: %w", err)
			} else if reason != "" {
				continue
			}
		}
		b.values[seq] = got[0]
	}
	return nil
}

// coveredByErasure reports an erasure's exit record whose profile has a
// pending erasure for the destination: the erasure's one profile.erased
// message, sent after it, covers it. A webhook's computed trait record is
// not covered: its own profile.erased names the trait.
func (b *batchState) coveredByErasure(d *Destination, r *segments.ChangeRecord) bool {
	s := b.sent[r.Profile]
	return r.Reason == segments.ReasonErased && !(r.IsTrait() && d.Kind != KindSegment) &&
		s != nil && s.Pending != nil && s.Pending.Kind == PendingErase
}

// recordSent writes a delivered record into the destination's Sent for
// its profile (and the batch's copy, for the records after it).
func (m *Manager) recordSent(ctx context.Context, d *Destination, r *segments.ChangeRecord, b *batchState) error {
	o := m.o
	if o.Sent == nil {
		return nil
	}
	ids := b.identifiers(d, r)
	if !carriesProfile(r) || r.IsTrait() && d.Kind != KindSegment {
		ids = nil // a webhook's trait.changed carries no identifiers
	}
	var last uint64
	if r.Reason == segments.ReasonErased {
		var err error
		if last, err = m.lastChange(ctx); err != nil {
			return err
		}
	}
	gone := false
	err := o.Sent.UpdateSent(ctx, d.ID, r.Profile, func(s *Sent) (bool, error) {
		if !carriesProfile(r) && s.empty() {
			return false, nil // an exit of someone never sent: nothing to remember
		}
		s.Apply(r, ids, o.Now())
		erasing := s.Pending != nil && s.Pending.Kind == PendingErase
		switch {
		case erasing:
		case r.Reason == segments.ReasonErased:
			// The row was written after the erasure's transaction looked
			// (a delivery in flight): the erasure is sent from it too,
			// after every record written so far (the erasure's other
			// exits), and the row removed after.
			s.MarkErased(fmt.Sprintf("seq%d", r.Sequence), last, o.Now())
		case s.ProfileGone && o.Profiles != nil:
			// The person was erased while the record was in flight, after
			// the erasure looked for rows to mark: the row is marked in
			// this write, so it never holds the person without the
			// erasure to send; its After is raised below, once the
			// erasure's exits can be read.
			s.MarkErased(fmt.Sprintf("seq%d", r.Sequence), r.Sequence, o.Now())
			gone = true
		}
		b.sent[r.Profile] = s
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("destinations: record sent state: %w", err)
	}
	if gone {
		return m.afterErasure(ctx, d, r, b)
	}
	return nil
}

// afterErasure makes the erasure marked on a row written after it wait
// for the erasure's exit records: the erasure is committed (the profile
// was seen gone under its lock), so they are at or before the newest
// record now.
func (m *Manager) afterErasure(ctx context.Context, d *Destination, r *segments.ChangeRecord, b *batchState) error {
	last, err := m.lastChange(ctx)
	if err != nil {
		return err
	}
	id := fmt.Sprintf("seq%d", r.Sequence)
	err = m.o.Sent.UpdateSent(ctx, d.ID, r.Profile, func(s *Sent) (bool, error) {
		if s.Pending != nil && s.Pending.Kind == PendingErase && s.Pending.ID == id {
			s.Pending.After = max(s.Pending.After, last)
		}
		b.sent[r.Profile] = s
		return !s.empty(), nil
	})
	if err != nil {
		return fmt.Errorf("destinations: record sent state: %w", err)
	}
	return nil
}

// lastChange is the newest change record's sequence.
func (m *Manager) lastChange(ctx context.Context) (uint64, error) {
	last, err := m.o.Segments.LastChange(ctx)
	if err != nil {
		return 0, fmt.Errorf("destinations: last change: %w", err)
	}
	return last, nil
}
