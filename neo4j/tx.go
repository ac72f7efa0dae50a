package neo4j

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/graph"
)

// Update runs fn in a managed write transaction. The driver retries fn on
// transient failures (deadlocks between concurrent stitchers, leader
// changes, lost connections), each time in a fresh transaction.
func (s *Store) Update(ctx context.Context, fn func(context.Context, graph.Tx) error) error {
	sess := s.driver.NewSession(ctx, neo4jdriver.SessionConfig{
		AccessMode:   neo4jdriver.AccessModeWrite,
		DatabaseName: s.db,
		// Shared with ExecuteQuery, so reads after Update see its writes
		// even on a cluster.
		BookmarkManager: s.driver.ExecuteQueryBookmarkManager(),
	})
	defer sess.Close(context.Background())
	_, err := sess.ExecuteWrite(ctx, func(mtx neo4jdriver.ManagedTransaction) (any, error) {
		err := fn(ctx, &tx{run: mtx, token: newToken(), trace: s.trace, queries: &s.queries, seal: s.seal})
		// The driver decides whether to retry by the error's dynamic type
		// (a *ConnectivityError is not looked for behind wrapping).
		var ce *neo4jdriver.ConnectivityError
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, err
	})
	if err != nil {
		return wrap("neo4j: update", err)
	}
	return nil
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tx is one attempt of a stitching transaction.
//
// Neo4j runs at read committed and holds every write lock until the
// transaction ends, so each Lock method writes to what it returns: the
// node's write lock is taken before its properties are read, which then
// are the latest committed ones, and nobody else can change them until we
// commit. Locks are taken in the order of the argument lists (the
// stitcher sorts keys and profile IDs), which keeps deadlocks rare; the
// driver retries the ones Neo4j detects.
type tx struct {
	run neo4jdriver.ManagedTransaction
	// token marks the event stubs this attempt created, to tell them from
	// messages stored before.
	token string
	// created lists the message IDs whose stubs this attempt created.
	created []string
	// names holds the name words of the profiles LockProfiles returned, so
	// that Apply rewrites only those that change.
	names map[string][]nameWord
	// trace is the store's (Store.trace).
	trace func(cypher string, params map[string]any)
	// queries, when set, counts the statements run (Store.Queries).
	queries *atomic.Int64
	// seal, when set, encrypts payloads (seal.go); keys holds the data
	// key each locked profile owns and writes under, and owners the
	// profile of each identifier LockIdentifiers returned, to tell
	// identifiers that move to another profile.
	seal   *sealer
	keys   map[string]string
	owners map[graph.Key]string
}

// collect runs a query and returns its records.
func (t *tx) collect(ctx context.Context, cypher string, params map[string]any) ([]*neo4jdriver.Record, error) {
	t.observe(cypher, params)
	res, err := t.run.Run(ctx, cypher, params)
	if err != nil {
		return nil, err
	}
	return res.Collect(ctx)
}

// observe counts a statement about to run and lets a test's trace hear it.
func (t *tx) observe(cypher string, params map[string]any) {
	if t.queries != nil {
		t.queries.Add(1)
	}
	if t.trace != nil {
		t.trace(cypher, params)
	}
}

// exec runs a query for its effects.
func (t *tx) exec(ctx context.Context, cypher string, params map[string]any) error {
	t.observe(cypher, params)
	res, err := t.run.Run(ctx, cypher, params)
	if err != nil {
		return err
	}
	_, err = res.Consume(ctx)
	return err
}

// LockMessages creates an event stub for every new message ID (Apply fills
// it in). The unique constraint on messageId makes a concurrent
// transaction's MERGE of the same ID wait for us and then find it stored.
func (t *tx) LockMessages(ctx context.Context, ids []string) (map[string]bool, error) {
	seen := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return seen, nil
	}
	// Sorted, so that two batches with the same messages lock them in the
	// same order.
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	recs, err := t.collect(ctx, `UNWIND $ids AS id
		MERGE (e:Event {messageId: id})
		ON CREATE SET e.tx = $token
		RETURN id, coalesce(e.tx = $token, false) AS created`,
		map[string]any{"ids": ids, "token": t.token})
	if err != nil {
		return nil, fmt.Errorf("neo4j: lock messages: %w", err)
	}
	for _, r := range recs {
		id, _ := r.Values[0].(string)
		if created, _ := r.Values[1].(bool); created {
			t.created = append(t.created, id)
		} else {
			seen[id] = true
		}
	}
	return seen, nil
}

// LockIdentifiers merges every key, so that a key that is not stored yet is
// locked too (as a stub without a profile, which Apply either fills in or
// deletes), and returns the identifiers that are really stored.
func (t *tx) LockIdentifiers(ctx context.Context, keys []graph.Key) (map[graph.Key]*graph.Identifier, error) {
	out := make(map[graph.Key]*graph.Identifier, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rows := make([]any, len(keys))
	for i, k := range keys {
		rows[i] = map[string]any{"key": k.String(), "type": k.Type, "value": k.Value}
	}
	// SET then REMOVE of a scratch property takes the write lock and
	// leaves the node as it was.
	recs, err := t.collect(ctx, `UNWIND $rows AS r
		MERGE (i:Identifier {key: r.key})
		ON CREATE SET i.type = r.type, i.value = r.value
		SET i.lock = $token
		REMOVE i.lock
		WITH i WHERE i.profile IS NOT NULL
		RETURN i`, map[string]any{"rows": rows, "token": t.token})
	if err != nil {
		return nil, fmt.Errorf("neo4j: lock identifiers: %w", err)
	}
	for _, r := range recs {
		n := identifierFrom(props(r.Values[0]))
		out[n.Key] = n
		if t.seal != nil {
			if t.owners == nil {
				t.owners = map[graph.Key]string{}
			}
			t.owners[n.Key] = n.Profile
		}
	}
	return out, nil
}

// LockProfiles locks and returns the stored profiles among ids.
func (t *tx) LockProfiles(ctx context.Context, ids []string) (map[string]*graph.Profile, error) {
	out := make(map[string]*graph.Profile, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cypher := `UNWIND $ids AS id
		MATCH (p:Profile {id: id})
		SET p.lock = $token
		REMOVE p.lock
		RETURN p`
	if t.seal != nil {
		// The profile's key, if it still owns it (a split profile's key
		// went to the survivor of its merge).
		cypher += `, COLLECT { MATCH (k:DataKey {id: p.key}) RETURN k.owner }[0] AS owner`
	}
	recs, err := t.collect(ctx, cypher, map[string]any{"ids": ids, "token": t.token})
	if err != nil {
		return nil, fmt.Errorf("neo4j: lock profiles: %w", err)
	}
	for _, r := range recs {
		m := props(r.Values[0])
		if err := t.seal.openProfile(ctx, t.fetchKey, m); err != nil {
			return nil, fmt.Errorf("neo4j: lock profiles: %w", err)
		}
		p, err := profileFrom(m)
		if err != nil {
			return nil, fmt.Errorf("neo4j: lock profiles: %w", err)
		}
		out[p.ID] = p
		if t.seal != nil && len(r.Values) > 1 && r.Values[1] == p.ID {
			if t.keys == nil {
				t.keys = map[string]string{}
			}
			t.keys[p.ID] = getString(m, "key")
		}
		if t.names == nil {
			t.names = map[string][]nameWord{}
		}
		t.names[p.ID] = nameWords(p)
	}
	return out, nil
}

// Edges returns the stored edges among pairs. Both ends were locked by
// LockIdentifiers, and adding or changing a relationship needs the
// locks of its nodes, so the edges cannot change under us either.
func (t *tx) Edges(ctx context.Context, pairs [][2]graph.Key) (map[[2]graph.Key]*graph.Edge, error) {
	out := make(map[[2]graph.Key]*graph.Edge, len(pairs))
	if len(pairs) == 0 {
		return out, nil
	}
	rows := make([]any, len(pairs))
	for i, p := range pairs {
		rows[i] = []any{p[0].String(), p[1].String()}
	}
	recs, err := t.collect(ctx, `UNWIND $pairs AS pr
		MATCH (a:Identifier {key: pr[0]})-[r:LINKED]->(b:Identifier {key: pr[1]})
		RETURN a.type, a.value, b.type, b.value, r`, map[string]any{"pairs": rows})
	if err != nil {
		return nil, fmt.Errorf("neo4j: edges: %w", err)
	}
	for _, r := range recs {
		e := edgeRecord(r.Values)
		out[[2]graph.Key{e.A, e.B}] = e
	}
	return out, nil
}

// Candidates returns up to limit+1 profile IDs filed under each key.
func (t *tx) Candidates(ctx context.Context, keys []string, limit int) (map[string][]string, error) {
	out := map[string][]string{}
	if len(keys) == 0 {
		return out, nil
	}
	recs, err := t.collect(ctx, `UNWIND $keys AS k
		CALL (k) {
			MATCH (b:Block {key: k})
			USING INDEX b:Block(key)
			RETURN b.profile AS profile LIMIT $limit
		}
		RETURN k, collect(profile)`, map[string]any{"keys": keys, "limit": limit + 1})
	if err != nil {
		return nil, fmt.Errorf("neo4j: candidates: %w", err)
	}
	for _, r := range recs {
		k, _ := r.Values[0].(string)
		out[k] = toStrings(r.Values[1])
	}
	return out, nil
}

func toStrings(v any) []string {
	xs, _ := v.([]any)
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Apply writes the changes, one UNWIND query per record type.
func (t *tx) Apply(ctx context.Context, c *graph.Changes) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("neo4j: apply: %w", err)
	}
	profiles := make([]any, len(c.Profiles))
	for i, p := range c.Profiles {
		row, err := profileProps(p)
		if err != nil {
			return fmt.Errorf("neo4j: apply profiles: %w", err)
		}
		profiles[i] = row
	}
	events := mapRows(c.Events, eventRow)
	var keys, owners []any
	if t.seal != nil {
		var err error
		if keys, owners, err = t.sealChanges(ctx, c, profiles, events); err != nil {
			return fmt.Errorf("neo4j: apply: %w", err)
		}
	}
	stale, words := t.nameChanges(c.Profiles)
	audits := make([]any, len(c.Audit))
	for i, a := range c.Audit {
		data, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("neo4j: apply audit: %w", err)
		}
		audits[i] = map[string]any{"id": a.ID, "data": string(data), "profiles": stringList(a.Profiles)}
	}
	steps := []struct {
		name   string
		cypher string
		rows   []any
	}{
		{"identifiers", `UNWIND $rows AS r
			MERGE (i:Identifier {key: r.key})
			SET i += r`, mapRows(c.Identifiers, identifierProps)},
		// Stubs locked as alias candidates and not used; a key that is
		// stored for real has a profile and stays.
		{"unused", `UNWIND $rows AS k
			MATCH (i:Identifier {key: k})
			WHERE i.profile IS NULL
			DETACH DELETE i`, mapRows(c.Unused, func(k graph.Key) any { return k.String() })},
		{"edges", `UNWIND $rows AS r
			MATCH (a:Identifier {key: r.a})
			MATCH (b:Identifier {key: r.b})
			MERGE (a)-[l:LINKED]->(b)
			SET l += r.props`, mapRows(c.Edges, edgeRow)},
		{"data keys", `UNWIND $rows AS r
			CREATE (k:DataKey)
			SET k = r`, keys},
		// A merge gives the absorbed profile's keys to the survivor, whose
		// erasure then destroys them (seal.go).
		{"key owners", `UNWIND $rows AS r
			MATCH (k:DataKey {owner: r.absorbed})
			SET k.owner = r.survivor`, owners},
		{"profiles", `UNWIND $rows AS r
			MERGE (p:Profile {id: r.id})
			SET p += r`, profiles},
		// A profile's name words are replaced whole when they change.
		{"old name words", `UNWIND $rows AS id
			MATCH (w:NameWord {profile: id})
			DELETE w`, stale},
		{"name words", `UNWIND $rows AS r
			CREATE (w:NameWord)
			SET w = r`, words},
		// Only stubs this attempt created are filled in: a message that
		// LockMessages reported as stored is never rewritten. SEEN_WITH
		// holds the identifier's key and the event's position, by which
		// the timeline index orders (see timelinesQuery).
		{"events", `UNWIND $rows AS r
			MERGE (e:Event {messageId: r.messageId})
			ON CREATE SET e.tx = $token
			WITH e, r WHERE e.tx = $token
			SET e += r.props
			REMOVE e.tx
			WITH e, r
			UNWIND r.props.identifiers AS k
			MATCH (i:Identifier {key: k})
			CREATE (e)-[:SEEN_WITH {key: k, pos: r.pos}]->(i)`, events},
		// A message locked but given no event was not stored: drop its
		// stub, so that it is not taken for a duplicate later.
		{"unfilled messages", `UNWIND $rows AS id
			MATCH (e:Event {messageId: id})
			WHERE e.tx = $token
			DETACH DELETE e`, unfilled(t.created, c.Events)},
		{"merges", `UNWIND $rows AS r
			CREATE (m:Merge)
			SET m = r`, mapRows(c.Merges, mergeProps)},
		{"audit", `UNWIND $rows AS r
			CREATE (a:Audit {id: r.id, data: r.data})
			WITH a, r
			UNWIND r.profiles AS p
			CREATE (:AuditRef {profile: p, id: r.id})`, audits},
		{"hubs", `UNWIND $rows AS r
			CREATE (h:Hub)
			SET h = r`, mapRows(c.Hubs, hubProps)},
		// A profile this transaction did not lock is new in it (stitching
		// locks every stored profile it changes), so nothing is filed
		// under it yet: its entries are created without MERGE's lookup,
		// most of the cost of an import's entries.
		{"blocks", `UNWIND $rows AS r
			UNWIND r.keys AS k
			MERGE (:Block {key: k, profile: r.profile})`, t.blockRows(c.Blocks, true)},
		{"new blocks", `UNWIND $rows AS r
			UNWIND r.keys AS k
			CREATE (:Block {key: k, profile: r.profile})`, t.blockRows(c.Blocks, false)},
		// Pending data changes merge until segments take them (see
		// segments.go).
		{"data changes", pendDataCypher, mapRows(c.DataChanges, dataChangeRow)},
	}
	for _, st := range steps {
		if len(st.rows) == 0 {
			continue
		}
		if err := t.exec(ctx, st.cypher, map[string]any{"rows": st.rows, "token": t.token}); err != nil {
			return fmt.Errorf("neo4j: apply %s: %w", st.name, err)
		}
	}
	if t.seal != nil {
		if err := t.reencryptMoved(ctx, c); err != nil {
			return fmt.Errorf("neo4j: apply: %w", err)
		}
	}
	return nil
}

// blockRows returns the block entries of the profiles this transaction
// locked (stored) or, with stored false, of the others (new).
func (t *tx) blockRows(bs []graph.BlockEntry, stored bool) []any {
	var rows []any
	for _, b := range bs {
		if _, locked := t.names[b.Profile]; locked == stored {
			rows = append(rows, map[string]any{"profile": b.Profile, "keys": b.Keys})
		}
	}
	return rows
}

// nameChanges returns the IDs of the profiles whose name words may have
// changed (all but those LockProfiles returned with the same words) and
// the NameWord rows that replace theirs.
func (t *tx) nameChanges(ps []*graph.Profile) (stale, words []any) {
	for _, p := range ps {
		ws := nameWords(p)
		if old, ok := t.names[p.ID]; ok && slices.Equal(old, ws) {
			continue
		}
		stale = append(stale, p.ID)
		for _, w := range ws {
			words = append(words, map[string]any{
				"profile": p.ID, "word": w.word, "value": w.value, "len": searchLen(w.value),
			})
		}
	}
	return stale, words
}

func unfilled(created []string, events []*graph.Event) []any {
	if len(created) == 0 {
		return nil
	}
	filled := make(map[string]bool, len(events))
	for _, e := range events {
		filled[e.MessageID] = true
	}
	var out []any
	for _, id := range created {
		if !filled[id] {
			out = append(out, id)
		}
	}
	return out
}

func mapRows[T, R any](xs []T, f func(T) R) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// pendDataCypher adds data changes ($rows of dataChangeRow) to the
// profiles' pending ones, for segments to evaluate.
const pendDataCypher = `UNWIND $rows AS r
	MERGE (d:DataChange {profile: r.profile})
	SET d:Due
	WITH d, r
	SET d.events = coalesce(d.events, []) + [e IN r.events WHERE NOT e IN coalesce(d.events, [])],
		d.traits = coalesce(d.traits, []) + [p IN r.traits WHERE NOT p IN coalesce(d.traits, [])],
		d.all = coalesce(d.all, false) OR r.all,
		d.mark = coalesce(d.mark, 0) + 1`
