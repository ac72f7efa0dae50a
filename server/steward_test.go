package server_test

import (
	"strings"
	"testing"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/match"
)

// act runs a steward mutation that must succeed.
func (f *fixture) act(t *testing.T, query string, vars map[string]any) map[string]any {
	t.Helper()
	return f.mustAs(t, stewKey, query, vars)
}

const reviewQuery = `query($f: ReviewFilter) { reviewQueue(first: 10, filter: $f) {
	edges { node { id reason score impact joined edge { a { value } b { value } status kind }
		left { id identifiers { value } } right { id identifiers { value } } } }
	pageInfo { hasNextPage } } }`

// The family tablet: two users seen on one device leave a pending edge
// (merge protection) for a steward, who sees both sides and decides.
func TestStewardReviewApproveReject(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"tablet","traits":{"name":"Ann"},"messageId":"s1","timestamp":"2026-01-01T10:00:00Z"}`)
		f.send(t, "/v1/identify", `{"userId":"bob","anonymousId":"tablet","traits":{"name":"Bob"},"messageId":"s2","timestamp":"2026-01-01T10:01:00Z"}`)
		q := f.must(t, reviewQuery, nil)
		items := get(q, "reviewQueue.edges").([]any)
		if len(items) != 1 || get(items[0], "node.reason") != "merge_protection" || get(items[0], "node.joined") != false ||
			get(items[0], "node.left.id") == get(items[0], "node.right.id") {
			t.Fatalf("queue = %v", items)
		}
		id := get(items[0], "node.id").(string)
		if got := f.must(t, reviewQuery, map[string]any{"f": map[string]any{"reason": "review"}}); len(get(got, "reviewQueue.edges").([]any)) != 0 {
			t.Errorf("filter by reason kept %v", got)
		}
		// A read key sees the queue but cannot decide.
		r := f.gql(t, readKey, `mutation($id: ID!) { rejectMatch(id: $id) { audit { id } } }`, map[string]any{"id": id})
		if r.code() != "FORBIDDEN" {
			t.Errorf("read key decided: %+v", r)
		}
		d := f.act(t, `mutation($id: ID!) { rejectMatch(id: $id, note: "siblings") { audit { id action actor note edge { value } } profiles { id } } }`, map[string]any{"id": id})
		if get(d, "rejectMatch.audit.action") != "reject" || !strings.HasPrefix(get(d, "rejectMatch.audit.actor").(string), "steward-key:") ||
			strings.Contains(get(d, "rejectMatch.audit.actor").(string), stewKey) || len(get(d, "rejectMatch.profiles").([]any)) != 2 {
			t.Errorf("reject = %v", d)
		}
		r = f.gql(t, stewKey, `mutation($id: ID!) { approveMatch(id: $id) { audit { id } } }`, map[string]any{"id": id})
		if r.code() != "CONFLICT" || !strings.Contains(r.Errors[0].Message, "reject") {
			t.Errorf("second decision: %+v", r)
		}
		bulk := f.act(t, `mutation($ids: [ID!]!) { approveMatches(ids: $ids) { id audit { id } error code } }`, map[string]any{"ids": []string{id, "edge_bad"}})
		if get(bulk, "approveMatches.0.code") != "CONFLICT" || get(bulk, "approveMatches.1.code") != "BAD_USER_INPUT" {
			t.Errorf("bulk = %v", bulk)
		}
		log := f.must(t, `{ auditLog(first: 5) { edges { node { action note } } } }`, nil)
		if got := get(log, "auditLog.edges.0.node.note"); got != "siblings" {
			t.Errorf("audit log = %v", log)
		}
	}, mergeProtectionOnly)
}

// Link two profiles, split one back out, undo the split, undo the link's merge.
func TestStewardLinkSplitUndo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"userId":"u1","traits":{"email":"ann@example.com","name":"Ann"},"messageId":"l1","timestamp":"2026-01-01T10:00:00Z"}`)
		f.send(t, "/v1/track", `{"anonymousId":"web-1","event":"Viewed","messageId":"l2","timestamp":"2026-01-01T10:01:00Z"}`)
		d := f.act(t, `mutation { link(a: {type: "user_id", value: "u1"}, b: {type: "anonymous_id", value: "web-1"}, note: "phoned in") {
			audit { id merge } profiles { id identifiers { value } } } }`, nil)
		p := get(d, "link.profiles.0.id").(string)
		merge := get(d, "link.audit.merge").(string)
		if n := len(get(d, "link.profiles.0.identifiers").([]any)); n != 2 || merge == "" {
			t.Fatalf("link = %v", d)
		}
		r := f.gql(t, stewKey, `mutation($p: ID!) { split(profileId: $p, identifiers: [{type: "user_id", value: "nobody"}]) { audit { id } } }`, map[string]any{"p": p})
		if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "identifiers") {
			t.Errorf("split of a stranger: %+v", r)
		}
		d = f.act(t, `mutation($p: ID!) { split(profileId: $p, identifiers: [{type: "anonymous_id", value: "web-1"}]) { audit { id } profiles { id identifiers { value } } } }`, map[string]any{"p": p})
		if len(get(d, "split.profiles").([]any)) != 2 || get(d, "split.profiles.0.id") != p {
			t.Fatalf("split = %v", d)
		}
		split := get(d, "split.audit.id").(string)
		// Search follows the identifier to the profile it was split into.
		hit := f.must(t, `{ search(query: "web-1") { profile { id } } }`, nil)
		if got := get(hit, "search.0.profile.id"); got != get(d, "split.profiles.1.id") {
			t.Errorf("search after the split found %v, want %v", got, get(d, "split.profiles.1.id"))
		}
		d = f.act(t, `mutation($a: ID!) { undoSplit(auditId: $a) { profiles { id identifiers { value } } } }`, map[string]any{"a": split})
		if get(d, "undoSplit.profiles.0.id") != p || len(get(d, "undoSplit.profiles.0.identifiers").([]any)) != 2 {
			t.Errorf("undoSplit = %v", d)
		}
		d = f.act(t, `mutation($m: ID!) { undoMerge(mergeEventId: $m) { profiles { id identifiers { value } } } }`, map[string]any{"m": merge})
		if len(get(d, "undoMerge.profiles").([]any)) != 2 {
			t.Errorf("undoMerge = %v", d)
		}
		// web-1 moved out, back, and out again: search finds it where it is.
		hit = f.must(t, `{ search(query: "web-1") { profile { id } } lookup(type: "anonymous_id", value: "web-1") { id } }`, nil)
		if get(hit, "search.0.profile.id") != get(hit, "lookup.id") || get(hit, "lookup.id") == p {
			t.Errorf("search after undoMerge = %v, want web-1's own profile", hit)
		}
		if a := f.must(t, `query($p: ID!) { profile(id: $p) { audit { action } } }`, map[string]any{"p": p}); len(get(a, "profile.audit").([]any)) != 4 {
			t.Errorf("profile audit = %v", a)
		}
		log := f.must(t, `query($p: ID!) { auditLog(filter: {profileId: $p}) { edges { node { action } } } }`, map[string]any{"p": p})
		var actions []string
		for _, e := range get(log, "auditLog.edges").([]any) {
			actions = append(actions, get(e, "node.action").(string))
		}
		if strings.Join(actions, ",") != "undo_merge,undo_split,split,link" {
			t.Errorf("profile audit = %v", actions)
		}
		only := f.must(t, `{ auditLog(filter: {action: "split"}) { edges { node { action } } } }`, nil)
		if n := len(get(only, "auditLog.edges").([]any)); n != 1 || get(only, "auditLog.edges.0.node.action") != "split" {
			t.Errorf("audit filtered by action = %v", only)
		}
		if none := f.must(t, `{ auditLog(filter: {actor: "nobody"}) { edges { node { id } } pageInfo { hasNextPage } } }`, nil); len(get(none, "auditLog.edges").([]any)) != 0 {
			t.Errorf("audit filtered by an unknown actor = %v", none)
		}
	})
}

// What-if: with the built-in Segment model and a strict accept threshold,
// a likely pair waits for review; matchPreview shows a looser threshold
// would merge it, and changes nothing. linkProfiles then joins them.
func TestStewardMatchPreviewAndLinkProfiles(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open, func(st *graph.Stitcher) {
				st.Matcher, st.MatchConfig = match.NewGraphMatcher(match.SegmentModel(), true), graph.DefaultMatchConfig()
				st.MatchConfig.Accept = 0.99999999
			})
			f.send(t, "/v1/identify", `{"anonymousId":"web-1","traits":{"firstName":"John","lastName":"Smith","birthday":"1980-05-17","address":{"street":"12 Acacia Avenue","city":"Springfield","postalCode":"4001"}},"messageId":"w1","timestamp":"2026-01-01T10:00:00Z"}`)
			f.send(t, "/v1/identify", `{"userId":"crm-7","traits":{"firstName":"Jon","lastName":"Smith","birthday":"17/05/1980","address":{"street":"12 Acacia Ave","postalCode":"4001"}},"messageId":"w2","timestamp":"2026-01-01T10:01:00Z"}`)
			q := f.must(t, reviewQuery, nil)
			if n := len(get(q, "reviewQueue.edges").([]any)); n != 1 || get(q, "reviewQueue.edges.0.node.reason") != "review" {
				t.Fatalf("queue = %v", q)
			}
			const preview = `{ matchPreview(accept: 0.9) { processed next changes { kind profiles score edge { value } } } }`
			if r := f.gql(t, readKey, preview, nil); r.code() != "FORBIDDEN" {
				t.Errorf("a read key ran a what-if: %+v", r)
			}
			d := f.mustAs(t, stewKey, preview, nil)
			if get(d, "matchPreview.processed") != float64(2) || get(d, "matchPreview.changes.0.kind") != "merge" {
				t.Errorf("preview = %v", d)
			}
			if r := f.gql(t, stewKey, `{ matchPreview(accept: 0.5, review: 0.7) { processed } }`, nil); r.code() != "BAD_USER_INPUT" {
				t.Errorf("review above accept: %+v", r)
			}
			if n := len(f.export(t)); n != 2 {
				t.Fatalf("the preview changed the graph: %d profiles", n)
			}
			a := f.must(t, `{ lookup(type: "anonymous_id", value: "web-1") { id } }`, nil)["lookup"].(map[string]any)["id"]
			b := f.must(t, `{ lookup(type: "user_id", value: "crm-7") { id } }`, nil)["lookup"].(map[string]any)["id"]
			d = f.act(t, `mutation($a: ID!, $b: ID!) { linkProfiles(a: $a, b: $b, note: "same") { profiles { id } } }`, map[string]any{"a": a, "b": b})
			if n := len(get(d, "linkProfiles.profiles").([]any)); n != 1 {
				t.Errorf("linkProfiles = %v", d)
			}
			if r := f.gql(t, stewKey, `mutation($a: ID!, $b: ID!) { linkProfiles(a: $a, b: $b) { audit { id } } }`, map[string]any{"a": a, "b": b}); r.code() != "CONFLICT" {
				t.Errorf("linking one profile with itself: %+v", r)
			}
		})
	}
}
