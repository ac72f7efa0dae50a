package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/segments/lang"
)

// SegmentFileExt names the files `idgraph segments apply` reads: KEY.seg
// holds segment KEY's definition.
const SegmentFileExt = ".seg"

// ReadSegmentDir reads the definitions of a directory: each file KEY.seg
// is segment KEY (other files and subdirectories are ignored). Surrounding
// white space is not part of a definition.
func ReadSegmentDir(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("segments: %w", err)
	}
	out := map[string]string{}
	for _, e := range entries {
		key, ok := strings.CutSuffix(e.Name(), SegmentFileExt)
		if !ok || e.IsDir() {
			continue
		}
		if key == "" {
			return nil, fmt.Errorf("segments: %s: a file name is the segment's key, and %q has none", dir, e.Name())
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("segments: %w", err)
		}
		out[key] = strings.TrimSpace(string(data))
	}
	return out, nil
}

// SavedSegment is a segment as the server has it.
type SavedSegment struct {
	Key        string `json:"key"`
	Definition string `json:"definition"`
	Version    int    `json:"version"`
	Status     struct {
		State string `json:"state"`
	} `json:"status"`
	Size int `json:"size"`
}

// Segments lists the server's segments (read key).
func (c *Client) Segments(ctx context.Context) ([]SavedSegment, error) {
	const q = `query($after: String) { segments(first: 100, after: $after) {
		edges { node { key definition version status { state } size } } pageInfo { hasNextPage endCursor } } }`
	var out []SavedSegment
	var after *string
	for {
		var resp struct {
			Segments struct {
				Edges []struct {
					Node SavedSegment `json:"node"`
				} `json:"edges"`
				PageInfo struct {
					HasNextPage bool    `json:"hasNextPage"`
					EndCursor   *string `json:"endCursor"`
				} `json:"pageInfo"`
			} `json:"segments"`
		}
		if err := c.GraphQL(ctx, q, map[string]any{"after": after}, &resp); err != nil {
			return nil, fmt.Errorf("segments: %w", err)
		}
		for _, e := range resp.Segments.Edges {
			out = append(out, e.Node)
		}
		if !resp.Segments.PageInfo.HasNextPage {
			return out, nil
		}
		after = resp.Segments.PageInfo.EndCursor
	}
}

// What a directory of definitions would do to a segment.
const (
	SegmentNew       = "new"       // in the directory, not on the server
	SegmentChanged   = "changed"   // on both, with another definition
	SegmentUnchanged = "unchanged" // on both, the same
	SegmentAbsent    = "absent"    // on the server only: apply leaves it
)

// SegmentPlan is one segment of a directory compared with the server.
type SegmentPlan struct {
	Key    string
	Action string // SegmentNew, …
	// Definition is the directory's (empty when absent).
	Definition string
	// Saved is the server's (nil when new).
	Saved *SavedSegment
	// Preview is the number of members the directory's definition would
	// have now (new and changed, when previewed).
	Preview *int
	// Err is why the preview (diff) or the save (apply) failed.
	Err error
	// Version is the version apply saved.
	Version int
}

// SameDefinition reports whether two definitions say the same: equal
// canonical forms (lang.Format), so that a file reformatted or commented
// is not a change; as text when either does not parse.
func SameDefinition(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == b {
		return true
	}
	na, errA := lang.Parse(a, lang.DefaultLimits())
	nb, errB := lang.Parse(b, lang.DefaultLimits())
	return errA == nil && errB == nil && lang.Format(na) == lang.Format(nb)
}

// PlanSegments compares a directory's definitions with the server's, by
// key; with preview, it asks the server to count the members of each new
// or changed definition (previewSegment: a read of every profile each).
func (c *Client) PlanSegments(ctx context.Context, defs map[string]string, preview bool) ([]*SegmentPlan, error) {
	saved, err := c.Segments(ctx)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*SavedSegment{}
	for i := range saved {
		byKey[saved[i].Key] = &saved[i]
	}
	var out []*SegmentPlan
	for key, def := range defs {
		p := &SegmentPlan{Key: key, Definition: def, Saved: byKey[key], Action: SegmentNew}
		if p.Saved != nil {
			p.Action = SegmentChanged
			if SameDefinition(p.Saved.Definition, def) {
				p.Action = SegmentUnchanged
			}
		}
		if preview && p.Action != SegmentUnchanged {
			n, err := c.PreviewSegment(ctx, def)
			p.Preview, p.Err = n, err
		}
		out = append(out, p)
	}
	for key, s := range byKey {
		if _, ok := defs[key]; !ok {
			out = append(out, &SegmentPlan{Key: key, Action: SegmentAbsent, Saved: s})
		}
	}
	slices.SortFunc(out, func(a, b *SegmentPlan) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// PreviewSegment counts the members an unsaved definition would have now.
func (c *Client) PreviewSegment(ctx context.Context, def string) (*int, error) {
	var resp struct {
		PreviewSegment struct {
			Count int `json:"count"`
		} `json:"previewSegment"`
	}
	if err := c.GraphQL(ctx, `query($def: String!) { previewSegment(definition: $def, sample: 0) { count } }`,
		map[string]any{"def": def}, &resp); err != nil {
		return nil, err
	}
	return &resp.PreviewSegment.Count, nil
}

// ApplySegments creates the new segments of a plan and updates the
// changed ones (from the version the plan saw: one edited on the server
// since is refused, CONFLICT), with the client's steward key. Unchanged
// and absent segments are left alone. A new segment that reads another
// new one (in_segment) is created after it. Each plan's Err says what
// failed; the error returned says how many did.
func (c *Client) ApplySegments(ctx context.Context, plan []*SegmentPlan) error {
	const create = `mutation($key: String!, $def: String!) { createSegment(key: $key, definition: $def) { version } }`
	const update = `mutation($key: String!, $def: String!, $v: Int!) { updateSegment(key: $key, definition: $def, expectedVersion: $v) { version } }`
	todo := slices.DeleteFunc(slices.Clone(plan), func(p *SegmentPlan) bool {
		p.Err = nil
		return p.Action != SegmentNew && p.Action != SegmentChanged
	})
	// Each round saves what it can; a definition that names one not yet
	// saved (UNKNOWN_REFERENCE) waits for the next round, until a round
	// saves nothing.
	for len(todo) > 0 {
		var wait []*SegmentPlan
		for _, p := range todo {
			var resp map[string]struct {
				Version int `json:"version"`
			}
			var err error
			if p.Action == SegmentNew {
				err = c.GraphQL(ctx, create, map[string]any{"key": p.Key, "def": p.Definition}, &resp)
			} else {
				err = c.GraphQL(ctx, update, map[string]any{"key": p.Key, "def": p.Definition, "v": p.Saved.Version}, &resp)
			}
			p.Err = err
			for _, r := range resp {
				p.Version = r.Version
			}
			var ge *GraphQLError
			if errors.As(err, &ge) {
				if code, _, _, _ := ge.DefinitionPos(); code == "UNKNOWN_REFERENCE" {
					wait = append(wait, p)
				}
			}
		}
		if len(wait) == len(todo) {
			break
		}
		todo = wait
	}
	failed := 0
	for _, p := range plan {
		if p.Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("segments apply: %d of %d segments failed", failed, len(plan))
	}
	return nil
}

// Explanation is explainMembership's answer.
type Explanation struct {
	ProfileID    string     `json:"profileId"`
	Member       bool       `json:"member"`
	StoredMember bool       `json:"storedMember"`
	NextDeadline *time.Time `json:"nextDeadline"`
	At           time.Time  `json:"at"`
	Segment      struct {
		Key     string `json:"key"`
		Version int    `json:"version"`
	} `json:"segment"`
	Nodes []struct {
		Index      int        `json:"index"`
		Parent     *int       `json:"parent"`
		Text       string     `json:"text"`
		Line       int        `json:"line"`
		Column     int        `json:"column"`
		Value      any        `json:"value"`
		Deadline   *time.Time `json:"deadline"`
		EventCount int        `json:"eventCount"`
		Skipped    int        `json:"skipped"`
		Events     []struct {
			Name      string    `json:"name"`
			MessageID string    `json:"messageId"`
			Timestamp time.Time `json:"timestamp"`
		} `json:"events"`
	} `json:"nodes"`
}

// ExplainMembership asks why a profile is or is not in a segment.
func (c *Client) ExplainMembership(ctx context.Context, profile, segment string) (*Explanation, error) {
	const q = `query($id: ID!, $seg: String!) { explainMembership(profileId: $id, segment: $seg) {
		profileId member storedMember nextDeadline at segment { key version }
		nodes { index parent text line column value deadline eventCount skipped events { name messageId timestamp } } } }`
	var resp struct {
		ExplainMembership Explanation `json:"explainMembership"`
	}
	if err := c.GraphQL(ctx, q, map[string]any{"id": profile, "seg": segment}, &resp); err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	return &resp.ExplainMembership, nil
}

// ResolveProfile returns the ID of the profile a command-line argument
// names: a profile ID, or TYPE:VALUE of one of its identifiers
// (user_id:u-1, email:ann@example.com).
func (c *Client) ResolveProfile(ctx context.Context, ref string) (string, error) {
	typ, value, ok := strings.Cut(ref, ":")
	if !ok || strings.HasPrefix(ref, "p_") {
		return ref, nil
	}
	var resp struct {
		Lookup *struct {
			ID string `json:"id"`
		} `json:"lookup"`
	}
	if err := c.GraphQL(ctx, `query($t: String!, $v: String!) { lookup(type: $t, value: $v) { id } }`,
		map[string]any{"t": typ, "v": value}, &resp); err != nil {
		return "", fmt.Errorf("profile %s: %w", ref, err)
	}
	if resp.Lookup == nil {
		return "", fmt.Errorf("profile %s: no profile has that identifier", ref)
	}
	return resp.Lookup.ID, nil
}
