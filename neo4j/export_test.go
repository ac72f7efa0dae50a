package neo4j

import (
	"context"
	"fmt"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/envelope"
)

// SetTrace makes s call fn with every query its write transactions run,
// until the returned func is called.
func SetTrace(s *Store, fn func(cypher string, params map[string]any)) (restore func()) {
	s.trace = fn
	return func() { s.trace = nil }
}

// PlanOperators returns the operators of the plan the server would run
// cypher with (EXPLAIN: nothing runs), each with its details.
func PlanOperators(ctx context.Context, s *Store, cypher string, params map[string]any) ([]string, error) {
	res, err := neo4jdriver.ExecuteQuery(ctx, s.driver, "EXPLAIN "+cypher, params, neo4jdriver.EagerResultTransformer,
		neo4jdriver.ExecuteQueryWithDatabase(s.db))
	if err != nil {
		return nil, err
	}
	var out []string
	var walk func(p neo4jdriver.Plan)
	walk = func(p neo4jdriver.Plan) {
		if p == nil {
			return
		}
		out = append(out, p.Operator()+" "+fmt.Sprint(p.Arguments()["Details"]))
		for _, c := range p.Children() {
			walk(c)
		}
	}
	walk(res.Summary.Plan())
	return out, nil
}

// IndexEntries shows every node and relationship, but the segment change
// records and sent states, to the erase contract's NothingLeftInIndexes
// (erase/storetest.Entries): the indexes hold their properties.
func (s *Store) IndexEntries(ctx context.Context) ([]string, error) {
	recs, err := s.read(ctx, `MATCH (n) WHERE NOT n:SegmentChange AND NOT n:SentState
		RETURN labels(n) AS kind, properties(n) AS props
		UNION ALL MATCH ()-[r]->() RETURN [type(r)] AS kind, properties(r) AS props`, nil)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprint(r.Values...)
	}
	return out, nil
}

// KeyForms is an identifier's "type:value", the form its key property
// and relationship keys hold.
func (s *Store) KeyForms(k graph.Key) []string { return []string{k.String()} }

// RawRows runs a read query and returns its rows' values: the data as
// whoever reads the database (or its files) sees it.
func RawRows(ctx context.Context, s *Store, cypher string, params map[string]any) ([][]any, error) {
	recs, err := s.read(ctx, cypher, params)
	if err != nil {
		return nil, err
	}
	out := make([][]any, len(recs))
	for i, r := range recs {
		out[i] = r.Values
	}
	return out, nil
}

// KeyringOf is the store's keyring (WithKeyring).
func KeyringOf(s *Store) *envelope.Keyring { return s.seal.ring }

// SealedKeyID is the data key ID a sealed property value names.
func SealedKeyID(v string) (string, bool) { return sealedKey(v) }

// UnsealEvent decrypts a sealed event field with a wrapped data key and a
// keyring, as whoever holds the database's files and the keyring could.
func UnsealEvent(ring *envelope.Keyring, wrapped []byte, messageID, field, value string) (string, error) {
	m := map[string]any{field: value}
	fetch := func(context.Context, string) ([]byte, error) { return wrapped, nil }
	if err := (&sealer{ring: ring}).open(context.Background(), fetch, m, field, eventAAD(messageID, field)); err != nil {
		return "", err
	}
	return m[field].(string), nil
}

// RawWrite runs a write query: for tests that make a database look as an
// older idgraph left it.
func RawWrite(ctx context.Context, s *Store, cypher string, params map[string]any) error {
	_, err := s.write(ctx, cypher, params)
	return err
}
