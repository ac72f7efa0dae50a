package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// consentModel is what the property test sent: every record, by the
// identifier it was attached to, and whose identifier is whose.
type consentModel struct {
	recs  map[graph.Key][]consent.Record
	owner map[graph.Key]int
}

// The purposes the generator uses, and RudderStack ids for them.
var (
	propPurposes = []string{"analytics", "marketing"}
	propIDs      = map[string]string{"analytics": "C0002", "marketing": "C0003"}
)

// TestConsentProperty runs random sequences of identify messages with
// Segment and RudderStack consent contexts, merges through shared
// identifiers (a message carrying two people's identifiers), steward
// splits, explicit recordConsent calls with expiries, and after every step
// checks each live profile with the one check, at now and at later times:
//   - the decision equals what the records of the profile's own
//     identifiers say (so after a split each side has its own consent);
//   - a granted profile has no identifier whose own latest choice is a
//     denial or expired: one person's grant never covers another's records;
//   - an expired choice is never granted.
func TestConsentProperty(t *testing.T) {
	var merged, splits, expired, granted, conflicts int
	for _, b := range backends.All() {
		seeds, steps := 6, 30
		if b.Name == "neo4j" {
			seeds, steps = 1, 20 // every step checks every profile over Bolt
		}
		for seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed%d", b.Name, seed), func(t *testing.T) {
				f := newFixtureWith(t, b.Open, func(cfg *server.Config) {
					p, err := consent.NewPurposes(nil, map[string]string{"C0002": "analytics", "C0003": "marketing"})
					if err != nil {
						t.Fatal(err)
					}
					cfg.Purposes = p
				})
				st := propRun{t: t, f: f, rng: rand.New(rand.NewPCG(uint64(seed), 14)),
					m:   consentModel{recs: map[graph.Key][]consent.Record{}, owner: map[graph.Key]int{}},
					chk: &consent.Checker{Store: f.store.(consent.Backend).Consent(), Reader: f.store}}
				st.chk.Purposes, _ = consent.NewPurposes(nil, nil)
				for step := range steps {
					st.step(step)
					st.check(step)
				}
				merged += st.merged
				splits += st.splits
				expired += st.expired
				granted += st.granted
				conflicts += st.conflicts
			})
		}
	}
	t.Logf("checked: %d profile states granted, %d expired, %d conflicts; %d multi-person profiles seen, %d splits", granted, expired, conflicts, merged, splits)
	if merged == 0 || splits == 0 || expired == 0 || granted == 0 || conflicts == 0 {
		t.Errorf("the generator did not reach every case: merged %d, splits %d, expired %d, granted %d, conflicts %d", merged, splits, expired, granted, conflicts)
	}
}

type propRun struct {
	t       *testing.T
	f       *fixture
	rng     *rand.Rand
	m       consentModel
	chk     *consent.Checker
	msg     int
	merged  int
	splits  int
	expired int
	granted int
	// conflicts counts CONFLICT decisions seen.
	conflicts int
}

const propPersons = 4

func personKeys(i int) []graph.Key {
	return []graph.Key{{Type: graph.TypeUserID, Value: fmt.Sprintf("p%d", i)},
		{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("p%d-a0", i)}, {Type: graph.TypeAnonymousID, Value: fmt.Sprintf("p%d-a1", i)}}
}

// send posts an identify with a user ID and/or an anonymous ID and, when
// choices is set, a consent context in one of the two SDKs' forms; the
// model records what ingest must attach.
func (r *propRun) send(user, anon *graph.Key, choices map[string]bool) {
	r.msg++
	id := fmt.Sprintf("m%d", r.msg)
	at := time.Date(2026, 1, 1, 0, r.msg, 0, 0, time.UTC)
	m := map[string]any{"messageId": id, "timestamp": at.Format(time.RFC3339)}
	var keys []graph.Key
	if user != nil {
		m["userId"] = user.Value
		keys = append(keys, *user)
	}
	if anon != nil {
		m["anonymousId"] = anon.Value
		keys = append(keys, *anon)
	}
	if len(choices) > 0 {
		if r.rng.IntN(2) == 0 {
			m["context"] = map[string]any{"consent": map[string]any{"categoryPreferences": choices}}
		} else {
			var allowed, denied []string
			for p, ok := range choices {
				if ok {
					allowed = append(allowed, propIDs[p])
				} else {
					denied = append(denied, propIDs[p])
				}
			}
			m["context"] = map[string]any{"consentManagement": map[string]any{"allowedConsentIds": allowed, "deniedConsentIds": denied}}
		}
		for p, ok := range choices {
			status := consent.Denied
			if ok {
				status = consent.Granted
			}
			for _, k := range keys {
				r.m.recs[k] = append(r.m.recs[k], consent.Record{ID: id + "/" + p, Key: k, Purpose: p, Status: status, Time: at})
			}
		}
	}
	body, _ := json.Marshal(m)
	r.f.send(r.t, "/v1/identify", string(body))
}

func (r *propRun) choices() map[string]bool {
	c := map[string]bool{}
	for _, p := range propPurposes {
		if r.rng.IntN(3) > 0 {
			c[p] = r.rng.IntN(3) > 0
		}
	}
	return c
}

func (r *propRun) step(step int) {
	for i := range propPersons {
		for _, k := range personKeys(i) {
			r.m.owner[k] = i
		}
	}
	switch op := r.rng.IntN(10); {
	case step < propPersons: // everyone first says who they are
		ks := personKeys(step)
		r.send(&ks[0], &ks[1+r.rng.IntN(2)], r.choices())
	case op < 4: // a person comes back, with or without a choice
		ks := personKeys(r.rng.IntN(propPersons))
		var user *graph.Key
		if r.rng.IntN(2) == 0 {
			user = &ks[0]
		}
		r.send(user, &ks[1+r.rng.IntN(2)], r.choices())
	case op < 6: // a shared identifier merges two people: no consent context
		a, b := r.rng.IntN(propPersons), r.rng.IntN(propPersons)
		ka, kb := personKeys(a), personKeys(b)
		r.send(&ka[0], &kb[1+r.rng.IntN(2)], nil)
	case op < 8: // an explicit choice on one identifier, sometimes expiring
		i := r.rng.IntN(propPersons)
		k := personKeys(i)[r.rng.IntN(3)]
		if r.profileOf(k) == "" {
			return
		}
		p := propPurposes[r.rng.IntN(2)]
		status := []string{"GRANTED", "DENIED"}[r.rng.IntN(2)]
		vars := map[string]any{"s": map[string]any{"type": k.Type, "value": k.Value}, "u": p, "st": status}
		if r.rng.IntN(2) == 0 {
			vars["e"] = time.Now().UTC().Add(time.Hour).Format(time.RFC3339Nano)
		}
		d := r.f.act(r.t, `mutation($s: IdentifierInput, $u: String!, $st: ConsentStatus!, $e: Time) {
			recordConsent(subject: $s, purpose: $u, status: $st, expiresAt: $e) { history { id subject { type value } purpose status time expiresAt source } } }`, vars)
		r.adoptExplicit(get(d, "recordConsent.history").([]any))
	default: // a steward splits one person out of a profile holding several
		r.splitOne()
	}
}

// adoptExplicit adds the API records the model does not know yet (their
// time is the server's).
func (r *propRun) adoptExplicit(history []any) {
	for _, h := range history {
		if get(h, "source") != consent.SourceAPI {
			continue
		}
		k := graph.Key{Type: get(h, "subject.type").(string), Value: get(h, "subject.value").(string)}
		id := get(h, "id").(string)
		if slices.ContainsFunc(r.m.recs[k], func(x consent.Record) bool { return x.ID == id }) {
			continue
		}
		rec := consent.Record{ID: id, Key: k, Purpose: get(h, "purpose").(string), Status: get(h, "status").(string)}
		rec.Time, _ = time.Parse(time.RFC3339Nano, get(h, "time").(string))
		if e, ok := get(h, "expiresAt").(string); ok {
			rec.Expires, _ = time.Parse(time.RFC3339Nano, e)
		}
		r.m.recs[k] = append(r.m.recs[k], rec)
	}
}

func (r *propRun) profileOf(k graph.Key) string {
	n, err := r.f.store.Identifier(context.Background(), k)
	if err != nil {
		return ""
	}
	p, err := r.f.store.Profile(context.Background(), n.Profile)
	if err != nil {
		r.t.Fatal(err)
	}
	if p.MergedInto != "" {
		return p.MergedInto
	}
	return p.ID
}

// profiles returns every live profile with its identifiers.
func (r *propRun) profiles() map[*graph.Profile][]graph.Key {
	ctx := context.Background()
	ps, err := r.f.store.Profiles(ctx, "", 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[*graph.Profile][]graph.Key{}
	for _, p := range ps {
		ids, err := graph.ProfileIdentifiers(ctx, r.f.store, p)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, n := range ids {
			out[p] = append(out[p], n.Key)
		}
	}
	return out
}

func (r *propRun) splitOne() {
	for p, keys := range r.profiles() {
		people := map[int][]graph.Key{}
		for _, k := range keys {
			people[r.m.owner[k]] = append(people[r.m.owner[k]], k)
		}
		if len(people) < 2 {
			continue
		}
		var move []map[string]any
		for i, ks := range people {
			if i == r.m.owner[p.Anchor] {
				continue
			}
			for _, k := range ks {
				move = append(move, map[string]any{"type": k.Type, "value": k.Value})
			}
			break
		}
		res := r.f.gql(r.t, stewKey, `mutation($p: ID!, $ids: [IdentifierInput!]!) { split(profileId: $p, identifiers: $ids) { profiles { id } } }`,
			map[string]any{"p": p.ID, "ids": move})
		if len(res.Errors) > 0 {
			r.t.Fatalf("split %s %v: %+v", p.ID, move, res.Errors)
		}
		r.splits++
		return
	}
}

// check asserts the invariants on every live profile.
func (r *propRun) check(step int) {
	ctx := context.Background()
	now := time.Now().UTC()
	for p, keys := range r.profiles() {
		people := map[int]bool{}
		var own []consent.Record
		for _, k := range keys {
			people[r.m.owner[k]] = true
			own = append(own, r.m.recs[k]...)
		}
		if len(people) > 1 {
			r.merged++
		}
		for _, purpose := range propPurposes {
			for _, at := range []time.Time{now, now.Add(2 * time.Hour)} {
				d, err := r.chk.Check(ctx, p, purpose, at)
				if err != nil {
					r.t.Fatal(err)
				}
				// The decision is what the profile's own identifiers' records say.
				if want := consent.Derive(own, purpose, at); d.State != want {
					r.t.Fatalf("step %d: profile %s %s at %s: state %s, its identifiers' records say %s", step, p.ID, purpose, at, d.State, want)
				}
				switch d.State {
				case consent.StateGranted:
					r.granted++
				case consent.StateExpired:
					r.expired++
				case consent.StateConflict:
					r.conflicts++
				}
				if !d.Allowed {
					continue
				}
				// Granted: no identifier's own latest choice is anything else.
				for _, k := range keys {
					latest := latestOf(r.m.recs[k], purpose, at)
					if latest == nil {
						continue
					}
					if latest.Status != consent.Granted || !latest.Expires.IsZero() && !at.Before(latest.Expires) {
						r.t.Fatalf("step %d: profile %s granted %s at %s, but %v (person %d) last said %s (expires %s)",
							step, p.ID, purpose, at, k, r.m.owner[k], latest.Status, latest.Expires)
					}
				}
			}
		}
	}
}

func latestOf(recs []consent.Record, purpose string, at time.Time) *consent.Record {
	var out *consent.Record
	for i, x := range recs {
		if x.Purpose != purpose || x.Time.After(at) {
			continue
		}
		if out == nil || x.Time.After(out.Time) || x.Time.Equal(out.Time) && x.ID > out.ID {
			out = &recs[i]
		}
	}
	return out
}
