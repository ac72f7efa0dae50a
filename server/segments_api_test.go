package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	coderws "github.com/coder/websocket"

	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
)

// refused runs a query that must fail with the code (and, when given, a
// message containing each of want).
func (f *fixture) refused(t *testing.T, key, query string, vars map[string]any, code string, want ...string) gqlResponse {
	t.Helper()
	r := f.gql(t, key, query, vars)
	if r.code() != code {
		t.Fatalf("%s: want %s, got %d %+v", query, code, r.Status, r.Errors)
	}
	for _, w := range want {
		if !strings.Contains(r.Errors[0].Message, w) {
			t.Errorf("%s: the message %q does not say %q", query, r.Errors[0].Message, w)
		}
	}
	return r
}

// line prints values separated by spaces, whatever their types.
func line(vs ...any) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprint(v)
	}
	return strings.Join(out, " ")
}

func orderMsg(user, msg string, at time.Time) string {
	return fmt.Sprintf(`{"userId":%q,"event":"Order Completed","messageId":%q,"timestamp":%q,"properties":{"revenue":40}}`,
		user, msg, at.UTC().Format(time.RFC3339Nano))
}

const (
	createSeg  = `mutation($key: String!, $def: String!) { createSegment(key: $key, definition: $def) { key version status { state } } }`
	updateSeg  = `mutation($key: String!, $def: String!, $v: Int!) { updateSegment(key: $key, definition: $def, expectedVersion: $v) { key version definition status { state } } }`
	enableSeg  = `mutation($key: String!, $on: Boolean!, $v: Int) { setSegmentEnabled(key: $key, enabled: $on, expectedVersion: $v) { version status { state } } }`
	deleteSeg  = `mutation($key: String!, $v: Int) { deleteSegment(key: $key, expectedVersion: $v) }`
	segStateQ  = `query($key: String!) { segment(key: $key) { version status { state } size } }`
	profileSeg = `query($id: ID!) { profile(id: $id) { segments } }`
)

// awaitLive waits for a segment's backfill to end.
func (f *fixture) awaitLive(t *testing.T, key string) {
	t.Helper()
	f.await(t, fmt.Sprintf(`{ segment(key: %q) { status { state } } }`, key), "segment.status.state", segments.StateLive)
}

// The segments API over GraphQL, on both backends: paging through
// segments and members, editing with versions, disabling, deleting, and
// every refusal (stale versions, unknown keys, definitions in use, invalid
// definitions with their positions, read keys, no key).
func TestSegmentLifecycleOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			now := time.Now()
			f.send(t, "/v1/track", orderMsg("u-1", "m1", now.Add(-time.Hour)))
			f.send(t, "/v1/track", orderMsg("u-2", "m2", now.Add(-time.Hour)))
			f.send(t, "/v1/track", `{"userId":"u-3","event":"Page Viewed","messageId":"m3"}`)
			u1 := storetest.ProfileOf(t, f.store, "user_id:u-1").ID
			u3 := storetest.ProfileOf(t, f.store, "user_id:u-3").ID
			for _, s := range []struct{ key, def string }{
				{"buyer", buyerSrc},
				{"browser", `events("Page Viewed").exists()`},
				{"vip", `in_segment("buyer") and events("Order Completed").count() >= 1`},
			} {
				f.mustAs(t, stewKey, createSeg, map[string]any{"key": s.key, "def": s.def})
				f.awaitLive(t, s.key)
			}

			// segments(first, after): by key, page by page.
			const list = `query($after: String) { segments(first: 2, after: $after) { edges { cursor node { key size } } pageInfo { hasNextPage endCursor } } }`
			d := f.must(t, list, nil)
			if got := line(get(d, "segments.edges.0.node.key"), get(d, "segments.edges.1.node.key"), get(d, "segments.pageInfo.hasNextPage")); got != "browser buyer true" {
				t.Errorf("first page: %v", d)
			}
			d = f.must(t, list, map[string]any{"after": get(d, "segments.pageInfo.endCursor")})
			if got := line(get(d, "segments.edges.0.node.key"), len(get(d, "segments.edges").([]any)), get(d, "segments.pageInfo.hasNextPage")); got != "vip 1 false" {
				t.Errorf("second page: %v", d)
			}
			f.refused(t, readKey, list, map[string]any{"after": "bm90LWEtY3Vyc29y"}, "BAD_USER_INPUT", "after")
			f.refused(t, readKey, `{ segments(first: 101) { edges { cursor } } }`, nil, "BAD_USER_INPUT", "first")

			// Segment.members(first, after).
			const members = `query($after: String) { segment(key: "buyer") { members(first: 1, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } } }`
			d = f.must(t, members, nil)
			first := get(d, "segment.members.edges.0.node.id")
			if get(d, "segment.members.pageInfo.hasNextPage") != true {
				t.Errorf("members, first page: %v", d)
			}
			d = f.must(t, members, map[string]any{"after": get(d, "segment.members.pageInfo.endCursor")})
			second := get(d, "segment.members.edges.0.node.id")
			if second == nil || second == first || get(d, "segment.members.pageInfo.hasNextPage") != false {
				t.Errorf("members, second page: %v (first %v)", d, first)
			}

			// profiles(filter: {segment}) pages through the members like
			// any profile list, with the other filters.
			const filtered = `query($seg: String!, $after: String, $type: String) { profiles(first: 1, after: $after, filter: {segment: $seg, identifierType: $type}) {
				edges { node { id } } pageInfo { hasNextPage endCursor } } }`
			d = f.must(t, filtered, map[string]any{"seg": "buyer"})
			if get(d, "profiles.edges.0.node.id") != first || get(d, "profiles.pageInfo.hasNextPage") != true {
				t.Errorf("profiles of a segment, first page: %v", d)
			}
			d = f.must(t, filtered, map[string]any{"seg": "buyer", "after": get(d, "profiles.pageInfo.endCursor")})
			if get(d, "profiles.edges.0.node.id") != second {
				t.Errorf("profiles of a segment, second page: %v", d)
			}
			d = f.must(t, filtered, map[string]any{"seg": "buyer", "type": "email"})
			if len(get(d, "profiles.edges").([]any)) != 0 {
				t.Errorf("members with an email (none have one): %v", d)
			}
			f.refused(t, readKey, filtered, map[string]any{"seg": "nope"}, "BAD_USER_INPUT", "filter.segment")

			// updateSegment: a new version from the one seen; stale,
			// unknown, invalid and zero versions refused.
			widened := `events("Order Completed").within(30d).exists() or events("Page Viewed").exists()`
			d = f.mustAs(t, stewKey, updateSeg, map[string]any{"key": "buyer", "def": widened, "v": 1})
			if line(get(d, "updateSegment.version"), get(d, "updateSegment.definition")) != "2 "+widened {
				t.Errorf("updated: %v", d)
			}
			f.awaitLive(t, "buyer")
			f.await(t, `{ segment(key: "buyer") { size } }`, "segment.size", "3")
			f.await(t, fmt.Sprintf(`{ profile(id: %q) { segments } }`, u3), "profile.segments", "[browser buyer]")
			f.refused(t, stewKey, updateSeg, map[string]any{"key": "buyer", "def": buyerSrc, "v": 1}, "CONFLICT", "version 2, not 1")
			f.refused(t, stewKey, updateSeg, map[string]any{"key": "nope", "def": buyerSrc, "v": 1}, "NOT_FOUND", "nope")
			f.refused(t, stewKey, updateSeg, map[string]any{"key": "buyer", "def": buyerSrc, "v": 0}, "BAD_USER_INPUT", "expectedVersion")
			r := f.refused(t, stewKey, updateSeg, map[string]any{"key": "buyer", "def": "trait(\"a\") = 1 and\n  events(\"x\").within(0d).exists()", "v": 2}, "BAD_USER_INPUT", "BAD_WINDOW")
			if de, _ := r.Errors[0].Extensions["definitionError"].(map[string]any); line(de["code"], de["line"], de["column"]) != "BAD_WINDOW 2 22" {
				t.Errorf("the definition error's position: %+v", r.Errors[0].Extensions)
			}
			if d := f.must(t, segStateQ, map[string]any{"key": "buyer"}); get(d, "segment.version") != 2.0 {
				t.Errorf("a refused update saved something: %v", d)
			}
			f.refused(t, stewKey, createSeg, map[string]any{"key": "buyer", "def": buyerSrc}, "CONFLICT", "exists")

			// Definitions in use cannot be deleted or disabled; the
			// refusal names who reads them.
			f.refused(t, stewKey, deleteSeg, map[string]any{"key": "buyer"}, "CONFLICT", "segment:vip")
			f.refused(t, stewKey, enableSeg, map[string]any{"key": "buyer", "on": false}, "CONFLICT", "segment:vip")

			// Disable: a new version, members exit; enable: backfilled
			// again.
			f.await(t, fmt.Sprintf(`{ profile(id: %q) { segments } }`, u1), "profile.segments", "[buyer vip]")
			f.refused(t, stewKey, enableSeg, map[string]any{"key": "vip", "on": false, "v": 7}, "CONFLICT", "version 1, not 7")
			d = f.mustAs(t, stewKey, enableSeg, map[string]any{"key": "vip", "on": false, "v": 1})
			if line(get(d, "setSegmentEnabled.version"), get(d, "setSegmentEnabled.status.state")) != "2 DISABLED" {
				t.Errorf("disabled: %v", d)
			}
			f.await(t, fmt.Sprintf(`{ profile(id: %q) { segments } }`, u1), "profile.segments", "[buyer]")
			f.await(t, `{ segment(key: "vip") { size } }`, "segment.size", "0")
			d = f.mustAs(t, stewKey, enableSeg, map[string]any{"key": "vip", "on": false})
			if fmt.Sprint(get(d, "setSegmentEnabled.version")) != "2" {
				t.Errorf("disabling a disabled segment made a version: %v", d)
			}
			f.mustAs(t, stewKey, enableSeg, map[string]any{"key": "vip", "on": true})
			f.awaitLive(t, "vip")
			f.await(t, `{ segment(key: "vip") { version size } }`, "segment.size", "2")

			// Delete: stale and unknown refused; then vip, then buyer
			// (no longer in use).
			f.refused(t, stewKey, deleteSeg, map[string]any{"key": "vip", "v": 1}, "CONFLICT", "version 3, not 1")
			f.refused(t, stewKey, deleteSeg, map[string]any{"key": "nope"}, "NOT_FOUND", "nope")
			if d := f.mustAs(t, stewKey, deleteSeg, map[string]any{"key": "vip", "v": 3}); get(d, "deleteSegment") != true {
				t.Errorf("deleted: %v", d)
			}
			f.mustAs(t, stewKey, deleteSeg, map[string]any{"key": "buyer"})
			if d := f.must(t, `{ segment(key: "vip") { key } }`, nil); get(d, "segment") != nil {
				t.Errorf("a deleted segment: %v", d)
			}
			f.await(t, fmt.Sprintf(`{ profile(id: %q) { segments } }`, u3), "profile.segments", "[browser]")
			f.await(t, fmt.Sprintf(`{ profile(id: %q) { segments } }`, u1), "profile.segments", "[]")
		})
	}
}

// Checking, previewing and explaining definitions, and computed traits,
// on both backends.
func TestSegmentInsightOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			now := time.Now()
			f.send(t, "/v1/track", orderMsg("u-1", "m1", now.Add(-2*time.Hour)))
			f.send(t, "/v1/track", orderMsg("u-1", "m2", now.Add(-time.Hour)))
			f.send(t, "/v1/track", orderMsg("u-2", "m3", now.Add(-40*24*time.Hour)))
			f.send(t, "/v1/track", `{"userId":"u-3","event":"Page Viewed","messageId":"m4"}`)
			u1 := storetest.ProfileOf(t, f.store, "user_id:u-1").ID
			u2 := storetest.ProfileOf(t, f.store, "user_id:u-2").ID

			// validateDefinition: the type when valid; the error, where it
			// is, when not; nothing saved either way.
			const validate = `query($def: String!, $kind: DefinitionKind, $key: String) { validateDefinition(definition: $def, kind: $kind, key: $key) { valid type errors { code line column message hint } } }`
			for _, c := range []struct {
				name, def, kind, key, want string
			}{
				{"segment", buyerSrc, "SEGMENT", "", "true boolean"},
				{"computed", `events("Order Completed").sum(prop("revenue"))`, "COMPUTED_TRAIT", "", "true number"},
				{"a number is no segment", `events("Order Completed").count()`, "SEGMENT", "", "false TYPE 1:1"},
				{"truncated", `trait("a"`, "SEGMENT", "", "false SYNTAX 1:10"},
				{"second line", "trait(\"a\") = 1 and\n  lenght(trait(\"b\")) > 2", "SEGMENT", "", "false UNKNOWN_FUNCTION 2:3"},
				{"non-Latin path", `trait("адрес.город") = "Paris"`, "SEGMENT", "", "true boolean"},
				{"missing reference", `in_segment("nope")`, "SEGMENT", "", "false UNKNOWN_REFERENCE 1:12"},
				{"cycle", `in_segment("buyer")`, "SEGMENT", "buyer", "false CYCLE 1:1"},
			} {
				t.Run(c.name, func(t *testing.T) {
					vars := map[string]any{"def": c.def, "kind": c.kind}
					if c.key != "" {
						f.mustAs(t, stewKey, createSeg, map[string]any{"key": c.key, "def": buyerSrc})
						vars["key"] = c.key
					}
					v := get(f.must(t, validate, vars), "validateDefinition")
					got := fmt.Sprint(get(v, "valid"), " ", get(v, "type"))
					if get(v, "valid") == false {
						got = fmt.Sprint(get(v, "valid"), " ", get(v, "errors.0.code"), " ", get(v, "errors.0.line"), ":", get(v, "errors.0.column"))
					}
					if got != c.want {
						t.Errorf("validateDefinition(%s): %s, want %s (%v)", c.def, got, c.want, v)
					}
				})
			}
			f.awaitLive(t, "buyer")

			// previewSegment: the exact count and a sample, nothing saved.
			const preview = `query($def: String!, $n: Int) { previewSegment(definition: $def, sample: $n) { count profiles sample { id } } }`
			// (a full scan: steward keys only)
			d := f.mustAs(t, stewKey, preview, map[string]any{"def": `events("Order Completed").exists()`, "n": 1})
			if line(get(d, "previewSegment.count"), get(d, "previewSegment.profiles"), len(get(d, "previewSegment.sample").([]any))) != "2 3 1" {
				t.Errorf("preview: %v", d)
			}
			d = f.mustAs(t, stewKey, preview, map[string]any{"def": `in_segment("buyer") and events("Order Completed").count() >= 2`})
			if line(get(d, "previewSegment.count"), get(d, "previewSegment.sample.0.id")) != "1 "+u1 {
				t.Errorf("preview reading a segment: %v (u-1 is %s)", d, u1)
			}
			f.refused(t, stewKey, preview, map[string]any{"def": `events("x").within(400d).exists()`}, "BAD_USER_INPUT", "BAD_WINDOW")
			f.refused(t, stewKey, preview, map[string]any{"def": buyerSrc, "n": 101}, "BAD_USER_INPUT", "sample")
			f.refused(t, readKey, preview, map[string]any{"def": buyerSrc}, "FORBIDDEN")
			if d := f.must(t, `{ segments { edges { node { key } } } }`, nil); len(get(d, "segments.edges").([]any)) != 1 {
				t.Errorf("a preview or a validation saved something: %v", d)
			}

			// explainMembership: the tree, the events that decided it, the
			// deadline; for a member and for a non-member.
			const explain = `query($id: ID!, $seg: String!) { explainMembership(profileId: $id, segment: $seg) {
				profileId member storedMember nextDeadline segment { key version }
				nodes { index parent text line column value deadline eventCount events { messageId } } } }`
			f.await(t, fmt.Sprintf(`{ profile(id: %q) { segments } }`, u1), "profile.segments", "[buyer]")
			x := get(f.must(t, explain, map[string]any{"id": u1, "seg": "buyer"}), "explainMembership")
			if line(get(x, "member"), get(x, "storedMember"), get(x, "nodes.0.text"), get(x, "nodes.0.parent"), get(x, "nodes.0.eventCount")) !=
				"true true "+`events("Order Completed").within(30d).exists()`+" <nil> 2" {
				t.Errorf("explain a member: %v", x)
			}
			if get(x, "nextDeadline") == nil || get(x, "nodes.0.events.1.messageId") != "m2" {
				t.Errorf("explain: no deadline or deciding events: %v", x)
			}
			x = get(f.must(t, explain, map[string]any{"id": u2, "seg": "buyer"}), "explainMembership")
			if line(get(x, "member"), get(x, "storedMember"), get(x, "nodes.0.eventCount")) != "false false 0" {
				t.Errorf("explain a non-member: %v", x)
			}
			f.refused(t, readKey, explain, map[string]any{"id": u1, "seg": "nope"}, "NOT_FOUND", "nope")
			f.refused(t, readKey, explain, map[string]any{"id": "p_nope", "seg": "buyer"}, "NOT_FOUND")

			// Computed traits: created, shown on the profile, edited with
			// versions, deleted; and one in use refused.
			const createCT = `mutation($key: String!, $def: String!) { createComputedTrait(key: $key, definition: $def) { key version status { state } } }`
			const updateCT = `mutation($key: String!, $def: String!, $v: Int!) { updateComputedTrait(key: $key, definition: $def, expectedVersion: $v) { version } }`
			f.mustAs(t, stewKey, createCT, map[string]any{"key": "revenue", "def": `events("Order Completed").sum(prop("revenue"))`})
			f.refused(t, stewKey, createCT, map[string]any{"key": "bad", "def": `events("Order Completed").exists() and`}, "BAD_USER_INPUT", "SYNTAX")
			f.refused(t, readKey, createCT, map[string]any{"key": "x", "def": `1`}, "FORBIDDEN")
			ct := fmt.Sprintf(`{ computedTrait(key: "revenue") { status { state } } profile(id: %q) { computedTraits { key value type } } }`, u1)
			f.await(t, ct, "computedTrait.status.state", segments.StateLive)
			f.await(t, ct, "profile.computedTraits", "[map[key:revenue type:number value:80]]")
			// explainComputedTrait: the value, now and stored, and its tree.
			const explainCT = `query($id: ID!, $key: String!) { explainComputedTrait(profileId: $id, key: $key) {
				profileId value storedValue type computedTrait { key version } nodes { text value eventCount } } }`
			x = get(f.must(t, explainCT, map[string]any{"id": u1, "key": "revenue"}), "explainComputedTrait")
			if got := line(get(x, "value"), get(x, "storedValue"), get(x, "type"), get(x, "computedTrait.key"), get(x, "nodes.0.text"), get(x, "nodes.0.eventCount")); got !=
				`80 80 number revenue events("Order Completed").sum(prop("revenue")) 2` {
				t.Errorf("explain a computed trait: %s (%v)", got, x)
			}
			x = get(f.must(t, explainCT, map[string]any{"id": u2, "key": "revenue"}), "explainComputedTrait")
			if got := line(get(x, "value"), get(x, "type"), get(x, "nodes.0.eventCount")); got != "40 number 1" {
				t.Errorf("explain a computed trait of another profile: %s (%v)", got, x)
			}
			f.refused(t, readKey, explainCT, map[string]any{"id": u1, "key": "nope"}, "NOT_FOUND", "nope")
			f.mustAs(t, stewKey, createSeg, map[string]any{"key": "big", "def": `computed("revenue") > 50`})
			f.refused(t, stewKey, `mutation { deleteComputedTrait(key: "revenue") }`, nil, "CONFLICT", "segment:big")
			f.mustAs(t, stewKey, updateCT, map[string]any{"key": "revenue", "def": `events("Order Completed").count()`, "v": 1})
			f.refused(t, stewKey, updateCT, map[string]any{"key": "revenue", "def": `1`, "v": 1}, "CONFLICT", "not 1")
			f.await(t, ct, "profile.computedTraits", "[map[key:revenue type:number value:2]]")
			d = f.must(t, `{ computedTraits(first: 5) { edges { node { key version definition } } pageInfo { hasNextPage } } }`, nil)
			if line(get(d, "computedTraits.edges.0.node.key"), get(d, "computedTraits.edges.0.node.version"), get(d, "computedTraits.pageInfo.hasNextPage")) != "revenue 2 false" {
				t.Errorf("computedTraits: %v", d)
			}
			f.mustAs(t, stewKey, deleteSeg, map[string]any{"key": "big"})
			f.mustAs(t, stewKey, `mutation { setComputedTraitEnabled(key: "revenue", enabled: false) { status { state } } }`, nil)
			f.await(t, ct, "profile.computedTraits", "[]")
			f.mustAs(t, stewKey, `mutation { deleteComputedTrait(key: "revenue") }`, nil)
		})
	}
}

// Every mutation needs the steward key; every query a key.
func TestSegmentsAPIAuth(t *testing.T) {
	f := withSegments(t, backends.All()[0].Open)
	mutations := []string{
		`mutation { createSegment(key: "a", definition: "true") { key } }`,
		`mutation { updateSegment(key: "a", definition: "true", expectedVersion: 1) { key } }`,
		`mutation { setSegmentEnabled(key: "a", enabled: false) { key } }`,
		`mutation { deleteSegment(key: "a") }`,
		`mutation { createComputedTrait(key: "a", definition: "1") { key } }`,
		`mutation { updateComputedTrait(key: "a", definition: "1", expectedVersion: 1) { key } }`,
		`mutation { setComputedTraitEnabled(key: "a", enabled: false) { key } }`,
		`mutation { deleteComputedTrait(key: "a") }`,
	}
	queries := []string{
		`{ segments { edges { cursor } } }`,
		`{ computedTraits { edges { cursor } } }`,
		`{ validateDefinition(definition: "true") { valid } }`,
		`{ previewSegment(definition: "true") { count } }`,
		`{ explainMembership(profileId: "p", segment: "a") { member } }`,
	}
	for _, q := range mutations {
		f.refused(t, readKey, q, nil, "FORBIDDEN")
		f.refused(t, "", q, nil, "UNAUTHENTICATED")
		f.refused(t, "not-a-key", q, nil, "UNAUTHENTICATED")
	}
	for _, q := range queries {
		f.refused(t, "", q, nil, "UNAUTHENTICATED")
	}
	if d := f.must(t, `{ segments { edges { cursor } } }`, nil); len(get(d, "segments.edges").([]any)) != 0 {
		t.Errorf("a refused mutation saved something: %v", d)
	}
}

// subscription opens a graphql-transport-ws connection with the read key
// and subscribes; next returns the next message of the subscription
// (its type and payload).
func (f *fixture) subscription(t *testing.T, query string, vars map[string]any) (next func() (string, map[string]any)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(f.url, "http")+"/graphql", &coderws.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	write := func(v any) {
		data, _ := json.Marshal(v)
		if err := c.Write(ctx, coderws.MessageText, data); err != nil {
			t.Fatal(err)
		}
	}
	read := func() (string, map[string]any) {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(data, &m)
		typ, _ := m["type"].(string)
		return typ, m
	}
	write(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + readKey}})
	if typ, m := read(); typ != "connection_ack" {
		t.Fatalf("connection_init answered %v", m)
	}
	write(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}})
	return func() (string, map[string]any) {
		for {
			if typ, m := read(); typ != "ping" && typ != "pong" {
				return typ, m
			}
		}
	}
}

// segmentMembershipChanged streams one segment's membership changes from
// the moment it is subscribed, on both backends.
func TestSegmentMembershipSubscription(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			now := time.Now()
			f.send(t, "/v1/track", orderMsg("u-0", "m0", now.Add(-time.Hour))) // before: not streamed
			for _, s := range []struct{ key, def string }{{"buyer", buyerSrc}, {"browser", `events("Page Viewed").exists()`}} {
				f.mustAs(t, stewKey, createSeg, map[string]any{"key": s.key, "def": s.def})
				f.awaitLive(t, s.key)
			}
			const sub = `subscription($seg: String!) { segmentMembershipChanged(segment: $seg) { sequence segment version profileId direction reason profile { id } } }`
			next := f.subscription(t, sub, map[string]any{"seg": "buyer"})
			time.Sleep(300 * time.Millisecond) // let the subscription start
			// A change of another segment (browser), then one of buyer.
			f.send(t, "/v1/track", `{"userId":"u-1","event":"Page Viewed","messageId":"m1"}`)
			f.send(t, "/v1/track", orderMsg("u-1", "m2", now.Add(-time.Minute)))
			u1 := storetest.ProfileOf(t, f.store, "user_id:u-1").ID
			typ, m := next()
			got := get(m, "payload.data.segmentMembershipChanged")
			if typ != "next" || line(get(got, "segment"), get(got, "version"), get(got, "profileId"), get(got, "direction"), get(got, "reason"), get(got, "profile.id")) !=
				line("buyer", 1, u1, "ENTERED", "data", u1) {
				t.Fatalf("first change: %s %v", typ, m)
			}
			seq := get(got, "sequence")
			// Disabling sweeps the members out: reason definition.
			f.mustAs(t, stewKey, enableSeg, map[string]any{"key": "buyer", "on": false})
			exits := map[any]bool{}
			for range 2 {
				typ, m := next()
				c := get(m, "payload.data.segmentMembershipChanged")
				if typ != "next" || get(c, "direction") != "EXITED" || get(c, "reason") != "definition" || get(c, "sequence") == seq {
					t.Fatalf("after disabling: %s %v", typ, m)
				}
				exits[get(c, "profileId")] = true
			}
			if len(exits) != 2 || !exits[u1] {
				t.Errorf("exits: %v", exits)
			}
			// Resuming after the entry replays the two exits, then waits.
			const resume = `subscription($seg: String!, $after: String) { segmentMembershipChanged(segment: $seg, after: $after) { sequence profileId direction } }`
			next = f.subscription(t, resume, map[string]any{"seg": "buyer", "after": seq})
			replayed := map[any]bool{}
			for range 2 {
				typ, m := next()
				c := get(m, "payload.data.segmentMembershipChanged")
				if typ != "next" || get(c, "direction") != "EXITED" {
					t.Fatalf("resumed after %v: %s %v", seq, typ, m)
				}
				replayed[get(c, "profileId")] = true
			}
			if fmt.Sprint(replayed) != fmt.Sprint(exits) {
				t.Errorf("resuming replayed %v, want %v", replayed, exits)
			}
			for _, bad := range []string{"x", "-1", "99999999999"} {
				next = f.subscription(t, resume, map[string]any{"seg": "buyer", "after": bad})
				if typ, m := next(); !strings.Contains(fmt.Sprint(m), "BAD_USER_INPUT") || !strings.Contains(fmt.Sprint(m), "after: ") {
					t.Errorf("resuming after %q: %s %v", bad, typ, m)
				}
			}

			next = f.subscription(t, sub, map[string]any{"seg": "nope"})
			// gqlgen sends a resolver's refusal as a payload with errors.
			if typ, m := next(); get(m, "payload.data.segmentMembershipChanged") != nil || !strings.Contains(fmt.Sprint(m), "NOT_FOUND") {
				t.Errorf("a subscription to an unknown segment: %s %v", typ, m)
			}
		})
	}
}

// seedConsoleSegments makes u-1 (an order: in segment buyer) and u-2 (a
// page view), and a computed trait orders, all backfilled.
func seedConsoleSegments(t *testing.T, f *fixture) (u1, u2 string) {
	t.Helper()
	f.send(t, "/v1/track", orderMsg("u-1", "m1", time.Now().Add(-time.Hour)))
	f.send(t, "/v1/track", `{"userId":"u-2","event":"Page Viewed","messageId":"m2"}`)
	f.mustAs(t, stewKey, createSeg, map[string]any{"key": "buyer", "def": buyerSrc})
	f.mustAs(t, stewKey, `mutation { createComputedTrait(key: "orders", definition: "events(\"Order Completed\").count()") { key } }`, nil)
	f.awaitLive(t, "buyer")
	f.await(t, `{ computedTrait(key: "orders") { status { state } } }`, "computedTrait.status.state", segments.StateLive)
	u1 = storetest.ProfileOf(t, f.store, "user_id:u-1").ID
	u2 = storetest.ProfileOf(t, f.store, "user_id:u-2").ID
	f.await(t, fmt.Sprintf(`{ profile(id: %q) { segments } }`, u1), "profile.segments", "[buyer]")
	return u1, u2
}

// The console's segments pages, read-only, on both backends: the list,
// a segment with its members, a profile's segments and computed traits,
// and why; and what they say when segments are off.
func TestConsoleSegments(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			u1, u2 := seedConsoleSegments(t, f)

			agent := newBrowser(t, f.url)
			agent.signIn(readKey)
			for _, c := range []struct {
				path string
				code int
				want []string
			}{
				{"/console/segments", 200, []string{`href="/console/segments/buyer">buyer</a>`, "<td>LIVE</td><td>1</td><td>1</td>", `<td><a href="/console/traits/orders">orders</a></td>`,
					`<svg class="sizechart" role="img" aria-label="Members over time: 1 at `}},
				{"/console/segments/buyer", 200, []string{"events(&#34;Order Completed&#34;).within(30d).exists()", `href="/console/profiles/` + u1 + `/segments/buyer">why</a>`,
					"Size over the last 30 days", `aria-label="Members over time: 1 at `, "<td>1</td></tr></tbody>", "<td>1 (current)</td><td>CREATED</td>"}},
				{"/console/segments/nope", 404, []string{"There is no segment nope."}},
				{"/console/profiles/" + u1 + "/segments", 200, []string{"<td>yes</td>", `<td><a href="/console/traits/orders">orders</a></td><td><code>1</code></td><td>number</td>`}},
				{"/console/profiles/" + u2 + "/segments", 200, []string{"<td>no</td>", "why not", `<td><a href="/console/traits/orders">orders</a></td><td><code>0</code></td>`}},
				{"/console/profiles/" + u1 + "/segments/buyer", 200, []string{"Why a member of buyer", "= <strong>true</strong> · 1 events: m1", "With no new data, this can change at"}},
				{"/console/profiles/" + u2 + "/segments/buyer", 200, []string{"Why not a member of buyer", "= <strong>false</strong>"}},
				{"/console/profiles/" + u1 + "/segments/nope", 404, []string{"no segment"}},
				{"/console/profiles/p_nope/segments", 404, []string{"no profile &#34;p_nope&#34;"}},
			} {
				code, page := agent.follow(c.path)
				if code != c.code {
					t.Errorf("%s: %d, want %d", c.path, code, c.code)
				}
				for _, w := range c.want {
					if !strings.Contains(page, w) {
						t.Errorf("%s does not say %s:\n%s", c.path, w, page)
					}
				}
			}
			if _, page := agent.follow("/console/profiles/" + u1); !strings.Contains(page, `href="/console/profiles/`+u1+`/segments">Segments and computed traits</a>`) {
				t.Errorf("the profile page has no link to its segments")
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		f := newFixture(t, backends.OpenPebble)
		agent := newBrowser(t, f.url)
		agent.signIn(readKey)
		if code, page := agent.follow("/console/segments"); code != 400 || !strings.Contains(page, "run the server with --segments") {
			t.Errorf("segments off: %d\n%s", code, page)
		}
	})
}

// TestConsoleSegmentsInChromium opens the segments pages in a real
// browser: axe finds nothing (WCAG 2.2 AA), every request stays on the
// server's origin within the page-weight budget, the keyboard reaches a
// segment from the list, and the editor announces an error at its line
// and column as it is typed, then previews.
func TestConsoleSegmentsInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	node, dir := nodeDir(t, "console-e2e", "playwright-core")
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			u1, u2 := seedConsoleSegments(t, f)
			var r e2eReport
			runE2EScript(t, node, dir, "segments.mjs", &r, "BASE_URL="+f.url, "READ_KEY="+readKey, "STEWARD_KEY="+stewKey, "CHROMIUM="+chromium, "PROFILE_ID="+u1, "OTHER_ID="+u2)
			r.checkPages(t, 8)
			for _, s := range r.Steps {
				if s["step"] != "keyboard" && s["status"] != float64(200) {
					t.Errorf("%v", s)
				}
			}
			if got := r.step("keyboard")["url"]; got != "/console/segments/buyer" {
				t.Errorf("keyboard from the list reached %v", got)
			}
			if got := fmt.Sprint(r.step("why")["h1"]); got != "Why a member of buyer" {
				t.Errorf("why: %s", got)
			}
			if got := fmt.Sprint(r.step("typed error")["text"]); !strings.HasPrefix(got, "Line 1, column 34: BAD_WINDOW") {
				t.Errorf("the error as typed: %q", got)
			}
			if got := fmt.Sprint(r.step("preview")["text"]); got != "1 of 2 profiles would be members now." {
				t.Errorf("the preview: %q", got)
			}
		})
	}
}

// The console's segment editor, on both backends: worked examples, the
// check as you type (the validate endpoint), preview, save by a steward,
// edit from a version, and the refusals (invalid, stale, read key).
func TestConsoleSegmentEditor(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			f.send(t, "/v1/track", orderMsg("u-1", "m1", time.Now().Add(-time.Hour)))
			f.send(t, "/v1/track", `{"userId":"u-2","event":"Page Viewed","messageId":"m2"}`)
			steward := newBrowser(t, f.url)
			steward.signIn(stewKey)
			_, page := steward.follow("/console/segments/new?example=recency")
			if !strings.Contains(page, `events(&#34;Order Completed&#34;).within(30d).exists()</textarea>`) || !strings.Contains(page, `value="save"`) {
				t.Errorf("a worked example in the editor:\n%s", page)
			}
			csrf := csrfRE.FindStringSubmatch(page)[1]
			resp, body := steward.do(http.MethodGet, "/console/segments/validate?definition="+url.QueryEscape("trait(\"a\") = 1 and\n  lenght(1) > 2"), nil)
			if resp.StatusCode != 200 || !strings.Contains(body, `"code":"UNKNOWN_FUNCTION"`) || !strings.Contains(body, `"line":2`) {
				t.Errorf("validate: %d %s", resp.StatusCode, body)
			}
			post := func(b *browser, form url.Values) (*http.Response, string) {
				form.Set("csrf", csrf)
				return b.do(http.MethodPost, "/console/segments/save", form)
			}
			_, body = post(steward, url.Values{"key": {"buyer"}, "definition": {`events("Order Completed").within(0d).exists()`}, "version": {"0"}, "action": {"preview"}})
			if !strings.Contains(body, "Line 1, column 34: BAD_WINDOW") {
				t.Errorf("preview of an invalid definition:\n%s", body)
			}
			_, body = post(steward, url.Values{"key": {"buyer"}, "definition": {buyerSrc}, "version": {"0"}, "action": {"preview"}})
			if !strings.Contains(body, "Valid (boolean).") || !strings.Contains(body, "1 of 2 profiles would be members now.") {
				t.Errorf("preview:\n%s", body)
			}
			resp, body = post(steward, url.Values{"key": {"buyer"}, "definition": {`events("x").within(0d).exists()`}, "version": {"0"}, "action": {"save"}})
			if resp.StatusCode != 400 || !strings.Contains(body, "BAD_WINDOW") {
				t.Errorf("saving an invalid definition: %d", resp.StatusCode)
			}
			resp, _ = post(steward, url.Values{"key": {"buyer"}, "definition": {buyerSrc}, "version": {"0"}, "action": {"save"}})
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/segments/buyer?n=1&notice=saved") {
				t.Errorf("save: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			f.awaitLive(t, "buyer")
			_, page = steward.follow("/console/segments/buyer/edit")
			if !strings.Contains(page, `name="version" value="1"`) || !strings.Contains(page, "Edit segment buyer") {
				t.Errorf("the edit page:\n%s", page)
			}
			resp, _ = post(steward, url.Values{"key": {"buyer"}, "definition": {`events("Order Completed").exists()`}, "version": {"1"}, "action": {"save"}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Errorf("edit: %d", resp.StatusCode)
			}
			resp, body = post(steward, url.Values{"key": {"buyer"}, "definition": {buyerSrc}, "version": {"1"}, "action": {"save"}})
			if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "version 2, not 1") {
				t.Errorf("a stale edit: %d", resp.StatusCode)
			}
			agent := newBrowser(t, f.url)
			agent.signIn(readKey)
			_, page = agent.follow("/console/segments/new")
			if strings.Contains(page, `value="save"`) || !strings.Contains(page, "Saving needs a steward key.") {
				t.Errorf("a read key sees a Save button")
			}
			csrf = csrfRE.FindStringSubmatch(page)[1]
			if resp, _ := post(agent, url.Values{"key": {"other"}, "definition": {buyerSrc}, "version": {"0"}, "action": {"save"}}); resp.StatusCode != http.StatusForbidden {
				t.Errorf("a read key saved: %d", resp.StatusCode)
			}
		})
	}
}
