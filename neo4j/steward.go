package neo4j

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/idgraph/idgraph/graph"
)

// MergeEvent returns one merge event.
func (s *Store) MergeEvent(ctx context.Context, id string) (*graph.MergeEvent, error) {
	recs, err := s.read(ctx, "MATCH (m:Merge {id: $id}) RETURN m", map[string]any{"id": id})
	if err != nil {
		return nil, wrap("neo4j: merge event", err)
	}
	if len(recs) == 0 {
		return nil, &graph.Error{Kind: graph.KindNotFound, Field: "id", Msg: fmt.Sprintf("no merge event %q", id)}
	}
	return mergeFrom(props(recs[0].Values[0])), nil
}

// AuditEntry returns one audit entry.
func (s *Store) AuditEntry(ctx context.Context, id string) (*graph.AuditEntry, error) {
	recs, err := s.read(ctx, "MATCH (a:Audit {id: $id}) RETURN a.data", map[string]any{"id": id})
	if err != nil {
		return nil, wrap("neo4j: audit entry", err)
	}
	if len(recs) == 0 {
		return nil, &graph.Error{Kind: graph.KindNotFound, Field: "id", Msg: fmt.Sprintf("no audit entry %q", id)}
	}
	return auditFrom(recs[0].Values[0])
}

func auditFrom(v any) (*graph.AuditEntry, error) {
	s, _ := v.(string)
	a := &graph.AuditEntry{}
	if err := json.Unmarshal([]byte(s), a); err != nil {
		return nil, fmt.Errorf("neo4j: corrupt audit entry: %w", err)
	}
	return a, nil
}

// AuditLog lists audit entries newest first, through the audit_id
// constraint's index or the audit_ref index for one profile.
func (s *Store) AuditLog(ctx context.Context, q graph.AuditQuery) ([]*graph.AuditEntry, error) {
	before := q.Before
	if before == "" {
		before = "\uffff"
	}
	cypher := `MATCH (a:Audit) USING INDEX a:Audit(id)
		WHERE a.id < $before
		RETURN a.data ORDER BY a.id DESC LIMIT $limit`
	if q.Profile != "" {
		cypher = `MATCH (r:AuditRef) USING INDEX r:AuditRef(profile, id)
			WHERE r.profile = $profile AND r.id < $before
			WITH r ORDER BY r.id DESC LIMIT $limit
			MATCH (a:Audit {id: r.id})
			RETURN a.data ORDER BY a.id DESC`
	}
	recs, err := s.read(ctx, cypher, map[string]any{"before": before, "limit": q.Limit, "profile": q.Profile})
	if err != nil {
		return nil, wrap("neo4j: audit log", err)
	}
	out := make([]*graph.AuditEntry, 0, len(recs))
	for _, r := range recs {
		a, err := auditFrom(r.Values[0])
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// ReviewQueue reads pending edges in queue order through the linked_queue
// index; the cursor is the last item's queue position.
func (s *Store) ReviewQueue(ctx context.Context, after string, limit int) ([]graph.QueueItem, error) {
	recs, err := s.read(ctx, `MATCH (a:Identifier)-[l:LINKED]->(b:Identifier) USING INDEX l:LINKED(queue)
		WHERE l.queue > $after
		RETURN a.type, a.value, b.type, b.value, l ORDER BY l.queue LIMIT $limit`,
		map[string]any{"after": after, "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: review queue", err)
	}
	out := make([]graph.QueueItem, 0, len(recs))
	for _, r := range recs {
		e := edgeRecord(r.Values)
		out = append(out, graph.QueueItem{Edge: e, Cursor: queuePos(e)})
	}
	return out, nil
}
