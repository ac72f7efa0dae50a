package resolver

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/schema"
	"github.com/idgraph/idgraph/segments"
)

// Definition versions (Segment.versions, ComputedTrait.versions) and the
// change subscriptions (segmentMembershipChanged, computedTraitChanged).

// versionOf is a stored version as the API shows it.
func versionOf(d *segments.Definition, current bool) *schema.DefinitionVersion {
	return &schema.DefinitionVersion{Key: d.Key, Version: d.Version, Definition: d.Source, Change: upperOrNil(d.Change),
		Author: optional(d.Author), At: d.UpdatedAt, Status: statusOf(d), Current: current}
}

func upperOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return ptr(strings.ToUpper(s))
}

// versionCursor is a version's cursor: its number.
const versionCursor = "version:"

// definitionVersions pages through a definition's versions, newest first.
func (r *Resolver) definitionVersions(ctx context.Context, d *segments.Definition, first *int, after *string) (*schema.DefinitionVersionConnection, error) {
	n, err := r.pageSize(first, 20)
	if err != nil {
		return nil, err
	}
	pos, err := decodeCursor(after, versionCursor)
	if err != nil {
		return nil, err
	}
	before := 0
	if pos != "" {
		if before, err = strconv.Atoi(pos); err != nil || before < 1 {
			return nil, graph.FieldErrorf("after", "is not a cursor of this connection")
		}
	}
	conn := &schema.DefinitionVersionConnection{Edges: []*schema.DefinitionVersionEdge{}, PageInfo: &schema.PageInfo{}}
	if n == 0 {
		return conn, nil
	}
	e, err := r.segments()
	if err != nil {
		return nil, err
	}
	vs, err := e.Store().Versions(ctx, d.Ref(), before, n+1)
	if graph.ErrorKind(err) == graph.KindNotFound {
		return conn, nil // deleted since d was read
	}
	if err != nil {
		return nil, err
	}
	conn.PageInfo.HasNextPage = len(vs) > n
	for _, v := range vs[:min(n, len(vs))] {
		c := cursor(versionCursor, strconv.Itoa(v.Version))
		conn.Edges = append(conn.Edges, &schema.DefinitionVersionEdge{Cursor: c, Node: versionOf(v, v.Version == d.Version)})
		conn.PageInfo.EndCursor = &c
	}
	return conn, nil
}

// changeVersion is the stored version of a definition that decided a
// change record made at `at`; nil when it is not stored (deleted), or
// when the stored one of that number was saved after the record, by a
// definition created again under the key.
func (r *Resolver) changeVersion(ctx context.Context, ref segments.Ref, version int, at time.Time) (*schema.DefinitionVersion, error) {
	e, err := r.segments()
	if err != nil {
		return nil, err
	}
	vs, err := e.Store().Versions(ctx, ref, version+1, 1)
	if graph.ErrorKind(err) == graph.KindNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 || vs[0].Version != version || vs[0].UpdatedAt.After(at) {
		return nil, nil
	}
	cur, err := e.Store().Definition(ctx, ref)
	if graph.ErrorKind(err) == graph.KindNotFound {
		return nil, nil // deleted since
	}
	if err != nil {
		return nil, err
	}
	return versionOf(vs[0], cur.Version == version), nil
}

// changesFrom is where a change subscription starts: after the newest
// record, or after the sequence `after` names.
func (r *Resolver) changesFrom(ctx context.Context, after *string) (uint64, error) {
	last, err := r.Segments.Store().LastChange(ctx)
	if err != nil {
		return 0, err
	}
	if after == nil {
		return last, nil
	}
	from, err := strconv.ParseUint(*after, 10, 64)
	if err != nil || from > last {
		return 0, graph.FieldErrorf("after", "%q is not the sequence of a change record (the newest is %d)", *after, last)
	}
	return from, nil
}

// followChanges streams the change records after from that match, each
// as msg makes it, until the client leaves or a read fails (ending the
// subscription tells the client to subscribe again; going on would hide
// a gap). With a profile, only the records of that profile and of those
// it is merged into (profileFollower).
func followChanges[T any](ctx context.Context, r *Resolver, from uint64, profile *profileFollower,
	match func(*segments.ChangeRecord) bool, msg func(*segments.ChangeRecord) T) <-chan T {
	store := r.Segments.Store()
	out := make(chan T, 1)
	go func() {
		defer close(out)
		for after := from; ; {
			cs, err := store.Changes(ctx, after, changePage)
			if err != nil {
				return
			}
			profile.newPage()
			for _, c := range cs {
				after = c.Sequence
				if !match(c) || !profile.follows(ctx, c) {
					continue
				}
				select {
				case out <- msg(c):
				case <-ctx.Done():
					return
				}
			}
			if len(cs) == changePage {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(changePoll):
			}
		}
	}()
	return out
}

// profileFollower picks the change records of one person: the profile
// subscribed to and, once it is merged into another, the survivor's. A
// merge shows in the records as reason profile_merged: the absorbed
// profile's (its exits) come before the survivor's (its evaluation over
// both), in one write. Nil follows every profile.
type profileFollower struct {
	r    *Resolver
	ids  map[string]bool
	last string // the newest profile followed
	// hop is last's survivor as read during this page ("" when not read,
	// or not merged).
	hop  string
	read bool
}

// newProfileFollower follows a profile: not_found when there is none,
// and its survivor too when it is merged already.
func (r *Resolver) newProfileFollower(ctx context.Context, id *string) (*profileFollower, error) {
	if id == nil {
		return nil, nil
	}
	p, err := live(ctx, *id)
	if err != nil {
		return nil, err
	}
	return &profileFollower{r: r, ids: map[string]bool{*id: true, p.ID: true}, last: p.ID}, nil
}

// newPage forgets the survivor read for the last page: a merge may have
// happened since.
func (f *profileFollower) newPage() {
	if f != nil {
		f.hop, f.read = "", false
	}
}

// follows reports whether a record is of the followed person. A merge
// record of a profile not yet followed is checked against the followed
// profile's survivor (one read a page); a merge record of a followed
// profile (its exit) adds its survivor.
func (f *profileFollower) follows(ctx context.Context, c *segments.ChangeRecord) bool {
	if f == nil {
		return true
	}
	if c.Reason == segments.ReasonMerged && (c.Profile == f.last || !f.ids[c.Profile]) {
		if !f.read {
			f.read = true
			if ps, err := f.r.Reader.GetProfiles(ctx, []string{f.last}); err == nil && ps[0] != nil {
				f.hop = ps[0].MergedInto
			}
		}
		if f.hop != "" && (c.Profile == f.last || c.Profile == f.hop) {
			f.ids[f.hop], f.last, f.hop, f.read = true, f.hop, "", false
		}
	}
	return f.ids[c.Profile]
}
