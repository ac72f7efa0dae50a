package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/loaders"
	"github.com/idgraph/idgraph/resolver"
	"github.com/idgraph/idgraph/schema"
	"github.com/idgraph/idgraph/segments/lang"
)

// GraphQL limits; see Config.
const (
	DefaultMaxComplexity = 5000
	DefaultMaxDepth      = 10
	DefaultMaxPage       = 100
	DefaultMaxAliases    = 30
	// DefaultGraphQLTimeout bounds a query's or mutation's execution
	// (subscriptions run as long as they are open).
	DefaultGraphQLTimeout = 10 * time.Second
	MaxGraphQLBytes       = 64 << 10
	// MaxAdminGraphQLBytes is an admin key's bound: adding 10,000
	// suppression list entries in one call takes about 600 KB.
	MaxAdminGraphQLBytes = 4 << 20
	// ResultsPerComplexity: an operation may produce this many values
	// (list items times the fields selected on each) per unit of
	// --max-complexity, counted as it executes.
	ResultsPerComplexity = 100
)

// Stable extensions.code values for the project's error kinds.

// graphqlHandler builds /graphql: POST and GET queries, subscriptions over
// WebSocket (graphql-transport-ws, and the older graphql-ws), GraphiQL for
// a browser, each query costed, depth-limited and authenticated.
func (s *Server) graphqlHandler() http.Handler {
	res := &resolver.Resolver{Reader: s.reader, Normalizer: s.norm, Broker: s.broker, MaxPage: s.cfg.MaxPage, Stitcher: s.stitcher, Trainer: s.cfg.Trainer,
		Segments: s.cfg.Segments, Backfill: s.backfill, Keyring: s.keyring, Masking: s.cfg.Masking, Destinations: s.cfg.Destinations,
		Personalisation: s.cfg.Personalisation,
		Consent:         s.consent, Withheld: func(path, purpose, reason string) { s.metrics.withheld.WithLabelValues(path, purpose, reason).Inc() },
		Erasure: s.cfg.Erasure, Suppression: s.cfg.Suppression, Retention: s.cfg.Retention}

	cfg := schema.Config{Resolvers: res}
	// `first` multiplies what a connection costs.
	cfg.Complexity.Query.Profiles = func(child int, first *int, _ *string, _ *schema.ProfileFilter) int {
		return paged(child, first, 20)
	}
	cfg.Complexity.Query.Search = func(child int, _ string, first *int) int { return paged(child, first, 10) }
	cfg.Complexity.Profile.Events = func(child int, first *int, _ *string, _ []string, _ *time.Time, _ *time.Time) int {
		return paged(child, first, 20)
	}
	cfg.Complexity.Query.ReviewQueue = func(child int, first *int, _ *string, _ *schema.ReviewFilter) int {
		return paged(child, first, 20)
	}
	cfg.Complexity.Query.AuditLog = func(child int, first *int, _ *string, _ *schema.AuditFilter) int {
		return paged(child, first, 20)
	}
	cfg.Complexity.Profile.Audit = func(child int, first *int) int { return paged(child, first, 20) }
	definitions := func(child int, first *int, _ *string) int { return paged(child, first, 20) }
	cfg.Complexity.Query.Segments, cfg.Complexity.Query.ComputedTraits = definitions, definitions
	cfg.Complexity.Segment.Members = func(child int, first *int, _ *string, _ *string) int { return paged(child, first, 20) }
	versions := func(child int, first *int, _ *string) int { return paged(child, first, 20) }
	cfg.Complexity.Segment.Versions, cfg.Complexity.ComputedTrait.Versions = versions, versions
	cfg.Complexity.Query.PreviewSegment = func(child int, _ string, sample *int) int { return paged(child, sample, 10) }
	// Size samples are read as one range of small records: a hundred cost
	// about what one profile does.
	cfg.Complexity.Segment.SizeHistory = func(child int, _, _ *time.Time, points *int) int {
		n := 200
		if points != nil && *points > 0 {
			n = *points
		}
		return 1 + child*((n+99)/100)
	}
	cfg.Complexity.Destination.DeadLetters = func(child int, first *int, _ *string) int { return paged(child, first, 20) }
	cfg.Complexity.Query.Deliveries = func(child int, _ string, first *int, _ *string) int { return paged(child, first, 50) }
	cfg.Complexity.Query.DeliveryJobs = func(child int, _ string) int { return 1 + child*defaultListSize }
	cfg.Complexity.Query.SuppressionEntries = func(child int, _ schema.SuppressionScopeInput, first *int, _ *string) int {
		return paged(child, first, 100)
	}
	bulk := func(child int, ids []string, _ *string) int { return 1 + child*len(ids) }
	cfg.Complexity.Mutation.ApproveMatches, cfg.Complexity.Mutation.RejectMatches = bulk, bulk
	costLists(&cfg.Complexity)
	h := handler.New(schema.NewExecutableSchema(cfg))
	h.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 15 * time.Second,
		// A client that opens a connection and never says connection_init
		// is dropped, as graphql-ws servers do after their wait, instead of
		// holding a connection (and Close) for ever.
		InitTimeout:    websocketInitTimeout,
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: s.websocketOrigins()},
		InitFunc:       s.websocketInit,
	})
	h.AddTransport(transport.Options{})
	h.AddTransport(transport.GET{})
	h.AddTransport(transport.POST{})
	h.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	h.Use(extension.Introspection{})
	h.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	h.Use(newQueryLimits(s.cfg.MaxAliases))
	h.SetParserTokenLimit(MaxQueryTokens)
	h.Use(depthLimit(s.cfg.MaxDepth)) // before the cost: depth is the clearer answer
	h.Use(&extension.ComplexityLimit{Func: func(ctx context.Context, _ *graphql.OperationContext) int {
		return s.complexityOf(resolver.CallerOf(ctx).Role)
	}})
	h.AroundResponses(s.responseUntilClose)
	h.AroundResponses(executionTimeout(s.cfg.GraphQLTimeout))
	h.AroundFields(refuseAfterTimeout)
	results := resultLimit(ResultsPerComplexity * s.cfg.MaxComplexity)
	h.AroundOperations(results.aroundOperations)
	h.AroundFields(results.aroundFields)
	// Default deny: every root field needs its policy in graphqlPolicies.
	// gqlgen runs query and mutation root fields (introspection's too)
	// through the root middleware, whose RootFieldContext.Object is the
	// field's name: the type is the enclosing field context's. A
	// subscription's field runs only through the field middleware.
	h.AroundRootFields(func(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
		if err := s.checkRootField(ctx, graphql.GetFieldContext(ctx).Object, graphql.GetRootFieldContext(ctx).Field.Name); err != nil {
			s.auditRefusedMutation(ctx, err)
			graphql.AddError(ctx, err)
			return graphql.Null
		}
		return next(ctx)
	})
	h.AroundFields(func(ctx context.Context, next graphql.Resolver) (any, error) {
		if fc := graphql.GetFieldContext(ctx); fc.Object == "Subscription" {
			if err := s.checkRootField(ctx, fc.Object, fc.Field.Name); err != nil {
				return nil, err
			}
		} else if err := s.checkNestedField(ctx, fc.Object, fc.Field.Name); err != nil {
			return nil, err
		}
		return next(ctx)
	})
	// Every mutation that runs is audited with its outcome (audit.go).
	h.AroundFields(s.auditFields)
	// Support keys see personal data masked: one middleware, every field.
	h.AroundFields(res.MaskFields)
	h.SetErrorPresenter(s.presentError)
	h.SetRecoverFunc(func(ctx context.Context, p any) error {
		s.recovered("graphql", p)
		return fmt.Errorf("panic: %v", p)
	})
	page, err := graphiqlPage("/graphql")
	if err != nil {
		panic(err) // gqlgen's page is compiled in: a mismatch is a build bug that tests catch
	}
	api := loaders.Middleware(s.reader, s.cache, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.cors(w, r)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method == http.MethodGet && r.URL.RawQuery == "" && strings.Contains(r.Header.Get("Accept"), "text/html") {
			if !s.cfg.Dev {
				writeGraphQLError(w, graph.Errorf(graph.KindNotFound, "GraphiQL is served in dev mode only (serve --dev); send queries with POST"))
				return
			}
			page.ServeHTTP(w, r) // GraphiQL: the page asks for the key itself
			return
		}
		if r.Header.Get("Upgrade") != "" {
			unbounded(w)
		} else {
			caller, err := s.graphqlCaller(r)
			if err != nil {
				writeGraphQLError(w, err)
				return
			}
			r = r.WithContext(resolver.WithCaller(r.Context(), caller))
			maxBytes := MaxGraphQLBytes
			if caller.Role == auth.RoleAdmin {
				maxBytes = MaxAdminGraphQLBytes
			}
			// Deep JSON is refused as it is read, as on the collection paths.
			depth := collect.NewDepthReader(io.LimitReader(r.Body, int64(maxBytes)+1))
			body, err := io.ReadAll(depth)
			if depth.TooDeep() {
				w.Header().Set("Connection", "close")
				markCostly(r.Context())
			}
			if err == nil && len(body) > maxBytes {
				markCostly(r.Context())
				err = graph.Errorf(graph.KindTooLarge, "request body is larger than %d KB", maxBytes>>10)
			}
			if err == nil && r.Method == http.MethodPost && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("[")) {
				err = graph.Errorf(graph.KindInvalid, "batched operations (a JSON array) are not accepted: send one operation per request")
			}
			if err == nil {
				err = checkGraphQLQuery(r)
			}
			if err != nil {
				writeGraphQLError(w, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		api.ServeHTTP(w, r)
	})
}

// complexityOf is the cost a role's operations may have: its own limit
// (Config.RoleComplexity) or --max-complexity.
func (s *Server) complexityOf(role auth.Role) int {
	if c, ok := s.cfg.RoleComplexity[role]; ok {
		return c
	}
	return s.cfg.MaxComplexity
}

type timeoutKey struct{}

// executionTimeout gives each query and mutation d to execute: its
// resolvers' store calls see the deadline, and refuseAfterTimeout stops
// the fields not yet resolved. A subscription's events are not bounded.
func executionTimeout(d time.Duration) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		// A document refused before execution has no operation.
		if d <= 0 || !graphql.HasOperationContext(ctx) {
			return next(ctx)
		}
		if oc := graphql.GetOperationContext(ctx); oc.Operation == nil || oc.Operation.Operation == ast.Subscription {
			return next(ctx)
		}
		ctx, cancel := context.WithTimeout(context.WithValue(ctx, timeoutKey{}, d), d)
		defer cancel()
		return next(ctx)
	}
}

// refuseAfterTimeout answers every field reached after the operation's
// time ran out with EXECUTION_TIMEOUT, rather than starting its work.
func refuseAfterTimeout(ctx context.Context, next graphql.Resolver) (any, error) {
	if d, ok := ctx.Value(timeoutKey{}).(time.Duration); ok && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		e := gqlerror.Errorf("the operation ran longer than its limit of %s", d)
		e.Extensions = map[string]any{"code": "EXECUTION_TIMEOUT"}
		return nil, e
	}
	return next(ctx)
}

// checkGraphQLQuery refuses, before gqlgen parses anything, JSON nested
// too deeply in a GET's variables and extensions (a POST body's depth is
// checked as it is read).
func checkGraphQLQuery(r *http.Request) error {
	q := r.URL.Query()
	for _, p := range []string{"variables", "extensions"} {
		if err := collect.CheckDepth([]byte(q.Get(p)), p); err != nil {
			return err
		}
	}
	return nil
}

func paged(child int, first *int, def int) int {
	n := def
	if first != nil && *first > 0 {
		n = *first
	}
	return 1 + child*n
}

// graphqlRule guards /graphql however it is reached (its routes, the
// console, a WebSocket): each root field has its own policy besides.
var graphqlRule = routeRule{pattern: "/graphql", policy: readers}

// websocketInit checks the read key sent in connection_init's payload
// ({"Authorization": "Bearer …"}): browsers cannot set WebSocket headers.
func (s *Server) websocketInit(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	k := strings.TrimSpace(strings.TrimPrefix(p.Authorization(), "Bearer "))
	caller, err := s.authorize(ctx, k, graphqlRule)
	if err != nil {
		return ctx, nil, fmt.Errorf("connection_init's Authorization: %s", graph.ErrorMessage(err))
	}
	return resolver.WithCaller(ctx, caller), &p, nil
}

// costlyCodes are the refusals of a document too large or too costly to
// run: honest clients do not send them twice (see refusals.go).
var costlyCodes = map[string]bool{"TOKEN_LIMIT_EXCEEDED": true, "SELECTION_LIMIT_EXCEEDED": true,
	"DEPTH_LIMIT_EXCEEDED": true, "COMPLEXITY_LIMIT_EXCEEDED": true, "ALIAS_LIMIT_EXCEEDED": true, "EXECUTION_TIMEOUT": true}

// presentError maps the project's error kinds to stable codes; anything
// unexpected is logged and shown only as "internal error".
func (s *Server) presentError(ctx context.Context, err error) *gqlerror.Error {
	gerr := graphql.DefaultErrorPresenter(ctx, err)
	var e *graph.Error
	switch {
	case errors.As(err, &e) && e.Kind != graph.KindInternal:
		gerr.Message = graph.ErrorMessage(err)
		gerr.Extensions = map[string]any{"code": resolver.ErrorCodes[e.Kind]}
		if le := (*lang.Error)(nil); errors.As(err, &le) {
			// A definition's error, where it is, for editors to point at.
			gerr.Extensions["definitionError"] = map[string]any{"code": le.Code, "line": le.Line, "column": le.Column, "hint": le.Hint}
		}
	case errors.Is(err, context.DeadlineExceeded):
		gerr.Message = "the store did not answer in time"
		gerr.Extensions = map[string]any{"code": resolver.ErrorCodes[graph.KindUnavailable]}
	case strings.HasPrefix(gerr.Message, "json request body could not be decoded"):
		// gqlgen quotes the whole body after " body:": keys and personal
		// data must reach neither the log nor, echoed, anything that logs
		// answers. Its JSON error alone says what is wrong.
		msg, _, _ := strings.Cut(gerr.Message, " body:")
		gerr.Message = "the request body is not valid JSON: " + strings.TrimPrefix(msg, "json request body could not be decoded: ")
		gerr.Extensions = map[string]any{"code": resolver.ErrorCodes[graph.KindInvalid]}
	case gerr.Extensions["code"] != nil:
		// gqlgen's own: GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED,
		// COMPLEXITY_LIMIT_EXCEEDED, PERSISTED_QUERY_NOT_FOUND…
		if costlyCodes[fmt.Sprint(gerr.Extensions["code"])] {
			markCostly(ctx)
		}
	default:
		s.log.Error("graphql", "err", err, "path", gerr.Path.String())
		gerr.Message = "internal error"
		gerr.Extensions = map[string]any{"code": resolver.ErrorCodes[graph.KindInternal]}
	}
	if resolver.Masked(ctx) {
		// Messages may quote what was asked for or found.
		gerr.Message = resolver.Scrub(gerr.Message)
	}
	s.metrics.graphqlErrors.WithLabelValues(fmt.Sprint(gerr.Extensions["code"])).Inc()
	return gerr
}

// writeGraphQLError answers a request refused before execution in the
// GraphQL response format.
func writeGraphQLError(w http.ResponseWriter, err error) {
	setRetryAfter(w, err)
	kind := graph.ErrorKind(err)
	code, ok := statusOf[kind]
	if !ok {
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, map[string]any{"errors": []map[string]any{{
		"message": graph.ErrorMessage(err), "extensions": map[string]any{"code": resolver.ErrorCodes[kind]},
	}}})
}

// originIn says whether a request may come from its Origin: one of origins
// ("*" for any), or the server's own (GraphiQL, the console). A request
// without Origin is not a browser's.
func originIn(origins []string, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range origins {
		if o == "*" || o == origin {
			return true
		}
	}
	return strings.TrimPrefix(strings.TrimPrefix(origin, "http://"), "https://") == r.Host
}

// websocketOrigins lets the CORS origins open subscriptions; the same
// origin always may.
func (s *Server) websocketOrigins() coderws.AcceptOptions {
	var opts coderws.AcceptOptions
	for _, o := range s.cfg.CORSOrigins {
		if o == "*" {
			opts.InsecureSkipVerify = true
		}
		opts.OriginPatterns = append(opts.OriginPatterns, strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://"))
	}
	return opts
}

func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && originIn(s.cfg.CORSOrigins, r) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Vary", "Origin")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	}
}

// depthLimit refuses operations nested deeper than max fields.
type depthLimit int

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit(0)

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, oc.Doc.Fragments, 0); depth > int(d) {
		err := gqlerror.Errorf("the operation is %d fields deep, more than %d", depth, int(d))
		err.Extensions = map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"}
		return err
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, frags ast.FragmentDefinitionList, seen int) int {
	if seen > 64 {
		return seen // validation forbids fragment cycles; this only bounds the walk
	}
	deepest := 0
	for _, sel := range set {
		var d int
		switch x := sel.(type) {
		case *ast.Field:
			d = 1 + selectionDepth(x.SelectionSet, frags, seen+1)
		case *ast.InlineFragment:
			d = selectionDepth(x.SelectionSet, frags, seen+1)
		case *ast.FragmentSpread:
			if f := frags.ForName(x.Name); f != nil {
				d = selectionDepth(f.SelectionSet, frags, seen+1)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// DefaultRoleComplexity: a support agent looks one customer up, so its
// operations may cost less than --max-complexity; the other roles take
// --max-complexity. The console's profile page costs 1,624, a profile with
// every nested field 2,534.
var DefaultRoleComplexity = map[auth.Role]int{auth.RoleSupport: 3000}
