package neo4j

import (
	"context"
	"fmt"

	"github.com/idgraph/idgraph/destinations"
)

// Delivery jobs are (:DeliveryJob {destination, id, data}) nodes; the log
// of attempts is (:DeliveryLog {destination, n, data}) nodes numbered by a
// (:DeliveryLogHead {destination, n}) counter, which each append locks.

// PutJob stores a job under (destination, id).
func (g destStore) PutJob(ctx context.Context, j *destinations.Job) error {
	data, err := encode(j)
	if err != nil {
		return fmt.Errorf("neo4j: put delivery job: %w", err)
	}
	if _, err := g.s.write(ctx, "MERGE (j:DeliveryJob {destination: $dst, id: $id}) SET j.data = $data",
		map[string]any{"dst": j.Destination, "id": j.ID, "data": data}); err != nil {
		return wrap("neo4j: put delivery job", err)
	}
	return nil
}

// Jobs returns a destination's jobs, oldest first.
func (g destStore) Jobs(ctx context.Context, dst string) ([]*destinations.Job, error) {
	recs, err := g.s.read(ctx, "MATCH (j:DeliveryJob {destination: $dst}) RETURN j.data", map[string]any{"dst": dst})
	if err != nil {
		return nil, wrap("neo4j: delivery jobs", err)
	}
	out, err := decodeRows[destinations.Job]("neo4j: delivery jobs", recs, 0)
	if err != nil {
		return nil, err
	}
	destinations.SortJobs(out)
	return out, nil
}

// DeleteJob removes a job.
func (g destStore) DeleteJob(ctx context.Context, dst, id string) error {
	if _, err := g.s.write(ctx, "MATCH (j:DeliveryJob {destination: $dst, id: $id}) DELETE j",
		map[string]any{"dst": dst, "id": id}); err != nil {
		return wrap("neo4j: delete delivery job", err)
	}
	return nil
}

// AppendDelivery numbers the attempt from the destination's counter
// (locked first, so concurrent appends take distinct numbers), stores it
// and deletes what falls out of the newest keep, in one statement.
func (g destStore) AppendDelivery(ctx context.Context, d *destinations.Delivery, keep int) error {
	data, err := encode(d)
	if err != nil {
		return fmt.Errorf("neo4j: append delivery: %w", err)
	}
	recs, err := g.s.write(ctx, `MERGE (h:DeliveryLogHead {destination: $dst})
		SET h.lock = true REMOVE h.lock
		WITH h SET h.n = coalesce(h.n, 0) + 1
		WITH h.n AS n
		CREATE (:DeliveryLog {destination: $dst, n: n, data: $data})
		WITH n
		OPTIONAL MATCH (o:DeliveryLog {destination: $dst}) WHERE $keep > 0 AND o.n <= n - $keep
		DELETE o
		RETURN DISTINCT n`, map[string]any{"dst": d.Destination, "data": data, "keep": keep})
	if err != nil {
		return wrap("neo4j: append delivery", err)
	}
	if len(recs) > 0 {
		n, _ := recs[0].Values[0].(int64)
		d.N = uint64(n)
	}
	return nil
}

// Deliveries pages through a destination's log, newest first.
func (g destStore) Deliveries(ctx context.Context, dst string, before uint64, limit int) ([]*destinations.Delivery, error) {
	recs, err := g.s.read(ctx, `MATCH (l:DeliveryLog {destination: $dst}) WHERE $before = 0 OR l.n < $before
		RETURN l.n, l.data ORDER BY l.n DESC LIMIT $limit`, map[string]any{"dst": dst, "before": int64(before), "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: deliveries", err)
	}
	out := make([]*destinations.Delivery, 0, len(recs))
	for _, rec := range recs {
		if rec.Values[1] == nil { // deleted while read: see decodeRows
			continue
		}
		d, err := decode[destinations.Delivery](rec.Values[1])
		if err != nil {
			return nil, fmt.Errorf("neo4j: deliveries: %w", err)
		}
		n, _ := rec.Values[0].(int64)
		d.N = uint64(n)
		out = append(out, d)
	}
	return out, nil
}
