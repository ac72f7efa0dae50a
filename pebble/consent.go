package pebble

import (
	"context"
	"encoding/json"
	"fmt"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
)

// pConsent + hash(identifier key) + record ID → consent.Record. The
// identifier's hash keeps its value (personal data) out of the key, as for
// events.
var pConsent = []byte("cs/")

var _ consent.Backend = (*Store)(nil)

// Consent returns the store of consent records, kept in the same database.
func (s *Store) Consent() consent.Store { return consentStore{s} }

type consentStore struct{ s *Store }

func (c consentStore) recordKey(r *consent.Record) []byte {
	return key(pConsent, c.s.hash(r.Key), []byte{0}, []byte(r.ID))
}

// AppendConsent stores the records not stored yet, in one synced batch.
func (c consentStore) AppendConsent(_ context.Context, recs []consent.Record) error {
	for i := range recs {
		if err := consent.Validate(&recs[i]); err != nil {
			return fmt.Errorf("pebble: append consent: %w", err)
		}
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	b := c.s.db.NewBatch()
	defer b.Close()
	for i := range recs {
		k := c.recordKey(&recs[i])
		_, closer, err := c.s.db.Get(k)
		if err == nil {
			closer.Close()
			continue
		}
		if err != cpebble.ErrNotFound {
			return fmt.Errorf("pebble: append consent: %w", err)
		}
		data, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("pebble: append consent: %w", err)
		}
		if err := b.Set(k, data, nil); err != nil {
			return fmt.Errorf("pebble: append consent: %w", err)
		}
	}
	if err := b.Commit(cpebble.Sync); err != nil {
		return &graph.Error{Kind: graph.KindUnavailable, Msg: "pebble: append consent", Err: err}
	}
	return nil
}

// ConsentOf reads the records of each key's range.
func (c consentStore) ConsentOf(_ context.Context, keys []graph.Key) ([]consent.Record, error) {
	var out []consent.Record
	for _, k := range keys {
		prefix := key(pConsent, c.s.hash(k), []byte{0})
		it, err := c.s.db.NewIter(&cpebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return nil, fmt.Errorf("pebble: consent of: %w", err)
		}
		for it.First(); it.Valid(); it.Next() {
			var r consent.Record
			if err := json.Unmarshal(it.Value(), &r); err != nil {
				it.Close()
				return nil, fmt.Errorf("pebble: consent of: corrupt record: %w", err)
			}
			if r.Key == k { // a hash collision never lends another's record
				out = append(out, r)
			}
		}
		err = it.Error()
		it.Close()
		if err != nil {
			return nil, fmt.Errorf("pebble: consent of: %w", err)
		}
	}
	consent.Sort(out)
	return out, nil
}
