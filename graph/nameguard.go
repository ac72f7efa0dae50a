package graph

import (
	"strings"

	"github.com/idgraph/idgraph/internal/names"
)

// ReasonNameConflict: an identify's first name clearly disagrees with the
// profile's, so the emails and phones it brought wait for a steward rather
// than join (see Config.NameGuard).
const ReasonNameConflict = "name_conflict"

// contactType reports whether people type values of the type into forms:
// the identifiers a household member's form on someone else's signed-in
// tablet carries. Device and anonymous IDs are the device's, user IDs the
// signed-in person's.
func contactType(typ string) bool { return typ == TypeEmail || typ == TypePhone }

// traitFirstName is the first name in Segment identify traits: firstName,
// else the first word of name.
func traitFirstName(first, name any) string {
	if s, ok := first.(string); ok && strings.TrimSpace(s) != "" {
		return s
	}
	if s, ok := name.(string); ok {
		w, _, _ := strings.Cut(strings.TrimSpace(s), " ")
		return w
	}
	return ""
}

func profileFirstName(traits map[string]Trait) string {
	return traitFirstName(traits["firstName"].Value, traits["name"].Value)
}

// nameHeld returns the observation's contact identifiers that the name
// guard keeps out of the profile they would join: when the traits' first
// name clearly disagrees with the name of the profile of the message's
// most trusted identifier that is no contact (its user ID, else its CRM
// ID, device or anonymous ID), the emails and phones not yet in that
// profile are held. Nothing is held when that identifier is new (nothing
// to disagree with) or every contact identifier is the profile's already
// (a person changing their name). It also returns the profile they are
// held from.
func (st *stitch) nameHeld(o *Observation, order []Key) (map[Key]bool, *Profile) {
	if st.cfg.NameGuard <= 0 || len(o.Traits) == 0 {
		return nil, nil
	}
	name := traitFirstName(o.Traits["firstName"], o.Traits["name"])
	if name == "" {
		return nil, nil
	}
	var ref *Profile
	for _, k := range order {
		if n := st.ids[k]; !n.Hub && !contactType(k.Type) {
			ref = st.root(n)
			break
		}
	}
	if ref == nil || !names.Disagree(name, profileFirstName(ref.Traits), st.cfg.NameGuard) {
		return nil, nil
	}
	var held map[Key]bool
	for _, k := range order {
		if n := st.ids[k]; contactType(k.Type) && !n.Hub && st.root(n) != ref {
			if held == nil {
				held = map[Key]bool{}
			}
			held[k] = true
		}
	}
	return held, ref
}

// nameGuarded replays the guard for a profile rebuilt from its identify
// calls (split, repair, undo): an identify led by one of its identifiers
// whose first name clearly disagrees with the name rebuilt so far, and
// that carried a contact identifier the profile does not hold (outside,
// and no hub), gave its
// traits to the held identifiers' profile, not to this one.
func (st *stitch) nameGuarded(traits map[string]any, have map[string]Trait, keys []Key, outside func(Key) bool) bool {
	if st.cfg.NameGuard <= 0 {
		return false
	}
	name := traitFirstName(traits["firstName"], traits["name"])
	if !names.Disagree(name, profileFirstName(have), st.cfg.NameGuard) {
		return false
	}
	for _, k := range keys {
		if contactType(k.Type) && outside(k) {
			return true
		}
	}
	return false
}
