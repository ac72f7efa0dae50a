package resolver

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/loaders"
	"github.com/idgraph/idgraph/schema"
	"github.com/nyaruka/phonenumbers"
)

// profilePages bounds how many store pages a filtered `profiles` reads for
// one page of answers.
const profilePages = 20

func matchesFilter(p *graph.Profile, f *schema.ProfileFilter) bool {
	if f == nil {
		return true
	}
	if f.IdentifierType != nil && p.Counts[*f.IdentifierType] == 0 {
		return false
	}
	if f.UpdatedSince != nil && p.UpdatedAt.Before(*f.UpdatedSince) {
		return false
	}
	return true
}

// searchPrefixes is the query, and for something that looks like the start
// of a phone number, its E.164 form too ("(415) 55" → "+141555").
func (r *queryResolver) searchPrefixes(q string) []string {
	out := []string{q}
	digits := strings.Map(func(c rune) rune {
		if unicode.IsDigit(c) {
			return c
		}
		return -1
	}, q)
	phoneLike := strings.IndexFunc(q, func(c rune) bool { return !strings.ContainsRune("0123456789+-.() ", c) }) < 0
	if phoneLike && len(digits) >= 3 {
		if strings.HasPrefix(q, "+") {
			out = append(out, "+"+digits)
		} else {
			cc := phonenumbers.GetCountryCodeForRegion(r.Normalizer.Region)
			out = append(out, "+"+digits, "+"+strconv.Itoa(cc)+strings.TrimLeft(digits, "0"))
		}
	}
	return slices.Compact(out)
}

// traitOrIdentifier is the trait of that name, else the most recently seen
// identifier of that type.
func (r *profileResolver) traitOrIdentifier(ctx context.Context, obj *schema.Profile, typ string) (*string, error) {
	if v := traitString(obj.Profile, typ); v != "" {
		return &v, nil
	}
	ids, err := loaders.For(ctx).CachedIdentifiers(ctx, obj.ID)
	if err != nil {
		return nil, err
	}
	var best *graph.Identifier
	for _, n := range ids {
		if n.Type == typ && (best == nil || n.LastSeen.After(best.LastSeen)) {
			best = n
		}
	}
	if best == nil {
		return nil, nil
	}
	return &best.Value, nil
}

// eventPages bounds how many timeline pages a filtered `events` reads for
// one page of answers.
const eventPages = 20

func finish(conn *schema.EventConnection) *schema.EventConnection {
	if len(conn.Edges) > 0 {
		conn.PageInfo.EndCursor = ptr(conn.Edges[len(conn.Edges)-1].Cursor)
	}
	return conn
}

func traitString(p *graph.Profile, name string) string {
	s, _ := p.Traits[name].Value.(string)
	return strings.TrimSpace(s)
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

var changeKinds = map[string]schema.ChangeKind{
	graph.ChangeUpdated:  schema.ChangeKindUpdated,
	graph.ChangeMerged:   schema.ChangeKindMerged,
	graph.ChangeAbsorbed: schema.ChangeKindAbsorbed,
	graph.ChangeSplit:    schema.ChangeKindSplit,
}

// resync reads a profile whose changes a subscription missed and says
// what became of it: absorbed into a survivor, or updated.
func (r *Resolver) resync(ctx context.Context, id string) (graph.ProfileChange, error) {
	ps, err := r.Reader.GetProfiles(ctx, []string{id})
	if err != nil {
		return graph.ProfileChange{}, err
	}
	p := ps[0]
	if p == nil {
		return graph.ProfileChange{}, fmt.Errorf("profile %s is gone", id)
	}
	if p.MergedInto != "" {
		return graph.ProfileChange{ProfileID: id, Kind: graph.ChangeAbsorbed, At: p.UpdatedAt, MergedInto: p.MergedInto}, nil
	}
	return graph.ProfileChange{ProfileID: id, Kind: graph.ChangeUpdated, At: p.UpdatedAt}, nil
}

// optional is nil for an empty string: GraphQL's null.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
