package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
	segtest "github.com/idgraph/idgraph/segments/storetest"
)

// RunDelivery runs random sequences of entries, exits, new identifiers,
// merges, erasures, consent revocations and withdrawals against a
// manager over the backend, delivering to real receivers that verify
// every signature and answer 500 now and then. Once everything is
// delivered, each receiver must hold exactly the memberships the
// sequence leaves it, every exit must have carried exactly the
// identifiers the receiver was sent for that profile, every receiver sent
// an erased person hears of the erasure, and no sent state of an erased
// person remains.
func RunDelivery(t *testing.T, open graphtest.Opener, seeds, ops int) {
	t.Run("ExitsCarryWhatWasSent", func(t *testing.T) { testExitsCarryWhatWasSent(t, open(t)) })
	t.Run("WithdrawalsSurviveARestart", func(t *testing.T) { testWithdrawalsSurviveARestart(t, open(t)) })
	t.Run("ConsentExpiryExits", func(t *testing.T) { testConsentExpiryExits(t, open(t)) })
	t.Run("ForwardedTraits", func(t *testing.T) { testForwardedTraits(t, open(t)) })
	t.Run("ForwardedTraitsBatched", func(t *testing.T) { testForwardedTraitsBatched(t, open(t)) })
	t.Run("ResyncedTraits", func(t *testing.T) { testResyncedTraits(t, open(t), 1) })
	t.Run("ResyncedTraitsBatched", func(t *testing.T) { testResyncedTraits(t, open(t), 10) })
	t.Run("ConsentGrantCatchesUp", func(t *testing.T) { testConsentGrantCatchesUp(t, open(t)) })
	t.Run("FutureGrantCatchesUp", func(t *testing.T) { testFutureGrantCatchesUp(t, open(t)) })
	t.Run("IdentityChangeCatchesUp", func(t *testing.T) { testIdentityChangeCatchesUp(t, open(t)) })
	t.Run("PendingRetrySchedule", func(t *testing.T) { testPendingRetrySchedule(t, open(t)) })
	t.Run("PendingGoneDisables", func(t *testing.T) { testPendingGoneDisables(t, open(t)) })
	t.Run("PendingFailingTooLongDisables", func(t *testing.T) { testPendingFailingTooLongDisables(t, open(t)) })
	for seed := range seeds {
		t.Run(fmt.Sprintf("Random/seed%d", seed), func(t *testing.T) { runScenario(t, open(t), uint64(seed), ops) })
	}
}

// testExitsCarryWhatWasSent: a person enters, an email joins, a visitor
// merges in, and the person's exit carries the identifiers of the entry,
// not those the profile has at the exit; their erasure carries every
// identifier any entry was sent, and leaves no sent state.
func testExitsCarryWhatWasSent(t *testing.T, g graph.Store) {
	s := newScenario(t, g, 100)
	p := s.people[0]
	first := s.profile(p).ID
	s.setMember(first, "s1", true, segments.ReasonData)
	s.settle()
	s.ingest(p.keys[0], "email:late@example.com")
	s.merge(p)
	survivor := s.profile(p).ID
	if survivor == first {
		s.setMember(first, "s1", false, segments.ReasonData)
	} // else the merge moved first's membership: its exit is the merge's
	s.settle()
	entry := []destinations.Identifier{{Type: "email", Value: "u100-0@example.com"}, {Type: "user_id", Value: "u100-0"}}
	all := s.dests[0].h
	exits := all.received(first, destinations.TypeExited)
	if len(exits) != 1 || fmt.Sprint(exits[0].Data.Identifiers) != fmt.Sprint(entry) {
		t.Fatalf("the exit of %s carries %+v, want the entry's %v", first, exits, entry)
	}
	s.setMember(survivor, "s2", true, segments.ReasonData)
	s.settle()
	s.erase(p)
	s.settle()
	s.check()
	erased := all.received(survivor, destinations.TypeErased)
	if len(erased) != 1 || len(erased[0].Data.Identifiers) != 4 {
		t.Fatalf("the erasure of %s: %+v, want the four identifiers its entries carried", survivor, erased)
	}
}

// testWithdrawalsSurviveARestart: a revocation and a withdrawal stored
// while no worker runs are sent by the workers of the next process.
func testWithdrawalsSurviveARestart(t *testing.T, g graph.Store) {
	s := newScenario(t, g, 200)
	revoked, withdrawn := s.people[0], s.people[1]
	for _, p := range []*person{revoked, withdrawn} {
		s.setMember(s.profile(p).ID, "s1", true, segments.ReasonData)
		s.setMember(s.profile(p).ID, "s2", true, segments.ReasonData)
	}
	s.settle()
	s.stop()
	s.revoke(revoked)
	s.withdraw(withdrawn)
	consented := s.dests[1].h
	if got := consented.holding(); len(got) != 2 {
		t.Fatalf("with no worker running, the receiver changed: %v", got)
	}
	s.start() // the process after a crash
	s.settle()
	s.check()
	for _, m := range consented.received(s.profile(revoked).ID, destinations.TypeExited) {
		if m.Data.Reason != destinations.ReasonConsentRevoked {
			t.Errorf("a revocation's exit has reason %q", m.Data.Reason)
		}
	}
	if n := len(s.dests[0].h.received(s.profile(withdrawn).ID, destinations.TypeExited)); n != 2 {
		t.Errorf("the withdrawn person's exits: %d, want one per segment", n)
	}
	// A denial of someone already denied (every message of theirs may
	// carry one) stores no withdrawal.
	if err := s.cons.AppendConsent(s.ctx, []consent.Record{{ID: "deny-again", Key: graph.Key{Type: "user_id", Value: revoked.user},
		Purpose: purpose, Status: consent.Denied, Time: time.Now().UTC(), Source: "test"}}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.sent.PendingSent(s.ctx, s.dests[1].d.ID, 10); err != nil || len(p) != 0 {
		t.Errorf("a repeated denial stored %v %v", p, err)
	}
}

// testConsentExpiryExits: a grant with an expiry that lapses takes the
// person out of the destination with that purpose with no new choice or
// event (the consent sweep finds them in its sent state), with reason
// consent_expired; the destinations without the purpose keep them.
func testConsentExpiryExits(t *testing.T, g graph.Store) {
	s := newScenario(t, g, 300)
	ahead := s.consentAhead(func(o *destinations.Options) { o.ConsentSweep = 20 * time.Millisecond })
	p, kept := s.people[0], s.people[1]
	now := time.Now().UTC()
	if err := s.cons.AppendConsent(s.ctx, []consent.Record{{ID: "expiring-" + p.user, Key: graph.Key{Type: "user_id", Value: p.user},
		Purpose: purpose, Status: consent.Granted, Time: now, Expires: now.Add(time.Hour), Source: "test"}}); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*person{p, kept} {
		s.setMember(s.profile(x).ID, "s1", true, segments.ReasonData)
	}
	s.settle()
	consented := s.dests[1]
	prof := s.profile(p)
	if n := len(consented.h.received(prof.ID, destinations.TypeEntered)); n != 1 {
		t.Fatalf("before the expiry %s got %d entries of the person, want 1", consented.d.Name, n)
	}
	ahead.Store(int64(2 * time.Hour))
	deadline := time.Now().Add(2 * time.Minute)
	for len(consented.h.received(prof.ID, destinations.TypeExited)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no exit after the consent expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.settle()
	s.forget(consented, prof)
	s.check()
	exits := consented.h.received(prof.ID, destinations.TypeExited)
	if len(exits) != 1 || exits[0].Data.Reason != destinations.ReasonConsentExpired || exits[0].Data.Segment != "s1" {
		t.Fatalf("exits after the expiry: %+v, want one of s1 with reason %s", exits, destinations.ReasonConsentExpired)
	}
}

// testConsentGrantCatchesUp: entries withheld for want of consent are
// sent (reason consent_granted, the policy's identifiers) once consent is
// granted: at once; after a restart when the grant was acknowledged with
// no worker running; not for a segment the person left before the
// catch-up ran; exits and entries in order after a revocation and a new
// grant; never again for a grant repeated; and not at all for a grant
// whose write failed after its catch-up was stored.
func testConsentGrantCatchesUp(t *testing.T, g graph.Store) {
	s := newScenario(t, g, 400)
	consented := s.dests[1]
	user, visitor, racer, failed, killed := s.people[0], s.people[5], s.people[6], s.people[7], s.people[8]
	for _, p := range []*person{user, visitor, racer, failed, killed} {
		s.setMember(s.profile(p).ID, "s1", true, segments.ReasonData)
	}
	s.setMember(s.profile(visitor).ID, "s2", true, segments.ReasonData)
	s.settle()
	vid := s.profile(visitor).ID
	if n := len(consented.h.received(vid, destinations.TypeEntered)); n != 0 {
		t.Fatalf("entries of an unconsented visitor: %d", n)
	}
	// A grant while the workers run.
	s.grant(visitor, time.Now().UTC())
	consented.expect[vid] = map[string]bool{"s1": true, "s2": true}
	s.settle()
	s.check()
	entries := consented.h.received(vid, destinations.TypeEntered)
	want := []destinations.Identifier{{Type: "email", Value: "va400-0@example.com"}}
	if len(entries) != 2 || entries[0].Data.Reason != destinations.ReasonConsentGranted || fmt.Sprint(entries[0].Data.Identifiers) != fmt.Sprint(want) {
		t.Fatalf("after the grant %s got %+v, want entries of s1 and s2 with reason %s carrying %v", consented.d.Name, entries, destinations.ReasonConsentGranted, want)
	}
	// A grant repeated stores nothing and sends nothing.
	s.grant(visitor, time.Now().UTC())
	if p, err := s.sent.PendingSent(s.ctx, consented.d.ID, 10); err != nil || len(p) != 0 {
		t.Fatalf("a repeated grant stored %v %v", p, err)
	}

	// Acknowledged with no worker running (a kill -9 before anything was
	// queued), then a revocation and a new grant, and a member who left
	// before the catch-up ran; a grant whose write failed, and one whose
	// write was stored and then the process died.
	s.stop()
	s.grant(racer, time.Now().UTC())
	s.setMember(s.profile(racer).ID, "s1", false, segments.ReasonData)
	s.revoke(user)
	s.grant(user, time.Now().UTC().Add(time.Millisecond))
	user.revoked = false
	uid := s.profile(user).ID
	consented.expect[uid] = map[string]bool{"s1": true}
	broken := s.m.WithdrawOnRevocation(failingConsent{s.raw})
	if err := broken.AppendConsent(s.ctx, []consent.Record{grantOf(failed, time.Now().UTC())}); err == nil {
		t.Fatal("the failing consent store stored")
	}
	if err := s.m.WithdrawOnRevocation(killedConsent{s.raw}).AppendConsent(s.ctx, []consent.Record{grantOf(killed, time.Now().UTC())}); err == nil {
		t.Fatal("the killed consent store answered")
	}
	kid := s.profile(killed).ID
	consented.expect[kid] = map[string]bool{"s1": true}
	s.start()
	// Their guards' minute passes.
	s.due(consented, s.profile(failed).ID)
	s.due(consented, kid)
	s.settle()
	s.check()
	if n := len(consented.h.received(s.profile(racer).ID, destinations.TypeEntered)); n != 0 {
		t.Errorf("%d entries of a member who left before the catch-up", n)
	}
	if n := len(consented.h.received(s.profile(failed).ID, destinations.TypeEntered)); n != 0 {
		t.Errorf("%d entries after a grant that was not stored", n)
	}
	if e := consented.h.received(kid, destinations.TypeEntered); len(e) != 1 || e[0].Data.Reason != destinations.ReasonConsentGranted {
		t.Errorf("after a grant stored by a process that died: %+v", e)
	}
	var kinds []string
	for _, m := range consented.h.got[uid] {
		kinds = append(kinds, m.Type+"/"+m.Data.Reason)
	}
	if want := []string{"segment.entered/data", "segment.exited/consent_revoked", "segment.entered/consent_granted"}; !slices.Equal(kinds, want) {
		t.Errorf("the user revoked and granted again got %v, want %v", kinds, want)
	}
	// The caught-up entry's identifiers are the exit's.
	s.setMember(vid, "s1", false, segments.ReasonData)
	s.settle()
	s.check()
}

// testIdentityChangeCatchesUp: consent that changes through the identity
// graph, with no new choice, is acted on as a choice would be: a merge
// that brings a granting identifier to a visitor whose entries were
// withheld sends them (consent_granted, once, even when asked twice), and
// a split that takes the identifier away again sends the exits
// (consent_revoked).
func testIdentityChangeCatchesUp(t *testing.T, g graph.Store) {
	s := newScenario(t, g, 600)
	consented, visitor := s.dests[1], s.people[5]
	vid := s.profile(visitor).ID
	s.setMember(vid, "s1", true, segments.ReasonData)
	s.settle()
	if n := len(consented.h.received(vid, destinations.TypeEntered)); n != 0 {
		t.Fatalf("entries of an unconsented visitor: %d", n)
	}
	// A younger profile with a grant merges into the visitor's: the
	// visitor's profile survives, its membership unchanged (no record).
	newcomer := graph.Key{Type: "user_id", Value: "u600-new"}
	if err := s.raw.AppendConsent(s.ctx, []consent.Record{{ID: "grant-u600-new", Key: newcomer, Purpose: purpose,
		Status: consent.Granted, Time: time.Now().UTC(), Source: "test"}}); err != nil {
		t.Fatal(err)
	}
	s.ingest("user_id:u600-new", "email:new600@example.com")
	s.ingest(visitor.keys[0], "user_id:u600-new")
	if got := s.profile(visitor).ID; got != vid {
		t.Fatalf("the visitor's profile %s was absorbed into %s", vid, got)
	}
	for range 2 {
		if err := s.m.IdentityChanged(s.ctx, []string{vid}); err != nil {
			t.Fatal(err)
		}
	}
	consented.expect[vid] = map[string]bool{"s1": true}
	s.settle()
	s.check()
	if e := consented.h.received(vid, destinations.TypeEntered); len(e) != 1 || e[0].Data.Reason != destinations.ReasonConsentGranted {
		t.Fatalf("after the merge: %+v, want one entry with reason %s", e, destinations.ReasonConsentGranted)
	}
	// A steward splits the newcomer out again: the visitor has no grant.
	if _, err := graph.NewStitcher(g, graph.DefaultConfig()).Split(s.ctx, "steward", vid, []graph.Key{newcomer}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := s.m.IdentityChanged(s.ctx, []string{vid}); err != nil {
		t.Fatal(err)
	}
	delete(consented.expect, vid)
	s.settle()
	s.check()
	if x := consented.h.received(vid, destinations.TypeExited); len(x) != 1 || x[0].Data.Reason != destinations.ReasonConsentRevoked {
		t.Fatalf("after the split: %+v, want one exit with reason %s", x, destinations.ReasonConsentRevoked)
	}
}

// testFutureGrantCatchesUp: a grant dated in the future sends nothing
// before its time and the withheld entries once it starts.
func testFutureGrantCatchesUp(t *testing.T, g graph.Store) {
	s := newScenario(t, g, 500)
	ahead := s.consentAhead(func(*destinations.Options) {})
	consented, visitor := s.dests[1], s.people[5]
	vid := s.profile(visitor).ID
	s.setMember(vid, "s1", true, segments.ReasonData)
	s.settle()
	start := time.Now().UTC().Add(time.Hour)
	s.grant(visitor, start)
	rows, err := s.sent.PendingSent(s.ctx, consented.d.ID, 10)
	if err != nil || len(rows) != 1 || rows[0].Pending.Kind != destinations.PendingCatchUp || !rows[0].Pending.Recheck.Equal(start) {
		t.Fatalf("pending after a grant starting at %v: %+v %v", start, rows, err)
	}
	if n := len(consented.h.received(vid, destinations.TypeEntered)); n != 0 {
		t.Fatalf("%d entries before the grant starts", n)
	}
	// Two hours pass: for the consent check, and for the catch-up's time.
	ahead.Store(int64(2 * time.Hour))
	s.due(consented, vid)
	consented.expect[vid] = map[string]bool{"s1": true}
	s.settle()
	s.check()
}

// consentAhead restarts the manager, with the options changed by set,
// asking the consent check at a clock that runs as far ahead as the
// returned duration (0 at first).
func (s *scenario) consentAhead(set func(*destinations.Options)) *atomic.Int64 {
	ahead := new(atomic.Int64)
	s.stop()
	check := s.opts.Consent
	s.opts.Consent = func(ctx context.Context, profile, purpose string, at time.Time) (consent.Decision, error) {
		return check(ctx, profile, purpose, at.Add(time.Duration(ahead.Load())))
	}
	set(&s.opts)
	s.start()
	return ahead
}

// due makes the profile's catch-up on the destination due now, as if its
// time had come.
func (s *scenario) due(d *target, profile string) {
	if err := s.sent.UpdateSent(s.ctx, d.d.ID, profile, func(cur *destinations.Sent) (bool, error) {
		if cur.Pending == nil || cur.Pending.Kind != destinations.PendingCatchUp {
			s.t.Errorf("%s has no catch-up of %s: %+v", d.d.Name, profile, cur.Pending)
			return cur.Pending != nil || len(cur.Segments)+len(cur.Identifiers) > 0, nil
		}
		cur.Pending.NotBefore = time.Now().UTC()
		return true, nil
	}); err != nil {
		s.t.Fatal(err)
	}
	s.m.Wake()
}

// grant records the person's grant of the purpose starting at at, through
// the manager's wrapper.
func (s *scenario) grant(p *person, at time.Time) {
	if err := s.cons.AppendConsent(s.ctx, []consent.Record{grantOf(p, at)}); err != nil {
		s.t.Fatal(err)
	}
}

func grantOf(p *person, at time.Time) consent.Record {
	typ, v, _ := strings.Cut(p.keys[0], ":")
	k := graph.Key{Type: typ, Value: v}
	return consent.Record{ID: fmt.Sprintf("grant-%s-%d", v, at.UnixNano()), Key: k, Purpose: purpose,
		Status: consent.Granted, Time: at, Source: "test"}
}

// failingConsent stores nothing: a process killed after a catch-up was
// stored and before the choice was.
type failingConsent struct{ consent.Store }

func (failingConsent) AppendConsent(context.Context, []consent.Record) error {
	return fmt.Errorf("killed")
}

// killedConsent stores the choices and fails: a process killed after the
// choice was stored and before its catch-up was confirmed.
type killedConsent struct{ consent.Store }

func (k killedConsent) AppendConsent(ctx context.Context, recs []consent.Record) error {
	if err := k.Store.AppendConsent(ctx, recs); err != nil {
		return err
	}
	return fmt.Errorf("killed")
}

// hook is a receiver that keeps what a destination holds, as a receiver
// following docs/activation.md would.
type hook struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	legacy bool // no identifier policy: no message may carry identifiers
	name   string

	mu       sync.Mutex
	rnd      *rand.Rand
	seen     map[string]bool
	hold     map[string]map[string]bool // profile → segments
	sent     map[string]map[destinations.Identifier]bool
	entered  map[string]bool // profiles ever entered
	erased   map[string]bool
	messages int
	log      map[string][]string // profile → the messages received, for failures
	got      map[string][]message
}

// received returns the messages of a type received for a profile.
func (h *hook) received(profile, typ string) []message {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []message
	for _, m := range h.got[profile] {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

func newHook(t *testing.T, seed uint64, legacy bool) *hook {
	h := &hook{t: t, legacy: legacy, rnd: rand.New(rand.NewPCG(seed, 99)), seen: map[string]bool{},
		hold: map[string]map[string]bool{}, sent: map[string]map[destinations.Identifier]bool{},
		entered: map[string]bool{}, erased: map[string]bool{}, log: map[string][]string{}, got: map[string][]message{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// message is the data of every message type a destination is sent.
type message struct {
	Type string `json:"type"`
	Data struct {
		Segment     string                    `json:"segment"`
		Segments    []string                  `json:"segments"`
		Profile     string                    `json:"profile"`
		Reason      string                    `json:"reason"`
		Identifiers []destinations.Identifier `json:"identifiers"`
	} `json:"data"`
}

func (h *hook) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(h.secret)
	if err == nil {
		err = wh.Verify(body, req.Header)
	}
	if err != nil {
		h.t.Errorf("signature refused: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if h.rnd.IntN(8) == 0 {
		w.WriteHeader(http.StatusInternalServerError) // a retry must not corrupt anything
		return
	}
	id := req.Header.Get("webhook-id")
	if h.seen[id] {
		return
	}
	h.seen[id] = true
	h.messages++
	var m message
	if err := json.Unmarshal(body, &m); err != nil {
		h.t.Errorf("body %s: %v", body, err)
		return
	}
	if h.legacy && m.Data.Identifiers != nil {
		h.t.Errorf("a destination without a policy was sent identifiers: %s", body)
	}
	p := m.Data.Profile
	h.log[p] = append(h.log[p], id+" "+string(body))
	h.got[p] = append(h.got[p], m)
	switch m.Type {
	case destinations.TypeEntered:
		if h.hold[p] == nil {
			h.hold[p] = map[string]bool{}
		}
		h.hold[p][m.Data.Segment] = true
		h.entered[p] = true
		if h.sent[p] == nil {
			h.sent[p] = map[destinations.Identifier]bool{}
		}
		for _, n := range m.Data.Identifiers {
			h.sent[p][n] = true
		}
		return
	case destinations.TypeExited:
		delete(h.hold[p], m.Data.Segment)
	case destinations.TypeErased:
		delete(h.hold, p)
		h.erased[p] = true
	default:
		h.t.Errorf("unexpected message %s", body)
		return
	}
	got := map[destinations.Identifier]bool{}
	for _, n := range m.Data.Identifiers {
		got[n] = true
	}
	if want := h.sent[p]; len(want)+len(got) > 0 && !maps.Equal(got, want) {
		h.t.Errorf("%s: %s of %s (reason %s) carries %v, but the destination was sent %v", h.name, m.Type, p, m.Data.Reason, m.Data.Identifiers, slices.Collect(maps.Keys(want)))
		for _, l := range h.log[p] {
			h.t.Log(l)
		}
	}
}

// holding returns the receiver's memberships, without empty entries.
func (h *hook) holding() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return holdingOf(h.hold)
}

func holdingOf(m map[string]map[string]bool) map[string][]string {
	out := map[string][]string{}
	for p, segs := range m {
		for s, in := range segs {
			if in {
				out[p] = append(out[p], s)
			}
		}
		slices.Sort(out[p])
	}
	for p, segs := range out {
		if len(segs) == 0 {
			delete(out, p)
		}
	}
	return out
}

// scenario is one random run and the model of what each receiver holds.
type scenario struct {
	t    *testing.T
	ctx  context.Context
	g    graph.Store
	seg  segments.Store
	sent destinations.SentStore
	raw  consent.Store // the store itself
	cons consent.Store // raw, wrapped by the manager
	m    *destinations.Manager
	opts destinations.Options
	stop func()
	rnd  *rand.Rand
	n    int

	dests  []*target
	people []*person
	// member is the segments' truth: profile → segments.
	member map[string]map[string]bool
	// erased are the profile IDs of erased people.
	erased []string
}

type target struct {
	d       *destinations.Destination
	h       *hook
	segs    []string
	purpose string
	expect  map[string]map[string]bool
}

type person struct {
	user    string   // user_id, "" for an anonymous visitor
	anon    string   // anonymous_id of a visitor
	merged  bool     // a visitor merged into a person
	gone    bool     // erased
	revoked bool     // analytics consent revoked
	keys    []string // type:value, the first one finds the profile
}

const purpose = "analytics"

func runScenario(t *testing.T, g graph.Store, seed uint64, ops int) {
	s := newScenario(t, g, seed)
	for range ops {
		s.step()
		if s.rnd.IntN(4) == 0 {
			time.Sleep(time.Duration(s.rnd.IntN(3)) * time.Millisecond) // let the workers interleave
		}
	}
	s.settle()
	s.check()
}

// newScenario runs a manager over g with three destinations: "all"
// (email and user_id, all of them), "consented" (purpose analytics,
// the first user_id and email) and "legacy" (no policy, s2 only); five
// people with a user ID, an email and analytics consent granted, and
// four anonymous visitors with an email.
func newScenario(t *testing.T, g graph.Store, seed uint64) *scenario {
	s := &scenario{t: t, ctx: context.Background(), g: g, rnd: rand.New(rand.NewPCG(seed, 5)), member: map[string]map[string]bool{}}
	s.seg = graphtest.As[segments.Backend](t, g).Segments()
	s.sent = graphtest.As[destinations.SentBackend](t, g).SentState()
	for _, k := range []string{"s1", "s2"} {
		segtest.Define(t, s.seg, lang.KindSegment, k, "traits.plan = 'pro'")
	}
	purposes, _ := consent.NewPurposes(nil, nil)
	s.raw = graphtest.As[consent.Backend](t, g).Consent()
	chk := &consent.Checker{Store: s.raw, Reader: g, Purposes: purposes}
	sealer, err := destinations.NewSealer([]byte("test-pepper-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	schedule := make([]time.Duration, 60)
	for i := range schedule {
		schedule[i] = time.Millisecond
	}
	s.opts = destinations.Options{
		Store: graphtest.As[destinations.Backend](t, g).Destinations(), Segments: s.seg, Sent: s.sent, Profiles: g, Sealer: sealer,
		Client:   destinations.NewClient(destinations.ClientOptions{URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}, Timeout: 5 * time.Second}),
		Schedule: schedule, Jitter: -1, Poll: 10 * time.Millisecond, Batch: 7,
		Consent: chk.CheckID, Purposes: purposes, Log: slog.New(slog.DiscardHandler)}
	s.start()
	t.Cleanup(func() { s.stop() })

	s.addTarget(seed, "all", []string{"s1", "s2"}, "", &destinations.IdentifierPolicy{Types: []string{"email", "user_id"}, Mode: destinations.IdentifiersAll})
	s.addTarget(seed, "consented", []string{"s1", "s2"}, purpose, &destinations.IdentifierPolicy{Types: []string{"user_id", "email"}, Mode: destinations.IdentifiersFirst})
	s.addTarget(seed, "legacy", []string{"s2"}, "", nil)
	for i := range 5 {
		u := fmt.Sprintf("u%d-%d", seed, i)
		s.people = append(s.people, &person{user: u, keys: []string{"user_id:" + u}})
		s.ingest("user_id:"+u, fmt.Sprintf("email:%s@example.com", u))
		if err := s.raw.AppendConsent(s.ctx, []consent.Record{{ID: "grant-" + u, Key: graph.Key{Type: "user_id", Value: u},
			Purpose: purpose, Status: consent.Granted, Time: time.Now().UTC().Add(-time.Hour), Source: "test"}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		a := fmt.Sprintf("a%d-%d", seed, i)
		s.people = append(s.people, &person{anon: a, keys: []string{"anonymous_id:" + a}})
		s.ingest("anonymous_id:"+a, fmt.Sprintf("email:v%s@example.com", a))
	}
	return s
}

// start runs a new manager over the scenario's stores, as a process
// starting would.
func (s *scenario) start() {
	m, err := destinations.NewManager(s.opts)
	if err != nil {
		s.t.Fatal(err)
	}
	s.m, s.cons = m, m.WithdrawOnRevocation(s.raw)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	s.stop = func() { cancel(); <-done }
}

func (s *scenario) addTarget(seed uint64, name string, segs []string, purpose string, p *destinations.IdentifierPolicy) {
	h := newHook(s.t, seed+uint64(len(s.dests)), p == nil)
	d, secret, err := s.m.Create(s.ctx, name, h.srv.URL+"/hook", segs)
	if err != nil {
		s.t.Fatal(err)
	}
	h.secret, h.name = secret, name
	if purpose != "" {
		if d, err = s.m.SetPurpose(s.ctx, d.ID, purpose); err != nil {
			s.t.Fatal(err)
		}
	}
	if p != nil {
		if d, err = s.m.SetIdentifierPolicy(s.ctx, d.ID, p); err != nil {
			s.t.Fatal(err)
		}
	}
	s.dests = append(s.dests, &target{d: d, h: h, segs: segs, purpose: purpose, expect: map[string]map[string]bool{}})
}

func (s *scenario) ingest(ids ...string) {
	s.n++
	o := graphtest.Obs(fmt.Sprintf("m%d", s.n), time.Now().UTC(), ids...)
	o.Event = graph.Event{Type: "identify"}
	graphtest.Ingest(s.t, s.g, o)
}

func (s *scenario) profile(p *person) *graph.Profile {
	return graphtest.ProfileOf(s.t, s.g, p.keys[0])
}

// live returns the people still to be found, as profiles of their own.
func (s *scenario) live() []*person {
	var out []*person
	for _, p := range s.people {
		if !p.gone && !p.merged {
			out = append(out, p)
		}
	}
	return out
}

func (s *scenario) step() {
	people := s.live()
	if len(people) == 0 {
		return
	}
	p := people[s.rnd.IntN(len(people))]
	switch n := s.rnd.IntN(100); {
	case n < 35:
		s.setMember(s.profile(p).ID, []string{"s1", "s2"}[s.rnd.IntN(2)], true, segments.ReasonData)
	case n < 60:
		prof := s.profile(p).ID
		for seg, in := range s.member[prof] {
			if in {
				s.setMember(prof, seg, false, segments.ReasonData)
				break
			}
		}
	case n < 70:
		s.n++
		s.ingest(p.keys[0], fmt.Sprintf("email:new%d@example.com", s.n))
	case n < 80 && p.user != "":
		s.merge(p)
	case n < 87 && p.user != "" && !p.revoked:
		s.revoke(p)
	case n < 94:
		s.withdraw(p)
	case n < 100 && p.user != "":
		s.erase(p)
	}
}

// setMember records one change the way the engine does, and what each
// destination should then hold.
func (s *scenario) setMember(profile, seg string, in bool, reason string) {
	sts, err := s.seg.States(s.ctx, []string{profile})
	if err != nil {
		s.t.Fatal(err)
	}
	st := &segments.ProfileState{Profile: profile}
	if len(sts) > 0 && sts[0] != nil {
		st = sts[0]
	}
	entries := maps.Clone(st.Entries)
	if entries == nil {
		entries = map[string]segments.Entry{}
	}
	ref := "segment:" + seg
	if in == entries[ref].Member {
		return
	}
	if in {
		entries[ref] = segments.Entry{Version: 1, Member: true, Since: time.Now().UTC()}
	} else {
		delete(entries, ref)
	}
	next := *st
	next.Entries = entries
	if _, err := s.seg.SaveStates(s.ctx, []segments.Save{{State: &next, Reason: reason, At: time.Now().UTC()}}); err != nil {
		s.t.Fatal(err)
	}
	if s.member[profile] == nil {
		s.member[profile] = map[string]bool{}
	}
	s.member[profile][seg] = in
	owner := s.owner(profile)
	for _, d := range s.dests {
		if !slices.Contains(d.segs, seg) {
			continue
		}
		if in && d.purpose != "" && (owner == nil || owner.user == "" || owner.revoked) {
			continue // withheld for want of consent
		}
		if d.expect[profile] == nil {
			d.expect[profile] = map[string]bool{}
		}
		d.expect[profile][seg] = in
	}
}

// owner returns the person (with a user ID) whose live profile is
// profile, nil for a visitor's.
func (s *scenario) owner(profile string) *person {
	for _, p := range s.people {
		if p.user != "" && !p.gone && s.profile(p).ID == profile {
			return p
		}
	}
	return nil
}

// merge links a visitor to the person: one of the two profiles absorbs
// the other, whose memberships move to the survivor as the engine moves
// them (exits and entries with reason profile_merged).
func (s *scenario) merge(p *person) {
	var v *person
	for _, x := range s.live() {
		if x.anon != "" {
			v = x
			break
		}
	}
	if v == nil {
		return
	}
	before := map[string]bool{s.profile(p).ID: true, s.profile(v).ID: true}
	s.ingest(v.keys[0], p.keys[0])
	v.merged = true
	v.keys = p.keys
	survivor := s.profile(p).ID
	for id := range before {
		if id == survivor {
			continue
		}
		for seg, in := range s.member[id] {
			if in {
				s.setMember(id, seg, false, segments.ReasonMerged)
				s.setMember(survivor, seg, true, segments.ReasonMerged)
			}
		}
	}
}

func (s *scenario) revoke(p *person) {
	p.revoked = true
	prof := s.profile(p)
	if err := s.cons.AppendConsent(s.ctx, []consent.Record{{ID: fmt.Sprintf("deny-%s", p.user), Key: graph.Key{Type: "user_id", Value: p.user},
		Purpose: purpose, Status: consent.Denied, Time: time.Now().UTC(), Source: "test"}}); err != nil {
		s.t.Fatal(err)
	}
	for _, d := range s.dests {
		if d.purpose == purpose {
			s.forget(d, prof)
		}
	}
}

func (s *scenario) withdraw(p *person) {
	prof := s.profile(p)
	if _, err := s.m.Withdraw(s.ctx, prof.ID, destinations.ReasonSuppressed); err != nil {
		s.t.Fatal(err)
	}
	for _, d := range s.dests {
		s.forget(d, prof)
	}
}

func (s *scenario) forget(d *target, prof *graph.Profile) {
	for _, id := range append([]string{prof.ID}, prof.Absorbed...) {
		delete(d.expect, id)
	}
}

func (s *scenario) erase(p *person) {
	prof := s.profile(p)
	if _, err := graphtest.As[erase.Backend](s.t, s.g).Erasure().ErasePerson(s.ctx, erase.Request{ID: fmt.Sprintf("erasure-%d", s.n), Profile: prof.ID, At: time.Now().UTC()}); err != nil {
		s.t.Fatal(err)
	}
	s.n++
	for _, x := range s.people {
		if x == p || x.merged && slices.Equal(x.keys, p.keys) {
			x.gone = true
		}
	}
	for _, d := range s.dests {
		s.forget(d, prof)
	}
	for _, id := range append([]string{prof.ID}, prof.Absorbed...) {
		delete(s.member, id)
		s.erased = append(s.erased, id)
	}
}

// settle waits until every destination has delivered every record and
// sent every pending request.
func (s *scenario) settle() {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		last, err := s.seg.LastChange(s.ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		idle := true
		for _, d := range s.dests {
			c, err := s.m.Cursor(s.ctx, d.d.ID)
			if err != nil {
				s.t.Fatal(err)
			}
			pending, err := s.sent.PendingSent(s.ctx, d.d.ID, 1)
			if err != nil {
				s.t.Fatal(err)
			}
			if c.DeadLettered > 0 {
				s.t.Fatalf("%s dead-lettered a record: %s", d.d.Name, c.LastError)
			}
			if c.After != last || len(pending) > 0 {
				idle = false
			}
		}
		if idle {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatal("the destinations did not catch up")
		}
		s.m.Wake()
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *scenario) check() {
	t := s.t
	for _, d := range s.dests {
		if got, want := d.h.holding(), holdingOf(d.expect); !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%s holds %v, want %v", d.d.Name, got, want)
		}
		d.h.mu.Lock()
		for _, id := range s.erased {
			if d.h.entered[id] && !d.h.erased[id] {
				t.Errorf("%s was sent %s but not its erasure", d.d.Name, id)
			}
		}
		t.Logf("%s: %d messages", d.d.Name, d.h.messages)
		d.h.mu.Unlock()
	}
	if rows, err := s.sent.SentTo(s.ctx, s.erased); err != nil || len(rows) > 0 {
		t.Errorf("sent state of erased profiles remains (err %v):", err)
		for _, r := range rows {
			t.Errorf("  %+v pending %+v", *r, r.Pending)
		}
	}
}
