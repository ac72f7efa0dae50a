package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	_ "net/http/pprof"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/console"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/envelope"
	"github.com/idgraph/idgraph/mask"
	"github.com/idgraph/idgraph/match"
	"github.com/idgraph/idgraph/neo4j"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/resolver"
	"github.com/idgraph/idgraph/retention"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/server"
	"github.com/idgraph/idgraph/suppression"
)

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", env("IDGRAPH_ADDR", "127.0.0.1:8080"), "listen address")
	dsn := fs.String("store", env("IDGRAPH_STORE", "./idgraph-data"), "a directory for the embedded store, or neo4j://user:pass@host:7687 (also bolt://)")
	writeKey := fs.String("write-key", env("IDGRAPH_WRITE_KEY", ""), "a legacy write key (wk_…), kept working beside the idg_ keys of idgraph keys create (docs/security.md)")
	readKey := fs.String("read-key", env("IDGRAPH_READ_KEY", ""), "a legacy read key (rk_…), as --write-key")
	stewardKey := fs.String("steward-key", env("IDGRAPH_STEWARD_KEY", ""), "a legacy steward key (sk_…): reads, and approves, rejects, links, splits and undoes; as --write-key")
	retireLegacy := fs.Bool("retire-legacy-keys", envBool("IDGRAPH_RETIRE_LEGACY_KEYS", false), "delete the wk_/rk_/sk_ keys an older version stored on first start (keys given by flags still work while given)")
	pepperFile := pepperFlag(fs)
	keyringFile := encryptionFlags(fs)
	region := fs.String("region", env("IDGRAPH_REGION", "US"), "default region for phone numbers without a country code")
	limits := fs.String("limits", env("IDGRAPH_LIMITS", ""), "identifier values per profile, e.g. email=5,device_id=10")
	recordIDLimit := fs.Int("record-id-limit", envInt("IDGRAPH_RECORD_ID_LIMIT", graph.DefaultRecordIDLimit), "values per profile of an imported record-ID type (import --identifiers), unless --limits names it: the most records one person may have in a source")
	priority := fs.String("priority", env("IDGRAPH_PRIORITY", ""), "identifier types from most to least trusted, e.g. user_id,crm_id,email (default: "+strings.Join(graph.DefaultConfig().Priority, ",")+")")
	hubLimit := fs.Int("hub-limit", envInt("IDGRAPH_HUB_LIMIT", graph.DefaultConfig().HubLimit), "distinct strong identifiers a value may be seen with before it is a hub")
	sharedLimits := fs.String("shared-limits", env("IDGRAPH_SHARED_LIMITS", "anonymous_id=1,device_id=1,advertising_id=1"), "an identifier of these types seen with more distinct user IDs than N is shared (a family tablet): it joins no profile and the profile it joined is repaired; \"off\" disables")
	nameGuard := fs.String("name-guard", env("IDGRAPH_NAME_GUARD", strconv.FormatFloat(graph.DefaultNameGuard, 'f', -1, 64)), "an identify whose first name is less alike than this (Jaro-Winkler) to its profile's, and no nickname, prefix or initial of it, leaves its new emails and phones out of that profile, for review (a form typed on someone else's tablet); \"off\" disables")
	blocklist := fs.String("blocklist", env("IDGRAPH_BLOCKLIST", ""), "file of extra placeholder values, one a line (re:PATTERN for a regular expression)")
	maxComplexity := fs.Int("max-complexity", envInt("IDGRAPH_MAX_COMPLEXITY", server.DefaultMaxComplexity), "GraphQL query cost limit (each field 1, connections times first)")
	maxDepth := fs.Int("max-depth", envInt("IDGRAPH_MAX_DEPTH", server.DefaultMaxDepth), "GraphQL query depth limit")
	roleComplexity := fs.String("role-complexity", env("IDGRAPH_ROLE_COMPLEXITY", ""), "GraphQL cost limits of some roles in place of --max-complexity, e.g. support=3000,read=2000 (default support=3000)")
	maxAliases := fs.Int("max-aliases", envInt("IDGRAPH_MAX_ALIASES", server.DefaultMaxAliases), "aliased fields a GraphQL document may hold")
	gqlTimeout := fs.Duration("graphql-timeout", envDuration("IDGRAPH_GRAPHQL_TIMEOUT", server.DefaultGraphQLTimeout), "time limit of a GraphQL query's or mutation's execution (subscriptions are not limited); 0 disables")
	refusalBurst := fs.Int("refusal-burst", envInt("IDGRAPH_REFUSAL_BURST", server.DefaultRefusalBurst), "requests from one address refused as too large, too deep or too costly before it is answered 429 unread (refilled at a tenth of it per second); 0 disables, as behind a proxy where every client has the proxy's address")
	rateLimits := fs.String("rate-limits", env("IDGRAPH_RATE_LIMITS", ""), "requests a second and burst allowed to each key, by role, e.g. write=1000/2000,read=100/200 (role=off: unlimited; \"off\" alone: no limits); roles not named keep the defaults: write=1000/2000, read=100/200, support=20/40, steward=50/100, admin=50/100")
	authFailures := fs.Int("auth-failures", envInt("IDGRAPH_AUTH_FAILURES", server.DefaultAuthFailures), "failed authentications an address may make before it is answered 429 for a while (refilled at that many a minute); 0 disables, as behind a proxy where every client has the proxy's address")
	maxPage := fs.Int("max-page", envInt("IDGRAPH_MAX_PAGE", server.DefaultMaxPage), "largest first argument")
	corsOrigins := fs.String("cors-origins", env("IDGRAPH_CORS_ORIGINS", ""), "comma-separated origins allowed to call the GraphQL API from a browser (* for any)")
	collectOrigins := fs.String("collect-origins", env("IDGRAPH_COLLECT_ORIGINS", "*"), "comma-separated origins whose pages may send to the collection API (/v1/track, /v1/t, /v1/batch, ...) from a browser (* for any: write keys are public)")
	modelPath := fs.String("model", env("IDGRAPH_MODEL", "segment"), "matching model compared with profiles' traits as they arrive: \"segment\" (built in, Segment's reserved traits), a file from idgraph train, or \"off\"")
	accept := fs.Float64("accept", graph.DefaultMatchConfig().Accept, "match probability at or above which a probabilistic edge joins profiles")
	review := fs.Float64("review", graph.DefaultMatchConfig().Review, "match probability at or above which a probabilistic edge waits for review")
	withSegments := fs.Bool("segments", envBool("IDGRAPH_SEGMENTS", false), "maintain segments and computed traits (docs/segments.md): stitching records what changed in each profile's data, and the engine evaluates it in the background")
	personalKeys := fs.String("personal-keys", env("IDGRAPH_PERSONAL_KEYS", ""), "comma-separated trait, property and context keys (also identifier types) holding personal data besides the built-in ones, masked for support keys: key (first character kept) or key=kind, kind one of email, phone, name, address, birthday, ip, device, other (docs/security.md, Masking)")
	persSegments := fs.String("personalisation-segments", env("IDGRAPH_PERSONALISATION_SEGMENTS", "*"), "comma-separated segments whose membership a personalisation token reads of its visitor (* for all, empty for none; docs/security.md, Personalisation tokens)")
	persComputed := fs.String("personalisation-computed-traits", env("IDGRAPH_PERSONALISATION_COMPUTED_TRAITS", "*"), "comma-separated computed traits a personalisation token reads of its visitor (* for all, empty for none)")
	persTraits := fs.String("personalisation-traits", env("IDGRAPH_PERSONALISATION_TRAITS", ""), "comma-separated trait keys a personalisation token reads of its visitor (a key allows its nested keys; none by default: raw traits hold personal data)")
	assertionSecret := fs.String("personalisation-assertion-secret", env("IDGRAPH_PERSONALISATION_ASSERTION_SECRET", ""), "secret (at least 32 characters) your backend signs visitor assertions with (HS256 JWTs), which browsers exchange for personalisation tokens at /v1/personalisation/exchange; empty turns the exchange off (prefer the environment variable: flags show in ps)")
	destAllowPrivate := fs.Bool("destinations-allow-private", envBool("IDGRAPH_DESTINATIONS_ALLOW_PRIVATE", false), "let webhook destinations use loopback, private and link-local addresses (refused by default: a destination URL must not reach the internal network or the cloud metadata service)")
	destAllowHTTP := fs.Bool("destinations-allow-http", envBool("IDGRAPH_DESTINATIONS_ALLOW_HTTP", false), "let webhook destinations use plain http:// URLs (messages are signed, not encrypted)")
	destSchedule := fs.String("destinations-retry-schedule", env("IDGRAPH_DESTINATIONS_RETRY_SCHEDULE", ""), "comma-separated waits before each retry of a failed webhook delivery, e.g. 5s,5m,30m; after the last, a dead letter (default: 9 retries over about three days)")
	destTimeout := fs.Duration("destinations-timeout", envDuration("IDGRAPH_DESTINATIONS_TIMEOUT", 10*time.Second), "time limit of one webhook delivery attempt")
	destRequirePurpose := fs.Bool("destinations-require-purpose", envBool("IDGRAPH_DESTINATIONS_REQUIRE_PURPOSE", false), "withhold every entry of a destination that names no consent purpose (reason no_purpose) instead of sending everyone")
	destDisableAfter := fs.Duration("destinations-disable-after", envDuration("IDGRAPH_DESTINATIONS_DISABLE_AFTER", destinations.DefaultDisableAfter), "disable a destination whose oldest pending change has failed for longer than this (negative: never)")
	purposes := fs.String("purposes", env("IDGRAPH_PURPOSES", ""), "comma-separated consent purposes that exports, segment members and destinations can be asked for (default advertising,analytics,marketing,personalisation; docs/security.md, Consent)")
	consentIDs := fs.String("consent-ids", env("IDGRAPH_CONSENT_IDS", ""), "comma-separated id=purpose pairs mapping a consent manager's ids or Segment categories to purposes, e.g. C0002=analytics,C0004=advertising (unmapped ids are kept under their own lower-cased name)")
	dev := fs.Bool("dev", envBool("IDGRAPH_DEV", false), "development mode: serve GraphiQL at /graphql and let every reading key introspect the schema (otherwise only admin keys introspect)")
	publicURL := fs.String("public-url", env("IDGRAPH_PUBLIC_URL", ""), "the address clients reach idgraph at, e.g. https://idgraph.example.com: an https one makes the console's cookies Secure behind a proxy that terminates TLS")
	trustedProxies := fs.String("trusted-proxies", env("IDGRAPH_TRUSTED_PROXIES", ""), "comma-separated addresses or CIDR ranges of proxies whose X-Forwarded-Proto is believed (none by default: anyone can send the header)")
	writeTimeout := fs.Duration("write-timeout", envDuration("IDGRAPH_WRITE_TIMEOUT", server.DefaultTimeouts.Write), "longest time to write an answer to a client that stops reading (streamed exports get it afresh for each write; subscriptions are exempt)")
	consoleSessions := fs.Int("console-sessions", envInt("IDGRAPH_CONSOLE_SESSIONS", console.DefaultMaxSessions), "most console sessions kept in memory; at the cap the oldest is signed out")
	retDefault := fs.String("retention-default", env("IDGRAPH_RETENTION_DEFAULT", "395d"), "time to live of events of the types --retention does not name (e.g. 395d, 36h; 0 keeps them forever): the sweeper deletes older events (docs/security.md, Retention)")
	retRules := fs.String("retention", env("IDGRAPH_RETENTION", ""), "time to live by event type, e.g. \"Page Viewed=30d,Order Completed=2000d,page=90d\": a track event's type is its name, other calls' their type (page, screen, identify, group, alias); 0 keeps a type forever")
	retInactive := fs.String("retention-inactive-profiles", env("IDGRAPH_RETENTION_INACTIVE_PROFILES", "0"), "expire whole profiles no message or steward action has updated for this long, e.g. 730d (0: never); an expiry deletes like an erasure but suppresses nothing")
	retEvery := fs.Duration("retention-sweep-every", envDuration("IDGRAPH_RETENTION_SWEEP_EVERY", retention.DefaultEvery), "pause between retention sweeps, the first one this long after the start; 0 turns the sweeper off")
	retBatch := fs.Int("retention-batch", envInt("IDGRAPH_RETENTION_BATCH", retention.DefaultBatch), "events or profiles one retention transaction deletes")
	debugAddr := fs.String("debug-addr", env("IDGRAPH_DEBUG_ADDR", ""), "serve Go's pprof profiles on this address (keep it on loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rates, err := server.ParseRates(*rateLimits)
	if err != nil {
		return fmt.Errorf("serve: --rate-limits: %w", err)
	}
	roleCosts, err := server.ParseRoleComplexity(*roleComplexity)
	if err != nil {
		return fmt.Errorf("serve: --role-complexity: %w", err)
	}
	masking, err := mask.NewRules(splitList(*personalKeys))
	if err != nil {
		return fmt.Errorf("serve: --personal-keys: %w", err)
	}
	pers, err := personalisation(*persSegments, *persComputed, *persTraits)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if n := len(*assertionSecret); n > 0 && n < 32 {
		return fmt.Errorf("serve: --personalisation-assertion-secret: %d characters, want at least 32", n)
	}
	ids, err := consent.ParseMapping(*consentIDs)
	if err != nil {
		return fmt.Errorf("serve: --consent-ids: %w", err)
	}
	purposeCfg, err := consent.NewPurposes(splitList(*purposes), ids)
	if err != nil {
		return fmt.Errorf("serve: --purposes: %w", err)
	}
	retPolicy, err := retentionPolicy(*retDefault, *retRules, *retInactive, *retEvery, *retBatch)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log := newLogger(os.Stderr)
	if err := checkPublicURL(*publicURL); err != nil {
		return fmt.Errorf("serve: --public-url: %w", err)
	}
	proxies, err := parseProxies(*trustedProxies)
	if err != nil {
		return fmt.Errorf("serve: --trusted-proxies: %w", err)
	}

	cfg := graph.DefaultConfig()
	cfg.HubLimit = *hubLimit
	cfg.RecordIDLimit = *recordIDLimit
	if err := cfg.ParseLimits(*limits); err != nil {
		return err
	}
	if err := cfg.ParsePriority(*priority); err != nil {
		return err
	}
	if err := cfg.ParseSharedLimits(*sharedLimits); err != nil {
		return err
	}
	if err := cfg.ParseNameGuard(*nameGuard); err != nil {
		return err
	}
	norm := graph.NewNormalizer(*region)
	if *blocklist != "" {
		if err := loadBlocklist(norm.Blocklist, *blocklist); err != nil {
			return err
		}
	}
	pepper, err := loadPepper(*dsn, *pepperFile)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	store, err := openStore(ctx, *dsn, keyringFile(*dsn, *pepperFile))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer store.Close()
	keys, err := server.LoadKeys(ctx, store, *writeKey, *readKey, *stewardKey, *retireLegacy)
	if err != nil {
		return err
	}
	keyring, err := openKeyring(store, pepper, keys)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	auditLog, err := audit.Open(store, pepper)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if keys.Empty() {
		// No default credentials: a new store gets one admin key, shown
		// once on stdout (never in the log).
		first, ok, err := server.FirstAdminKey(ctx, store, keyring)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		if ok {
			printFirstAdminKey(os.Stdout, first)
			if err := recordFirstAdminKey(ctx, auditLog, first, "serve"); err != nil {
				log.Error("serve", "err", err)
			}
		}
	}
	broker := graph.NewBroker()
	stitcher := graph.NewStitcher(store, cfg)
	stitcher.Broker = broker
	// Erasures in the ledger that the store has not seen (a restored
	// backup) are applied again, and the suppression set loaded, before
	// any message is taken.
	eraser, err := openErasure(ctx, store, norm, pepper, ledgerPath(*dsn, *pepperFile), broker, log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	stitcher.Suppressor = eraser.Set
	eraser.Redact = func(ctx context.Context, keys []graph.Key) error {
		for _, k := range keys {
			if _, err := auditLog.Redact(ctx, auditLog.SubjectHash(k.String())); err != nil {
				return err
			}
		}
		return nil
	}
	var trainer *match.Trainer
	if *modelPath != "off" {
		model, err := loadModel(*modelPath)
		if err != nil {
			return err
		}
		if !(0 < *review && *review <= *accept && *accept <= 1) {
			return fmt.Errorf("serve: need 0 < --review ≤ --accept ≤ 1")
		}
		stitcher.MatchConfig = graph.DefaultMatchConfig()
		stitcher.MatchConfig.Accept, stitcher.MatchConfig.Review = *accept, *review
		trainer = &match.Trainer{Store: store, Stitcher: stitcher, Log: log, Hold: true, Base: model,
			Explicit: *modelPath != "segment", Ignore: []string{server.CollectSource}}
		if err := trainer.Start(ctx); err != nil {
			return err
		}
		log.Info("probabilistic matching on", "model", stitcher.CurrentMatcher().Version(), "accept", *accept, "review", *review)
	}
	// A crash between marking a shared identifier and repairing the
	// profile it joined leaves the repair to do: finish it first.
	if n, err := stitcher.RepairShared(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Info("repaired profiles joined through shared identifiers", "profiles", n)
	}
	suppLists := openSuppressionLists(store, norm, pepper, cfg, stitcher)
	var engine *segments.Engine
	var dests *destinations.Manager
	if *withSegments {
		b, ok := store.(segments.Backend)
		if !ok {
			return fmt.Errorf("serve: the store %T does not keep segments", store)
		}
		if dests, err = openDestinations(store, pepper, log, *destAllowPrivate, *destAllowHTTP, *destSchedule, *destTimeout, *destDisableAfter, *destRequirePurpose, purposeCfg, suppLists); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		stitcher.RecordDataChanges = true
		engine = segments.NewEngine(store, dests.WakeOnChanges(b.Segments()), segments.EngineOptions{})
		if err := engine.Load(ctx); err != nil {
			return err
		}
		for ref, err := range engine.Failed() {
			log.Error("segment definition left out", "definition", ref, "err", err)
		}
	}
	// With no periodic sweeps the sweeper is still there for an admin's
	// sweepRetention.
	every := *retEvery
	if every <= 0 {
		every = -1
	}
	sweeper, err := newSweeper(store, retPolicy, every, *retBatch, log, auditLog, broker)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if every > 0 {
		log.Info("retention on", "policy", retPolicy.String(), "every", every.String())
		// An event that arrives past its time to live would go at the next
		// sweep: it is not kept at all (its identifiers and traits are).
		stitcher.Retention = retPolicy
	}
	srv := server.New(server.Config{Store: store, Stitcher: stitcher, Normalizer: norm, Keys: keys, Keyring: keyring, Log: log, Broker: broker,
		MaxComplexity: *maxComplexity, RoleComplexity: roleCosts, MaxDepth: *maxDepth, MaxAliases: *maxAliases, GraphQLTimeout: cmp.Or(*gqlTimeout, -1),
		MaxPage: *maxPage, CORSOrigins: splitList(*corsOrigins),
		CollectOrigins: splitList(*collectOrigins), Trainer: trainer, RefusalBurst: cmp.Or(*refusalBurst, -1),
		Rates: rates, AuthFailures: cmp.Or(*authFailures, -1), Segments: engine, Destinations: dests, Dev: *dev, Masking: masking,
		Personalisation: pers, AssertionSecret: []byte(*assertionSecret),
		Purposes: purposeCfg, PublicURL: *publicURL, TrustedProxies: proxies, ConsoleSessions: *consoleSessions,
		Timeouts: server.Timeouts{Write: *writeTimeout}, Audit: auditLog, Erasure: eraser, Suppression: suppLists, Retention: sweeper})
	defer srv.Close()
	if feed, ok := store.(graph.ChangeFeed); ok {
		// Several processes may share this store: hear their changes too.
		// The follower ends before the store closes (defers run last first).
		followCtx, stopFollowing := context.WithCancel(ctx)
		followed := make(chan struct{})
		go func() {
			defer close(followed)
			graph.FollowChanges(followCtx, feed, broker, time.Second, log)
		}()
		defer func() { stopFollowing(); <-followed }()
	}
	hs := srv.HTTPServer()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if *debugAddr != "" {
		go func() {
			// The default mux holds net/http/pprof's handlers, and nothing else.
			err := http.ListenAndServe(*debugAddr, http.DefaultServeMux)
			log.Error("debug listener", "err", err)
		}()
	}
	log.Info("idgraph serving", "addr", ln.Addr().String(), "store", redact(*dsn))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}

// openStore opens Neo4j for a neo4j:// or bolt:// DSN, else the embedded
// store in the directory the DSN names. A Neo4j store is opened with its
// payloads encrypted under the keyring in enc.File (created when missing),
// or plain when enc.File is "" (then it must hold no encrypted payloads);
// a nil enc is for commands that read no payloads (no keyring, no check).
// The embedded store ignores enc.
func openStore(ctx context.Context, dsn string, enc *encryption) (graph.Store, error) {
	if !isNeo4j(dsn) {
		return pebble.Open(dsn)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, err
	}
	user := u.User.Username()
	pass, _ := u.User.Password()
	u.User = nil
	// Fail fast while Neo4j is unreachable: the client gets a 503 with
	// Retry-After and retries, rather than a request hanging for the
	// driver's default 30 s of retries.
	opts := []neo4j.Option{neo4j.WithDriverConfig(func(c *neo4jdriver.Config) {
		c.MaxTransactionRetryTime = 5 * time.Second
		c.ConnectionAcquisitionTimeout = 5 * time.Second
		c.SocketConnectTimeout = 2 * time.Second
	})}
	if enc == nil {
		return neo4j.Open(ctx, u.String(), user, pass, opts...)
	}
	keyringFile, made := enc.File, false
	if keyringFile != "" {
		_, err := os.Stat(keyringFile)
		made = errors.Is(err, os.ErrNotExist)
		ring, err := envelope.OpenKeyring(keyringFile)
		if err != nil {
			return nil, fmt.Errorf("--keyring-file %s: %w", keyringFile, err)
		}
		opts = append(opts, neo4j.WithKeyring(ring))
	}
	s, err := neo4j.Open(ctx, u.String(), user, pass, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.CheckKeyring(ctx); err != nil {
		s.Close()
		if made {
			// The file was missing and the store's data keys need the
			// lost one: a new keyring would seal new data beside old
			// data that no longer opens. Leave no new file behind.
			os.Remove(keyringFile)
			return nil, fmt.Errorf("--keyring-file %s was missing and the store holds data keys wrapped under another keyring: restore the file (it is a secret kept beside the pepper): %w", keyringFile, err)
		}
		if keyringFile == "" {
			return nil, fmt.Errorf("--encrypt=false: %w: open it with --keyring-file", err)
		}
		return nil, fmt.Errorf("--keyring-file: %w", err)
	}
	return s, nil
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	return dsn
}

func loadBlocklist(b *graph.Blocklist, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("blocklist: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := b.Add(line); err != nil {
			return err
		}
	}
	return sc.Err()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// openDestinations makes the webhook destinations manager over the
// store's segments: signing secrets are sealed with a key derived from
// the pepper.
func openDestinations(store graph.Store, pepper []byte, log *slog.Logger, allowPrivate, allowHTTP bool, schedule string, timeout, disableAfter time.Duration, requirePurpose bool, purposes *consent.Purposes, lists *suppression.Lists) (*destinations.Manager, error) {
	b, ok := store.(destinations.Backend)
	seg, ok2 := store.(segments.Backend)
	if !ok || !ok2 {
		return nil, fmt.Errorf("the store %T does not keep destinations", store)
	}
	sealer, err := destinations.NewSealer(pepper)
	if err != nil {
		return nil, err
	}
	var waits []time.Duration
	for _, w := range splitList(schedule) {
		d, err := time.ParseDuration(w)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--destinations-retry-schedule: %q is not a duration such as 30s or 5m", w)
		}
		waits = append(waits, d)
	}
	policy := destinations.URLPolicy{AllowHTTP: allowHTTP, AllowPrivate: allowPrivate}
	o := destinations.Options{Store: b.Destinations(), Segments: seg.Segments(), Sealer: sealer, Profiles: store,
		Client: destinations.NewClient(destinations.ClientOptions{URLPolicy: policy, Timeout: timeout}), Schedule: waits, DisableAfter: disableAfter,
		Log: log.With("component", "destinations"), Suppression: lists, RequirePurpose: requirePurpose}
	if sb, ok := store.(destinations.SentBackend); ok {
		o.Sent = sb.SentState()
	}
	if cb, ok := store.(consent.Backend); ok {
		chk := &consent.Checker{Store: cb.Consent(), Reader: store, Purposes: purposes}
		// Choices that expire withdraw nobody by themselves: a sweep does.
		o.Consent, o.Purposes, o.ConsentSweep = chk.CheckID, purposes, time.Minute
	}
	return destinations.NewManager(o)
}

// openSuppressionLists makes the delivery suppression lists over the
// store (nil when it keeps none): entries hashed under the pepper as
// erasure's are, values normalised as ingest does, types those built in
// or configured (limits, priority, shared limits, record-ID types).
func openSuppressionLists(store graph.Store, norm *graph.Normalizer, pepper []byte, cfg graph.Config, st *graph.Stitcher) *suppression.Lists {
	b, ok := store.(suppression.Backend)
	if !ok {
		return nil
	}
	types := func() []string {
		out := slices.Concat(cfg.Priority, st.RecordIDTypes())
		for _, m := range []map[string]int{cfg.Limits, cfg.SharedLimits} {
			out = slices.AppendSeq(out, maps.Keys(m))
		}
		return out
	}
	return &suppression.Lists{Store: b.SuppressionLists(), Hasher: erase.NewHasher(pepper), Norm: norm, Types: types}
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// personalisation reads the personalisation purpose's allow-lists.
func personalisation(segs, computed, traits string) (*resolver.Personalisation, error) {
	var p resolver.Personalisation
	for _, l := range []struct {
		flag, value string
		dst         *[]string
	}{{"personalisation-segments", segs, &p.Segments}, {"personalisation-computed-traits", computed, &p.ComputedTraits},
		{"personalisation-traits", traits, &p.Traits}} {
		list, err := resolver.ParsePersonalisationList(l.flag, l.value)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", l.flag, err)
		}
		*l.dst = list
	}
	return &p, nil
}

// checkPublicURL accepts an empty value or an absolute http(s) URL.
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

// parseProxies reads a comma-separated list of addresses and CIDR ranges.
func parseProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range splitList(s) {
		if a, err := netip.ParseAddr(p); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or a CIDR range such as 10.0.0.0/8", p)
		}
		out = append(out, pr.Masked())
	}
	return out, nil
}

// recordEventType is the event type of an imported record (server/records.go).
const recordEventType = "record"

// retentionPolicy reads the --retention-* flags, naming the flag at fault.
func retentionPolicy(def, rules, inactive string, every time.Duration, batch int) (retention.Policy, error) {
	var p retention.Policy
	var err error
	if p.Default, err = retention.ParseDuration(def); err != nil {
		return p, fmt.Errorf("--retention-default: %w", err)
	}
	if p.ByType, err = retention.ParseRules(rules); err != nil {
		return p, fmt.Errorf("--retention: %w", err)
	}
	// Imported records (idgraph import: event type "record") are what
	// matching and CRM profiles are made of, not behaviour: kept unless
	// --retention names them.
	if _, ok := p.ByType[recordEventType]; !ok {
		if p.ByType == nil {
			p.ByType = map[string]time.Duration{}
		}
		p.ByType[recordEventType] = 0
	}
	if p.InactiveProfiles, err = retention.ParseDuration(inactive); err != nil {
		return p, fmt.Errorf("--retention-inactive-profiles: %w", err)
	}
	if every < 0 {
		return p, fmt.Errorf("--retention-sweep-every: %s is negative", every)
	}
	if batch < 1 || batch > retention.MaxBatch {
		return p, fmt.Errorf("--retention-batch: %d is not between 1 and %d", batch, retention.MaxBatch)
	}
	return p, nil
}

// newSweeper makes the retention sweeper over the store.
func newSweeper(store graph.Store, p retention.Policy, every time.Duration, batch int, log *slog.Logger, a *audit.Log, broker *graph.Broker) (*retention.Sweeper, error) {
	sw := &retention.Sweeper{Policy: p, Every: every, Batch: batch, Log: log.With("component", "retention"), Audit: a, Broker: broker, Settings: store}
	if b, ok := store.(retention.Backend); ok {
		sw.Store = b.Retention()
	}
	if b, ok := store.(erase.Backend); ok {
		sw.Erasure = b.Erasure()
	}
	return sw, sw.Check()
}
