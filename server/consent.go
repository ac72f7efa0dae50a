package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
)

// WithheldTrailer is the HTTP trailer of an export asked for a purpose:
// how many profiles were withheld, by reason ("conflict=0,denied=1,…").
const WithheldTrailer = "Idgraph-Consent-Withheld"

// recordMessageConsent stores the consent choices the messages' contexts
// carry (Segment's categoryPreferences, RudderStack's consentManagement),
// attached to each message's identifiers. Records are keyed by message ID
// and purpose, so a message sent again adds nothing.
func (s *Server) recordMessageConsent(ctx context.Context, obs []*graph.Observation) error {
	if s.consent == nil {
		return nil
	}
	var recs []consent.Record
	for _, o := range obs {
		recs = append(recs, s.cfg.Purposes.FromObservation(o)...)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := s.consent.Store.AppendConsent(ctx, recs); err != nil {
		return fmt.Errorf("record consent: %w", err)
	}
	for _, r := range recs {
		src, _, _ := strings.Cut(r.Source, ":")
		s.metrics.consentRecorded.WithLabelValues(src).Inc()
	}
	return nil
}

// consentGate is the consent check of one export request for one purpose:
// it counts what it withholds, by reason, in the response and the metrics.
type consentGate struct {
	s        *Server
	path     string
	purpose  string
	Withheld map[string]int
}

// gate returns the request's gate for purpose ("" : no gate, every profile
// passes, as before purposes existed). An unconfigured purpose, or a store
// that keeps no consent, is an invalid-input error naming "purpose".
func (s *Server) gate(path, purpose string) (*consentGate, error) {
	if purpose == "" {
		return nil, nil
	}
	if s.consent == nil {
		return nil, graph.FieldErrorf("purpose", "this store keeps no consent records")
	}
	if err := s.cfg.Purposes.Require(purpose); err != nil {
		return nil, err
	}
	g := &consentGate{s: s, path: path, purpose: purpose, Withheld: map[string]int{}}
	for _, r := range consent.Reasons {
		g.Withheld[r] = 0
	}
	return g, nil
}

// Allow reports whether the profile may leave for the gate's purpose now;
// a nil gate allows everything.
func (g *consentGate) Allow(ctx context.Context, p *graph.Profile) (bool, error) {
	if g == nil {
		return true, nil
	}
	d, err := g.s.consent.Check(ctx, p, g.purpose, g.s.now())
	if err != nil {
		return false, err
	}
	return g.count(d), nil
}

// Filter keeps the profile IDs whose consent is granted now (a profile
// merged away since is checked as its survivor; an erased one has none);
// a nil gate keeps them all.
func (g *consentGate) Filter(ctx context.Context, ids []string) ([]string, error) {
	if g == nil {
		return ids, nil
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		d, err := g.s.consent.CheckID(ctx, id, g.purpose, g.s.now())
		if err != nil {
			return nil, err
		}
		if g.count(d) {
			out = append(out, id)
		}
	}
	return out, nil
}

// count records a decision; it reports whether the record may leave.
func (g *consentGate) count(d consent.Decision) bool {
	if !d.Allowed {
		g.Withheld[d.Reason]++
		g.s.metrics.withheld.WithLabelValues(g.path, g.purpose, d.Reason).Inc()
	}
	return d.Allowed
}

// String renders the counts for the trailer, reasons sorted.
func (g *consentGate) String() string {
	var parts []string
	for r, n := range g.Withheld {
		parts = append(parts, r+"="+strconv.Itoa(n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// ParseWithheld reads a WithheldTrailer value.
func ParseWithheld(v string) (map[string]int, error) {
	out := map[string]int{}
	for part := range strings.SplitSeq(v, ",") {
		if part == "" {
			continue
		}
		r, n, ok := strings.Cut(part, "=")
		c, err := strconv.Atoi(n)
		if !ok || err != nil {
			return nil, fmt.Errorf("withheld counts: bad part %q", part)
		}
		out[r] = c
	}
	return out, nil
}

// declareWithheld announces the trailer before the body starts.
func declareWithheld(w http.ResponseWriter, g *consentGate) {
	if g != nil {
		w.Header().Set("Trailer", WithheldTrailer)
	}
}
