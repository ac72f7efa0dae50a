package resolver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/schema"
)

// Personalisation is the allow-list of the `personalisation` purpose:
// what a personalisation token reads of its visitor (docs/security.md,
// "Personalisation tokens"). Each list holds keys, or "*" for every key.
type Personalisation struct {
	// Segments whose membership a token sees.
	Segments []string
	// ComputedTraits a token reads.
	ComputedTraits []string
	// Traits a token reads: a key allows its nested paths too
	// ("address" allows "address.city"). Raw traits hold personal data,
	// so none are allowed unless configured.
	Traits []string
}

// DefaultPersonalisation: segment memberships and computed traits, no raw
// traits.
var DefaultPersonalisation = Personalisation{Segments: []string{"*"}, ComputedTraits: []string{"*"}}

// ParsePersonalisationList reads a comma-separated allow-list (serve's
// flags): keys, or "*"; empty allows nothing.
func ParsePersonalisationList(field, s string) ([]string, error) {
	var out []string
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case k == "":
			continue
		case k != "*" && strings.ContainsAny(k, "* \t"):
			return nil, graph.FieldErrorf(field, "%q is not a key: give keys, or * alone for all", k)
		}
		out = append(out, k)
	}
	return out, nil
}

func allowed(list []string, key string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, key)
}

// traitAllowed says whether a trait's dotted path is under an allowed key.
func traitAllowed(list []string, path string) bool {
	if slices.Contains(list, "*") {
		return true
	}
	for _, k := range list {
		if path == k || strings.HasPrefix(path, k+".") {
			return true
		}
	}
	return false
}

func (r *Resolver) personalisation() Personalisation {
	if r.Personalisation == nil {
		return DefaultPersonalisation
	}
	return *r.Personalisation
}

// emptyMe is the answer for a visitor idgraph does not know: the same as a
// known visitor with nothing allowed, so that it reveals nothing.
func emptyMe() *schema.Me {
	return &schema.Me{Segments: []string{}, ComputedTraits: []*schema.ComputedTraitValue{}, Traits: schema.JSON("{}")}
}

// personalisationConsented checks the profile's consent for the
// personalisation purpose now, counting a refusal as withheld. A server
// keeping no consent, or not configured with the purpose, has no consent
// to find: it shows nothing (missing consent is not granted).
func (r *Resolver) personalisationConsented(ctx context.Context, p *graph.Profile) (bool, error) {
	reason := consent.ReasonNotGranted
	if r.Consent != nil && r.Consent.Purposes.Configured(auth.PurposePersonalisation) {
		d, err := r.Consent.Check(ctx, p, auth.PurposePersonalisation, time.Now().UTC())
		if err != nil {
			return false, fmt.Errorf("me: %w", err)
		}
		if d.Allowed {
			return true, nil
		}
		reason = d.Reason
	}
	if r.Withheld != nil {
		r.Withheld("me", auth.PurposePersonalisation, reason)
	}
	return false, nil
}

// me answers Query.me for a personalisation token's caller.
func (r *Resolver) me(ctx context.Context) (*schema.Me, error) {
	c := CallerOf(ctx)
	if c.Role != auth.RolePersonalisation || c.Token == nil {
		return nil, graph.Errorf(graph.KindForbidden, "me needs a personalisation token")
	}
	// A value ingestion would refuse binds no one.
	k, err := r.Normalizer.Normalize(c.Token.Type, c.Token.Value)
	if err != nil {
		return emptyMe(), nil
	}
	ns, err := r.Reader.GetIdentifiers(ctx, []graph.Key{k})
	if err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	// A hub (a value seen with too many people) belongs to no one person.
	if ns[0] == nil || ns[0].Hub {
		return emptyMe(), nil
	}
	p, err := live(ctx, ns[0].Profile)
	if graph.ErrorKind(err) == graph.KindNotFound {
		return emptyMe(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	// Nothing leaves for the purpose without the visitor's consent: a
	// visitor who has not granted it reads what an unknown one does.
	ok, err := r.personalisationConsented(ctx, p.Profile)
	if err != nil {
		return nil, err
	}
	if !ok {
		return emptyMe(), nil
	}
	allow, out := r.personalisation(), emptyMe()
	traits := map[string]graph.Trait{}
	for path, t := range p.Traits {
		if traitAllowed(allow.Traits, path) {
			traits[path] = t
		}
	}
	if out.Traits, err = json.Marshal(graph.NestTraits(traits)); err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	if r.Segments == nil {
		return out, nil // segments are off: no memberships, no computed traits
	}
	segs, err := r.Segments.Memberships(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	for _, s := range segs {
		if allowed(allow.Segments, s) {
			out.Segments = append(out.Segments, s)
		}
	}
	values, err := r.Segments.ComputedValues(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	for key := range values {
		if !allowed(allow.ComputedTraits, key) {
			delete(values, key)
		}
	}
	if out.ComputedTraits, err = computedTraitValues(values); err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	return out, nil
}
