package server_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// TestAuditListReads, on both backends: a page of `profiles`, a `search`,
// a segment's members and a segment preview's sample are one entry each, naming every profile shown and, as
// subjects, every identifier of theirs, so each person's access export
// finds the read and a person not shown finds none; the searched text is
// kept only as its keyed hash, and a search that found no one is an entry
// naming nobody. A members export is one entry naming no one.
func TestAuditListReads(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixtureWith(t, b.Open, nil, func(cfg *server.Config) {
				loadSegments(t, cfg)
			})
			people := []string{"u-list-a", "u-list-b", "u-list-c"}
			for i, u := range people {
				kf.send(t, "/v1/identify", `{"userId":"`+u+`","traits":{"email":"`+u+`@corp.io","plan":"`+[]string{"pro", "free", "pro"}[i]+`"},"messageId":"l`+string(rune('1'+i))+`"}`)
			}
			reader := kf.create(t, auth.RoleRead)
			l, err := audit.Open(kf.store, testPepper)
			if err != nil {
				t.Fatal(err)
			}
			entries := func(subject, action string) int {
				t.Helper()
				es, err := l.EntriesFor(context.Background(), subject)
				if err != nil {
					t.Fatal(err)
				}
				return len(slices.DeleteFunc(es, func(e *audit.Entry) bool { return e.Action != action }))
			}

			before := len(kf.chain(t))
			page := kf.mustAs(t, kf.admin, `{ profiles(first: 2) { edges { node { id } } } }`, nil)
			var shown []string
			for _, e := range page["profiles"].(map[string]any)["edges"].([]any) {
				shown = append(shown, e.(map[string]any)["node"].(map[string]any)["id"].(string))
			}
			es := kf.chain(t)[before:]
			if len(es) != 1 || es[0].Action != "profiles" || es[0].Role != "admin" || es[0].Outcome != "ok" {
				t.Fatalf("a page of profiles: %d entries (%+v), want one profiles entry", len(es), es)
			}
			for _, id := range shown {
				if !strings.Contains(es[0].Target, id) {
					t.Errorf("the entry %s does not name the profile %s shown", es[0].Target, id)
				}
			}
			if len(es[0].Subjects) != 2*len(shown) {
				t.Errorf("%d subjects, want the 2 identifiers of each of the %d profiles shown", len(es[0].Subjects), len(shown))
			}
			for _, u := range people {
				seen := slices.Contains(shown, storetest.ProfileOf(t, kf.store, "user_id:"+u).ID)
				if n := entries("email:"+u+"@corp.io", "profiles"); n != map[bool]int{true: 1, false: 0}[seen] {
					t.Errorf("%s (shown %v): %d profiles entries found by their email", u, seen, n)
				}
			}

			before = len(kf.chain(t))
			hits := kf.mustAs(t, reader, `{ search(query: "U-List-C@corp.io") { profile { id } } }`, nil)["search"].([]any)
			kf.mustAs(t, reader, `{ search(query: "nobody-here@corp.io") { value } }`, nil)
			es = kf.chain(t)[before:]
			if len(hits) != 1 || len(es) != 2 {
				t.Fatalf("%d hits and %d entries; want one hit, and an entry per search", len(hits), len(es))
			}
			for i, e := range es {
				if e.Action != "search" || e.Role != "read" || strings.Contains(strings.ToLower(e.Target), "corp.io") || !strings.Contains(e.Target, `"query":"hmac:`) {
					t.Errorf("search entry %d: %s by %s, target %s; want the text as its keyed hash", i, e.Action, e.Role, e.Target)
				}
			}
			if c := storetest.ProfileOf(t, kf.store, "user_id:u-list-c").ID; !strings.Contains(es[0].Target, c) || len(es[0].Subjects) != 2 {
				t.Errorf("the hit's entry: %s with %d subjects, want %s and its 2 identifiers", es[0].Target, len(es[0].Subjects), c)
			}
			if !strings.Contains(es[1].Target, `"profiles":[]`) || len(es[1].Subjects) != 0 {
				t.Errorf("the miss's entry: %s with %d subjects, want no one", es[1].Target, len(es[1].Subjects))
			}
			if n := entries("user_id:u-list-c", "search"); n != 1 {
				t.Errorf("the person found: %d search entries, want 1", n)
			}

			// A segment's members (a nested field) and a preview's sample.
			kf.mustAs(t, kf.admin, `mutation { createSegment(key: "pro", definition: "trait(\"plan\") = \"pro\"") { key } }`, nil)
			kf.awaitLive(t, "pro")
			pros := []string{storetest.ProfileOf(t, kf.store, "user_id:u-list-a").ID, storetest.ProfileOf(t, kf.store, "user_id:u-list-c").ID}
			for _, r := range []struct{ action, query string }{
				{"Segment.members", `{ segment(key: "pro") { members(first: 10) { edges { node { id } } } } }`},
				{"previewSegment", `{ previewSegment(definition: "trait(\"plan\") = \"pro\"", sample: 10) { sample { id } } }`},
			} {
				before = len(kf.chain(t))
				kf.mustAs(t, kf.admin, r.query, nil)
				es = kf.chain(t)[before:]
				if len(es) != 1 || es[0].Action != r.action || len(es[0].Subjects) != 4 || !strings.Contains(es[0].Target, pros[0]) || !strings.Contains(es[0].Target, pros[1]) {
					t.Errorf("%s: %d entries %+v; want one naming both members and their 4 identifiers", r.action, len(es), es)
				}
				if n := entries("user_id:u-list-b", r.action); n != 0 {
					t.Errorf("%s: the person not shown is named by %d entries", r.action, n)
				}
			}

			// A members export is one entry naming the segment, the columns
			// and the count, and no one; a refused export is one too.
			for _, c := range []struct {
				path, outcome, want string
				status              int
			}{
				{"/v1/segments/pro/members.csv?identifiers=email&traits=plan", "ok", `"members":2`, 200},
				{"/v1/segments/none/members.jsonl", "not_found", `"members":0`, 404},
			} {
				before = len(kf.chain(t))
				req, _ := http.NewRequest(http.MethodGet, kf.url+c.path, nil)
				req.Header.Set("Authorization", "Bearer "+kf.admin)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				es = kf.chain(t)[before:]
				if resp.StatusCode != c.status || len(es) != 1 || es[0].Action != "exportSegmentMembers" || es[0].Outcome != c.outcome ||
					!strings.Contains(es[0].Target, c.want) || len(es[0].Subjects) != 0 || strings.Contains(es[0].Target, "corp.io") {
					t.Errorf("%s: %d %s; entries %+v", c.path, resp.StatusCode, body, es)
				}
			}
		})
	}
}
