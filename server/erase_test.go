package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// newEraseFixture is a key fixture with erasure on: the erase mutation,
// and ingest checking the suppression set; configure (nil for none)
// adjusts the rest.
func newEraseFixture(t *testing.T, open storetest.Opener, configure func(*server.Config)) *keyFixture {
	t.Helper()
	return newKeyFixtureWith(t, open, nil, withErasure(configure))
}

// withErasure turns erasure on, then calls configure (nil for none).
func withErasure(configure func(*server.Config)) func(*server.Config) {
	return func(cfg *server.Config) {
		h := erase.NewHasher(testPepper)
		svc := &erase.Service{Store: cfg.Store.(erase.Backend).Erasure(), Graph: cfg.Store, Norm: cfg.Normalizer,
			Hasher: h, Set: erase.NewSet(h), Broker: cfg.Broker}
		cfg.Stitcher.Suppressor = svc.Set
		cfg.Erasure = svc
		if configure != nil {
			configure(cfg)
		}
	}
}

// followStore makes the suppression set follow the store, as serve does
// on Neo4j, and loads it.
func followStore(t *testing.T) func(*server.Config) {
	return func(cfg *server.Config) {
		cfg.Erasure.Set.Follow(erase.DefaultMaxAge)
		if err := cfg.Erasure.Set.Load(context.Background(), cfg.Erasure.Store); err != nil {
			t.Fatal(err)
		}
	}
}

// TestErasureSeenByAnotherServer: two servers share a store (two
// processes), each following it. A person erased through one is dropped
// by the other for every message sent after erase returned, at once:
// answered 200, counted as suppressed, nothing re-created. Unsuppressed
// through the first, the person is let back in by the other within the
// bound: a message sent once the bound has passed since unsuppress
// returned must be stored.
func TestErasureSeenByAnotherServer(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			a := newEraseFixture(t, b.Open, followStore(t))
			other := newFixtureWith(t, func(*testing.T) graph.Store { return a.store }, withErasure(followStore(t)))
			other.send(t, "/v1/batch", `{"batch":[
				{"type":"identify","userId":"ada-1","anonymousId":"anon-ada","traits":{"email":"ada@analytical.engine","name":"Ada Lovelace"},"messageId":"a1"},
				{"type":"identify","userId":"alan-1","traits":{"email":"alan@bletchley.uk"},"messageId":"t1"}]}`)
			lookup := `query($t: String!, $v: String!) { lookup(type: $t, value: $v) { id } }`
			found := func(typ, value string) bool {
				t.Helper()
				r := other.gql(t, readKey, lookup, map[string]any{"t": typ, "v": value})
				if len(r.Errors) > 0 && r.code() != "NOT_FOUND" {
					t.Fatalf("lookup %s: %v", typ, r.Errors)
				}
				return get(r.Data, "lookup.id") != nil
			}
			if !found("email", "ada@analytical.engine") {
				t.Fatal("the person was not stored")
			}
			const mutation = `mutation($s: String!, $m: ErasureMode) { erase(subject: $s, mode: $m) { found suppressionsAdded suppressionsRemoved } }`
			if data := a.mustAs(t, a.admin, mutation, map[string]any{"s": "email:ada@analytical.engine"}); get(data, "erase.found") != true {
				t.Fatalf("erase = %v", data)
			}
			for i, msg := range []string{
				`{"type":"identify","anonymousId":"fresh-1","traits":{"email":"Ada@Analytical.Engine"}}`,
				`{"type":"track","anonymousId":"anon-ada","event":"Back"}`,
				`{"type":"alias","userId":"ada-2","previousId":"ada-1"}`,
			} {
				other.send(t, "/v1/batch", fmt.Sprintf(`{"batch":[%s]}`, strings.Replace(msg, "{", fmt.Sprintf(`{"messageId":"after-%d",`, i), 1)))
			}
			for _, q := range []struct{ t, v string }{{"email", "ada@analytical.engine"}, {"anonymous_id", "anon-ada"},
				{"anonymous_id", "fresh-1"}, {"user_id", "ada-1"}, {"user_id", "ada-2"}} {
				if found(q.t, q.v) {
					t.Errorf("the other server re-created the erased person: %s found", q.t)
				}
			}
			if m := other.metrics(t); !strings.Contains(m, `idgraph_messages_total{outcome="suppressed"} 3`) {
				t.Errorf("the other server does not count 3 suppressed messages")
			}
			if !found("email", "alan@bletchley.uk") {
				t.Error("someone else was erased")
			}
			if data := a.mustAs(t, a.admin, mutation, map[string]any{"s": "email:ada@analytical.engine", "m": "UNSUPPRESS"}); get(data, "erase.suppressionsRemoved") == float64(0) {
				t.Fatalf("unsuppress = %v", data)
			}
			start := time.Now()
			for i := 0; ; i++ {
				late := time.Since(start) > erase.DefaultMaxAge
				other.send(t, "/v1/batch", fmt.Sprintf(`{"batch":[{"type":"identify","userId":"ada-3","traits":{"email":"ada@analytical.engine"},"messageId":"back-%d"}]}`, i))
				if found("email", "ada@analytical.engine") {
					break
				}
				if late {
					t.Fatalf("the other server still drops an unsuppressed person's messages after %v", time.Since(start))
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("unsuppression took effect on the other server after %v (bound: %v)", time.Since(start).Round(time.Millisecond), erase.DefaultMaxAge)
		})
	}
}

// TestEraseOverGraphQL erases a person through the admin mutation: the
// receipt comes back and can be read by its ID, no GraphQL read finds
// the person, and messages sent afterwards (by email, anonymousId, phone
// written otherwise) answer 200 and re-create nothing. Other roles are
// refused.
func TestEraseOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newEraseFixture(t, b.Open, nil)
			kf.send(t, "/v1/batch", `{"batch":[
				{"type":"identify","userId":"grace-1","anonymousId":"anon-grace","traits":{"email":"Grace.Hopper@navy.mil","phone":"+1 202 555 0147","name":"Grace Hopper"},"messageId":"g1"},
				{"type":"track","anonymousId":"anon-grace","event":"Compiled","messageId":"g2"},
				{"type":"identify","userId":"alan-1","traits":{"email":"alan@bletchley.uk","name":"Alan Turing"},"messageId":"t1"}]}`)
			lookup := `query($t: String!, $v: String!) { lookup(type: $t, value: $v) { id } }`
			pid, _ := get(kf.mustAs(t, kf.admin, lookup, map[string]any{"t": "email", "v": "grace.hopper@navy.mil"}), "lookup.id").(string)
			if pid == "" {
				t.Fatal("the person was not stored")
			}
			const mutation = `mutation($s: String!, $m: ErasureMode) { erase(subject: $s, mode: $m) {
				id mode found subjectHash subjectHashes deleted { kind count } segmentExits suppressionsAdded } }`
			for _, role := range []auth.Role{auth.RoleRead, auth.RoleSupport, auth.RoleSteward} {
				kf.refused(t, kf.create(t, role), mutation, map[string]any{"s": "email:grace.hopper@navy.mil"}, "FORBIDDEN")
			}
			kf.refused(t, kf.admin, mutation, map[string]any{"s": "nonsense"}, "BAD_USER_INPUT", "subject")
			data := kf.mustAs(t, kf.admin, mutation, map[string]any{"s": "email: GRACE.HOPPER@navy.mil"})
			id, _ := get(data, "erase.id").(string)
			if get(data, "erase.found") != true || get(data, "erase.mode") != "ERASE_AND_SUPPRESS" || get(data, "erase.suppressionsAdded") != float64(4) {
				t.Errorf("receipt = %v", data)
			}
			if s := fmt.Sprint(data); strings.Contains(strings.ToLower(s), "grace") || strings.Contains(s, "navy") {
				t.Errorf("the receipt holds a personal value: %s", s)
			}
			back := kf.mustAs(t, kf.admin, `query($id: ID!) { erasureReceipt(id: $id) { id deleted { kind count } } }`, map[string]any{"id": id})
			if get(back, "erasureReceipt.id") != id {
				t.Errorf("receipt by id: %v", back)
			}
			// Sent after erase returned: every message carries one of her
			// identifiers, and each answers 200.
			for i, msg := range []string{
				`{"type":"identify","traits":{"email":"grace.hopper@NAVY.mil"},"anonymousId":"fresh-1"}`,
				`{"type":"track","anonymousId":"anon-grace","event":"Back"}`,
				`{"type":"identify","anonymousId":"fresh-2","traits":{"phone":"(202) 555-0147"}}`,
				`{"type":"alias","userId":"grace-2","previousId":"grace-1"}`,
			} {
				kf.send(t, "/v1/batch", fmt.Sprintf(`{"batch":[%s]}`, strings.Replace(msg, "{", fmt.Sprintf(`{"messageId":"after-%d",`, i), 1)))
			}
			for _, q := range []struct{ t, v string }{{"email", "grace.hopper@navy.mil"}, {"anonymous_id", "anon-grace"},
				{"phone", "+12025550147"}, {"user_id", "grace-1"}, {"anonymous_id", "fresh-1"}, {"anonymous_id", "fresh-2"}, {"user_id", "grace-2"}} {
				if r := kf.gql(t, kf.admin, lookup, map[string]any{"t": q.t, "v": q.v}); get(r.Data, "lookup") != nil || (len(r.Errors) > 0 && r.code() != "NOT_FOUND") {
					t.Errorf("lookup %s:%s after erasure = %v %v", q.t, q.v, r.Data, r.Errors)
				}
			}
			if r := kf.gql(t, kf.admin, `query($id: ID!) { profile(id: $id) { id } }`, map[string]any{"id": pid}); get(r.Data, "profile") != nil || (len(r.Errors) > 0 && r.code() != "NOT_FOUND") {
				t.Errorf("profile %s after erasure = %v %v", pid, r.Data, r.Errors)
			}
			hits := kf.mustAs(t, kf.admin, `{ search(query: "grace") { value } }`, nil)
			if s := fmt.Sprint(hits); strings.Contains(strings.ToLower(s), "grace") {
				t.Errorf("search after erasure: %s", s)
			}
			if get(kf.mustAs(t, kf.admin, lookup, map[string]any{"t": "email", "v": "alan@bletchley.uk"}), "lookup.id") == nil {
				t.Error("someone else was erased")
			}
			if m := kf.metrics(t); !strings.Contains(m, `idgraph_messages_total{outcome="suppressed"} 4`) {
				t.Errorf("metrics do not count 4 suppressed messages")
			}
			// The audit entries of the erase mutations (refused ones too)
			// name the subject by its hash only.
			erasures := 0
			for _, e := range kf.chain(t) {
				if e.Action == "erase" {
					erasures++
				}
				if s := strings.ToLower(e.Target); strings.Contains(s, "grace") || strings.Contains(s, "navy") {
					t.Errorf("audit entry %d holds the erased subject: %s", e.Seq, e.Target)
				}
			}
			if erasures != 5 {
				t.Errorf("%d erase entries in the audit chain, want 5 (3 refused, 1 invalid, 1 done)", erasures)
			}
		})
	}
}
