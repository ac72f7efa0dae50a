package neo4j

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
)

var _ consent.Backend = (*Store)(nil)

// Consent returns the store of consent records: (:Consent {key, id, data})
// nodes, key being the identifier's "type:value" and data the record's
// JSON.
func (s *Store) Consent() consent.Store { return consentStore{s} }

type consentStore struct{ s *Store }

// AppendConsent merges one node per (key, id): a record stored already is
// kept as it is.
func (c consentStore) AppendConsent(ctx context.Context, recs []consent.Record) error {
	rows := make([]map[string]any, len(recs))
	for i := range recs {
		if err := consent.Validate(&recs[i]); err != nil {
			return fmt.Errorf("neo4j: append consent: %w", err)
		}
		data, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("neo4j: append consent: %w", err)
		}
		rows[i] = map[string]any{"key": recs[i].Key.String(), "id": recs[i].ID, "data": string(data)}
	}
	if len(rows) == 0 {
		return nil
	}
	_, err := c.s.write(ctx, `UNWIND $rows AS row
		MERGE (c:Consent {key: row.key, id: row.id})
		ON CREATE SET c.data = row.data`, map[string]any{"rows": rows})
	if err != nil {
		return wrap("neo4j: append consent", err)
	}
	return nil
}

// ConsentOf reads the records attached to the keys.
func (c consentStore) ConsentOf(ctx context.Context, keys []graph.Key) ([]consent.Record, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = k.String()
	}
	recs, err := c.s.read(ctx, "UNWIND $keys AS k MATCH (c:Consent {key: k}) RETURN c.data", map[string]any{"keys": ks})
	if err != nil {
		return nil, wrap("neo4j: consent of", err)
	}
	out := make([]consent.Record, 0, len(recs))
	for _, rec := range recs {
		data, _ := rec.Values[0].(string)
		var r consent.Record
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return nil, fmt.Errorf("neo4j: consent of: corrupt record: %w", err)
		}
		out = append(out, r)
	}
	consent.Sort(out)
	return out, nil
}
