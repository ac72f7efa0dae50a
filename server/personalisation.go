package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/resolver"
)

// Personalisation tokens (docs/security.md, "Personalisation tokens"): the
// customer's backend mints one per visitor with a mint key, and the
// visitor's browser reads `me` with it, from the CORS origins.

// maxMintBytes bounds a mint request's body: two short fields.
const maxMintBytes = 4 << 10

// MintRequest asks for a token bound to one visitor: a userId or an
// anonymousId, and a lifetime (seconds, or a duration such as "15m";
// default 15 minutes, at most 24 hours).
type MintRequest struct {
	UserID      string          `json:"userId"`
	AnonymousID string          `json:"anonymousId"`
	TTL         json.RawMessage `json:"ttl"`
}

// MintResponse carries the token and when it expires.
type MintResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	Purpose   string    `json:"purpose"`
}

// newTokens signs with key, else the keyring's pepper-derived key, else a
// random key that only this process knows (tokens then work against the
// process that minted them alone).
func newTokens(key []byte, kr *auth.Keyring, now func() time.Time) *auth.Tokens {
	if key == nil {
		key = kr.TokenKey()
	}
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // crypto/rand does not fail on supported platforms
	}
	t, err := auth.NewTokens(key, now)
	if err != nil {
		panic(err) // a configured key shorter than 32 bytes: serve never gives one
	}
	return t
}

// handleMintToken mints a personalisation token (mint or admin key). It
// answers the same whether or not idgraph knows the visitor.
func (s *Server) handleMintToken(w http.ResponseWriter, r *http.Request) {
	caller, err := s.authBearer(r, ruleOf(r.Context())) // the key's own rate limit (DefaultRates)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(w, r, maxMintBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	req, ttl, err := parseMintRequest(body)
	if err != nil {
		writeError(w, err)
		return
	}
	typ, value := graph.TypeUserID, req.UserID
	if value == "" {
		typ, value = graph.TypeAnonymousID, req.AnonymousID
	}
	tok, exp, err := s.tokens.Mint(typ, value, ttl)
	s.auditMint(withAuditCaller(r.Context(), caller), "mintToken", typ, value, ttl, err)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, MintResponse{Token: tok, ExpiresAt: exp, Purpose: auth.PurposePersonalisation})
}

// parseMintRequest decodes a mint request; bad input names the field.
func parseMintRequest(body []byte) (MintRequest, time.Duration, error) {
	var req MintRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, 0, graph.Errorf(graph.KindInvalid, "the body must be a JSON object {userId or anonymousId, ttl}: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	switch {
	case req.UserID == "" && req.AnonymousID == "":
		return req, 0, graph.FieldErrorf("userId", "give the visitor's userId or anonymousId")
	case req.UserID != "" && req.AnonymousID != "":
		return req, 0, graph.FieldErrorf("anonymousId", "give userId or anonymousId, not both: a token is bound to one identifier")
	}
	ttl, err := parseTTL(req.TTL)
	return req, ttl, err
}

// parseTTL reads seconds (a number) or a Go duration ("15m"); absent is 0,
// the default.
func parseTTL(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err == nil {
		if secs <= 0 || secs > auth.MaxTokenTTL.Seconds() {
			return 0, graph.FieldErrorf("ttl", "must be between 1 and %d seconds", int(auth.MaxTokenTTL.Seconds()))
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return 0, graph.FieldErrorf("ttl", "must be seconds or a duration such as \"15m\"")
	}
	d, err := time.ParseDuration(text)
	if err != nil || d <= 0 {
		return 0, graph.FieldErrorf("ttl", "%q is not a duration such as \"15m\"", text)
	}
	return d, nil
}

// tokenRule guards /graphql for personalisation tokens.
var tokenRule = routeRule{pattern: "/graphql", policy: graphqlCallers}

// graphqlCaller authenticates a GraphQL request's bearer: a key, or a
// personalisation token, whose caller reads Query.me alone
// (graphqlPolicies).
func (s *Server) graphqlCaller(r *http.Request) (resolver.Caller, error) {
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !auth.IsToken(bearer) {
		return s.authBearer(r, graphqlRule)
	}
	tok, err := s.tokens.Parse(bearer)
	if err != nil {
		return resolver.Caller{}, err
	}
	if !tokenRule.policy.Allows(auth.RolePersonalisation) {
		return resolver.Caller{}, graph.Errorf(graph.KindForbidden, "%s needs %s", tokenRule.what(), tokenRule.policy)
	}
	return resolver.Caller{Role: auth.RolePersonalisation, Actor: "personalisation-token", Token: &tok}, nil
}

// ExchangeRequest carries a backend's signed assertion of who the visitor
// is, and optionally a lifetime (as MintRequest's; never past the
// assertion's own expiry).
type ExchangeRequest struct {
	Assertion string          `json:"assertion"`
	TTL       json.RawMessage `json:"ttl"`
}

// handleExchange mints a token for the visitor a signed assertion names
// (no key: the assertion, signed with the secret the customer's backend
// shares with idgraph, is the credential). The browser calls it, so it
// answers the CORS origins' preflight like /graphql.
func (s *Server) handleExchange(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if len(s.cfg.AssertionSecret) == 0 {
		writeError(w, graph.Errorf(graph.KindNotFound, "assertion exchange is off: serve --personalisation-assertion-secret turns it on"))
		return
	}
	// No key to limit: every exchange, good or forged, is charged to the
	// client's address.
	if wait := s.exchanges.take(clientOf(r)); wait > 0 {
		s.metrics.rateLimited.WithLabelValues("exchanges").Inc()
		err := rateLimited(wait, "too many assertion exchanges from this address")
		setRetryAfter(w, err)
		writeError(w, err)
		return
	}
	body, err := readBody(w, r, maxMintBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	var req ExchangeRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, graph.Errorf(graph.KindInvalid, "the body must be a JSON object {assertion, ttl}: %s", strings.TrimPrefix(err.Error(), "json: ")))
		return
	}
	if req.Assertion == "" {
		writeError(w, graph.FieldErrorf("assertion", "give the assertion your backend signed"))
		return
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		writeError(w, err)
		return
	}
	now := s.now()
	a, err := auth.ParseAssertion(s.cfg.AssertionSecret, req.Assertion, now)
	if err != nil {
		writeError(w, err)
		return
	}
	// The token never outlives the assertion.
	left := a.Expires.Sub(now).Truncate(time.Second)
	if ttl == 0 {
		ttl = auth.DefaultTokenTTL
	}
	if ttl > left {
		ttl = left
	}
	if ttl < time.Second {
		writeError(w, graph.Errorf(graph.KindUnauthorized, "the assertion has expired"))
		return
	}
	tok, exp, err := s.tokens.Mint(a.Type, a.Value, ttl)
	areq := audit.RequestOf(r.Context())
	areq.Role = "assertion" // no key: the backend's signature vouched for the visitor
	s.auditMint(audit.WithRequest(r.Context(), areq), "exchangeToken", a.Type, a.Value, ttl, err)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, MintResponse{Token: tok, ExpiresAt: exp, Purpose: auth.PurposePersonalisation})
}

// DefaultExchangesPerMinute bounds assertion exchanges per client address
// (a burst of that many, refilled evenly over a minute): a page exchanges
// once per visit, and many visitors may share an address.
const DefaultExchangesPerMinute = 600

// auditMint records a token minted (or refused) for a visitor: the
// identifier only as its keyed hash and the entry's subject, so the
// visitor's access export lists it and their erasure redacts it.
func (s *Server) auditMint(ctx context.Context, action, typ, value string, ttl time.Duration, err error) {
	if s.cfg.Audit == nil {
		return
	}
	subj := s.subjectOf(typ, value)
	text, _ := json.Marshal(map[string]any{"type": typ, "subject": "hmac:" + s.cfg.Audit.SubjectHash(subj), "ttlSeconds": int(ttl.Seconds())})
	s.record(ctx, audit.Record{Action: action, Target: string(text), Subjects: []string{subj}, Err: err})
}
