package neo4j

import (
	"context"
	"fmt"
	"time"

	"github.com/idgraph/idgraph/audit"
)

// chainSchema: the audit chain is (:AuditLink {seq, data}) nodes, data the
// entry's JSON; (:AuditSubject {subject, seq}) index the entries naming a
// person; the singleton (:AuditHead {id: "chain", seq}) is locked by
// every append, so appends from any number of processes form one line.
var chainSchema = []string{
	"CREATE CONSTRAINT audit_link_seq IF NOT EXISTS FOR (l:AuditLink) REQUIRE l.seq IS UNIQUE",
	"CREATE CONSTRAINT audit_head_id IF NOT EXISTS FOR (h:AuditHead) REQUIRE h.id IS UNIQUE",
	"CREATE INDEX audit_subject IF NOT EXISTS FOR (s:AuditSubject) ON (s.subject)",
}

var _ audit.Backend = (*Store)(nil)

// AuditChain returns the audit chain kept in the database.
func (s *Store) AuditChain() audit.Store { return chainStore{s} }

type chainStore struct{ s *Store }

func entryFrom(v any) (*audit.Entry, error) {
	data, _ := v.(string)
	return audit.Unmarshal([]byte(data))
}

// AppendEntries locks the head (MERGE on its unique id, then a write),
// reads the newest entry, and creates the next ones in the same
// transaction.
func (c chainStore) AppendEntries(ctx context.Context, next func(head *audit.Entry) ([]*audit.Entry, error)) ([]*audit.Entry, error) {
	var out []*audit.Entry
	err := segStore{c.s}.writeTx(ctx, "neo4j: append audit entry", func(t *tx) error {
		recs, err := t.collect(ctx, `MERGE (h:AuditHead {id: "chain"}) ON CREATE SET h.seq = 0
			SET h.lock = true REMOVE h.lock
			WITH h OPTIONAL MATCH (l:AuditLink {seq: h.seq}) RETURN h.seq, l.data`, nil)
		if err != nil {
			return err
		}
		var head *audit.Entry
		if recs[0].Values[1] != nil {
			if head, err = entryFrom(recs[0].Values[1]); err != nil {
				return err
			}
		} else if seq, _ := recs[0].Values[0].(int64); seq != 0 {
			return fmt.Errorf("the head names entry %d, which is missing", seq)
		}
		es, err := next(head)
		if err != nil {
			return err
		}
		if err := audit.FollowAll(head, es); err != nil {
			return err
		}
		if len(es) == 0 {
			return nil
		}
		rows := make([]map[string]any, len(es))
		for i, e := range es {
			data, err := audit.Marshal(e)
			if err != nil {
				return err
			}
			rows[i] = map[string]any{"seq": int64(e.Seq), "data": string(data), "subjects": e.Subjects}
		}
		out = es
		return t.exec(ctx, `MATCH (h:AuditHead {id: "chain"}) SET h.seq = $last
			WITH h UNWIND $rows AS r
			CREATE (:AuditLink {seq: r.seq, data: r.data})
			WITH r UNWIND r.subjects AS sub CREATE (:AuditSubject {subject: sub, seq: r.seq})`,
			map[string]any{"last": int64(es[len(es)-1].Seq), "rows": rows})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func entriesOf(recs [][]any) ([]*audit.Entry, error) {
	out := make([]*audit.Entry, 0, len(recs))
	for _, r := range recs {
		e, err := entryFrom(r[0])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (c chainStore) query(ctx context.Context, op, cypher string, params map[string]any) ([]*audit.Entry, error) {
	recs, err := c.s.read(ctx, cypher, params)
	if err != nil {
		return nil, wrap(op, err)
	}
	vals := make([][]any, len(recs))
	for i, r := range recs {
		vals[i] = r.Values
	}
	out, err := entriesOf(vals)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// Entries pages through the chain by sequence.
func (c chainStore) Entries(ctx context.Context, after uint64, limit int) ([]*audit.Entry, error) {
	return c.query(ctx, "neo4j: audit entries", `MATCH (l:AuditLink) WHERE l.seq > $after
		RETURN l.data ORDER BY l.seq LIMIT $limit`, map[string]any{"after": int64(after), "limit": int64(limit)})
}

// EntriesFor returns the entries naming subject.
func (c chainStore) EntriesFor(ctx context.Context, subject string) ([]*audit.Entry, error) {
	return c.query(ctx, "neo4j: audit entries for a subject", `MATCH (s:AuditSubject {subject: $subject})
		MATCH (l:AuditLink {seq: s.seq}) RETURN DISTINCT l.data, l.seq ORDER BY l.seq`, map[string]any{"subject": subject})
}

// RedactEntries blanks the targets of the entries naming subject, in one
// transaction.
func (c chainStore) RedactEntries(ctx context.Context, subject string, at time.Time) (int, error) {
	n := 0
	err := segStore{c.s}.writeTx(ctx, "neo4j: redact audit entries", func(t *tx) error {
		n = 0
		recs, err := t.collect(ctx, `MATCH (s:AuditSubject {subject: $subject})
			MATCH (l:AuditLink {seq: s.seq}) SET l.lock = true REMOVE l.lock RETURN DISTINCT l.data`, map[string]any{"subject": subject})
		if err != nil {
			return err
		}
		for _, r := range recs {
			e, err := entryFrom(r.Values[0])
			if err != nil {
				return err
			}
			if !audit.RedactEntry(e, at) {
				continue
			}
			data, err := audit.Marshal(e)
			if err != nil {
				return err
			}
			if err := t.exec(ctx, "MATCH (l:AuditLink {seq: $seq}) SET l.data = $data",
				map[string]any{"seq": int64(e.Seq), "data": string(data)}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
