// Package server is idgraph's HTTP server: the Segment-compatible
// collection API, record import, profile export, health and metrics.
package server

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/99designs/gqlgen/graphql"
	"github.com/idgraph/idgraph/erase"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/console"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/loaders"
	"github.com/idgraph/idgraph/mask"
	"github.com/idgraph/idgraph/match"
	"github.com/idgraph/idgraph/resolver"
	"github.com/idgraph/idgraph/retention"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/suppression"
)

// Size limits from Segment's HTTP Tracking API.
const (
	MaxMessageBytes = 32 << 10
	MaxBatchBytes   = 500 << 10
	MaxImportBytes  = 4 << 20
	// MaxBatchMessages bounds a batch's messages: 500 KB of `{}` would
	// otherwise be 170,000 observations in one transaction.
	MaxBatchMessages = 2500
)

// Keys are the legacy API keys (wk_/rk_/sk_, before the idg_ scheme of
// package auth): write keys send data, read keys read it, steward keys
// read it and act on it. They keep working, with those roles, until the
// operator stops giving them (docs/security.md, "Migration").
type Keys struct {
	Write   []string
	Read    []string
	Steward []string
}

// Config configures a Server. Store, Stitcher, Normalizer and Keys are
// required; zero limits take the defaults.
type Config struct {
	Store      graph.Store
	Stitcher   *graph.Stitcher
	Normalizer *graph.Normalizer
	Keys       Keys
	// Keyring authenticates keys and manages the idg_ ones; nil makes one
	// that knows only Keys.
	Keyring *auth.Keyring
	Log     *slog.Logger
	// Broker carries profile changes to subscriptions and the cache; the
	// stitcher must publish to it.
	Broker        *graph.Broker
	MaxComplexity int
	// RoleComplexity overrides MaxComplexity for the roles it names
	// (nil: DefaultRoleComplexity; serve --role-complexity).
	RoleComplexity map[auth.Role]int
	MaxDepth       int
	MaxPage        int
	// MaxAliases bounds the aliased fields of a GraphQL document.
	MaxAliases int
	// GraphQLTimeout bounds a query's or mutation's execution; negative
	// turns it off.
	GraphQLTimeout time.Duration
	// CORSOrigins may call the GraphQL API from a browser ("*" for any).
	CORSOrigins []string
	// Masking says which keys and identifier types hold personal data,
	// masked for support keys (nil: mask.Default; serve --personal-keys).
	Masking *mask.Rules
	// CollectOrigins may send to the collection routes from a browser;
	// empty means any, since write keys are public (they ship in pages).
	CollectOrigins []string
	// CacheSize is the number of profiles the GraphQL layer caches.
	CacheSize int
	// Trainer, when set, trains a model for imported sources the model in
	// use does not cover (matching with no set-up step) and keeps the
	// imported record-ID types.
	Trainer *match.Trainer
	// RefusalBurst is how many requests a client may have refused for
	// their size or cost before it is answered 429 unread (refilled at a
	// tenth of it per second); 0 takes DefaultRefusalBurst, negative turns
	// the limit off (behind a proxy, where every client has its address).
	RefusalBurst int
	// Rates limit each key's requests, by role (nil: DefaultRates; a role
	// missing from a non-nil map is not limited).
	Rates map[auth.Role]Rate
	// Clock is the server's time: messages' received times, consent
	// checks, rate limits and throttles, personalisation tokens (nil: the
	// wall clock, in UTC). Tests set a fake one.
	Clock func() time.Time
	// AuthFailures is how many failed authentications an address may make
	// before it is answered 429 (refilled at that many a minute); 0 takes
	// DefaultAuthFailures, negative turns the throttle off.
	AuthFailures int
	// Dev serves GraphiQL and opens introspection to every reading key;
	// off (production), GraphiQL is not served and only admin keys
	// introspect.
	Dev bool
	// Segments, when set, keeps segments and computed traits up to date
	// in the background: it evaluates the data changes the stitcher
	// records (its RecordDataChanges must be on), woken after each
	// ingest, and drains the timer index.
	Segments *segments.Engine
	// Destinations, when set, delivers segment membership changes to
	// webhooks: one worker per destination, woken after each ingest.
	Destinations *destinations.Manager
	// Personalisation is what a personalisation token reads of its
	// visitor (nil: resolver.DefaultPersonalisation).
	Personalisation *resolver.Personalisation
	// TokenKey signs personalisation tokens; nil takes the keyring's
	// (derived from the pepper), else a random key of this process alone.
	TokenKey []byte
	// AssertionSecret, when set, lets browsers exchange an assertion
	// signed with it by the customer's backend (HS256) for a token at
	// POST /v1/personalisation/exchange.
	AssertionSecret []byte
	// Purposes are the consent purposes and the mapping of consent
	// manager ids to them (nil: consent.DefaultPurposes). Consent is kept
	// when the store implements consent.Backend.
	Purposes *consent.Purposes
	// PublicURL is where clients reach idgraph (serve --public-url); an
	// https one makes the console's cookies Secure behind a proxy that
	// terminates TLS.
	PublicURL string
	// TrustedProxies are the proxies whose X-Forwarded-Proto is believed
	// (serve --trusted-proxies; none by default).
	TrustedProxies []netip.Prefix
	// Timeouts bound the HTTP server's connections (HTTPServer); zero
	// fields take DefaultTimeouts'.
	Timeouts Timeouts
	// ConsoleSessions caps the console's signed-in sessions (0:
	// console.DefaultMaxSessions); the oldest is dropped at the cap.
	ConsoleSessions int
	// Audit, when set, records every mutation (admin and steward actions,
	// refused ones too) and every subject export in the hash chain
	// (docs/security.md, "Audit").
	Audit *audit.Log
	// ExportsPerMinute bounds subject exports per key (0: the default,
	// DefaultExportsPerMinute; negative: no limit).
	ExportsPerMinute int
	// ExchangesPerMinute bounds assertion exchanges per client address
	// (0: the default, DefaultExchangesPerMinute; negative: no limit).
	ExchangesPerMinute int
	// Erasure, when set, serves the erase mutation and receipts; its Set
	// should be the Stitcher's Suppressor. A Set that follows the store
	// (erase.Set.Follow) is refreshed in the background until Close.
	Erasure *erase.Service
	// Suppression, when set, serves the suppression list queries and
	// mutations (admin); give the same Lists to the destinations manager,
	// which checks them at delivery.
	Suppression *suppression.Lists
	// Retention, when set, runs in the background (Sweeper.Loop) until
	// Close; its metrics are served at /metrics, and a sweep that marked
	// profiles as changed wakes the segments engine.
	Retention *retention.Sweeper
}

// Server serves the HTTP API.
type Server struct {
	cfg      Config
	store    graph.Store
	reader   graph.Reader // the store, counted for metrics
	stitcher *graph.Stitcher
	norm     *graph.Normalizer
	keyring  *auth.Keyring
	log      *slog.Logger
	metrics  *metrics
	broker   *graph.Broker
	cache    *loaders.Cache
	stop     context.CancelFunc
	now      func() time.Time
	panicked atomic.Int64
	routes   []string // patterns registered, for the role matrix
	refusals *buckets // nil: no limit
	// authFailures throttles addresses that fail to authenticate (nil: no
	// limit); keyLimits limits each key's requests.
	authFailures *buckets
	keyLimits    keyLimits
	exports      *buckets // subject exports per key; nil: no limit
	exchanges    *buckets // assertion exchanges per address; nil: no limit
	// segWake wakes the segments engine after an ingest; segDone closes
	// when it has stopped.
	segWake chan struct{}
	segDone chan struct{}
	// destDone closes when the destination workers have stopped.
	destDone chan struct{}
	// identDone closes when the destinations stopped following merges and splits.
	identDone chan struct{}
	// sweepDone closes when the retention sweeper has stopped.
	sweepDone chan struct{}
	// pollDone closes when the suppression set's refreshes have stopped.
	pollDone chan struct{}
	// tokens mints and checks personalisation tokens.
	tokens *auth.Tokens
	// bg ends with Close; backfills run under it and Close waits for them.
	bg        context.Context
	backfills sync.WaitGroup
	// graphql counts the GraphQL requests running (subscriptions last as
	// long as their connection), which Close ends and waits for; closed,
	// under graphqlMu, refuses new ones once Close began.
	graphqlMu sync.Mutex
	closed    bool
	graphql   sync.WaitGroup
	// consent is the one consent check (nil: the store keeps no consent).
	consent *consent.Checker
	// lastConsent is the consent status ingest last stored per
	// identifier and purpose (audit entries for changes only).
	lastConsent lastConsent
}

// New returns a server; Close stops its background work.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Timeouts = cfg.Timeouts.orDefaults()
	if cfg.Broker == nil {
		cfg.Broker = graph.NewBroker()
	}
	cfg.MaxComplexity = cmp.Or(cfg.MaxComplexity, DefaultMaxComplexity)
	cfg.MaxDepth = cmp.Or(cfg.MaxDepth, DefaultMaxDepth)
	cfg.MaxPage = cmp.Or(cfg.MaxPage, DefaultMaxPage)
	cfg.MaxAliases = cmp.Or(cfg.MaxAliases, DefaultMaxAliases)
	cfg.GraphQLTimeout = cmp.Or(cfg.GraphQLTimeout, DefaultGraphQLTimeout)
	if cfg.RoleComplexity == nil {
		cfg.RoleComplexity = DefaultRoleComplexity
	}
	cfg.CacheSize = cmp.Or(cfg.CacheSize, 10000)
	if len(cfg.CollectOrigins) == 0 {
		cfg.CollectOrigins = []string{"*"}
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, store: cfg.Store, stitcher: cfg.Stitcher, norm: cfg.Normalizer, keyring: cfg.Keyring, log: cfg.Log,
		metrics: newMetrics(), broker: cfg.Broker, stop: stop, bg: ctx, now: func() time.Time { return time.Now().UTC() }}
	if cfg.Clock != nil {
		s.now = cfg.Clock
	}
	if s.keyring == nil {
		// Legacy keys alone cannot fail to make a keyring.
		s.keyring, _ = auth.NewKeyring(auth.KeyringOptions{Legacy: auth.Legacy(cfg.Keys)})
	}
	s.tokens = newTokens(cfg.TokenKey, s.keyring, s.now)
	if cfg.Purposes == nil {
		cfg.Purposes, _ = consent.NewPurposes(nil, nil) // the defaults are valid
		s.cfg.Purposes = cfg.Purposes
	}
	s.refusals = newRefusalLimiter(cmp.Or(cfg.RefusalBurst, DefaultRefusalBurst), s.now)
	if s.cfg.Rates == nil {
		s.cfg.Rates = DefaultRates
	}
	s.keyLimits = newKeyLimits(s.cfg.Rates, s.now)
	failures := float64(cmp.Or(cfg.AuthFailures, DefaultAuthFailures))
	s.authFailures = newBuckets(failures, failures/60, s.now)
	if n := cmp.Or(cfg.ExportsPerMinute, DefaultExportsPerMinute); n > 0 {
		s.exports = newBuckets(float64(n), float64(n)/60, s.now)
	}
	if n := cmp.Or(cfg.ExchangesPerMinute, DefaultExchangesPerMinute); n > 0 {
		s.exchanges = newBuckets(float64(n), float64(n)/60, s.now)
	}
	s.reader = graph.CountingReader{R: cfg.Store, Count: func(m string) { s.metrics.storeCalls.WithLabelValues(m).Inc() }}
	if b, ok := cfg.Store.(consent.Backend); ok {
		cs := b.Consent()
		if cfg.Destinations != nil {
			// A revocation withdraws the person from the destinations with
			// that purpose, durably, before the choice is acknowledged.
			cs = cfg.Destinations.WithdrawOnRevocation(cs)
		}
		s.consent = &consent.Checker{Store: cs, Reader: s.reader, Purposes: cfg.Purposes}
	}
	s.cache = loaders.NewCache(ctx, cfg.CacheSize, cfg.Broker)
	s.metrics.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "idgraph_profile_cache_hits_total", Help: "Profile cache hits."},
			func() float64 { return float64(s.cache.Hits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "idgraph_profile_cache_misses_total", Help: "Profile cache misses."},
			func() float64 { return float64(s.cache.Misses.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "idgraph_profile_cache_purges_total", Help: "Profile cache purges after the cache fell behind the profile changes."},
			func() float64 { return float64(s.cache.Purges.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "idgraph_subscriber_lags_total", Help: "Times a subscriber (cache or subscription) fell behind and was told to re-read."},
			func() float64 { return float64(s.broker.Lags()) }))
	if cfg.Segments != nil {
		s.segWake, s.segDone = make(chan struct{}, 1), make(chan struct{})
		go func() {
			defer close(s.segDone)
			cfg.Segments.Run(ctx, s.segWake, time.Second, func(err error) { s.log.Error("segments", "err", err) })
		}()
	}
	if cfg.Destinations != nil {
		registerDestinationMetrics(s.metrics.reg, cfg.Destinations, func(err error) { s.log.Error("destination metrics", "err", err) })
		s.destDone = make(chan struct{})
		go func() {
			defer close(s.destDone)
			cfg.Destinations.Run(ctx)
		}()
		if cfg.Broker != nil {
			// Merges and splits can change consent without a new choice.
			s.identDone = make(chan struct{})
			go func() {
				defer close(s.identDone)
				cfg.Destinations.FollowIdentity(ctx, cfg.Broker)
			}()
		}
	}
	if sw := cfg.Retention; sw != nil {
		s.metrics.reg.MustRegister(sw.Collectors()...)
		if sw.Changed == nil && cfg.Segments != nil {
			sw.Changed = s.wakeSegments
		}
		s.sweepDone = make(chan struct{})
		go func() {
			defer close(s.sweepDone)
			sw.Loop(ctx)
		}()
	}
	if e := cfg.Erasure; e != nil && e.Set.MaxAge() > 0 {
		s.pollDone = make(chan struct{})
		go func() {
			defer close(s.pollDone)
			e.Set.Poll(ctx, 0, s.log)
		}()
	}
	return s
}

// Close stops the server's background work (not the HTTP listener) and
// waits for the segments engine, which uses the store, to stop.
func (s *Server) Close() {
	s.graphqlMu.Lock()
	s.closed = true
	s.graphqlMu.Unlock()
	s.stop()
	s.awaitGraphQL()
	s.backfills.Wait()
	if s.segDone != nil {
		<-s.segDone
	}
	if s.destDone != nil {
		<-s.destDone
	}
	if s.identDone != nil {
		<-s.identDone
	}
	if s.sweepDone != nil {
		<-s.sweepDone
	}
	if s.pollDone != nil {
		<-s.pollDone
	}
}

// untilClose runs a GraphQL request under the server's lifetime: Close
// cancels it and waits for it to return, so a subscription still open
// (its websocket outlives the HTTP server's Close) never reads a store
// that its owner closed after Close.
func (s *Server) untilClose(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.graphqlMu.Lock()
		if s.closed {
			s.graphqlMu.Unlock()
			http.Error(w, "the server is stopping", http.StatusServiceUnavailable)
			return
		}
		s.graphql.Add(1)
		s.graphqlMu.Unlock()
		defer s.graphql.Done()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.bg, cancel)()
		h(w, r.WithContext(ctx))
	}
}

// responseUntilClose runs each response under the server's lifetime as
// untilClose runs each request: gqlgen's websocket transport resolves a
// subscription's events on goroutines of its own, which can outlive the
// connection's handler, so a response after Close (reading a closed
// store) is refused and one under way is waited for.
func (s *Server) responseUntilClose(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	s.graphqlMu.Lock()
	if s.closed {
		s.graphqlMu.Unlock()
		return graphql.ErrorResponse(ctx, "the server is stopping")
	}
	s.graphql.Add(1)
	s.graphqlMu.Unlock()
	defer s.graphql.Done()
	return next(ctx)
}

// websocketInitTimeout is how long a GraphQL websocket may wait for its
// connection_init.
const websocketInitTimeout = 5 * time.Second

// awaitGraphQL waits for the GraphQL requests Close cancelled to return:
// subscriptions end at once, a websocket still waiting for its
// connection_init (which reads no store) within websocketInitTimeout.
// Longer than that, Close goes on and logs it.
func (s *Server) awaitGraphQL() {
	done := make(chan struct{})
	go func() {
		s.graphql.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * websocketInitTimeout):
		s.log.Warn("server: closing with GraphQL requests still running")
	}
}

// backfill evaluates a new definition for every profile in the
// background; its status says how far it got, or why it failed.
func (s *Server) backfill(d *segments.Definition) {
	s.backfills.Go(func() {
		if err := s.cfg.Segments.Backfill(s.bg, d); err != nil && s.bg.Err() == nil {
			s.log.Error("segment backfill", "segment", d.Key, "err", err)
		}
	})
}

// wakeSegments tells the segments engine that data changes are pending
// (they are durable already: a missed wake is caught up at the next one
// or within a second).
func (s *Server) wakeSegments() {
	select {
	case s.segWake <- struct{}{}:
	default:
	}
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// Segment's browser SDK posts to the short paths (/v1/i, /v1/t, ...,
	// /v1/b), other clients to the long ones.
	for typ := range collect.Types {
		s.collectRoute(mux, "/v1/"+typ, s.handleMessage(typ))
		s.collectRoute(mux, "/v1/"+typ[:1], s.handleMessage(typ))
	}
	s.collectRoute(mux, "/v1/batch", s.handleBatch)
	s.collectRoute(mux, "/v1/b", s.handleBatch)
	s.collectRoute(mux, "/beacon/v1/batch", s.handleBatch) // RudderStack's browser SDK with useBeacon
	// analytics-next reports its own performance to {apiHost}/m; idgraph has
	// no use for it, and a 404 would fill the shop's browser console.
	s.collectRoute(mux, "/v1/m", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s.route(mux, "POST /v1/import", s.handleImport)
	s.route(mux, "POST /v1/match", s.handleMatch)
	s.route(mux, "GET /v1/export/profiles", s.streaming(s.handleExportProfiles))
	s.route(mux, "GET /v1/export/subject", s.streaming(s.handleExportSubject))
	s.route(mux, "GET /v1/segments/{key}/{file}", s.streaming(s.handleSegmentMembers))
	s.route(mux, "POST /v1/personalisation/tokens", s.handleMintToken)
	s.route(mux, "POST /v1/personalisation/exchange", s.handleExchange)
	s.route(mux, "OPTIONS /v1/personalisation/exchange", s.handleExchange)
	gql := s.graphqlHandler()
	for _, m := range []string{"GET", "POST", "OPTIONS"} {
		s.route(mux, m+" /graphql", s.untilClose(gql.ServeHTTP))
	}
	cons, err := console.New(console.Config{GraphQL: gql, Authorize: s.consoleRole, Log: s.log,
		PublicURL: s.cfg.PublicURL, TrustedProxies: s.cfg.TrustedProxies, MaxSessions: s.cfg.ConsoleSessions})
	if err != nil {
		panic(err) // the templates are embedded: a parse error is a build bug that tests catch
	}
	consoleHandler := cons.Handler()
	s.route(mux, "/console/", s.streaming(consoleHandler.ServeHTTP)) // its audit export
	s.route(mux, "GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]any{"ok": true}) })
	s.route(mux, "GET /readyz", s.handleReady)
	s.handle(mux, "GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP)
	s.handle(mux, "/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, graph.Errorf(graph.KindNotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// collectRoute registers a collection route, for POST and the browsers'
// CORS preflight.
func (s *Server) collectRoute(mux *http.ServeMux, path string, h http.HandlerFunc) {
	h = s.collectCORS(h)
	s.route(mux, "POST "+path, h)
	s.route(mux, "OPTIONS "+path, h)
}

// handle registers h under its access policy (routePolicies): a pattern
// without one is denied to everyone. Routes lists what it registered.
func (s *Server) handle(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, pattern)
	if _, ok := routePolicies[pattern]; !ok {
		h = denyUnpoliced(pattern)
	}
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h(w, r.WithContext(withPolicy(r.Context(), pattern)))
	})
}

// Routes returns the patterns Handler registered, for the role matrix.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// route registers h with metrics, panic recovery and its access policy.
func (s *Server) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	s.handle(mux, pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: 200}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.recovered(pattern, p)
				writeError(sw, fmt.Errorf("panic: %v", p))
			}
			s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(sw.code)).Inc()
			s.metrics.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		}()
		client := clientOf(r)
		if wait := s.refusals.wait(client); wait > 0 && !exemptFromRefusals(pattern) {
			s.metrics.refusalLimited.Inc()
			sw.Header().Set("Retry-After", retryAfter(wait))
			sw.Header().Set("Connection", "close") // the body is not read
			err := graph.Errorf(graph.KindRateLimited, "too many requests refused as too large or too costly from %s: retry in %s", client, retryAfter(wait)+"s")
			if strings.Contains(pattern, "/graphql") {
				writeGraphQLError(sw, err)
			} else {
				writeError(sw, err)
			}
			return
		}
		ctx, mark := withCostlyMark(withAuditRequest(sw, r.WithContext(withClient(r.Context(), client))))
		h(sw, r.WithContext(ctx))
		if mark.costly.Load() {
			s.metrics.costlyRefusals.Inc()
			s.refusals.charge(client)
		}
	})
}

// exemptFromRefusals: health checks answer whatever a client did before.
func exemptFromRefusals(pattern string) bool {
	return strings.HasSuffix(pattern, "/healthz") || strings.HasSuffix(pattern, "/readyz")
}

// panics counts the panics recovered by every Server in this process, so
// that a test binary can fail when any request it made panicked.
var panics atomic.Int64

// PanicCount returns how many panics the process's servers have recovered.
func PanicCount() int64 { return panics.Load() }

// firstPanics keeps the first few recovered panics with their stacks, for
// a test binary to print: the servers' logs of them are the tests' loggers,
// which a passing test does not show.
var firstPanics struct {
	sync.Mutex
	stacks []string
}

// PanicStacks returns the first recovered panics, each with its route and
// stack.
func PanicStacks() []string {
	firstPanics.Lock()
	defer firstPanics.Unlock()
	return slices.Clone(firstPanics.stacks)
}

// Panics returns how many panics this server has recovered: a panic is a
// bug even though the client only sees a 500.
func (s *Server) Panics() int64 { return s.panicked.Load() }

func (s *Server) recovered(where string, p any) {
	panics.Add(1)
	s.panicked.Add(1)
	s.metrics.panics.WithLabelValues(where).Inc()
	stack := string(debug.Stack())
	s.log.Error("panic", "route", where, "panic", p, "stack", stack)
	firstPanics.Lock()
	if len(firstPanics.stacks) < 5 {
		firstPanics.stacks = append(firstPanics.stacks, fmt.Sprintf("%s: %v\n%s", where, p, stack))
	}
	firstPanics.Unlock()
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeError(w, &graph.Error{Kind: graph.KindUnavailable, Msg: "store unreachable", Err: err})
		return
	}
	writeJSON(w, 200, map[string]any{"ok": true})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Hijack lets WebSocket upgrades through.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("hijack: %T cannot", w.ResponseWriter)
	}
	w.code = http.StatusSwitchingProtocols
	return h.Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

var statusOf = map[graph.Kind]int{
	graph.KindInvalid:      http.StatusBadRequest,
	graph.KindUnauthorized: http.StatusUnauthorized,
	graph.KindForbidden:    http.StatusForbidden,
	graph.KindNotFound:     http.StatusNotFound,
	graph.KindConflict:     http.StatusConflict,
	graph.KindTooLarge:     http.StatusRequestEntityTooLarge,
	graph.KindRateLimited:  http.StatusTooManyRequests,
	kindUnsupportedMedia:   http.StatusUnsupportedMediaType,
	graph.KindUnavailable:  http.StatusServiceUnavailable,
}

// writeError answers with the status of the error's kind and a message that
// names the field at fault; internals are never shown.
func writeError(w http.ResponseWriter, err error) {
	kind := graph.ErrorKind(err)
	if errors.Is(err, context.DeadlineExceeded) {
		kind = graph.KindUnavailable
	}
	code, ok := statusOf[kind]
	if !ok {
		code = http.StatusInternalServerError
	}
	if kind == graph.KindUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	setRetryAfter(w, err)
	msg := graph.ErrorMessage(err)
	if kind == graph.KindUnavailable {
		msg = "store unavailable, retry later"
	}
	writeJSON(w, code, map[string]any{"success": false, "code": string(kind), "message": msg})
}

type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	messages      *prometheus.CounterVec
	merges        prometheus.Counter
	hubs          prometheus.Counter
	repairs       prometheus.Counter
	rejectedID    prometheus.Counter
	storeCalls    *prometheus.CounterVec
	graphqlErrors *prometheus.CounterVec
	panics        *prometheus.CounterVec
	// costlyRefusals counts requests refused for their size or cost,
	// refusalLimited the requests then answered 429 without being read.
	costlyRefusals prometheus.Counter
	refusalLimited prometheus.Counter
	// rateLimited counts requests answered 429 by a key's rate limit
	// ("key") or the failed-authentication throttle ("auth_failures").
	rateLimited *prometheus.CounterVec
	// withheld counts records withheld for want of consent, by path,
	// purpose and reason.
	withheld *prometheus.CounterVec
	// consentRecorded counts consent records stored, by source kind.
	consentRecorded *prometheus.CounterVec
	// auditFailures counts audit entries that could not be written.
	auditFailures prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_http_requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "idgraph_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_messages_total",
			Help: "Messages and records by outcome (stored, duplicate, suppressed: dropped as carrying an identifier of an erased person, expired: linked but their event already past its time to live)."}, []string{"outcome"}),
		merges: prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_merges_total", Help: "Profile merges."}),
		hubs:   prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_hubs_total", Help: "Values marked as hubs (or shared)."}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_shared_repairs_total",
			Help: "Profiles repaired after an identifier they held was found shared."}),
		rejectedID: prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_rejected_identifiers_total", Help: "Identifier values refused (invalid or placeholder)."}),
		storeCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_store_calls_total",
			Help: "Store reads by method (GraphQL and export)."}, []string{"method"}),
		graphqlErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_graphql_errors_total",
			Help: "GraphQL errors by extensions.code."}, []string{"code"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_panics_total",
			Help: "Panics recovered while serving, by route (each one is a bug)."}, []string{"route"}),
		costlyRefusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_costly_refusals_total",
			Help: "Requests refused for their size or cost (body too large or too deep, GraphQL limits)."}),
		refusalLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_refusal_limited_total",
			Help: "Requests answered 429 unread because their client's costly refusals passed the burst."}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_rate_limited_total",
			Help: "Requests answered 429 by a key's rate limit (key) or the failed-authentication throttle (auth_failures)."}, []string{"reason"}),
		withheld: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_consent_withheld_total",
			Help: "Records withheld from an export path for want of consent, by path, purpose and reason."}, []string{"path", "purpose", "reason"}),
		consentRecorded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_consent_records_total",
			Help: "Consent records stored, by source (segment, rudderstack, api)."}, []string{"source"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_audit_failures_total",
			Help: "Audit entries that could not be written (each is logged)."}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.messages, m.merges, m.hubs, m.repairs, m.rejectedID, m.storeCalls, m.graphqlErrors, m.panics,
		m.costlyRefusals, m.refusalLimited, m.rateLimited, m.withheld, m.consentRecorded, m.auditFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// recordIngest counts what an ingest did and logs the repairs it could not
// finish (the write itself is durable; serve's start-up sweep retries them).
func (s *Server) recordIngest(r graph.Result, rejected int) {
	for _, err := range r.RepairErrors {
		s.log.Error("repair shared", "err", err)
	}
	s.metrics.record(r, rejected)
}

func (m *metrics) record(r graph.Result, rejected int) {
	m.repairs.Add(float64(r.Repaired))
	m.messages.WithLabelValues("stored").Add(float64(r.Stored))
	m.messages.WithLabelValues("duplicate").Add(float64(r.Duplicates))
	m.messages.WithLabelValues("suppressed").Add(float64(r.Suppressed))
	m.messages.WithLabelValues("expired").Add(float64(r.Expired))
	m.merges.Add(float64(r.Merges))
	m.hubs.Add(float64(r.Hubs))
	m.rejectedID.Add(float64(rejected))
}
