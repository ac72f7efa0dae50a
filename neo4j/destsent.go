package neo4j

import (
	"context"
	"time"

	"github.com/idgraph/idgraph/destinations"
)

// sentSchema: (:SentState {profile, destination, pending, data}), unique
// per (profile, destination); pending is true while data has a Pending.
var sentSchema = []string{
	"CREATE CONSTRAINT sent_state_key IF NOT EXISTS FOR (s:SentState) REQUIRE (s.profile, s.destination) IS UNIQUE",
	"CREATE INDEX sent_state_profile IF NOT EXISTS FOR (s:SentState) ON (s.profile)",
	"CREATE INDEX sent_state_pending IF NOT EXISTS FOR (s:SentState) ON (s.destination, s.pending)",
}

var _ destinations.SentBackend = (*Store)(nil)

// SentState returns the store of what each destination was sent.
func (s *Store) SentState() destinations.SentStore { return destStore{s} }

// sents runs a read returning s.data per row and decodes them.
func (g destStore) sents(ctx context.Context, op, cypher string, params map[string]any) ([]*destinations.Sent, error) {
	recs, err := g.s.read(ctx, cypher, params)
	if err != nil {
		return nil, wrap(op, err)
	}
	return decodeRows[destinations.Sent](op, recs, 0)
}

// SentOf reads the destination's rows of the profiles.
func (g destStore) SentOf(ctx context.Context, destination string, profiles []string) (map[string]*destinations.Sent, error) {
	rows, err := g.sents(ctx, "neo4j: sent state", `MATCH (s:SentState) WHERE s.profile IN $profiles AND s.destination = $dst
		RETURN s.data`, map[string]any{"profiles": profiles, "dst": destination})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*destinations.Sent, len(rows))
	for _, s := range rows {
		out[s.Profile] = s
	}
	return out, nil
}

// UpdateSent locks the profile's node (as an erasure does, before it
// looks for rows to mark), then merges and locks the row, applies fn and
// writes or deletes it, in one transaction (the unique constraint makes
// the merge race-free). A profile without a node was erased before:
// ProfileGone.
func (g destStore) UpdateSent(ctx context.Context, destination, profile string, fn func(*destinations.Sent) (bool, error)) error {
	return segStore{g.s}.writeTx(ctx, "neo4j: update sent state", func(t *tx) error {
		if err := t.exec(ctx, `MATCH (p:Profile {id: $profile}) SET p.lock = true REMOVE p.lock`,
			map[string]any{"profile": profile}); err != nil {
			return err
		}
		// Looked up again once the lock is held: the node the lock waited
		// on may have been deleted by the erasure that held it, and the
		// first match still saw it.
		// One statement with the row's lock: a round trip fewer on every
		// delivery's path.
		recs, err := t.collect(ctx, `OPTIONAL MATCH (p:Profile {id: $profile})
			WITH p IS NOT NULL AS stored
			MERGE (s:SentState {profile: $profile, destination: $dst})
			SET s.lock = true REMOVE s.lock RETURN stored, s.data`, map[string]any{"profile": profile, "dst": destination})
		if err != nil {
			return err
		}
		stored, _ := recs[0].Values[0].(bool)
		s := &destinations.Sent{}
		if data, ok := recs[0].Values[1].(string); ok {
			if s, err = decode[destinations.Sent](data); err != nil {
				return err
			}
		}
		s.Destination, s.Profile, s.ProfileGone = destination, profile, !stored
		keep, err := fn(s)
		if err != nil {
			return err
		}
		return putSent(ctx, t, s, keep)
	})
}

// putSent writes (or, keep false, deletes) a row inside a transaction.
func putSent(ctx context.Context, t *tx, s *destinations.Sent, keep bool) error {
	params := map[string]any{"profile": s.Profile, "dst": s.Destination}
	if !keep {
		return t.exec(ctx, `MATCH (s:SentState {profile: $profile, destination: $dst}) DELETE s`, params)
	}
	data, err := encode(s)
	if err != nil {
		return err
	}
	params["data"], params["pending"] = data, s.Pending != nil
	return t.exec(ctx, `MERGE (s:SentState {profile: $profile, destination: $dst}) SET s.data = $data, s.pending = $pending`, params)
}

// SentTo reads every destination's rows of the profiles.
func (g destStore) SentTo(ctx context.Context, profiles []string) ([]*destinations.Sent, error) {
	return g.sents(ctx, "neo4j: sent state", `MATCH (s:SentState) WHERE s.profile IN $profiles
		RETURN s.data ORDER BY s.profile, s.destination`, map[string]any{"profiles": profiles})
}

// SentPage reads the destination's rows after a profile.
func (g destStore) SentPage(ctx context.Context, destination, after string, limit int) ([]*destinations.Sent, error) {
	return g.sents(ctx, "neo4j: sent page", `MATCH (s:SentState {destination: $dst}) WHERE s.profile > $after
		RETURN s.data ORDER BY s.profile LIMIT $limit`, map[string]any{"dst": destination, "after": after, "limit": limit})
}

// PendingSent reads the destination's rows with a pending request.
// The index finds a row by its pending flag, but under Neo4j's read
// committed isolation its data is read later and may be a later write's,
// or gone: a row whose request was cleared meanwhile, or that was deleted,
// is skipped and the next rows make up the limit (a short page reads as
// "nothing more pending").
func (g destStore) PendingSent(ctx context.Context, destination string, limit int) ([]*destinations.Sent, error) {
	const op = "neo4j: pending sent state"
	var out []*destinations.Sent
	for after := ""; len(out) < limit; {
		want := limit - len(out)
		recs, err := g.s.read(ctx, `MATCH (s:SentState {destination: $dst, pending: true})
			WHERE s.profile > $after
			WITH s, s.profile AS profile ORDER BY profile LIMIT $limit
			RETURN s.data, profile`, map[string]any{"dst": destination, "after": after, "limit": want})
		if err != nil {
			return nil, wrap(op, err)
		}
		rows, err := decodeRows[destinations.Sent](op, recs, 0)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.Pending != nil {
				out = append(out, r)
			}
		}
		if len(recs) < want {
			break
		}
		after, _ = recs[len(recs)-1].Values[1].(string)
	}
	return out, nil
}

// markSentErased asks, in an erasure's transaction, for the erasure to be
// sent to every destination that was sent one of the profiles, once the
// change records up to the newest (the erasure's exits) are delivered.
func markSentErased(ctx context.Context, t *tx, group []string, request string, at time.Time) error {
	recs, err := t.collect(ctx, `MATCH (s:SentState) WHERE s.profile IN $group
		SET s.lock = true REMOVE s.lock RETURN s.data ORDER BY s.profile, s.destination`, map[string]any{"group": group})
	if err != nil || len(recs) == 0 {
		return err
	}
	seq, err := t.collect(ctx, `OPTIONAL MATCH (q:SegmentSequence {id: "changes"}) RETURN coalesce(q.last, 0)`, nil)
	if err != nil {
		return err
	}
	after, _ := seq[0].Values[0].(int64)
	sents, err := decodeRows[destinations.Sent]("erased", recs, 0)
	if err != nil {
		return err
	}
	for _, s := range sents {
		s.MarkErased(request, uint64(after), at)
		if err := putSent(ctx, t, s, true); err != nil {
			return err
		}
	}
	return nil
}
