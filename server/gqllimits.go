package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/idgraph/idgraph/schema"
)

// Query size limits, checked before gqlgen validates a query: validation
// (the overlapping-fields rule above all) costs time quadratic in the
// fields of a selection set, so 20,000 repeated fields took 18 s of CPU.
// Under these limits the worst query validates in milliseconds.
const (
	// MaxQueryTokens bounds a query's lexical tokens (the console's largest
	// operation has about 300).
	MaxQueryTokens = 10000
	// MaxQuerySelections bounds a query's fields, aliases and fragment
	// spreads, with every fragment counted where it is spread.
	MaxQuerySelections = 1000
)

// queryLimits refuses oversized queries before parsing by gqlgen, and
// remembers its verdict per query text, refusals included, so a repeated
// hostile query costs one hash.
type queryLimits struct {
	verdicts   *lru.LRU[*gqlerror.Error]
	maxAliases int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = queryLimits{}

func newQueryLimits(maxAliases int) queryLimits {
	return queryLimits{verdicts: lru.New[*gqlerror.Error](1000), maxAliases: maxAliases}
}

func (queryLimits) ExtensionName() string                   { return "QueryLimits" }
func (queryLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (q queryLimits) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	if params.Query == "" {
		return nil // a persisted query's hash alone: gqlgen answers it
	}
	sum := sha256.Sum256([]byte(params.Query))
	key := string(sum[:])
	verdict, ok := q.verdicts.Get(ctx, key)
	if !ok {
		verdict = checkQuery(params.Query, q.maxAliases)
		q.verdicts.Add(ctx, key, verdict)
	}
	if verdict == nil {
		return nil
	}
	e := *verdict // presenters may change what they are given
	e.Extensions = map[string]any{"code": verdict.Extensions["code"]}
	return &e
}

// checkQuery parses query under the token limit and counts its selections
// and aliases.
func checkQuery(query string, maxAliases int) *gqlerror.Error {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, MaxQueryTokens)
	if err != nil {
		e := gqlerror.Wrap(err)
		code := "GRAPHQL_PARSE_FAILED"
		if strings.Contains(e.Message, "token limit") {
			e = gqlerror.Errorf("the query has more than %d tokens", MaxQueryTokens)
			code = "TOKEN_LIMIT_EXCEEDED"
		}
		e.Extensions = map[string]any{"code": code}
		return e
	}
	var c selectionCount
	for _, op := range doc.Operations {
		if c.walk(op.SelectionSet, doc.Fragments, 0); c.selections > MaxQuerySelections {
			e := gqlerror.Errorf("the query selects more than %d fields, aliases and fragments", MaxQuerySelections)
			e.Extensions = map[string]any{"code": "SELECTION_LIMIT_EXCEEDED"}
			return e
		}
	}
	if c.aliases > maxAliases {
		e := gqlerror.Errorf("the query has %d aliases, more than %d", c.aliases, maxAliases)
		e.Extensions = map[string]any{"code": "ALIAS_LIMIT_EXCEEDED"}
		return e
	}
	return nil
}

// selectionCount counts a document's selections and its aliases (a field
// named other than itself), fragments counted where they are spread.
type selectionCount struct{ selections, aliases int }

// walk adds the selections under set, expanding fragment spreads, and
// stops as soon as they pass the limit (so the walk itself is bounded,
// whatever the fragments).
func (c *selectionCount) walk(set ast.SelectionSet, frags ast.FragmentDefinitionList, depth int) {
	if depth > 64 {
		return // validation refuses fragment cycles; this bounds the walk
	}
	for _, sel := range set {
		if c.selections++; c.selections > MaxQuerySelections {
			return
		}
		switch x := sel.(type) {
		case *ast.Field:
			if x.Alias != "" && x.Alias != x.Name {
				c.aliases++
			}
			c.walk(x.SelectionSet, frags, depth+1)
		case *ast.InlineFragment:
			c.walk(x.SelectionSet, frags, depth+1)
		case *ast.FragmentSpread:
			if f := frags.ForName(x.Name); f != nil {
				c.walk(f.SelectionSet, frags, depth+1)
			}
		}
	}
}

// listSizes are the sizes assumed when costing lists that take no `first`
// (before execution, the real sizes are unknown): typical profiles are
// smaller; a large one is caught by resultBudget while it executes.
var listSizes = map[string]int{
	"Profile.identifiers":  20,
	"Profile.traitSources": 20,
	"Profile.mergedIds":    10,
	"Profile.history":      10,
	"IdentityGraph.nodes":  50,
	"IdentityGraph.edges":  100,
	"Identifier.edges":     10,
	// matchPreview's `first` counts profiles re-scored, not changes.
	"MatchPreview.changes": 100,
	// A connection's edges are costed by `first` at the connection.
	"ProfileConnection.edges":       1,
	"EventConnection.edges":         1,
	"ReviewConnection.edges":        1,
	"AuditConnection.edges":         1,
	"SegmentConnection.edges":       1,
	"ComputedTraitConnection.edges": 1,
	// An explanation has a node per operator, call and literal (up to
	// 500); resultBudget counts the real ones.
	"MembershipExplanation.nodes": 50,
	"ExplainNode.events":          5,
	"SegmentPreview.sample":       10,
}

// defaultListSize is the size assumed for any other unpaged list.
const defaultListSize = 10

// costLists gives every list field of the schema that has no complexity
// function yet (those with `first` have theirs) a cost of its assumed size
// times its children's: by default gqlgen costs a list 1 whatever its
// size, so aliases of a large profile's graph passed the limit.
func costLists(c *schema.ComplexityRoot) {
	s := schema.NewExecutableSchema(schema.Config{}).Schema()
	root := reflect.ValueOf(c).Elem()
	for _, def := range s.Types {
		if def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if f.Type.Elem == nil || strings.HasPrefix(f.Name, "__") {
				continue // not a list
			}
			fn := root.FieldByName(def.Name).FieldByName(goName(f.Name))
			if !fn.IsValid() {
				panic(fmt.Sprintf("costLists: no complexity function for %s.%s: regenerate the schema", def.Name, f.Name))
			}
			if !fn.IsNil() {
				continue
			}
			size, ok := listSizes[def.Name+"."+f.Name]
			if !ok {
				size = defaultListSize
			}
			cost := func(child int) int { return 1 + child*size }
			if fn.Type() != reflect.TypeOf(cost) {
				panic(fmt.Sprintf("costLists: %s.%s takes arguments: cost it by them in graphqlHandler", def.Name, f.Name))
			}
			fn.Set(reflect.ValueOf(cost))
		}
	}
}

// goName is gqlgen's Go name of a GraphQL field (mergedIds → MergedIds,
// id → ID).
func goName(field string) string {
	if field == "id" {
		return "ID"
	}
	// gqlgen spells initialisms in capitals: recordIdTypes → RecordIDTypes,
	// apiKeys → APIKeys.
	return initialism.ReplaceAllStringFunc(strings.ToUpper(field[:1])+field[1:], func(w string) string {
		m := initialism.FindStringSubmatch(w)
		return strings.ToUpper(m[1]) + m[2]
	})
}

var initialism = regexp.MustCompile(`(Id|Api)([A-Z]|$)`)

// resultBudget counts, while an operation executes, the values its lists
// really produce (items times the fields selected on each) and refuses
// every list past the budget: the assumed sizes above cannot know that a
// profile holds 1,000 identifiers.
type resultBudget struct{ left atomic.Int64 }

type budgetKey struct{}

// aroundOperations gives each operation its budget.
func (b resultLimit) aroundOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	budget := &resultBudget{}
	budget.left.Store(int64(b))
	return next(context.WithValue(ctx, budgetKey{}, budget))
}

// resultLimit is the number of values one operation may produce.
type resultLimit int

// aroundFields charges each resolved list to the operation's budget.
func (b resultLimit) aroundFields(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	budget, _ := ctx.Value(budgetKey{}).(*resultBudget)
	if err != nil || budget == nil || res == nil {
		return res, err
	}
	v := reflect.ValueOf(res)
	if v.Kind() != reflect.Slice || v.Len() == 0 || v.Type().Elem().Kind() == reflect.Uint8 {
		return res, nil
	}
	fields := 1
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		fields += len(fc.Field.Selections)
	}
	if budget.left.Add(-int64(v.Len()*fields)) < 0 {
		e := gqlerror.Errorf("the response would hold more than %d values: ask for fewer aliases or fields", int(b))
		e.Extensions = map[string]any{"code": "COMPLEXITY_LIMIT_EXCEEDED"}
		return nil, e
	}
	return res, nil
}
