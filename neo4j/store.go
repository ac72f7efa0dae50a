// Package neo4j is the identity-graph store on a Neo4j 5 server, for
// deployments where several idgraph processes share one graph.
//
// The data reads naturally in Neo4j Browser: (:Identifier) nodes joined by
// [:LINKED] relationships, (:Profile), (:Event)-[:SEEN_WITH]->(:Identifier),
// (:Merge), (:Hub) and (:Setting) nodes, and one (:StoreFormat) node (see
// FormatVersion). Identifiers name their profile in
// a property rather than a relationship, since stitching reads and writes
// it on every observation. (:NameWord) nodes index profile names for
// search (see search.go).
//
// Isolation comes from Neo4j's write locks: every Tx Lock method takes the
// locks of what it returns, so concurrent stitching transactions on
// overlapping data run one after the other (see tx.go).
package neo4j

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/envelope"
)

// Store is the Neo4j backend.
type Store struct {
	driver neo4jdriver.DriverWithContext
	db     string // database name; "" is the server's default
	// trace, when set (by tests: export_test.go), hears every query a
	// write transaction runs.
	trace func(cypher string, params map[string]any)
	// queries counts the statements stitching transactions ran (Queries).
	queries atomic.Int64
	// seal, when set (WithKeyring), encrypts personal payloads (seal.go).
	seal *sealer
}

// Queries returns how many Cypher statements stitching transactions (Update)
// have run so far, retries included: each is a round trip to the server,
// which benchmarks report per record.
func (s *Store) Queries() int64 { return s.queries.Load() }

var (
	_ graph.Store      = (*Store)(nil)
	_ graph.ChangeFeed = (*Store)(nil)
)

// Option configures Open.
type Option func(*options)

type options struct {
	database  string
	configure []func(*neo4jdriver.Config)
	ring      *envelope.Keyring
}

// WithDatabase selects the database (default: the server's home database).
func WithDatabase(name string) Option { return func(o *options) { o.database = name } }

// WithDriverConfig adjusts the driver configuration (pool size, timeouts,
// MaxTransactionRetryTime, logging).
func WithDriverConfig(fn func(*neo4jdriver.Config)) Option {
	return func(o *options) { o.configure = append(o.configure, fn) }
}

// schema is created idempotently on Open. Unique constraints also give
// MERGE its race-free semantics (two transactions merging one key never
// both create it), which LockMessages, LockIdentifiers and InitSetting
// rely on. There is no index on Profile.mergedInto: the only query on it
// asks for null, which an index does not hold.
var schema = []string{
	"CREATE CONSTRAINT identifier_key IF NOT EXISTS FOR (i:Identifier) REQUIRE i.key IS UNIQUE",
	"CREATE INDEX identifier_profile IF NOT EXISTS FOR (i:Identifier) ON (i.profile)",
	"CREATE INDEX identifier_search IF NOT EXISTS FOR (i:Identifier) ON (i.searchLen, i.search)",
	"CREATE CONSTRAINT profile_id IF NOT EXISTS FOR (p:Profile) REQUIRE p.id IS UNIQUE",
	"CREATE INDEX profile_updated_at IF NOT EXISTS FOR (p:Profile) ON (p.updatedAt)",
	"CREATE INDEX name_word_search IF NOT EXISTS FOR (w:NameWord) ON (w.len, w.word)",
	"CREATE INDEX name_word_profile IF NOT EXISTS FOR (w:NameWord) ON (w.profile)",
	"CREATE CONSTRAINT event_message_id IF NOT EXISTS FOR (e:Event) REQUIRE e.messageId IS UNIQUE",
	"CREATE INDEX seen_with_timeline IF NOT EXISTS FOR ()-[r:SEEN_WITH]-() ON (r.key, r.pos)",
	// Retention finds expired events by time (retention.go).
	"CREATE INDEX event_timestamp IF NOT EXISTS FOR (e:Event) ON (e.timestamp)",
	"CREATE CONSTRAINT merge_id IF NOT EXISTS FOR (m:Merge) REQUIRE m.id IS UNIQUE",
	"CREATE INDEX merge_survivor IF NOT EXISTS FOR (m:Merge) ON (m.survivor)",
	"CREATE INDEX merge_absorbed IF NOT EXISTS FOR (m:Merge) ON (m.absorbed)",
	"CREATE CONSTRAINT hub_id IF NOT EXISTS FOR (h:Hub) REQUIRE h.id IS UNIQUE",
	"CREATE CONSTRAINT setting_name IF NOT EXISTS FOR (s:Setting) REQUIRE s.name IS UNIQUE",
	"CREATE INDEX block_by_key IF NOT EXISTS FOR (b:Block) ON (b.key)",
	"CREATE INDEX linked_queue IF NOT EXISTS FOR ()-[l:LINKED]-() ON (l.queue)",
	"CREATE CONSTRAINT audit_id IF NOT EXISTS FOR (a:Audit) REQUIRE a.id IS UNIQUE",
	"CREATE CONSTRAINT consent_key_id IF NOT EXISTS FOR (c:Consent) REQUIRE (c.key, c.id) IS UNIQUE",
	"CREATE INDEX audit_ref IF NOT EXISTS FOR (r:AuditRef) ON (r.profile, r.id)",
	"CREATE CONSTRAINT suppression_hash IF NOT EXISTS FOR (s:Suppression) REQUIRE s.hash IS UNIQUE",
	"CREATE INDEX suppression_seq IF NOT EXISTS FOR (s:Suppression) ON (s.seq)",
	"CREATE CONSTRAINT suppression_removed_hash IF NOT EXISTS FOR (s:SuppressionRemoved) REQUIRE s.hash IS UNIQUE",
	"CREATE INDEX suppression_removed_seq IF NOT EXISTS FOR (s:SuppressionRemoved) ON (s.seq)",
	"CREATE CONSTRAINT suppression_clock_id IF NOT EXISTS FOR (c:SuppressionClock) REQUIRE c.id IS UNIQUE",
	"CREATE CONSTRAINT erasure_receipt_id IF NOT EXISTS FOR (r:ErasureReceipt) REQUIRE r.id IS UNIQUE",
	"CREATE CONSTRAINT api_key_id IF NOT EXISTS FOR (k:ApiKey) REQUIRE k.id IS UNIQUE",
	"CREATE CONSTRAINT store_format IF NOT EXISTS FOR (f:StoreFormat) REQUIRE f.id IS UNIQUE",
	"CREATE CONSTRAINT destination_id IF NOT EXISTS FOR (d:Destination) REQUIRE d.id IS UNIQUE",
	"CREATE CONSTRAINT destination_cursor_id IF NOT EXISTS FOR (c:DestinationCursor) REQUIRE c.id IS UNIQUE",
	"CREATE CONSTRAINT dead_letter_key IF NOT EXISTS FOR (l:DeadLetter) REQUIRE (l.destination, l.sequence) IS UNIQUE",
	"CREATE CONSTRAINT destination_lease_id IF NOT EXISTS FOR (l:DestinationLease) REQUIRE l.id IS UNIQUE",
	"CREATE CONSTRAINT delivery_job_key IF NOT EXISTS FOR (j:DeliveryJob) REQUIRE (j.destination, j.id) IS UNIQUE",
	"CREATE CONSTRAINT delivery_log_head IF NOT EXISTS FOR (h:DeliveryLogHead) REQUIRE h.destination IS UNIQUE",
	"CREATE CONSTRAINT delivery_log_key IF NOT EXISTS FOR (l:DeliveryLog) REQUIRE (l.destination, l.n) IS UNIQUE",
	// Erasure finds each of these by the person's identifiers or profiles
	// (erase.go; TestEraseUsesIndexes checks that no erasure query scans a
	// label).
	"CREATE INDEX hub_key IF NOT EXISTS FOR (h:Hub) ON (h.key)",
	"CREATE INDEX consent_key IF NOT EXISTS FOR (c:Consent) ON (c.key)",
	"CREATE INDEX audit_ref_id IF NOT EXISTS FOR (r:AuditRef) ON (r.id)",
	"CREATE INDEX block_profile IF NOT EXISTS FOR (b:Block) ON (b.profile)",
	// Data keys of encrypted payloads (seal.go): read by ID, erased by
	// owner, rewrapped by generation.
	"CREATE CONSTRAINT data_key_id IF NOT EXISTS FOR (k:DataKey) REQUIRE k.id IS UNIQUE",
	"CREATE INDEX data_key_owner IF NOT EXISTS FOR (k:DataKey) ON (k.owner)",
	"CREATE INDEX data_key_gen IF NOT EXISTS FOR (k:DataKey) ON (k.gen)",
}

// FormatVersion is the version of the graph layout (labels, properties and
// their encodings, see codec.go) this code writes and reads. It is kept in
// a singleton (:StoreFormat {id: "idgraph", version}) node. Bump it, with a
// migration, when the layout changes in a way this version would misread.
// A database from before the node existed is version 1.
const FormatVersion = 1

// checkFormat reads the database's format version, stamping a database
// without one (new, or from before versions were recorded: version 1), and
// refuses a version this code does not know. The unique constraint makes
// processes starting at once agree.
func (s *Store) checkFormat(ctx context.Context) error {
	recs, err := s.write(ctx, `MERGE (f:StoreFormat {id: "idgraph"})
		ON CREATE SET f.version = $version
		RETURN f.version`, map[string]any{"version": FormatVersion})
	if err != nil {
		return wrap("neo4j: open: format version", err)
	}
	if len(recs) == 0 {
		return fmt.Errorf("neo4j: open: format version: no row returned")
	}
	v, ok := recs[0].Values[0].(int64)
	if !ok {
		return fmt.Errorf("neo4j: open: %w: unreadable format version %v", graph.ErrStoreFormat, recs[0].Values[0])
	}
	if err := graph.CheckFormatVersion(int(v), FormatVersion); err != nil {
		return fmt.Errorf("neo4j: open: %w", err)
	}
	return nil
}

// Open connects to uri (bolt:// or neo4j://; empty user means no auth),
// verifies connectivity and creates the schema.
func Open(ctx context.Context, uri, user, password string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	auth := neo4jdriver.NoAuth()
	if user != "" {
		auth = neo4jdriver.BasicAuth(user, password, "")
	}
	driver, err := neo4jdriver.NewDriverWithContext(uri, auth, o.configure...)
	if err != nil {
		return nil, fmt.Errorf("neo4j: open: %w", err)
	}
	s := &Store{driver: driver, db: o.database}
	if o.ring != nil {
		s.seal = &sealer{ring: o.ring}
	}
	if err := driver.VerifyConnectivity(ctx); err != nil {
		_ = driver.Close(context.Background())
		return nil, wrap("neo4j: open", err)
	}
	if err := s.createSchema(ctx); err != nil {
		_ = driver.Close(context.Background())
		return nil, err
	}
	if err := s.checkFormat(ctx); err != nil {
		_ = driver.Close(context.Background())
		return nil, err
	}
	if err := s.adoptPendingChanges(ctx); err != nil {
		_ = driver.Close(context.Background())
		return nil, err
	}
	if err := s.buildSuppressionCounts(ctx); err != nil {
		_ = driver.Close(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *Store) createSchema(ctx context.Context) error {
	for _, q := range slices.Concat(schema, segmentSchema, segmentSizeSchema, chainSchema, sentSchema, suppressionSchema) {
		// Schema changes cannot share a transaction with each other's data,
		// so each runs on its own. Processes starting at once may race past
		// IF NOT EXISTS; the loser's "already exists" is success.
		if _, err := s.write(ctx, q, nil); err != nil && !alreadyExists(err) {
			return wrap("neo4j: create schema", err)
		}
	}
	// Plain indexes populate in the background; wait so that the first
	// queries do not fall back to label scans.
	if _, err := s.write(ctx, "CALL db.awaitIndexes(300)", nil); err != nil {
		return wrap("neo4j: await indexes", err)
	}
	return nil
}

func alreadyExists(err error) bool {
	var ne *neo4jdriver.Neo4jError
	return errors.As(err, &ne) && strings.Contains(ne.Code, "AlreadyExists")
}

// read runs a read query in a managed transaction on a reader.
func (s *Store) read(ctx context.Context, cypher string, params map[string]any) ([]*neo4jdriver.Record, error) {
	res, err := neo4jdriver.ExecuteQuery(ctx, s.driver, cypher, params, neo4jdriver.EagerResultTransformer,
		neo4jdriver.ExecuteQueryWithDatabase(s.db), neo4jdriver.ExecuteQueryWithReadersRouting())
	if err != nil {
		return nil, err
	}
	return res.Records, nil
}

// write runs one query in a managed write transaction.
func (s *Store) write(ctx context.Context, cypher string, params map[string]any) ([]*neo4jdriver.Record, error) {
	res, err := neo4jdriver.ExecuteQuery(ctx, s.driver, cypher, params, neo4jdriver.EagerResultTransformer,
		neo4jdriver.ExecuteQueryWithDatabase(s.db), neo4jdriver.ExecuteQueryWithWritersRouting())
	if err != nil {
		return nil, err
	}
	return res.Records, nil
}

// Setting reads a named setting.
func (s *Store) Setting(ctx context.Context, name string) (string, bool, error) {
	recs, err := s.read(ctx, "MATCH (s:Setting {name: $name}) WHERE s.value IS NOT NULL RETURN s.value",
		map[string]any{"name": name})
	if err != nil {
		return "", false, wrap("neo4j: setting", err)
	}
	if len(recs) == 0 {
		return "", false, nil
	}
	v, _ := recs[0].Values[0].(string)
	return v, true, nil
}

// InitSetting stores value under name unless one is there already. MERGE
// on the unique name makes concurrent first starts wait for each other
// and agree on the first committed value.
func (s *Store) InitSetting(ctx context.Context, name, value string) (string, error) {
	recs, err := s.write(ctx, `MERGE (s:Setting {name: $name})
		SET s.value = coalesce(s.value, $value)
		RETURN s.value`, map[string]any{"name": name, "value": value})
	if err != nil {
		return "", wrap("neo4j: init setting", err)
	}
	if len(recs) == 0 {
		return "", fmt.Errorf("neo4j: init setting: no row returned")
	}
	v, _ := recs[0].Values[0].(string)
	return v, nil
}

// PutSetting stores value under name, replacing any value there.
func (s *Store) PutSetting(ctx context.Context, name, value string) error {
	if _, err := s.write(ctx, `MERGE (s:Setting {name: $name}) SET s.value = $value`,
		map[string]any{"name": name, "value": value}); err != nil {
		return wrap("neo4j: put setting", err)
	}
	return nil
}

// Ping reports whether the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.driver.VerifyConnectivity(ctx); err != nil {
		return wrap("neo4j: ping", err)
	}
	return nil
}

// Close closes the driver and its connections.
func (s *Store) Close() error {
	if err := s.driver.Close(context.Background()); err != nil {
		return fmt.Errorf("neo4j: close: %w", err)
	}
	return nil
}

// Reset deletes every node and relationship (the schema stays) and records
// this code's format version again (and that the suppression list counts,
// all zero, are complete). It is meant for tests; batches keep
// each transaction's memory bounded.
func (s *Store) Reset(ctx context.Context) error {
	// Relationships go first, in batches: a DETACH DELETE of a dense node
	// (a segment of a million members) would delete all of its
	// relationships in one transaction, past Neo4j's transaction memory.
	for _, q := range []string{
		"MATCH ()-[r]->() WITH r LIMIT 10000 DELETE r RETURN count(*)",
		"MATCH (n) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*)",
	} {
		for {
			recs, err := s.write(ctx, q, nil)
			if err != nil {
				return wrap("neo4j: reset", err)
			}
			if n, _ := recs[0].Values[0].(int64); n == 0 {
				break
			}
		}
	}
	if err := s.checkFormat(ctx); err != nil {
		return err
	}
	return s.buildSuppressionCounts(ctx)
}

// wrap prefixes err with op and classifies driver errors that mean the
// server cannot be reached (or kept failing transiently until the retry
// budget ran out) as unavailable, which the HTTP layer answers with 503.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		return &graph.Error{Kind: graph.KindUnavailable, Op: op, Msg: "neo4j is unavailable", Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unavailable(err error) bool {
	var ge *graph.Error
	if errors.As(err, &ge) {
		return false // already classified
	}
	var ce *neo4jdriver.ConnectivityError
	var tl *neo4jdriver.TransactionExecutionLimit
	var ne *neo4jdriver.Neo4jError
	var nete net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &tl), errors.As(err, &nete):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		// The driver reports an unreachable server as the caller's deadline
		// expiring while it waits for a connection.
		return true
	case errors.As(err, &ne):
		return ne.Classification() == "TransientError" || strings.HasSuffix(ne.Code, ".DatabaseUnavailable")
	}
	return false
}
