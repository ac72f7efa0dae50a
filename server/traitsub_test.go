package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/segments"
)

// Segment.versions and ComputedTrait.versions list every version, newest
// first, with who saved it, when, what changed and its status, page by
// page, on both backends; deleting the definition deletes them.
func TestDefinitionVersionsOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			f.send(t, "/v1/track", orderMsg("u-1", "m1", time.Now().Add(-time.Hour)))
			f.mustAs(t, stewKey, createSeg, map[string]any{"key": "buyer", "def": buyerSrc})
			f.awaitLive(t, "buyer")
			const edited = `events("Order Completed").within(7d).exists()`
			f.mustAs(t, stewKey, updateSeg, map[string]any{"key": "buyer", "def": edited, "v": 1})
			f.awaitLive(t, "buyer")
			f.mustAs(t, stewKey, enableSeg, map[string]any{"key": "buyer", "on": false, "v": 2})

			const versions = `query($after: String, $first: Int) { segment(key: "buyer") { versions(first: $first, after: $after) {
				edges { cursor node { key version definition change author at status { state } current } } pageInfo { hasNextPage endCursor } } } }`
			d := f.must(t, versions, nil)
			var got []string
			for i := range 3 {
				n := get(d, fmt.Sprintf("segment.versions.edges.%d.node", i))
				author, _ := get(n, "author").(string)
				if !strings.HasPrefix(author, "steward-key:") || get(n, "key") != "buyer" || get(n, "at") == nil {
					t.Errorf("version %d: %v", i, n)
				}
				got = append(got, line(get(n, "version"), get(n, "change"), get(n, "status.state"), get(n, "current"), get(n, "definition")))
			}
			want := []string{line(3, "DISABLED", "DISABLED", true, edited), line(2, "EDITED", "LIVE", false, edited), line(1, "CREATED", "LIVE", false, buyerSrc)}
			if fmt.Sprint(got) != fmt.Sprint(want) || get(d, "segment.versions.pageInfo.hasNextPage") != false {
				t.Errorf("versions:\n got %q\nwant %q", got, want)
			}
			// Page by page.
			d = f.must(t, versions, map[string]any{"first": 2})
			if get(d, "segment.versions.pageInfo.hasNextPage") != true || len(get(d, "segment.versions.edges").([]any)) != 2 {
				t.Errorf("first page: %v", d)
			}
			d = f.must(t, versions, map[string]any{"first": 2, "after": get(d, "segment.versions.pageInfo.endCursor")})
			if line(get(d, "segment.versions.edges.0.node.version"), len(get(d, "segment.versions.edges").([]any)), get(d, "segment.versions.pageInfo.hasNextPage")) != "1 1 false" {
				t.Errorf("second page: %v", d)
			}
			f.refused(t, readKey, versions, map[string]any{"after": "bm90LWEtY3Vyc29y"}, "BAD_USER_INPUT", "after")
			f.refused(t, readKey, versions, map[string]any{"first": -1}, "BAD_USER_INPUT", "first")

			// A computed trait has its own.
			f.mustAs(t, stewKey, `mutation { createComputedTrait(key: "buyer", definition: "events(\"Order Completed\").count()") { key } }`, nil)
			d = f.must(t, `{ computedTrait(key: "buyer") { versions { edges { node { version change definition current } } } } }`, nil)
			if got := line(get(d, "computedTrait.versions.edges.0.node.version"), get(d, "computedTrait.versions.edges.0.node.change"),
				len(get(d, "computedTrait.versions.edges").([]any))); got != "1 CREATED 1" {
				t.Errorf("the computed trait's versions: %v", d)
			}

			// Deleted and created again: a new history.
			f.mustAs(t, stewKey, deleteSeg, map[string]any{"key": "buyer", "v": 3})
			f.mustAs(t, stewKey, createSeg, map[string]any{"key": "buyer", "def": buyerSrc})
			d = f.must(t, versions, nil)
			if got := line(len(get(d, "segment.versions.edges").([]any)), get(d, "segment.versions.edges.0.node.change")); got != "1 CREATED" {
				t.Errorf("created again: %v", d)
			}
		})
	}
}

// computedTraitChanged streams one computed trait's value changes, with
// the values before and after and the definition version that decided
// each; with profileId, one person's, following merges; on both backends.
func TestComputedTraitSubscription(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			now := time.Now()
			f.send(t, "/v1/track", orderMsg("u-0", "m0", now.Add(-time.Hour))) // before: not streamed
			for _, key := range []string{"orders", "other"} {
				f.mustAs(t, stewKey, `mutation($key: String!) { createComputedTrait(key: $key, definition: "events(\"Order Completed\").count()") { key } }`,
					map[string]any{"key": key})
				f.await(t, fmt.Sprintf(`{ computedTrait(key: %q) { status { state } } }`, key), "computedTrait.status.state", segments.StateLive)
			}
			const sub = `subscription($trait: String!, $after: String, $profile: ID) {
				computedTraitChanged(trait: $trait, after: $after, profileId: $profile) {
					sequence trait version profileId previous value reason at
					definitionVersion { version definition author current }
					profile { id } } }`
			next := f.subscription(t, sub, map[string]any{"trait": "orders"})
			time.Sleep(300 * time.Millisecond) // let the subscription start
			f.send(t, "/v1/track", orderMsg("u-1", "m1", now.Add(-time.Minute)))
			u1 := storetest.ProfileOf(t, f.store, "user_id:u-1").ID
			change := func(next func() (string, map[string]any)) map[string]any {
				t.Helper()
				typ, m := next()
				c, _ := get(m, "payload.data.computedTraitChanged").(map[string]any)
				if typ != "next" || c == nil {
					t.Fatalf("want a change, got %s %v", typ, m)
				}
				return c
			}
			c := change(next)
			author, _ := get(c, "definitionVersion.author").(string)
			if line(get(c, "trait"), get(c, "version"), get(c, "profileId"), get(c, "previous"), get(c, "value"), get(c, "reason"),
				get(c, "profile.id"), get(c, "definitionVersion.version"), get(c, "definitionVersion.current")) !=
				line("orders", 1, u1, nil, 1, "data", u1, 1, true) || !strings.HasPrefix(author, "steward-key:") {
				t.Fatalf("first change: %v", c)
			}
			seq := get(c, "sequence")
			f.send(t, "/v1/track", orderMsg("u-1", "m2", now.Add(-time.Minute)))
			if c := change(next); line(get(c, "profileId"), get(c, "previous"), get(c, "value")) != line(u1, 1, 2) {
				t.Fatalf("second change: %v", c)
			}
			// Resuming after the first replays the second.
			resumed := f.subscription(t, sub, map[string]any{"trait": "orders", "after": seq})
			if c := change(resumed); line(get(c, "previous"), get(c, "value")) != line(1, 2) {
				t.Errorf("resumed after %v: %v", seq, c)
			}

			// One person: an anonymous visitor's changes, and once they
			// sign in (the profiles merge), the merged profile's.
			f.send(t, "/v1/track", `{"anonymousId":"a-9","event":"Order Completed","messageId":"m3","properties":{"revenue":5}}`)
			a9 := storetest.ProfileOf(t, f.store, "anonymous_id:a-9").ID
			f.await(t, fmt.Sprintf(`{ profile(id: %q) { computedTraits { value } } }`, a9), "profile.computedTraits.0.value", "1")
			f.send(t, "/v1/track", orderMsg("u-9", "m4", now.Add(-time.Minute)))
			mine := f.subscription(t, sub, map[string]any{"trait": "orders", "profile": a9})
			time.Sleep(300 * time.Millisecond)
			f.send(t, "/v1/track", orderMsg("u-1", "m5", now.Add(-time.Minute))) // another person's: not streamed
			f.send(t, "/v1/identify", `{"userId":"u-9","anonymousId":"a-9","messageId":"m6"}`)
			survivor := storetest.ProfileOf(t, f.store, "user_id:u-9").ID
			if storetest.ProfileOf(t, f.store, "anonymous_id:a-9").ID != survivor {
				t.Fatalf("the identify did not merge a-9 into u-9's profile")
			}
			// The merge: a-9's value goes (when it was absorbed), and the
			// merged profile's is both people's orders.
			for {
				c := change(mine)
				if get(c, "reason") != segments.ReasonMerged || get(c, "profile.id") != survivor {
					t.Fatalf("a change of the merge: %v", c)
				}
				if get(c, "profileId") == survivor {
					if get(c, "value") != 2.0 {
						t.Fatalf("the merged profile's value: %v", c)
					}
					break
				}
				if get(c, "profileId") != a9 || get(c, "value") != nil {
					t.Fatalf("the absorbed profile's change: %v", c)
				}
			}
			f.send(t, "/v1/track", orderMsg("u-9", "m7", now.Add(-time.Minute)))
			if c := change(mine); line(get(c, "profileId"), get(c, "previous"), get(c, "value"), get(c, "reason")) != line(survivor, 2, 3, "data") {
				t.Errorf("after the merge: %v", c)
			}

			// Refusals: an unknown trait or profile, a bad sequence.
			for _, bad := range []struct {
				vars map[string]any
				want string
			}{
				{map[string]any{"trait": "nope"}, "NOT_FOUND"},
				{map[string]any{"trait": "orders", "profile": "p_nope"}, "NOT_FOUND"},
				{map[string]any{"trait": "orders", "after": "x"}, "BAD_USER_INPUT"},
			} {
				next := f.subscription(t, sub, bad.vars)
				if typ, m := next(); get(m, "payload.data.computedTraitChanged") != nil || !strings.Contains(fmt.Sprint(m), bad.want) {
					t.Errorf("%v: %s %v", bad.vars, typ, m)
				}
			}
		})
	}
}

// A membership change names the definition version that decided it, and
// segmentMembershipChanged takes a profile too.
func TestMembershipChangeVersion(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			now := time.Now()
			f.send(t, "/v1/track", orderMsg("u-1", "m1", now.Add(-time.Hour)))
			f.send(t, "/v1/track", orderMsg("u-2", "m2", now.Add(-time.Hour)))
			u2 := storetest.ProfileOf(t, f.store, "user_id:u-2").ID
			f.mustAs(t, stewKey, createSeg, map[string]any{"key": "buyer", "def": buyerSrc})
			f.awaitLive(t, "buyer")
			const sub = `subscription($profile: ID) { segmentMembershipChanged(segment: "buyer", after: "0", profileId: $profile) {
				profileId direction version definitionVersion { version definition current } } }`
			next := f.subscription(t, sub, map[string]any{"profile": u2})
			typ, m := next()
			c := get(m, "payload.data.segmentMembershipChanged")
			if typ != "next" || line(get(c, "profileId"), get(c, "direction"), get(c, "version"), get(c, "definitionVersion.version"),
				get(c, "definitionVersion.definition"), get(c, "definitionVersion.current")) != line(u2, "ENTERED", 1, 1, buyerSrc, true) {
				t.Fatalf("u-2's entry: %s %v", typ, m)
			}
			// Edited: the old entry names version 1, no longer current.
			f.mustAs(t, stewKey, updateSeg, map[string]any{"key": "buyer", "def": `events("Order Completed").within(7d).exists()`, "v": 1})
			f.awaitLive(t, "buyer")
			next = f.subscription(t, sub, map[string]any{"profile": u2})
			_, m = next()
			if c := get(m, "payload.data.segmentMembershipChanged"); line(get(c, "definitionVersion.version"), get(c, "definitionVersion.current")) != "1 false" {
				t.Errorf("after an edit: %v", m)
			}
			// Deleted: the version is gone.
			f.mustAs(t, stewKey, deleteSeg, map[string]any{"key": "buyer"})
			f.mustAs(t, stewKey, createSeg, map[string]any{"key": "buyer", "def": buyerSrc})
			next = f.subscription(t, sub, map[string]any{"profile": u2})
			_, m = next()
			if c := get(m, "payload.data.segmentMembershipChanged"); c == nil || get(c, "definitionVersion") != nil {
				t.Errorf("the version of a deleted segment, created again: %v", m)
			}
		})
	}
}
