package server_test

import (
	"strings"
	"testing"
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
	})
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
	})
}
