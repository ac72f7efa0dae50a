package server

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/console"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/resolver"
)

// CollectSource is the source of every call to the collection API.
const CollectSource = "http"

// kindUnsupportedMedia is a body in an encoding the server cannot read: 415.
const kindUnsupportedMedia graph.Kind = "unsupported_media_type"

// readBody reads a body of at most limit bytes once decoded, refusing larger
// bodies and invalid UTF-8. A gzip body (RudderStack's SDKs gzip every batch)
// is bounded by the size it inflates to: reading stops at limit+1 bytes, so
// a gzip bomb costs no more than a plain body of the limit. Content-Type is
// not consulted: SDKs send JSON as text/plain (analytics-next, to avoid a
// CORS preflight, and sendBeacon) or as application/x-www-form-urlencoded
// (RudderStack's Node SDK). JSON nested too deeply is refused as it is
// read (the decoded stream, for gzip), at the piece that passes the limit:
// the rest is neither read nor buffered, and the connection is closed
// after the answer rather than drained.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	wire := &io.LimitedReader{R: r.Body, N: limit + 1}
	var in io.Reader = wire
	gzipped := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(wire)
		if err != nil {
			return nil, graph.Errorf(graph.KindInvalid, "body is not gzip (Content-Encoding: gzip): %v", err)
		}
		defer zr.Close()
		in, gzipped = zr, true
	default:
		return nil, graph.Errorf(kindUnsupportedMedia, "Content-Encoding %q is not supported: send gzip or no encoding", enc)
	}
	depth := collect.NewDepthReader(io.LimitReader(in, limit+1))
	body, err := io.ReadAll(depth)
	if depth.TooDeep() {
		w.Header().Set("Connection", "close")
		markCostly(r.Context())
		return nil, err
	}
	// A compressed body over the limit is refused as too large too, not as
	// the truncated gzip stream the wire limit makes of it.
	if int64(len(body)) > limit || wire.N == 0 {
		w.Header().Set("Connection", "close") // the rest is not worth reading
		markCostly(r.Context())
		return nil, graph.Errorf(graph.KindTooLarge, "body is larger than %d KB", limit>>10)
	}
	if err != nil {
		if gzipped {
			return nil, graph.Errorf(graph.KindInvalid, "body is not valid gzip: %v", err)
		}
		return nil, graph.Errorf(graph.KindInvalid, "reading body: %v", err)
	}
	if !utf8.Valid(body) {
		return nil, graph.Errorf(graph.KindInvalid, "body is not valid UTF-8")
	}
	return body, nil
}

// writeKey returns the write key from Basic auth (user name, empty
// password) or, failing that, from the body's writeKey field or the query's
// (RudderStack's beacon: sendBeacon cannot set headers).
func writeKey(r *http.Request, body []byte) string {
	if u, _, ok := r.BasicAuth(); ok {
		return u
	}
	if k := r.URL.Query().Get("writeKey"); k != "" {
		return k
	}
	var k struct {
		WriteKey string `json:"writeKey"`
	}
	_ = json.Unmarshal(body, &k)
	return k.WriteKey
}

// authWrite authenticates the write key of a collection or import
// request against the route's policy, and returns the request carrying
// the key as its caller (the audit entries of consent it carries name it).
func (s *Server) authWrite(r *http.Request, body []byte) (*http.Request, error) {
	k := writeKey(r, body)
	if k == "" {
		return r, graph.Errorf(graph.KindUnauthorized, "a write key is required (Basic auth user name or writeKey)")
	}
	c, err := s.authorize(r.Context(), k, ruleOf(r.Context()))
	if err != nil {
		return r, err
	}
	return r.WithContext(resolver.WithCaller(r.Context(), c)), nil
}

// authBearer authenticates the key in Authorization: Bearer … against the
// route's policy.
func (s *Server) authBearer(r *http.Request, rule routeRule) (resolver.Caller, error) {
	k, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || k == "" {
		return resolver.Caller{}, graph.Errorf(graph.KindUnauthorized, "%s needs %s (Authorization: Bearer …)", rule.what(), rule.policy)
	}
	return s.authorize(r.Context(), k, rule)
}

// consoleRole says who may sign in to the console: every role that reads
// (stewards and admins act, the others look).
func (s *Server) consoleRole(ctx context.Context, k string) (console.Role, error) {
	p, err := s.authenticate(ctx, k)
	switch {
	case graph.ErrorKind(err) == graph.KindRateLimited:
		return "", errors.New(graph.ErrorMessage(err))
	case err != nil:
		return "", errors.New("that is not a valid key for the console (read, support, steward or admin)")
	case !readers.Allows(p.Role):
		return "", fmt.Errorf("a %s key cannot sign in: use a read, support, steward or admin key", p.Role)
	case stewards.Allows(p.Role):
		return console.RoleSteward, nil
	case resolver.MaskedRole(p.Role):
		return console.RoleSupport, nil
	}
	return console.RoleRead, nil
}

// collectHeaders are the request headers SDKs send to the collection routes:
// analytics-next's Basic Authorization makes browsers ask first.
const collectHeaders = "Authorization, Content-Type, Content-Encoding"

// collectCORS lets browser SDKs on the collection origins send: it answers
// their preflight and lets them read the answer. A browser request from
// another origin is refused before it is read, so a page elsewhere cannot
// send with a write key copied from a permitted site.
func (s *Server) collectCORS(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !originIn(s.cfg.CollectOrigins, r) {
			writeError(w, graph.Errorf(graph.KindForbidden, "origin %s may not send to the collection API (serve --collect-origins)", origin))
			return
		}
		if origin != "" {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
		}
		if r.Method != http.MethodOptions {
			h(w, r)
			return
		}
		// Headers the server ignores are harmless, and SDKs add their own
		// (X-Retry-Count, RudderStack's AnonymousId): allow what is asked.
		allow := collectHeaders
		if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" {
			allow += ", " + asked
		}
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", allow)
		w.Header().Set("Access-Control-Max-Age", "7200") // Chromium's cap: one preflight per route every two hours
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) decoder() *collect.Decoder {
	return &collect.Decoder{Normalizer: s.norm, Source: CollectSource}
}

func (s *Server) handleMessage(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r, MaxMessageBytes)
		if err == nil {
			r, err = s.authWrite(r, body)
		}
		var d *collect.Decoded
		if err == nil {
			d, err = s.decoder().DecodeMessage(typ, body, s.now(), "", nil)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		s.ingest(w, r, []*collect.Decoded{d})
	}
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, MaxBatchBytes)
	if err == nil {
		r, err = s.authWrite(r, body)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	var b collect.Batch
	if err := collect.Unmarshal(body, &b, ""); err != nil {
		writeError(w, err)
		return
	}
	if b.Batch == nil {
		writeError(w, graph.FieldErrorf("batch", "is required"))
		return
	}
	if len(b.Batch) > MaxBatchMessages {
		markCostly(r.Context())
		writeError(w, &graph.Error{Kind: graph.KindTooLarge, Field: "batch",
			Msg: fmt.Sprintf("has %d messages, more than %d", len(b.Batch), MaxBatchMessages)})
		return
	}
	now := s.now()
	dec := s.decoder()
	msgs := make([]*collect.Decoded, 0, len(b.Batch))
	for i, raw := range b.Batch {
		field := fmt.Sprintf("batch[%d]", i)
		if len(raw) > MaxMessageBytes {
			writeError(w, &graph.Error{Kind: graph.KindTooLarge, Field: field, Msg: fmt.Sprintf("message is larger than %d KB", MaxMessageBytes>>10)})
			return
		}
		d, err := dec.DecodeMessage("", raw, now, b.SentAt, b.Context)
		if err != nil {
			var e *graph.Error
			if errors.As(err, &e) {
				e2 := *e
				e2.Field = joinField(field, e.Field)
				err = &e2
			}
			writeError(w, err)
			return
		}
		msgs = append(msgs, d)
	}
	s.ingest(w, r, msgs)
}

func joinField(prefix, field string) string {
	if field == "" {
		return prefix
	}
	return prefix + "." + field
}

// ingest stores the decoded messages as one transaction and answers; the
// answer comes only after the store has made them durable.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, msgs []*collect.Decoded) {
	obs := make([]*graph.Observation, len(msgs))
	var rejected []graph.RejectedValue
	for i, d := range msgs {
		obs[i] = d.Observation
		rejected = append(rejected, d.Rejected...)
	}
	res, err := s.stitcher.Ingest(r.Context(), obs)
	if err != nil {
		s.log.Error("ingest", "err", err, "messages", len(obs))
		writeError(w, err)
		return
	}
	s.recordIngest(res, len(rejected))
	if err := s.recordMessageConsent(r.Context(), obs); err != nil {
		// The messages are stored; a retry is de-duplicated and records
		// the consent it carries.
		s.log.Error("ingest", "err", err, "messages", len(obs))
		writeError(w, err)
		return
	}
	s.wakeSegments()
	out := map[string]any{"success": true}
	if len(rejected) > 0 {
		out["rejected"] = rejected
	}
	writeJSON(w, http.StatusOK, out)
}
