package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
)

// Suppression lists over GraphQL: admin only, bad input refused with the
// field named and nothing written, 10,000 entries taken and 10,001
// refused, repeats idempotent, hashes answered and never values, and a
// channel-scoped entry withholding a real delivery.
func TestSuppressionListsOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			admin := f.admin
			const add = `mutation($s: SuppressionScopeInput!, $e: [IdentifierInput!]!) {
				addSuppressions(scope: $s, entries: $e) { changed unchanged hashes } }`
			const remove = `mutation($s: SuppressionScopeInput!, $e: [IdentifierInput!]!) {
				removeSuppressions(scope: $s, entries: $e) { changed unchanged } }`
			global := map[string]any{"kind": "GLOBAL"}
			email := func(v string) map[string]any { return map[string]any{"type": "email", "value": v} }
			for _, q := range []struct {
				src  string
				vars map[string]any
			}{
				{add, map[string]any{"s": global, "e": []any{email("a@mail.idgraph.dev")}}},
				{remove, map[string]any{"s": global, "e": []any{email("a@mail.idgraph.dev")}}},
				{`{ suppressionCounts { type count } }`, nil},
				{`{ suppressionEntries(scope: {kind: GLOBAL}) { hash } }`, nil},
				{`mutation { setDestinationChannel(destination: "dst_0000000000000000", channel: "sms") { id } }`, nil},
			} {
				for _, key := range []string{readKey, stewKey} {
					if r := f.gql(t, key, q.src, q.vars); r.code() != "FORBIDDEN" {
						t.Fatalf("%s with a non-admin key: %+v", q.src, r)
					}
				}
			}
			many := func(n int) []any {
				out := make([]any, n)
				for i := range out {
					out[i] = email(fmt.Sprintf("p%05d@mail.idgraph.dev", i))
				}
				return out
			}
			for _, bad := range []struct {
				scope   map[string]any
				entries []any
				field   string
			}{
				{global, []any{map[string]any{"type": "shoe_size", "value": "9"}}, "entries[0].type"},
				{global, []any{email("ok@mail.idgraph.dev"), email("  ")}, "entries[1].value"},
				{global, []any{email("ok@mail.idgraph.dev"), email("not an address")}, "entries[1].value"},
				{global, []any{map[string]any{"type": "phone", "value": "12"}}, "entries[0].value"},
				{global, []any{email("noreply@mail.idgraph.dev")}, "entries[0].value"},
				{global, []any{}, "entries"},
				{global, many(10001), "entries"},
				{map[string]any{"kind": "GLOBAL", "target": "x"}, []any{email("ok@mail.idgraph.dev")}, "scope"},
				{map[string]any{"kind": "DESTINATION", "target": "dst_0000000000000000"}, []any{email("ok@mail.idgraph.dev")}, "scope"},
				{map[string]any{"kind": "CHANNEL", "target": "E mail"}, []any{email("ok@mail.idgraph.dev")}, "scope"},
			} {
				r := f.gql(t, admin, add, map[string]any{"s": bad.scope, "e": bad.entries})
				if r.code() != "BAD_USER_INPUT" || !strings.HasPrefix(r.Errors[0].Message, bad.field+": ") {
					t.Fatalf("add %v (%d entries): %+v, want invalid on %s", bad.scope, len(bad.entries), r, bad.field)
				}
				if strings.Contains(r.Errors[0].Message, "@") || strings.Contains(r.Errors[0].Message, "not an address") {
					t.Fatalf("the error repeats the value: %s", r.Errors[0].Message)
				}
			}
			if c := f.mustAs(t, admin, `{ suppressionCounts { type count } }`, nil); len(get(c, "suppressionCounts").([]any)) != 0 {
				t.Fatalf("refused adds wrote entries: %v", c)
			}
			full := many(10000)
			r := f.mustAs(t, admin, add, map[string]any{"s": global, "e": full})
			if get(r, "addSuppressions.changed") != 10000.0 || get(r, "addSuppressions.unchanged") != 0.0 {
				t.Fatalf("10,000 entries: %v", get(r, "addSuppressions"))
			}
			// Spelled otherwise, and repeated: idempotent.
			again := []any{email("P00000@MAIL.idgraph.dev "), email("p00000@mail.idgraph.dev"), email("new@mail.idgraph.dev")}
			r = f.mustAs(t, admin, add, map[string]any{"s": global, "e": again})
			if get(r, "addSuppressions.changed") != 1.0 || get(r, "addSuppressions.unchanged") != 2.0 || len(get(r, "addSuppressions.hashes").([]any)) != 2 {
				t.Fatalf("repeats: %v", get(r, "addSuppressions"))
			}
			page := f.gql(t, admin, `{ suppressionEntries(scope: {kind: GLOBAL}, first: 3) { hash type scope { kind target } createdAt } }`, nil)
			if len(page.Errors) > 0 || len(get(page.Data, "suppressionEntries").([]any)) != 3 || strings.Contains(fmt.Sprint(page.Data), "@") {
				t.Fatalf("entries: %+v", page)
			}
			if e := get(page.Data, "suppressionEntries.0").(map[string]any); len(e["hash"].(string)) != 64 || e["type"] != "email" ||
				get(e, "scope.kind") != "GLOBAL" || get(e, "scope.target") != nil {
				t.Fatalf("entry %v", e)
			}
			r = f.mustAs(t, admin, remove, map[string]any{"s": global, "e": full})
			if get(r, "removeSuppressions.changed") != 10000.0 {
				t.Fatalf("remove: %v", r)
			}

			// A channel list withholds a real delivery to a destination of
			// that channel.
			f.mustAs(t, admin, `mutation { createSegment(key: "vip", definition: "trait(\"vip\") = true") { key } }`, nil)
			h := newHookReceiver(t)
			d := f.mustAs(t, admin, `mutation($url: String!) { createDestination(name: "mail", url: $url, segments: ["vip"]) { secret destination { id } } }`,
				map[string]any{"url": h.srv.URL})
			h.mu.Lock()
			h.secret = get(d, "createDestination.secret").(string)
			h.mu.Unlock()
			id := get(d, "createDestination.destination.id").(string)
			if r := f.gql(t, admin, `mutation($id: ID!) { setDestinationChannel(destination: $id, channel: "E-Mail") { id } }`, map[string]any{"id": id}); r.code() != "BAD_USER_INPUT" || !strings.HasPrefix(r.Errors[0].Message, "channel: ") {
				t.Fatalf("a bad channel: %+v", r)
			}
			f.mustAs(t, admin, `mutation($id: ID!) { setDestinationChannel(destination: $id, channel: "email") { channel } }`, map[string]any{"id": id})
			f.mustAs(t, admin, add, map[string]any{"s": map[string]any{"kind": "CHANNEL", "target": "email"}, "e": []any{email("S@mail.idgraph.dev")}})
			f.send(t, "/v1/identify", `{"userId":"s","traits":{"email":"s@mail.idgraph.dev","vip":true}}`)
			f.send(t, "/v1/identify", `{"userId":"t","traits":{"vip":true}}`)
			h.await(t, 1) // t's entry; s's, recorded before it, was dropped first
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				ds := f.mustAs(t, admin, `{ destinations { channel suppressed health { delivered } } }`, nil)
				dst := get(ds, "destinations.0")
				if get(dst, "suppressed") == 1.0 && get(dst, "health.delivered") == 1.0 && get(dst, "channel") == "email" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the suppressed entry was not counted: %v", ds)
				}
			}
			if got := h.messages(); len(got) != 1 {
				t.Fatalf("delivered %v: the suppressed profile's entry went out", got)
			}
			resp, err := http.Get(f.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if line := fmt.Sprintf("idgraph_destination_suppressed_total{destination=%q,reason=\"suppressed\"} 1\n", id); !strings.Contains(string(body), line) {
				t.Errorf("/metrics has no line %q", line)
			}
			c := f.mustAs(t, admin, `{ suppressionCounts { scope { kind target } type count } }`, nil)
			if fmt.Sprint(get(c, "suppressionCounts")) != "[map[count:1 scope:map[kind:CHANNEL target:email] type:email] map[count:1 scope:map[kind:GLOBAL target:<nil>] type:email]]" {
				t.Fatalf("counts %v", get(c, "suppressionCounts"))
			}
			// Suppressing someone a destination already holds takes them
			// out of it: an exit, reason suppressed, before the add answers.
			f.mustAs(t, admin, add, map[string]any{"s": map[string]any{"kind": "DESTINATION", "target": id},
				"e": []any{map[string]any{"type": "user_id", "value": "t"}}})
			got := h.await(t, 2)
			h.mu.Lock()
			last := string(h.bodies[len(h.bodies)-1])
			h.mu.Unlock()
			if got[1] != "segment.exited vip" || !strings.Contains(last, `"reason":"suppressed"`) {
				t.Errorf("after suppressing a member: %v, last body %s", got, last)
			}
		})
	}
}
