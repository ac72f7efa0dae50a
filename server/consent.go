package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/idgraph/idgraph/audit"
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
	changes, err := s.consentChanges(ctx, recs)
	if err != nil {
		return fmt.Errorf("record consent: %w", err)
	}
	if err := s.consent.Store.AppendConsent(ctx, recs); err != nil {
		s.lastConsent.forget() // the statuses remembered were not stored
		return fmt.Errorf("record consent: %w", err)
	}
	for _, r := range recs {
		src, _, _ := strings.Cut(r.Source, ":")
		s.metrics.consentRecorded.WithLabelValues(src).Inc()
	}
	s.auditConsentChanges(ctx, changes)
	return nil
}

// consentChange is one message that changed a status of consent: its
// choices by purpose, and its identifiers.
type consentChange struct {
	message, source string
	choices         map[string]string
	keys            []string
}

// maxConsentSeen bounds lastConsent; past it the memory starts afresh (a
// status then read again from the store).
const maxConsentSeen = 100_000

// lastConsent remembers, per identifier and purpose, the status ingest
// last stored, so that only a message changing one is an audit entry (an
// SDK sends its consent context on every message).
type lastConsent struct {
	mu   sync.Mutex
	last map[string]string // key + "\x00" + purpose → status
}

// forget drops every status remembered.
func (lc *lastConsent) forget() {
	lc.mu.Lock()
	lc.last = nil
	lc.mu.Unlock()
}

// consentChanges returns the messages among recs (in their order) that
// change a status of their identifiers: a first choice, or one unlike the
// newest stored. Identifiers not yet remembered are read from the store
// once, together.
func (s *Server) consentChanges(ctx context.Context, recs []consent.Record) ([]consentChange, error) {
	if s.cfg.Audit == nil {
		return nil, nil
	}
	slot := func(k graph.Key, purpose string) string { return k.String() + "\x00" + purpose }
	lc := &s.lastConsent
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.last == nil || len(lc.last) > maxConsentSeen {
		lc.last = map[string]string{}
	}
	var missing []graph.Key
	asked := map[graph.Key]bool{}
	for _, r := range recs {
		if _, ok := lc.last[slot(r.Key, r.Purpose)]; !ok && !asked[r.Key] {
			asked[r.Key] = true
			missing = append(missing, r.Key)
		}
	}
	if len(missing) > 0 {
		stored, err := s.consent.Store.ConsentOf(ctx, missing)
		if err != nil {
			return nil, err
		}
		for _, r := range stored { // oldest first: the newest stays
			lc.last[slot(r.Key, r.Purpose)] = r.Status
		}
	}
	var out []consentChange
	byID := map[string]int{} // message → its index in out
	for _, r := range recs {
		k := slot(r.Key, r.Purpose)
		if lc.last[k] == r.Status {
			continue
		}
		lc.last[k] = r.Status
		msg, _, _ := strings.Cut(r.ID, "/")
		i, ok := byID[msg]
		if !ok {
			i, byID[msg] = len(out), len(out)
			out = append(out, consentChange{message: msg, source: r.Source, choices: map[string]string{}})
		}
		out[i].choices[r.Purpose] = r.Status
		if !slices.Contains(out[i].keys, r.Key.String()) {
			out[i].keys = append(out[i].keys, r.Key.String())
		}
	}
	return out, nil
}

// auditConsentChanges appends one entry per message that changed consent,
// concurrently, so that the audit log commits them in one write.
func (s *Server) auditConsentChanges(ctx context.Context, changes []consentChange) {
	var wg sync.WaitGroup
	for _, c := range changes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text, _ := json.Marshal(map[string]any{"messageId": c.message, "source": c.source, "choices": c.choices})
			slices.Sort(c.keys)
			s.record(ctx, audit.Record{Action: "messageConsent", Target: string(text), Subjects: c.keys})
		}()
	}
	wg.Wait()
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
