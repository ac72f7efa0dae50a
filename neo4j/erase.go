package neo4j

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
)

var _ erase.Backend = (*Store)(nil)

// Erasure returns the store's erasure operations.
func (s *Store) Erasure() erase.Store { return eraseStore{s} }

type eraseStore struct{ s *Store }

// ErasePerson deletes the person in one write transaction. The profiles
// are locked first, so a concurrent ingest into them waits (or deadlocks
// and is retried by the driver).
func (g eraseStore) ErasePerson(ctx context.Context, req erase.Request) (*erase.Erased, error) {
	var out *erase.Erased
	var erasedKeys []string
	err := segStore{g.s}.writeTx(ctx, "neo4j: erase", func(t *tx) error {
		out = &erase.Erased{Counts: map[string]int{}}
		group, err := liveGroup(ctx, t, req.Profile)
		if err != nil || len(group) == 0 {
			return err
		}
		if !req.InactiveBefore.IsZero() {
			recs, err := t.collect(ctx, `MATCH (p:Profile {id: $id}) RETURN p.updatedAt`, map[string]any{"id": group[0]})
			if err != nil || len(recs) == 0 {
				return err
			}
			if req.Keeps(&graph.Profile{UpdatedAt: getTime(map[string]any{"t": recs[0].Values[0]}, "t")}) {
				return nil
			}
		}
		out.Profiles = group
		recs, err := t.collect(ctx, `MATCH (i:Identifier) WHERE i.profile IN $group
			RETURN i.type, i.value ORDER BY i.key`, map[string]any{"group": group})
		if err != nil {
			return err
		}
		var keys []any
		for _, r := range recs {
			k := graph.Key{Type: asString(r.Values[0]), Value: asString(r.Values[1])}
			out.Identifiers = append(out.Identifiers, k)
			keys = append(keys, k.String())
			if req.Suppress != nil {
				out.Suppressed = append(out.Suppressed, req.Suppress(k))
			}
		}
		exits, err := eraseSegments(ctx, t, group, req, out.Counts)
		if err != nil {
			return err
		}
		out.Exits = exits
		// Destinations that were sent the person hear of the erasure after
		// its exit records (sent state, destinations/sent.go).
		if err := markSentErased(ctx, t, group, req.ID, req.At); err != nil {
			return err
		}
		steps := []struct{ kind, cypher string }{
			{erase.CountEvents, `MATCH (i:Identifier)<-[:SEEN_WITH]-(e:Event) WHERE i.profile IN $group
				WITH DISTINCT e DETACH DELETE e RETURN count(*)`},
			{erase.CountEdges, `MATCH (i:Identifier)-[l:LINKED]-() WHERE i.profile IN $group
				WITH DISTINCT l DELETE l RETURN count(*)`},
			{erase.CountHubs, `MATCH (h:Hub) WHERE h.key IN $keys DELETE h RETURN count(*)`},
			{erase.CountConsent, `MATCH (c:Consent) WHERE c.key IN $keys DELETE c RETURN count(*)`},
			{erase.CountIdentifiers, `MATCH (i:Identifier) WHERE i.profile IN $group DETACH DELETE i RETURN count(*)`},
			{erase.CountSearch, `MATCH (w:NameWord) WHERE w.profile IN $group DELETE w RETURN count(*)`},
			{erase.CountMerges, `MATCH (m:Merge) WHERE m.survivor IN $group OR m.absorbed IN $group
				DELETE m RETURN count(*)`},
			{erase.CountAudit, `MATCH (r:AuditRef) WHERE r.profile IN $group
				WITH collect(DISTINCT r.id) AS ids
				MATCH (a:Audit) WHERE a.id IN ids
				OPTIONAL MATCH (ref:AuditRef {id: a.id})
				WITH a, collect(ref) AS refs
				FOREACH (x IN refs | DELETE x)
				DELETE a RETURN count(*)`},
			{erase.CountBlocks, `MATCH (b:Block) WHERE b.profile IN $group DELETE b RETURN count(*)`},
			{erase.CountProfiles, `MATCH (p:Profile) WHERE p.id IN $group DETACH DELETE p RETURN count(*)`},
		}
		for _, st := range steps {
			recs, err := t.collect(ctx, st.cypher, map[string]any{"group": group, "keys": keys})
			if err != nil {
				return fmt.Errorf("%s: %w", st.kind, err)
			}
			for _, r := range recs {
				n, _ := r.Values[0].(int64)
				out.Counts[st.kind] += int(n)
			}
		}
		// The person's data keys: what erasure left of their payloads on
		// disk can no longer be decrypted once RotateKeys destroys the
		// keyring generation these were wrapped under.
		dks, err := t.collect(ctx, `MATCH (k:DataKey) WHERE k.owner IN $group
			WITH k, k.id AS id DELETE k RETURN id`, map[string]any{"group": group})
		if err != nil {
			return fmt.Errorf("data keys: %w", err)
		}
		erasedKeys = erasedKeys[:0]
		for _, r := range dks {
			erasedKeys = append(erasedKeys, asString(r.Values[0]))
		}
		if len(out.Suppressed) > 0 {
			if err := t.exec(ctx, addSuppressions, map[string]any{"hashes": out.Suppressed, "request": req.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if g.s.seal != nil {
		g.s.seal.forget(erasedKeys)
	}
	return out, nil
}

func asString(v any) string { s, _ := v.(string); return s }

// liveGroup locks and returns the live profile that id belongs to and
// every profile it absorbed (the live one first); nil when none is stored.
func liveGroup(ctx context.Context, t *tx, id string) ([]string, error) {
	for range 64 {
		recs, err := t.collect(ctx, `MATCH (p:Profile {id: $id})
			SET p.lock = true REMOVE p.lock
			RETURN p.mergedInto, p.absorbed`, map[string]any{"id": id})
		if err != nil || len(recs) == 0 {
			return nil, err
		}
		if into := asString(recs[0].Values[0]); into != "" {
			id = into
			continue
		}
		group := append([]string{id}, toStrings(recs[0].Values[1])...)
		if err := t.exec(ctx, `MATCH (p:Profile) WHERE p.id IN $group SET p.lock = true REMOVE p.lock`,
			map[string]any{"group": group}); err != nil {
			return nil, err
		}
		return group, nil
	}
	return nil, fmt.Errorf("profile %s: merged-into chain too long", id)
}

// eraseSegments deletes the profiles' segment states, timers and pending
// data changes (memberships go with the profiles), and writes an exit
// record (reason "erased") for every membership and a change to missing
// for every computed value.
func eraseSegments(ctx context.Context, t *tx, group []string, req erase.Request, counts map[string]int) (int, error) {
	recs, err := t.collect(ctx, `MATCH (st:SegmentState) WHERE st.profile IN $group
		SET st.lock = true REMOVE st.lock
		RETURN st.profile, st.rev, st.data ORDER BY st.profile`, map[string]any{"group": group})
	if err != nil {
		return 0, err
	}
	var changes []*segments.ChangeRecord
	for _, r := range recs {
		id := asString(r.Values[0])
		old, err := stateFrom(id, r.Values[1], r.Values[2])
		if err != nil {
			return 0, err
		}
		counts[erase.CountMemberships] += len(segments.SegmentMemberships(old.Entries))
		changes = append(changes, segments.ErasureRecords(id, old.Entries, req.ExitReason(), req.At)...)
	}
	seq, err := allocate(ctx, t, len(changes))
	if err != nil {
		return 0, err
	}
	for _, c := range changes {
		seq++
		c.Sequence = seq
	}
	if len(changes) > 0 {
		rows, err := changeRows(changes)
		if err != nil {
			return 0, err
		}
		if err := t.exec(ctx, `UNWIND $rows AS r CREATE (c:SegmentChange) SET c = r`,
			map[string]any{"rows": rows}); err != nil {
			return 0, err
		}
	}
	for kind, cypher := range map[string]string{
		erase.CountSegmentStates: `MATCH (n:SegmentState) WHERE n.profile IN $group DELETE n RETURN count(*)`,
		erase.CountTimers:        `MATCH (n:SegmentTimer) WHERE n.profile IN $group DELETE n RETURN count(*)`,
		// PendingChange nodes of an older database became DataChange
		// nodes at Open (adoptPendingChanges).
		erase.CountPendingChanges: `MATCH (n:DataChange) WHERE n.profile IN $group DELETE n RETURN count(*)`,
	} {
		recs, err := t.collect(ctx, cypher, map[string]any{"group": group})
		if err != nil {
			return 0, fmt.Errorf("%s: %w", kind, err)
		}
		for _, r := range recs {
			n, _ := r.Values[0].(int64)
			counts[kind] += int(n)
		}
	}
	exits := 0
	for _, c := range changes {
		if c.Direction == segments.Exited {
			exits++
		}
	}
	return exits, nil
}

// nextSuppressionChange numbers a suppression change: the clock node
// stays write-locked until the transaction commits, so changes commit in
// the order of their numbers, and a reader that sees number n sees every
// change up to n.
const nextSuppressionChange = `MERGE (c:SuppressionClock {id: 'suppressions'})
	ON CREATE SET c.seq = 1 ON MATCH SET c.seq = c.seq + 1
	WITH c.seq AS seq `

// addSuppressions stores $hashes for $request, keeping existing entries;
// a new entry carries the change's number, and replaces the hash's
// removal record.
const addSuppressions = nextSuppressionChange + `UNWIND $hashes AS h
	MERGE (s:Suppression {hash: h}) ON CREATE SET s.request = $request, s.seq = seq
	WITH h
	OPTIONAL MATCH (r:SuppressionRemoved {hash: h})
	DELETE r`

// AddSuppressions stores the hashes, keeping existing entries.
func (g eraseStore) AddSuppressions(ctx context.Context, request string, hashes []string) error {
	_, err := g.s.write(ctx, addSuppressions, map[string]any{"hashes": hashes, "request": request})
	return wrap("neo4j: add suppressions", err)
}

// RemoveSuppressions deletes the hashes, leaving a removal record with
// the change's number for servers that loaded them (SuppressionChanges).
func (g eraseStore) RemoveSuppressions(ctx context.Context, hashes []string) error {
	_, err := g.s.write(ctx, nextSuppressionChange+`UNWIND $hashes AS h
		MATCH (s:Suppression {hash: h})
		DELETE s
		MERGE (r:SuppressionRemoved {hash: h}) SET r.seq = seq`, map[string]any{"hashes": hashes})
	return wrap("neo4j: remove suppressions", err)
}

// SuppressionChanges reads the clock, then the entries and removal
// records numbered above after (index seeks). A hash found in both,
// changed again between the two reads, is taken as its later change says.
func (g eraseStore) SuppressionChanges(ctx context.Context, after int64) (erase.SuppressionChanges, error) {
	recs, err := g.s.read(ctx, `MATCH (c:SuppressionClock {id: 'suppressions'}) RETURN c.seq`, nil)
	if err != nil {
		return erase.SuppressionChanges{}, wrap("neo4j: suppression changes", err)
	}
	var out erase.SuppressionChanges
	if len(recs) > 0 {
		out.Seq, _ = recs[0].Values[0].(int64)
	}
	if after >= out.Seq {
		return out, nil
	}
	type change struct {
		seq     int64
		removed bool
	}
	by := map[string]change{}
	for _, q := range []struct {
		label   string
		removed bool
	}{{"Suppression", false}, {"SuppressionRemoved", true}} {
		recs, err := g.s.read(ctx, `MATCH (s:`+q.label+`) WHERE s.seq > $after RETURN s.hash, s.seq`, map[string]any{"after": after})
		if err != nil {
			return erase.SuppressionChanges{}, wrap("neo4j: suppression changes", err)
		}
		for _, r := range recs {
			h := asString(r.Values[0])
			seq, _ := r.Values[1].(int64)
			if c, ok := by[h]; !ok || seq > c.seq {
				by[h] = change{seq, q.removed}
			}
		}
	}
	for h, c := range by {
		if c.removed {
			out.Removed = append(out.Removed, h)
		} else {
			out.Added = append(out.Added, h)
		}
	}
	return out, nil
}

// Suppressions returns every suppression hash with its request.
func (g eraseStore) Suppressions(ctx context.Context) (map[string]string, error) {
	recs, err := g.s.read(ctx, `MATCH (s:Suppression) RETURN s.hash, s.request`, nil)
	if err != nil {
		return nil, wrap("neo4j: suppressions", err)
	}
	out := make(map[string]string, len(recs))
	for _, r := range recs {
		out[asString(r.Values[0])] = asString(r.Values[1])
	}
	return out, nil
}

// SuppressionsOf looks the hashes up through the unique constraint's
// index.
func (g eraseStore) SuppressionsOf(ctx context.Context, hashes []string) (map[string]string, error) {
	recs, err := g.s.read(ctx, `UNWIND $hashes AS h MATCH (s:Suppression {hash: h}) RETURN s.hash, s.request`,
		map[string]any{"hashes": hashes})
	if err != nil {
		return nil, wrap("neo4j: suppressions of", err)
	}
	out := make(map[string]string, len(recs))
	for _, r := range recs {
		out[asString(r.Values[0])] = asString(r.Values[1])
	}
	return out, nil
}

// PutReceipt stores a receipt.
func (g eraseStore) PutReceipt(ctx context.Context, r *erase.Receipt) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("neo4j: put receipt: %w", err)
	}
	_, err = g.s.write(ctx, `MERGE (r:ErasureReceipt {id: $id}) SET r.data = $data`,
		map[string]any{"id": r.ID, "data": string(data)})
	return wrap("neo4j: put receipt", err)
}

// Receipt returns one receipt.
func (g eraseStore) Receipt(ctx context.Context, id string) (*erase.Receipt, error) {
	recs, err := g.s.read(ctx, `MATCH (r:ErasureReceipt {id: $id}) RETURN r.data`, map[string]any{"id": id})
	if err != nil {
		return nil, wrap("neo4j: receipt", err)
	}
	if len(recs) == 0 {
		return nil, graph.Errorf(graph.KindNotFound, "no erasure request %q", id)
	}
	r := &erase.Receipt{}
	if err := json.Unmarshal([]byte(asString(recs[0].Values[0])), r); err != nil {
		return nil, fmt.Errorf("neo4j: receipt %s: %w", id, err)
	}
	return r, nil
}
