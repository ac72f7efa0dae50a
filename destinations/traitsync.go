package destinations

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// A resync of a computed trait sends, in its first phase (Entered), the
// value of every profile that had one at the job's point in time (AsOf),
// found by paging through every profile's state (there is no index by
// computed trait), and in its second (Exited) null to every profile the
// destination's sent state holds a value of that had none then. Its
// records carry AsOf as their sequence, no previous value and reason
// resync.

// traitRef is a computed trait's key in a profile's entries.
func traitRef(trait string) string {
	return segments.RefString(segments.Ref{Kind: lang.KindComputed, Key: trait})
}

// valuesAt is what a worker knows of its resync's computed values at the
// job's point in time: for each (profile, trait) of the job whose value
// changed after AsOf, the value before its first change since (nil:
// missing), from the change records after AsOf up to upTo. It lives in
// memory (the profiles changed while the job runs) and is read again
// after a restart.
type valuesAt struct {
	job    string
	upTo   uint64
	before map[[2]string]*segments.Value
}

// valuesAt reads the change records written since it was last called.
// Called after a page's states were read, it has every change those
// states show.
func (w *worker) valuesAt(ctx context.Context, j *Job) (*valuesAt, error) {
	if w.at == nil || w.at.job != j.ID {
		w.at = &valuesAt{job: j.ID, upTo: j.AsOf, before: map[[2]string]*segments.Value{}}
	}
	o := w.m.o
	for {
		rs, err := o.Segments.Changes(ctx, w.at.upTo, o.Batch)
		if err != nil {
			return nil, fmt.Errorf("destinations: resync: changes since it started: %w", err)
		}
		for _, r := range rs {
			k := [2]string{r.Profile, r.Trait}
			if _, ok := w.at.before[k]; r.IsTrait() && !ok && slices.Contains(j.Traits, r.Trait) {
				w.at.before[k] = r.Previous
			}
		}
		if len(rs) > 0 {
			w.at.upTo = rs[len(rs)-1].Sequence
		}
		if len(rs) < o.Batch {
			return w.at, nil
		}
	}
}

// value is the profile's value of the trait at the job's point in time,
// from its state read before the records since were.
func (v *valuesAt) value(st *segments.ProfileState, trait string) *segments.Value {
	if prev, ok := v.before[[2]string{st.Profile, trait}]; ok {
		return prev
	}
	return st.Entries[traitRef(trait)].Value
}

// traitPage sends up to a page of a computed trait's resync messages.
func (w *worker) traitPage(ctx context.Context, d *Destination, j *Job, trait string) (*Result, error) {
	o := w.m.o
	def, err := w.resyncDefinition(ctx, j, d.Traits, segments.Ref{Kind: lang.KindComputed, Key: trait}, "computed trait")
	if def == nil || err != nil {
		return nil, err
	}
	values := map[string]*segments.Value{} // the messages to send, by profile
	end := ""
	if j.Phase == segments.Entered {
		sts, err := o.Segments.StatesPage(ctx, j.After, jobPage)
		if err != nil {
			return nil, fmt.Errorf("destinations: resync: states: %w", err)
		}
		if len(sts) == jobPage {
			end = sts[len(sts)-1].Profile
		}
		at, err := w.valuesAt(ctx, j)
		if err != nil {
			return nil, err
		}
		// Only an erasure deletes a state, and its records do not repeat
		// the erased value: a profile erased since the job started is sent
		// no value (its erasure follows the job).
		for _, st := range sts {
			if v := at.value(st, trait); v != nil {
				values[st.Profile] = v
			}
		}
	} else {
		held, states, last, err := w.m.heldPage(ctx, d, j.After, func(s *Sent) bool { return s.Traits[trait].In })
		if err != nil {
			return nil, err
		}
		at, err := w.valuesAt(ctx, j)
		if err != nil {
			return nil, err
		}
		for i, st := range states {
			if at.value(st, trait) == nil {
				values[held[i]] = nil
			}
		}
		end = last
	}
	recs := make([]*segments.ChangeRecord, 0, len(values))
	for _, p := range slices.Sorted(maps.Keys(values)) {
		recs = append(recs, &segments.ChangeRecord{Sequence: j.AsOf, Trait: trait, Version: def.Version, Profile: p,
			Direction: segments.Changed, Reason: ReasonResync, Time: o.Now(), Value: values[p]})
	}
	return w.sendResyncPage(ctx, d, j, recs, end, func(r *segments.ChangeRecord) string {
		return ResyncTraitMessageID(d.ID, j.ID, trait, r.Profile)
	})
}

// countTrait counts a computed trait's resync messages when it starts:
// the profiles with a value and those the sent state holds one of that
// have none.
func (m *Manager) countTrait(ctx context.Context, d *Destination, trait string) (int64, error) {
	var n int64
	for after := ""; ; {
		sts, err := m.o.Segments.StatesPage(ctx, after, 1000)
		if err != nil {
			return 0, fmt.Errorf("destinations: resync: states: %w", err)
		}
		for _, st := range sts {
			if st.Entries[traitRef(trait)].Value != nil {
				n++
			}
		}
		if len(sts) < 1000 {
			break
		}
		after = sts[len(sts)-1].Profile
	}
	for after := ""; ; {
		_, states, last, err := m.heldPage(ctx, d, after, func(s *Sent) bool { return s.Traits[trait].In })
		if err != nil {
			return 0, err
		}
		for _, st := range states {
			if st.Entries[traitRef(trait)].Value == nil {
				n++
			}
		}
		if last == "" {
			return n, nil
		}
		after = last
	}
}

// ResyncTraitMessageID is the webhook id (a forwarder's message id, with
// its suffix) of a resync's message about a profile's computed value. The
// ':' keeps it apart from a segment's (keys hold no ':'), so a segment and
// a trait of one key on a webhook have different ids.
func ResyncTraitMessageID(destination, job, trait, profile string) string {
	return fmt.Sprintf("msg_%s_%s_trait:%s_%s", destination, job, trait, profile)
}
