package client

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SuppressionScope is where a suppression list entry applies: Kind is
// GLOBAL, DESTINATION (Target the destination's id) or CHANNEL (Target the
// channel's name).
type SuppressionScope struct {
	Kind   string  `json:"kind"`
	Target *string `json:"target,omitempty"`
}

// ParseSuppressionScope reads "global", "destination:ID" or
// "channel:NAME".
func ParseSuppressionScope(s string) (SuppressionScope, error) {
	kind, target, hasTarget := strings.Cut(strings.TrimSpace(s), ":")
	sc := SuppressionScope{Kind: strings.ToUpper(kind)}
	switch {
	case sc.Kind == "GLOBAL" && !hasTarget:
	case (sc.Kind == "DESTINATION" || sc.Kind == "CHANNEL") && target != "":
		sc.Target = &target
	default:
		return sc, fmt.Errorf("scope %q: global, destination:ID or channel:NAME", s)
	}
	return sc, nil
}

func (s SuppressionScope) String() string {
	if s.Target == nil {
		return strings.ToLower(s.Kind)
	}
	return strings.ToLower(s.Kind) + ":" + *s.Target
}

// Identifier is an identifier input: a type and a value.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// SuppressionChange is what an add or a remove did (GraphQL
// SuppressionChange).
type SuppressionChange struct {
	Changed   int      `json:"changed"`
	Unchanged int      `json:"unchanged"`
	Hashes    []string `json:"hashes"`
}

// SuppressionEntry is one listed identifier: its keyed hash, never its
// value.
type SuppressionEntry struct {
	Hash      string           `json:"hash"`
	Type      string           `json:"type"`
	Scope     SuppressionScope `json:"scope"`
	CreatedAt time.Time        `json:"createdAt"`
}

// SuppressionCount is how many entries a scope holds of a type.
type SuppressionCount struct {
	Scope SuppressionScope `json:"scope"`
	Type  string           `json:"type"`
	Count int              `json:"count"`
}

// MaxSuppressionsPerCall is the server's limit of entries in one add or
// remove.
const MaxSuppressionsPerCall = 10_000

// AddSuppressions puts the identifiers on the scope's list (admin key);
// RemoveSuppressions takes them off. One call is all or nothing.
func (c *Client) AddSuppressions(ctx context.Context, scope SuppressionScope, ids []Identifier) (*SuppressionChange, error) {
	return c.changeSuppressions(ctx, "addSuppressions", scope, ids)
}

// RemoveSuppressions: see AddSuppressions.
func (c *Client) RemoveSuppressions(ctx context.Context, scope SuppressionScope, ids []Identifier) (*SuppressionChange, error) {
	return c.changeSuppressions(ctx, "removeSuppressions", scope, ids)
}

func (c *Client) changeSuppressions(ctx context.Context, op string, scope SuppressionScope, ids []Identifier) (*SuppressionChange, error) {
	var out map[string]*SuppressionChange
	q := `mutation($s: SuppressionScopeInput!, $e: [IdentifierInput!]!) { ` + op + `(scope: $s, entries: $e) { changed unchanged hashes } }`
	if err := c.GraphQL(ctx, q, map[string]any{"s": scope, "e": ids}, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out[op], nil
}

// SuppressionEntries reads a page of the scope's entries in hash order,
// after the hash given ("" for the first page).
func (c *Client) SuppressionEntries(ctx context.Context, scope SuppressionScope, first int, after string) ([]SuppressionEntry, error) {
	var out struct {
		Entries []SuppressionEntry `json:"suppressionEntries"`
	}
	vars := map[string]any{"s": scope, "n": first}
	if after != "" {
		vars["after"] = after
	}
	if err := c.GraphQL(ctx, `query($s: SuppressionScopeInput!, $n: Int, $after: String) {
		suppressionEntries(scope: $s, first: $n, after: $after) { hash type scope { kind target } createdAt } }`, vars, &out); err != nil {
		return nil, fmt.Errorf("suppression entries: %w", err)
	}
	return out.Entries, nil
}

// SuppressionCounts reads how many entries each scope holds of each type.
func (c *Client) SuppressionCounts(ctx context.Context) ([]SuppressionCount, error) {
	var out struct {
		Counts []SuppressionCount `json:"suppressionCounts"`
	}
	if err := c.GraphQL(ctx, `{ suppressionCounts { scope { kind target } type count } }`, nil, &out); err != nil {
		return nil, fmt.Errorf("suppression counts: %w", err)
	}
	return out.Counts, nil
}
