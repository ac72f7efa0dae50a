package neo4j

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// Segments in the graph: a definition is a (:Segment {key}) or
// (:ComputedTrait {key}) node holding its JSON; each profile's entries are
// one (:SegmentState {profile, rev, data}) node, the source of truth,
// mirrored in Cypher as (:Profile)-[:IN_SEGMENT {since, version}]->(:Segment)
// so that membership can be queried directly; (:SegmentTimer {profile,
// ref, at}) nodes are the timer index and (:SegmentChange {seq, ...}) the
// change records, numbered from the singleton (:SegmentSequence). Each
// version a definition's edit replaced is a (:DefinitionVersion {ref,
// version, data}) node, ref being segments.RefString.
// A (:DataChange {profile, events, traits, all, mark}) node per profile
// holds the data changes stitching wrote with its events; labelled :Due
// while segments have not evaluated them. Taking one clears it and drops
// the label but never deletes the node: an ingest's MERGE that matched a
// node deleted under it would write its change into nothing.
var segmentSchema = []string{
	"CREATE CONSTRAINT segment_key IF NOT EXISTS FOR (s:Segment) REQUIRE s.key IS UNIQUE",
	"CREATE CONSTRAINT computed_trait_key IF NOT EXISTS FOR (c:ComputedTrait) REQUIRE c.key IS UNIQUE",
	"CREATE CONSTRAINT segment_state_profile IF NOT EXISTS FOR (s:SegmentState) REQUIRE s.profile IS UNIQUE",
	"CREATE INDEX segment_timer_at IF NOT EXISTS FOR (t:SegmentTimer) ON (t.at)",
	"CREATE INDEX segment_timer_profile IF NOT EXISTS FOR (t:SegmentTimer) ON (t.profile)",
	"CREATE CONSTRAINT segment_change_seq IF NOT EXISTS FOR (c:SegmentChange) REQUIRE c.seq IS UNIQUE",
	"CREATE CONSTRAINT segment_sequence_id IF NOT EXISTS FOR (q:SegmentSequence) REQUIRE q.id IS UNIQUE",
	"CREATE CONSTRAINT data_change_profile IF NOT EXISTS FOR (d:DataChange) REQUIRE d.profile IS UNIQUE",
	"CREATE INDEX definition_version_ref IF NOT EXISTS FOR (v:DefinitionVersion) ON (v.ref)",
}

var _ segments.Backend = (*Store)(nil)

// Segments returns the store of segments, kept in the same database.
func (s *Store) Segments() segments.Store { return segStore{s} }

type segStore struct{ s *Store }

// label is the node label of a kind's definitions (labels cannot be
// parameters, so queries are built with it).
func label(k lang.Kind) string {
	if k == lang.KindComputed {
		return "ComputedTrait"
	}
	return "Segment"
}

// writeTx runs fn in one managed write transaction.
func (g segStore) writeTx(ctx context.Context, op string, fn func(t *tx) error) error {
	sess := g.s.driver.NewSession(ctx, neo4jdriver.SessionConfig{
		AccessMode:      neo4jdriver.AccessModeWrite,
		DatabaseName:    g.s.db,
		BookmarkManager: g.s.driver.ExecuteQueryBookmarkManager(),
	})
	defer sess.Close(context.Background())
	_, err := sess.ExecuteWrite(ctx, func(mtx neo4jdriver.ManagedTransaction) (any, error) {
		return nil, fn(&tx{run: mtx, trace: g.s.trace, seal: g.s.seal})
	})
	return wrap(op, err)
}

// lockDefinition merges the definition's node (locking it) and returns its
// stored JSON, "" when it did not exist. A node this creates is rolled
// back with the transaction when the caller refuses the write.
func lockDefinition(ctx context.Context, t *tx, r segments.Ref) (*segments.Definition, error) {
	recs, err := t.collect(ctx, "MERGE (d:"+label(r.Kind)+" {key: $key}) SET d.lock = true REMOVE d.lock RETURN d.data",
		map[string]any{"key": r.Key})
	if err != nil {
		return nil, err
	}
	data, _ := recs[0].Values[0].(string)
	if data == "" {
		return nil, nil
	}
	d := &segments.Definition{}
	if err := json.Unmarshal([]byte(data), d); err != nil {
		return nil, fmt.Errorf("corrupt definition %q: %w", r.Key, err)
	}
	return d, nil
}

func putDefinition(ctx context.Context, t *tx, d *segments.Definition) error {
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return t.exec(ctx, "MATCH (d:"+label(d.Kind)+" {key: $key}) SET d.data = $data, d.version = $version",
		map[string]any{"key": d.Key, "data": string(data), "version": d.Version})
}

// PutDefinition stores a definition's next version.
func (g segStore) PutDefinition(ctx context.Context, d *segments.Definition, expected int) (*segments.Definition, error) {
	if err := segments.CheckPut(d, expected); err != nil {
		return nil, fmt.Errorf("neo4j: put definition: %w", err)
	}
	var next segments.Definition
	err := g.writeTx(ctx, "neo4j: put definition", func(t *tx) error {
		old, err := lockDefinition(ctx, t, d.Ref())
		if err != nil {
			return err
		}
		if err := segments.CheckVersion(d.Ref(), old, expected); err != nil {
			return err
		}
		next = *d
		next.Version = expected + 1
		if old != nil {
			next.CreatedAt = old.CreatedAt
			data, err := json.Marshal(old)
			if err != nil {
				return err
			}
			// Kept in the history.
			if err := t.exec(ctx, "CREATE (:DefinitionVersion {ref: $ref, version: $version, data: $data})",
				map[string]any{"ref": segments.RefString(old.Ref()), "version": old.Version, "data": string(data)}); err != nil {
				return err
			}
		}
		return putDefinition(ctx, t, &next)
	})
	if err != nil {
		return nil, err
	}
	return &next, nil
}

// SetStatus changes the status of one version of a definition.
func (g segStore) SetStatus(ctx context.Context, r segments.Ref, version int, st segments.Status) error {
	return g.writeTx(ctx, "neo4j: set status", func(t *tx) error {
		d, err := lockDefinition(ctx, t, r)
		if err != nil {
			return err
		}
		if err := segments.CheckStored(r, d, version); err != nil {
			return err
		}
		d.Status = st
		return putDefinition(ctx, t, d)
	})
}

// DeleteDefinition deletes one version of a definition, and with a
// segment's node its IN_SEGMENT relationships.
func (g segStore) DeleteDefinition(ctx context.Context, r segments.Ref, expected int) error {
	return g.writeTx(ctx, "neo4j: delete definition", func(t *tx) error {
		d, err := lockDefinition(ctx, t, r)
		if err != nil {
			return err
		}
		if err := segments.CheckStored(r, d, expected); err != nil {
			return err
		}
		if r.Kind == lang.KindSegment {
			if err := t.exec(ctx, "MATCH (z:SegmentSize {segment: $key}) DELETE z", map[string]any{"key": r.Key}); err != nil {
				return err
			}
		}
		if err := t.exec(ctx, "MATCH (v:DefinitionVersion {ref: $ref}) DELETE v", map[string]any{"ref": segments.RefString(r)}); err != nil {
			return err
		}
		return t.exec(ctx, "MATCH (d:"+label(r.Kind)+" {key: $key}) DETACH DELETE d", map[string]any{"key": r.Key})
	})
}

// Versions pages through a definition's versions, newest first: the
// stored one, then the DefinitionVersion nodes below it.
func (g segStore) Versions(ctx context.Context, r segments.Ref, before, limit int) ([]*segments.Definition, error) {
	d, err := g.Definition(ctx, r)
	if err != nil {
		return nil, err
	}
	current, below, err := segments.VersionsBound(d, before, limit)
	if err != nil {
		return nil, fmt.Errorf("neo4j: definition versions: %w", err)
	}
	var out []*segments.Definition
	if current {
		out = append(out, d)
	}
	recs, err := g.s.read(ctx, `MATCH (v:DefinitionVersion {ref: $ref}) WHERE v.version < $below
		RETURN v.data ORDER BY v.version DESC LIMIT $limit`,
		map[string]any{"ref": segments.RefString(r), "below": below, "limit": limit - len(out)})
	if err != nil {
		return nil, wrap("neo4j: definition versions", err)
	}
	for _, rec := range recs {
		v, err := definitionFrom(rec.Values[0])
		if err != nil {
			return nil, fmt.Errorf("neo4j: definition versions: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

func definitionFrom(v any) (*segments.Definition, error) {
	data, _ := v.(string)
	d := &segments.Definition{}
	if err := json.Unmarshal([]byte(data), d); err != nil {
		return nil, fmt.Errorf("corrupt definition: %w", err)
	}
	return d, nil
}

// Definition returns one definition.
func (g segStore) Definition(ctx context.Context, r segments.Ref) (*segments.Definition, error) {
	recs, err := g.s.read(ctx, "MATCH (d:"+label(r.Kind)+" {key: $key}) WHERE d.data IS NOT NULL RETURN d.data",
		map[string]any{"key": r.Key})
	if err != nil {
		return nil, wrap("neo4j: definition", err)
	}
	if len(recs) == 0 {
		return nil, segments.NotFound(r)
	}
	d, err := definitionFrom(recs[0].Values[0])
	if err != nil {
		return nil, fmt.Errorf("neo4j: definition: %w", err)
	}
	return d, nil
}

// Definitions lists every definition, segments first, by key.
func (g segStore) Definitions(ctx context.Context) ([]*segments.Definition, error) {
	recs, err := g.s.read(ctx, `CALL () {
			MATCH (d:Segment) WHERE d.data IS NOT NULL RETURN 0 AS kind, d.key AS key, d.data AS data
			UNION ALL
			MATCH (d:ComputedTrait) WHERE d.data IS NOT NULL RETURN 1 AS kind, d.key AS key, d.data AS data
		}
		RETURN data ORDER BY kind, key`, nil)
	if err != nil {
		return nil, wrap("neo4j: definitions", err)
	}
	out := make([]*segments.Definition, len(recs))
	for i, r := range recs {
		if out[i], err = definitionFrom(r.Values[0]); err != nil {
			return nil, fmt.Errorf("neo4j: definitions: %w", err)
		}
	}
	return out, nil
}

// stateFrom decodes a state node's data (the state's JSON) and revision
// (kept apart, as the property saves compare).
func stateFrom(profile string, rev, data any) (*segments.ProfileState, error) {
	st := &segments.ProfileState{}
	if data, _ := data.(string); data != "" {
		if err := json.Unmarshal([]byte(data), st); err != nil {
			return nil, fmt.Errorf("corrupt segment state of %s: %w", profile, err)
		}
	}
	st.Profile = profile
	st.Rev, _ = rev.(int64)
	return st, nil
}

// States returns the profiles' states.
func (g segStore) States(ctx context.Context, profiles []string) ([]*segments.ProfileState, error) {
	out := make([]*segments.ProfileState, len(profiles))
	if len(profiles) == 0 {
		return out, nil
	}
	recs, err := g.s.read(ctx, `UNWIND $ids AS id
		OPTIONAL MATCH (st:SegmentState {profile: id})
		RETURN id, st.rev, st.data`, map[string]any{"ids": profiles})
	if err != nil {
		return nil, wrap("neo4j: segment states", err)
	}
	found := map[string]*segments.ProfileState{}
	for _, r := range recs {
		id, _ := r.Values[0].(string)
		st, err := stateFrom(id, r.Values[1], r.Values[2])
		if err != nil {
			return nil, fmt.Errorf("neo4j: segment states: %w", err)
		}
		found[id] = st
	}
	for i, p := range profiles {
		out[i] = found[p]
	}
	return out, nil
}

// StatesPage pages through the state nodes in profile order (the unique
// constraint's index, by keyset).
func (g segStore) StatesPage(ctx context.Context, after string, limit int) ([]*segments.ProfileState, error) {
	recs, err := g.s.read(ctx, `MATCH (st:SegmentState) WHERE st.profile > $after
		RETURN st.profile, st.rev, st.data ORDER BY st.profile LIMIT $limit`, map[string]any{"after": after, "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: segment states page", err)
	}
	out := make([]*segments.ProfileState, len(recs))
	for i, r := range recs {
		id, _ := r.Values[0].(string)
		if out[i], err = stateFrom(id, r.Values[1], r.Values[2]); err != nil {
			return nil, fmt.Errorf("neo4j: segment states page: %w", err)
		}
	}
	return out, nil
}

// SaveStates writes the states, their change records, timers and
// IN_SEGMENT relationships in one transaction. Merging the state node
// first locks it, so concurrent saves of one profile run one after the
// other and the second sees the first's revision.
func (g segStore) SaveStates(ctx context.Context, saves []segments.Save) ([]*segments.ChangeRecord, error) {
	if err := segments.CheckSaves(saves); err != nil {
		return nil, fmt.Errorf("neo4j: save segment states: %w", err)
	}
	var out []*segments.ChangeRecord
	err := g.writeTx(ctx, "neo4j: save segment states", func(t *tx) error {
		out = nil
		olds, err := lockStates(ctx, t, saves)
		if err != nil {
			return err
		}
		for i, sv := range saves {
			if olds[i].Rev != sv.State.Rev {
				return fmt.Errorf("%s: %w", sv.State.Profile, segments.ErrStale)
			}
		}
		if err := checkMembers(ctx, t, saves, olds); err != nil {
			return err
		}
		var changes [][]*segments.ChangeRecord
		n := 0
		for i, sv := range saves {
			cs := segments.Diff(sv, olds[i].Entries)
			changes = append(changes, cs)
			n += len(cs)
		}
		seq, err := allocate(ctx, t, n)
		if err != nil {
			return err
		}
		for i := range saves {
			for _, c := range changes[i] {
				seq++
				c.Sequence = seq
				out = append(out, c)
			}
		}
		return writeStates(ctx, t, olds, saves, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkMembers refuses memberships of a profile or segment that is not
// stored, and a profile merged into another since it was evaluated
// entering a segment: stale (its survivor is evaluated instead). One query
// checks every save's.
func checkMembers(ctx context.Context, t *tx, saves []segments.Save, olds []*segments.ProfileState) error {
	var rows []any
	for i, sv := range saves {
		is := segments.SegmentMemberships(sv.State.Entries)
		if len(is) == 0 {
			continue
		}
		was := segments.SegmentMemberships(olds[i].Entries)
		enters := false
		for k := range is {
			if _, ok := was[k]; !ok {
				enters = true
			}
		}
		rows = append(rows, map[string]any{"id": sv.State.Profile, "keys": slices.Sorted(maps.Keys(is)), "enters": enters})
	}
	if len(rows) == 0 {
		return nil
	}
	recs, err := t.collect(ctx, `UNWIND $rows AS row
		OPTIONAL MATCH (p:Profile {id: row.id})
		WITH row, count(p) AS profiles, count(p.mergedInto) AS merged
		UNWIND row.keys AS k
		OPTIONAL MATCH (s:Segment {key: k}) WHERE s.data IS NOT NULL
		RETURN row.id, profiles, merged > 0 AND row.enters, k, count(s)`, map[string]any{"rows": rows})
	if err != nil {
		return err
	}
	for _, r := range recs {
		id, _ := r.Values[0].(string)
		if n, _ := r.Values[1].(int64); n == 0 {
			return graph.Errorf(graph.KindNotFound, "no profile %s", id)
		}
		if stale, _ := r.Values[2].(bool); stale {
			return fmt.Errorf("profile %s merged away: %w", id, segments.ErrStale)
		}
		if n, _ := r.Values[4].(int64); n == 0 {
			return graph.Errorf(graph.KindNotFound, "no segment %q", r.Values[3])
		}
	}
	return nil
}

// allocate reserves n change sequence numbers and returns the one before
// the first. The counter node's write lock orders concurrent savers.
func allocate(ctx context.Context, t *tx, n int) (uint64, error) {
	if n == 0 {
		return 0, nil
	}
	recs, err := t.collect(ctx, `MERGE (q:SegmentSequence {id: "changes"})
		ON CREATE SET q.last = 0
		SET q.last = q.last + $n
		RETURN q.last`, map[string]any{"n": n})
	if err != nil {
		return 0, err
	}
	last, _ := recs[0].Values[0].(int64)
	return uint64(last) - uint64(n), nil
}

// lockStates reads the stored states of the saves' profiles in one
// query, merging each state node first, which locks it, so that
// concurrent saves of one profile run one after the other and the second
// sees the first's revision. The nodes are locked in profile order, so
// that two saves of the same profiles do not deadlock.
func lockStates(ctx context.Context, t *tx, saves []segments.Save) ([]*segments.ProfileState, error) {
	ids := make([]string, len(saves))
	for i, sv := range saves {
		ids[i] = sv.State.Profile
	}
	slices.Sort(ids)
	recs, err := t.collect(ctx, `UNWIND $ids AS id
		MERGE (st:SegmentState {profile: id})
		ON CREATE SET st.rev = 0
		SET st.lock = true REMOVE st.lock
		RETURN id, st.rev, st.data`, map[string]any{"ids": ids})
	if err != nil {
		return nil, err
	}
	found := make(map[string]*segments.ProfileState, len(recs))
	for _, r := range recs {
		id, _ := r.Values[0].(string)
		if found[id], err = stateFrom(id, r.Values[1], r.Values[2]); err != nil {
			return nil, err
		}
	}
	olds := make([]*segments.ProfileState, len(saves))
	for i, sv := range saves {
		olds[i] = found[sv.State.Profile]
	}
	return olds, nil
}

// writeStates writes each save's new state over its old one, and the
// change records: only the timers and IN_SEGMENT relationships that
// changed (most saves move a few of them), each kind of write one query
// for all the saves (a backfill saves a page of a thousand profiles).
func writeStates(ctx context.Context, t *tx, olds []*segments.ProfileState, saves []segments.Save, changes []*segments.ChangeRecord) error {
	var states, moved, timers, kept, members []any
	for i, sv := range saves {
		old, next := olds[i], sv.State
		id := next.Profile
		data, err := json.Marshal(next)
		if err != nil {
			return err
		}
		states = append(states, map[string]any{"id": id, "data": string(data)})
		gone, added := segments.TimerChanges(old, next)
		for _, tm := range gone {
			moved = append(moved, map[string]any{"id": id, "ref": segments.RefString(tm.Ref)})
		}
		for _, tm := range added {
			moved = append(moved, map[string]any{"id": id, "ref": segments.RefString(tm.Ref)})
			timers = append(timers, map[string]any{"id": id, "ref": segments.RefString(tm.Ref), "at": timeVal(tm.At)})
		}
		keys := []string{}
		for k := range segments.SegmentMemberships(next.Entries) {
			keys = append(keys, k)
		}
		kept = append(kept, map[string]any{"id": id, "keys": keys})
		for k, e := range segments.MembershipWrites(old, next) {
			members = append(members, map[string]any{"id": id, "key": k, "since": timeVal(e.Since), "version": e.Version})
		}
	}
	records, err := changeRows(changes)
	if err != nil {
		return err
	}
	steps := []struct {
		cypher string
		rows   []any
	}{
		{`UNWIND $rows AS r MATCH (st:SegmentState {profile: r.id}) SET st.rev = st.rev + 1, st.data = r.data`, states},
		{`UNWIND $rows AS r MATCH (t:SegmentTimer {profile: r.id, ref: r.ref}) DELETE t`, moved},
		{`UNWIND $rows AS r CREATE (:SegmentTimer {profile: r.id, ref: r.ref, at: r.at})`, timers},
		{`UNWIND $rows AS r
			MATCH (:Profile {id: r.id})-[m:IN_SEGMENT]->(s:Segment) WHERE NOT s.key IN r.keys DELETE m`, kept},
		{`UNWIND $rows AS r
			MATCH (p:Profile {id: r.id})
			MATCH (s:Segment {key: r.key})
			MERGE (p)-[m:IN_SEGMENT]->(s)
			SET m.since = r.since, m.version = r.version`, members},
		{`UNWIND $rows AS r CREATE (c:SegmentChange) SET c = r`, records},
	}
	for _, st := range steps {
		if len(st.rows) == 0 {
			continue
		}
		if err := t.exec(ctx, st.cypher, map[string]any{"rows": st.rows}); err != nil {
			return err
		}
	}
	return nil
}

// changeRows are the SegmentChange nodes' properties. A computed trait's
// change has a trait key, and its values as JSON (a property cannot hold
// a map); a missing value is no property.
func changeRows(changes []*segments.ChangeRecord) ([]any, error) {
	var records []any
	for _, c := range changes {
		row := map[string]any{"seq": int64(c.Sequence), "segment": c.Segment, "version": c.Version,
			"profile": c.Profile, "direction": c.Direction, "reason": c.Reason, "time": timeVal(c.Time)}
		if c.IsTrait() {
			row["trait"] = c.Trait
			for k, v := range map[string]*segments.Value{"previous": c.Previous, "value": c.Value} {
				if v == nil {
					continue
				}
				data, err := json.Marshal(v)
				if err != nil {
					return nil, err
				}
				row[k] = string(data)
			}
		}
		records = append(records, row)
	}
	return records, nil
}

// changeValue decodes a SegmentChange's value property (nil: missing).
func changeValue(m map[string]any, k string) (*segments.Value, error) {
	data := getString(m, k)
	if data == "" {
		return nil, nil
	}
	v := &segments.Value{}
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return nil, fmt.Errorf("corrupt %s of change %v: %w", k, m["seq"], err)
	}
	return v, nil
}

// LastChange reads the sequence counter, which the transactions that
// write records advance: what it says is committed.
func (g segStore) LastChange(ctx context.Context) (uint64, error) {
	recs, err := g.s.read(ctx, `OPTIONAL MATCH (q:SegmentSequence {id: "changes"}) RETURN coalesce(q.last, 0)`, nil)
	if err != nil {
		return 0, wrap("neo4j: last segment change", err)
	}
	last, _ := recs[0].Values[0].(int64)
	return uint64(last), nil
}

// Changes pages through the change records.
func (g segStore) Changes(ctx context.Context, after uint64, limit int) ([]*segments.ChangeRecord, error) {
	recs, err := g.s.read(ctx, `MATCH (c:SegmentChange) WHERE c.seq > $after
		RETURN c ORDER BY c.seq LIMIT $limit`, map[string]any{"after": int64(after), "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: segment changes", err)
	}
	out := make([]*segments.ChangeRecord, len(recs))
	for i, r := range recs {
		m := props(r.Values[0])
		seq, _ := m["seq"].(int64)
		c := &segments.ChangeRecord{Sequence: uint64(seq), Segment: getString(m, "segment"), Trait: getString(m, "trait"),
			Version: getInt(m, "version"), Profile: getString(m, "profile"), Direction: getString(m, "direction"),
			Reason: getString(m, "reason"), Time: getTime(m, "time")}
		if c.Previous, err = changeValue(m, "previous"); err == nil {
			c.Value, err = changeValue(m, "value")
		}
		if err != nil {
			return nil, fmt.Errorf("neo4j: segment changes: %w", err)
		}
		out[i] = c
	}
	return out, nil
}

// DueTimers reads the timer index up to until.
func (g segStore) DueTimers(ctx context.Context, until time.Time, limit int) ([]segments.Timer, error) {
	recs, err := g.s.read(ctx, `MATCH (t:SegmentTimer) WHERE t.at <= $until
		RETURN t.at, t.profile, t.ref ORDER BY t.at, t.profile, t.ref LIMIT $limit`,
		map[string]any{"until": until.UTC(), "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: due timers", err)
	}
	out := make([]segments.Timer, len(recs))
	for i, r := range recs {
		at, _ := r.Values[0].(time.Time)
		profile, _ := r.Values[1].(string)
		rs, _ := r.Values[2].(string)
		ref, err := segments.ParseRef(rs)
		if err != nil {
			return nil, fmt.Errorf("neo4j: due timers: %w", err)
		}
		out[i] = segments.Timer{At: at.UTC(), Profile: profile, Ref: ref}
	}
	return out, nil
}

// Members pages through a segment's IN_SEGMENT relationships.
func (g segStore) Members(ctx context.Context, segment, after string, limit int) ([]string, error) {
	recs, err := g.s.read(ctx, `MATCH (p:Profile)-[:IN_SEGMENT]->(:Segment {key: $key})
		WHERE p.id > $after
		RETURN p.id ORDER BY p.id LIMIT $limit`, map[string]any{"key": segment, "after": after, "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: members", err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i], _ = r.Values[0].(string)
	}
	return out, nil
}

// MembersData reads a page of a segment's members and q of their
// profiles in one statement: the member index's range seek finds each
// profile once, and its identifiers are sought from there, with no second
// round trip that seeks every member's profile again by ID.
func (g segStore) MembersData(ctx context.Context, segment, after string, limit int, q graph.DataQuery) ([]string, []*graph.ProfileData, error) {
	recs, err := g.s.read(ctx, `MATCH (p:Profile)-[:IN_SEGMENT]->(:Segment {key: $key})
		WHERE p.id > $after
		WITH p ORDER BY p.id LIMIT $limit`+profileDataReturn(q)+`, p.mergedInto IS NULL ORDER BY p.id`,
		dataParams(q, map[string]any{"key": segment, "after": after, "limit": limit}))
	if err != nil {
		return nil, nil, wrap("neo4j: members data", err)
	}
	// A member merged away has its ID only: its traits are not opened.
	ids, data := make([]string, len(recs)), make([]*graph.ProfileData, len(recs))
	var live []*neo4jdriver.Record
	for i, r := range recs {
		ids[i], _ = r.Values[0].(string)
		if ok, _ := r.Values[5].(bool); ok {
			live = append(live, r)
		}
	}
	found, err := g.s.profileDataRecords(ctx, live, q)
	if err != nil {
		return nil, nil, fmt.Errorf("neo4j: members data: %w", err)
	}
	for i, j := 0, 0; i < len(recs) && j < len(found); i++ {
		if ids[i] == found[j].ID {
			data[i] = found[j]
			j++
		}
	}
	return ids, data, nil
}

func dataChangeRow(c graph.DataChange) any {
	return map[string]any{"profile": c.Profile, "events": nonNil(c.Events), "traits": nonNil(c.Traits), "all": c.All}
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// PendingChanges reads the pending data changes in profile order.
func (g segStore) PendingChanges(ctx context.Context, after string, limit int) ([]segments.Pending, error) {
	recs, err := g.s.read(ctx, `MATCH (d:DataChange:Due) WHERE d.profile > $after
		RETURN d ORDER BY d.profile LIMIT $limit`, map[string]any{"after": after, "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: pending changes", err)
	}
	out := make([]segments.Pending, len(recs))
	for i, r := range recs {
		m := props(r.Values[0])
		mark, _ := m["mark"].(int64)
		out[i] = segments.Pending{DataChange: graph.DataChange{Profile: getString(m, "profile"),
			Events: getStrings(m, "events"), Traits: getStrings(m, "traits"), All: getBool(m, "all")}, Mark: mark}
	}
	return out, nil
}

// DonePending takes pending changes, each unless more was added since it
// was read, in one transaction (one commit for a page, not one each): a
// node is locked before its mark is compared, so an ingest committing
// meanwhile is seen. The engine passes them in profile order, the order
// every writer locks them in.
func (g segStore) DonePending(ctx context.Context, ps ...segments.Pending) error {
	if len(ps) == 0 {
		return nil
	}
	return g.writeTx(ctx, "neo4j: done pending", func(t *tx) error {
		for _, p := range ps {
			recs, err := t.collect(ctx, `MATCH (d:DataChange:Due {profile: $profile})
				SET d.lock = true REMOVE d.lock RETURN d.mark`, map[string]any{"profile": p.Profile})
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				continue
			}
			if mark, _ := recs[0].Values[0].(int64); mark != p.Mark {
				continue
			}
			if err := t.exec(ctx, `MATCH (d:DataChange {profile: $profile})
				REMOVE d:Due SET d.events = [], d.traits = [], d.all = false`, map[string]any{"profile": p.Profile}); err != nil {
				return err
			}
		}
		return nil
	})
}

// adoptPendingChanges moves the pending changes of a database written
// before DataChange nodes (as PendingChange nodes, deleted when taken, so
// only untaken ones remain) into DataChange nodes.
func (s *Store) adoptPendingChanges(ctx context.Context) error {
	_, err := s.write(ctx, `MATCH (old:PendingChange)
		MERGE (d:DataChange {profile: old.profile})
		SET d:Due
		WITH d, old
		SET d.events = coalesce(d.events, []) + [e IN coalesce(old.events, []) WHERE NOT e IN coalesce(d.events, [])],
			d.traits = coalesce(d.traits, []) + [p IN coalesce(old.traits, []) WHERE NOT p IN coalesce(d.traits, [])],
			d.all = coalesce(d.all, false) OR coalesce(old.all, false),
			d.mark = coalesce(d.mark, 0) + 1
		DELETE old`, nil)
	return wrap("neo4j: adopt pending changes", err)
}
