package neo4j_test

import (
	"context"
	"testing"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	audittest "github.com/idgraph/idgraph/audit/storetest"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
)

// tamperAudit edits an (:AuditLink) node's data with Cypher, as someone
// with access to the database would.
func tamperAudit(t *testing.T, _ graph.Store, seq uint64, edit func([]byte) []byte) {
	ctx := context.Background()
	uri, user, pass := backends.Neo4jURI(t)
	d, err := neo4jdriver.NewDriverWithContext(uri, neo4jdriver.BasicAuth(user, pass, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	res, err := neo4jdriver.ExecuteQuery(ctx, d, "MATCH (l:AuditLink {seq: $seq}) RETURN l.data", map[string]any{"seq": int64(seq)}, neo4jdriver.EagerResultTransformer)
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("read entry %d: %v", seq, err)
	}
	data := edit([]byte(res.Records[0].Values[0].(string)))
	q, params := "MATCH (l:AuditLink {seq: $seq}) SET l.data = $data", map[string]any{"seq": int64(seq), "data": string(data)}
	if data == nil {
		q = "MATCH (l:AuditLink {seq: $seq}) DELETE l"
	}
	if _, err := neo4jdriver.ExecuteQuery(ctx, d, q, params, neo4jdriver.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
}

func TestAuditChainContract(t *testing.T) { audittest.Run(t, backends.OpenNeo4j, tamperAudit) }
