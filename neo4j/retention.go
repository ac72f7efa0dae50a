package neo4j

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/retention"
)

var _ retention.Backend = (*Store)(nil)

// Retention returns the store's retention operations.
func (s *Store) Retention() retention.Store { return retentionStore{s} }

type retentionStore struct{ s *Store }

// DeleteExpiredEvents reads events in (timestamp, messageId) order through
// the event_timestamp index, from the cursor up to the latest cutoff, and
// deletes the expired ones among them in the same write transaction.
// Message stubs of an ingest under way have no timestamp and are never
// read.
func (g retentionStore) DeleteExpiredEvents(ctx context.Context, req retention.EventsRequest) (*retention.EventsResult, error) {
	if req.Limit <= 0 {
		return nil, graph.FieldErrorf("limit", "must be positive, not %d", req.Limit)
	}
	latest := req.Cutoffs.Latest()
	if latest.IsZero() {
		return &retention.EventsResult{Deleted: map[string]int{}}, nil
	}
	params := map[string]any{"latest": latest.UTC(), "scan": req.ScanLimit(), "limit": req.Limit}
	params["cutoffs"], params["kept"], params["default"] = cutoffParams(req.Cutoffs)
	where := "e.timestamp < $latest"
	if req.After != "" {
		ts, id, ok := strings.Cut(req.After, "|")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if !ok || err != nil {
			return nil, graph.FieldErrorf("after", "bad cursor %q", req.After)
		}
		params["from"], params["fromId"] = at.UTC(), id
		where = "e.timestamp >= $from AND e.timestamp < $latest AND NOT (e.timestamp = $from AND e.messageId <= $fromId)"
	}
	var out *retention.EventsResult
	err := segStore{g.s}.writeTx(ctx, "neo4j: delete expired events", func(t *tx) error {
		out = &retention.EventsResult{Deleted: map[string]int{}}
		// Batches of several processes take turns on one lock node: a
		// batch reads its candidates only after the one before it has
		// committed, so no event is deleted (and counted) twice.
		if err := t.exec(ctx, `MERGE (s:Setting {name: 'retention_sweep'}) SET s.lock = true REMOVE s.lock`, nil); err != nil {
			return err
		}
		// The expired events among the next $scan are picked in the query,
		// so that only they come back; the last event read is the cursor
		// when none of the batch's own ends it.
		recs, err := t.collect(ctx, `MATCH (e:Event) WHERE `+where+`
			WITH e ORDER BY e.timestamp, e.messageId LIMIT $scan
			WITH e, CASE WHEN e.type = 'track' AND e.name IS NOT NULL THEN e.name ELSE e.type END AS typ
			WITH collect(e {.messageId, .type, .name, .timestamp,
				expired: NOT typ IN $kept AND e.timestamp < coalesce($cutoffs[typ], $default)}) AS rows
			RETURN [r IN rows WHERE r.expired][..$limit] AS hits, size(rows) AS read, rows[-1] AS last`, params)
		if err != nil || len(recs) == 0 {
			return err
		}
		expired := map[string]*graph.Event{}
		var ids []string
		var last *graph.Event
		for _, h := range recs[0].Values[0].([]any) {
			m, _ := h.(map[string]any)
			last = &graph.Event{MessageID: getString(m, "messageId"), Type: getString(m, "type"), Name: getString(m, "name"),
				Timestamp: getTime(m, "timestamp")}
			expired[last.MessageID] = last
			ids = append(ids, last.MessageID)
		}
		switch read, _ := recs[0].Values[1].(int64); {
		case len(ids) == req.Limit:
			// The batch is full: the next one starts after its last event.
		case int(read) == req.ScanLimit():
			m, _ := recs[0].Values[2].(map[string]any)
			last = &graph.Event{MessageID: getString(m, "messageId"), Timestamp: getTime(m, "timestamp")}
		default:
			last = nil // read to the latest cutoff: the sweep is done
		}
		if last != nil {
			out.Next = last.Timestamp.Format(time.RFC3339Nano) + "|" + last.MessageID
		}
		if len(ids) == 0 {
			return nil
		}
		recs, err = t.collect(ctx, `UNWIND $ids AS id
			MATCH (e:Event {messageId: id})
			OPTIONAL MATCH (e)-[:SEEN_WITH]->(i:Identifier)
			WITH e, id, collect(DISTINCT i.profile) AS ps
			DETACH DELETE e
			RETURN id, ps`, map[string]any{"ids": ids})
		if err != nil {
			return err
		}
		byProfile := map[string][]*graph.Event{}
		for _, r := range recs {
			ev := expired[asString(r.Values[0])]
			out.Deleted[retention.EventType(ev)]++
			for _, p := range toStrings(r.Values[1]) {
				byProfile[p] = append(byProfile[p], ev)
			}
		}
		if len(byProfile) == 0 {
			return nil
		}
		// Data changes go to live profiles: an identifier's profile may
		// have been absorbed since.
		recs, err = t.collect(ctx, `UNWIND $ids AS id
			MATCH (p:Profile {id: id})
			RETURN id, coalesce(p.mergedInto, id)`, map[string]any{"ids": slices.Collect(maps.Keys(byProfile))})
		if err != nil {
			return err
		}
		live := map[string][]*graph.Event{}
		for _, r := range recs {
			lp := asString(r.Values[1])
			live[lp] = append(live[lp], byProfile[asString(r.Values[0])]...)
		}
		var rows []any
		for _, id := range slices.Sorted(maps.Keys(live)) {
			out.Profiles = append(out.Profiles, id)
			rows = append(rows, dataChangeRow(graph.DataChange{Profile: id, Events: retention.TrackNames(live[id])}))
		}
		return t.exec(ctx, pendDataCypher, map[string]any{"rows": rows})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// InactiveProfiles lists live profiles last updated before before, in ID
// order.
func (g retentionStore) InactiveProfiles(ctx context.Context, before time.Time, after string, limit int) ([]string, error) {
	recs, err := g.s.read(ctx, `MATCH (p:Profile)
		WHERE p.updatedAt < $before AND p.mergedInto IS NULL AND p.id > $after
		RETURN p.id ORDER BY p.id LIMIT $limit`,
		map[string]any{"before": before.UTC(), "after": after, "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: inactive profiles", err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = asString(r.Values[0])
	}
	return out, nil
}

// cutoffParams are the cutoffs as query parameters: the types' cutoffs, the
// types kept forever, and the default cutoff (nil: kept).
func cutoffParams(c retention.Cutoffs) (map[string]any, []string, any) {
	cutoffs, kept := map[string]any{}, []string{}
	for typ, at := range c.ByType {
		if at.IsZero() {
			kept = append(kept, typ)
		} else {
			cutoffs[typ] = at.UTC()
		}
	}
	return cutoffs, kept, timeVal(c.Default)
}
