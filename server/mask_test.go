package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/mask"
	"github.com/idgraph/idgraph/resolver"
	"github.com/idgraph/idgraph/server"
)

// TestEveryPersonalFieldIsClassified walks every type reachable from the
// root fields (any role's: a policy opened to support later is covered)
// and fails for a String,
// ID or JSON field that resolver.FieldMasks does not classify as personal
// (how it is masked) or not personal, and for a stale entry. A new field
// that could carry personal data cannot land unmasked.
func TestEveryPersonalFieldIsClassified(t *testing.T) {
	s, roots := rootFields(t)
	seen := map[string]bool{}
	var reach func(name string)
	var fields []string
	reach = func(name string) {
		def := s.Types[name]
		if def == nil || seen[name] || (def.Kind != ast.Object && def.Kind != ast.Interface) {
			return
		}
		seen[name] = true
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			switch f.Type.Name() {
			case "String", "ID", "JSON":
				fields = append(fields, name+"."+f.Name)
			default:
				reach(f.Type.Name())
			}
		}
	}
	for _, root := range roots {
		if strings.Contains(root, ".__") {
			continue
		}
		typ, field, _ := strings.Cut(root, ".")
		reach(s.Types[typ].Fields.ForName(field).Type.Name())
	}
	missing := 0
	for _, f := range fields {
		if _, ok := resolver.FieldMasks[f]; !ok {
			missing++
			t.Errorf("%s is not classified: add it to resolver.FieldMasks (personal, document, free text, opaque or not personal)", f)
		}
	}
	for f := range resolver.FieldMasks {
		if !slices.Contains(fields, f) {
			t.Errorf("resolver.FieldMasks classifies %s, which no root field reaches", f)
		}
	}
	t.Logf("%d String/ID/JSON fields reachable over %d types, %d unclassified", len(fields), len(seen), missing)
}

// maskPerson is one person whose every personal field holds a marker.
type maskPerson struct {
	m                                            string // 64 random letters, in every marker
	email, name, street, city, device, ad, loyal string
	userID                                       string
}

func newMaskPerson(seed uint64) maskPerson {
	rng := rand.New(rand.NewPCG(seed, 14))
	b := make([]byte, 64)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz"[rng.IntN(26)]
	}
	m := string(b)
	return maskPerson{m: m, email: "zq" + m[:40] + "@corp.io", name: "Zebediah " + strings.ToUpper(m[:1]) + m[1:],
		street: "17 " + m + " Lane", city: "City" + m, device: "dev-" + m, ad: "ad-" + m, loyal: "LC-" + m,
		userID: fmt.Sprintf("u-mask-%d", seed)} // user and anonymous IDs are not masked: agents look customers up by them
}

// raw lists what must never reach a support answer: each marker (all
// start with the same 20 letters; an email's local part holds 40), the
// phone's digits, the birthday's day, the IP's tail.
func (p maskPerson) raw() []string {
	return []string{p.m[:20], "edge_", "5550134", "555-0134", "1987-04-19", "04-19", "113.77", "Zebediah"}
}

// TestSupportSeesMaskedValues sends a person with markers in every personal
// field (traits, a configured key, event properties and context, device
// and advertising IDs, an IP, a steward's note) and reads them back on
// every path, over HTTP, on both backends: a support key never sees a raw
// value, the other reading keys see them whole.
func TestSupportSeesMaskedValues(t *testing.T) {
	rules, err := mask.NewRules([]string{"loyalty_card"})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixtureWith(t, b.Open, nil, func(c *server.Config) { c.Masking = rules })
			p := newMaskPerson(1)
			ctxJSON := fmt.Sprintf(`{"ip":"203.0.113.77","device":{"id":%q,"advertisingId":%q,"name":"Zebediah's phone"},"library":{"name":"analytics.js"},"traits":{"email":%q}}`, p.device, p.ad, p.email)
			kf.send(t, "/v1/identify", fmt.Sprintf(`{"userId":%q,"anonymousId":"anon-mask","messageId":"m1","context":%s,
				"traits":{"email":%q,"phone":"+1 415 555 0134","name":%q,"birthday":"1987-04-19","plan":"pro",
				"address":{"street":%q,"city":%q},"loyalty_card":%q}}`, p.userID, ctxJSON, p.email, p.name, p.street, p.city, p.loyal))
			kf.send(t, "/v1/track", fmt.Sprintf(`{"userId":%q,"event":"Order Completed","messageId":"m2","context":%s,
				"properties":{"total":30,"shipTo":{"name":%q,"phone":"(415) 555-0134"},"note":"mail me at %s","loyalty_card":%q}}`, p.userID, ctxJSON, p.name, p.email, p.loyal))
			kf.send(t, "/v1/identify", `{"userId":"u-other","traits":{"tier":"free"},"messageId":"m3"}`)
			steward := kf.create(t, auth.RoleSteward)
			if r := kf.gql(t, steward, `mutation($e:String!,$n:String!){link(a:{type:"email",value:$e},b:{type:"user_id",value:"u-other"},note:$n){dryRun}}`,
				map[string]any{"e": p.email, "n": "customer called from +1 415 555 0134, " + p.email}); len(r.Errors) > 0 {
				t.Fatalf("link: %+v", r.Errors)
			}
			id := get(kf.mustAs(t, steward, `query($u:String!){lookup(type:"user_id",value:$u){id}}`, map[string]any{"u": p.userID}), "lookup.id").(string)
			const profileFields = `id name email phone traits traitSources{path value} identifiers{type value}
				graph{nodes{type value} edges{id a{type value} b{type value} explanation decision{note}}}
				history{messageId edge{type value}} audit{note cause edge{type value} before after moved edges explanation}
				events(first:20){edges{node{name messageId properties traits context identifiers{type value}}}}`
			vars := map[string]any{"id": id, "e": p.email, "u": p.userID}
			paths := []struct{ name, query string }{
				{"profile", `query($id:ID!){profile(id:$id){` + profileFields + `}}`},
				{"lookup by email", `query($e:String!){lookup(type:"email",value:$e){` + profileFields + `}}`},
				{"lookup by user id", `query($u:String!){lookup(type:"user_id",value:$u){name email phone traits}}`},
				{"identifier", `query($e:String!){identifier(type:"email",value:$e){type value edges{id a{value} b{value}} profile{name email phone}}}`},
				{"audit log", `{auditLog(first:10){edges{node{note cause edge{type value} before after moved edges explanation}}}}`},
			}
			keys := map[auth.Role]string{auth.RoleRead: kf.create(t, auth.RoleRead), auth.RoleSupport: kf.create(t, auth.RoleSupport),
				auth.RoleSteward: steward, auth.RoleAdmin: kf.admin}
			support := keys[auth.RoleSupport]
			for _, path := range paths {
				for role, key := range keys {
					r := kf.gql(t, key, path.query, vars)
					if len(r.Errors) > 0 || r.Status != 200 {
						t.Fatalf("%s as %s: %d %+v", path.name, role, r.Status, r.Errors)
					}
					body, _ := json.Marshal(r.Data)
					if role == auth.RoleSupport {
						for _, raw := range p.raw() {
							if strings.Contains(string(body), raw) {
								t.Errorf("%s as support: %q reached the answer: %s", path.name, raw, body)
							}
						}
						continue
					}
					if path.name != "audit log" && !strings.Contains(string(body), p.m[:20]) {
						t.Errorf("%s as %s: the marker is missing, so not unmasked: %s", path.name, role, body)
					}
				}
			}
			// What support sees is enough to confirm with the customer.
			r := kf.mustAs(t, support, `query($id:ID!){profile(id:$id){name email phone traits identifiers{type value}}}`, vars)
			body, _ := json.Marshal(r)
			for _, want := range []string{`"email":"z***@c***.io"`, `"phone":"+1******0134"`, `"name":"Z. ` + strings.ToUpper(p.m[:1]) + `."`,
				`"birthday":"1987-**-**"`, `"plan":"pro"`, `"value":"` + p.userID + `"`, `"loyalty_card":"L***"`} {
				if !strings.Contains(string(body), want) {
					t.Errorf("support's profile lacks %s: %s", want, body)
				}
			}

			// A subscription carries the profile: masked too.
			sub := subscribeNext(t, kf.fixture, support, `subscription($id:ID!){profileChanged(id:$id){profile{name email traits events(first:1){edges{node{properties context}}}}}}`,
				map[string]any{"id": id}, func() {
					kf.send(t, "/v1/track", fmt.Sprintf(`{"userId":%q,"event":"Clicked","properties":{"email":%q},"context":%s}`, p.userID, p.email, ctxJSON))
				})
			for _, raw := range p.raw() {
				if strings.Contains(sub, raw) {
					t.Errorf("subscription as support: %q reached it: %s", raw, sub)
				}
			}
			if !strings.Contains(sub, "z***@c***.io") {
				t.Errorf("subscription as support: no masked email: %s", sub)
			}
		})
	}
}

// TestSupportFindsByExactIdentifierOnly: support cannot prefix-search
// (FORBIDDEN, naming the argument), and a miss says nothing.
func TestSupportFindsByExactIdentifierOnly(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixture(t, b.Open, nil)
			p := newMaskPerson(2)
			kf.send(t, "/v1/identify", fmt.Sprintf(`{"userId":%q,"traits":{"email":%q,"name":%q}}`, p.userID, p.email, p.name))
			support := kf.create(t, auth.RoleSupport)
			r := kf.gql(t, support, `{search(query:"zq"){value profile{id}}}`, nil)
			if r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "query argument") || r.Data != nil && string(mustJSON(r.Data)) != `{"search":null}` && string(mustJSON(r.Data)) != "null" {
				t.Errorf("support's search: %s %+v", mustJSON(r.Data), r.Errors)
			}
			if r := kf.gql(t, kf.create(t, auth.RoleRead), `{search(query:"zq"){value}}`, nil); len(r.Errors) > 0 {
				t.Errorf("read's search: %+v", r.Errors)
			}
			if r := kf.gql(t, support, `{reviewQueue{edges{cursor}}}`, nil); r.code() != "FORBIDDEN" {
				t.Errorf("support's review queue: %+v", r.Errors)
			}
			// A miss, even one letter off a customer's email, says nothing.
			near := "zq" + p.m[:39] + "x@corp.io"
			for _, q := range []struct{ name, query string }{
				{"lookup", `query($v:String!){lookup(type:"email",value:$v){id email}}`},
				{"identifier", `query($v:String!){identifier(type:"email",value:$v){value}}`},
			} {
				r := kf.gql(t, support, q.query, map[string]any{"v": near})
				body := string(mustJSON(r))
				if r.code() != "NOT_FOUND" || len(r.Errors) != 1 || r.Errors[0].Message != "no customer has that identifier" {
					t.Errorf("%s miss as support: %s", q.name, body)
				}
				if strings.Contains(body, p.m[:10]) || strings.Contains(body, "corp") {
					t.Errorf("%s miss as support reveals something: %s", q.name, body)
				}
			}
			// The exact identifier finds the customer.
			got := kf.mustAs(t, support, `query($v:String!){lookup(type:"email",value:$v){email}}`, map[string]any{"v": strings.ToUpper(p.email)})
			if get(got, "lookup.email") != "z***@c***.io" {
				t.Errorf("support's exact lookup: %v", got)
			}
		})
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// subscribeNext subscribes with the key, runs trigger, and returns the
// first event's JSON.
func subscribeNext(t *testing.T, f *fixture, key, query string, vars map[string]any, trigger func()) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := coderws.Dial(ctx, "ws"+strings.TrimPrefix(f.url, "http")+"/graphql", &coderws.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	write := func(v any) {
		if err := c.Write(ctx, coderws.MessageText, mustJSON(v)); err != nil {
			t.Fatal(err)
		}
	}
	write(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + key}})
	write(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}})
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(data, &m)
		switch m["type"] {
		case "connection_ack":
			time.Sleep(200 * time.Millisecond) // let the subscription start
			trigger()
		case "next":
			return string(data)
		case "error", "complete":
			t.Fatalf("subscription ended: %s", data)
		}
	}
}

// TestConsoleSupportView: the console shows a support agent what the API
// shows (masked), finds customers by a whole identifier only, and says
// nothing on a miss; a read key's console shows the values whole.
func TestConsoleSupportView(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixture(t, b.Open, nil)
			kf.send(t, "/v1/identify", `{"userId":"ann-1","traits":{"name":"Ann Lee","email":"ann@corp.io","phone":"(415) 555-0134","birthday":"1987-04-19"},
				"context":{"ip":"203.0.113.77"},"messageId":"cs1"}`)
			agent := newBrowser(t, kf.url)
			agent.signIn(kf.create(t, auth.RoleSupport))
			raw := []string{"Ann Lee", "ann@corp.io", "5550134", "555-0134", "1987-04-19", "113.77", "edge_"}
			for _, q := range []string{"415.555.0134", "ANN@corp.io", "user_id:ann-1"} {
				code, page := agent.follow("/console/search?q=" + url.QueryEscape(q))
				if code != 200 || !strings.Contains(page, "A. L.") || !strings.Contains(page, "a***@c***.io") || !strings.Contains(page, "Support (personal data masked)") {
					t.Errorf("support's console, %q: %d\n%s", q, code, page)
				}
				for _, r := range raw {
					if strings.Contains(page, r) {
						t.Errorf("support's console, %q: %q is on the page", q, r)
					}
				}
				if strings.Contains(page, `href="/console/review"`) {
					t.Errorf("support's console links the review queue")
				}
			}
			for q, want := range map[string]string{"an": "whole identifier", "nobody@corp.io": "No customer has that identifier"} {
				code, page := agent.follow("/console/search?q=" + url.QueryEscape(q))
				if code != 200 || !strings.Contains(page, want) || strings.Contains(page, "/console/profiles/") {
					t.Errorf("support's console, %q: %d, want %q and no profile\n%s", q, code, want, page)
				}
			}
			reader := newBrowser(t, kf.url)
			reader.signIn(kf.create(t, auth.RoleRead))
			if _, page := reader.follow("/console/search?q=" + url.QueryEscape("ann@corp.io")); !strings.Contains(page, "Ann Lee") {
				t.Errorf("read key's console does not show the name whole:\n%s", page)
			}
		})
	}
}

// TestSupportSegments: a support key reads a segment and a membership
// explanation masked, and may not list a segment's members or follow
// every member's changes (bulk reads).
func TestSupportSegments(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixtureWith(t, b.Open, nil, func(cfg *server.Config) {
				loadSegments(t, cfg)
			}, func(st *graph.Stitcher) { st.RecordDataChanges = true })
			p := newMaskPerson(3)
			kf.send(t, "/v1/identify", fmt.Sprintf(`{"userId":%q,"traits":{"email":%q,"plan":"pro"},"messageId":"s1"}`, p.userID, p.email))
			def := fmt.Sprintf(`trait("plan") = "pro" and trait("email") = %q`, p.email)
			kf.mustAs(t, stewKey, `mutation($d:String!){createSegment(key:"vip",definition:$d){key}}`, map[string]any{"d": def})
			kf.await(t, `{segment(key:"vip"){size}}`, "segment.size", "1")
			id := get(kf.must(t, `query($u:String!){lookup(type:"user_id",value:$u){id}}`, map[string]any{"u": p.userID}), "lookup.id").(string)
			support := kf.create(t, auth.RoleSupport)
			r := kf.mustAs(t, support, `query($id:ID!){segment(key:"vip"){key size definition}
				explainMembership(profileId:$id,segment:"vip"){nodes{text value}}
				profile(id:$id){segments computedTraits{key value}}}`, map[string]any{"id": id})
			body := string(mustJSON(r))
			if strings.Contains(body, p.m[:20]) || !strings.Contains(body, "z***@c***.io") || !strings.Contains(body, `"segments":["vip"]`) {
				t.Errorf("support's segment reads: %s", body)
			}
			if r := kf.gql(t, support, `{segment(key:"vip"){members{edges{node{id}}}}}`, nil); r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "Segment.members") {
				t.Errorf("support listed a segment's members: %s", mustJSON(r))
			}
			if r := kf.gql(t, readKey, `{segment(key:"vip"){members{edges{node{email}}}}}`, nil); len(r.Errors) > 0 || !strings.Contains(string(mustJSON(r)), p.email) {
				t.Errorf("read key's members: %s", mustJSON(r))
			}
		})
	}
}

// TestConfiguredPersonalKeysOverHTTP: random trait keys configured with
// --personal-keys (random kinds, written in another case by the sender,
// some nested, some in event properties) never reach a support answer
// raw, and reach a read key's whole.
func TestConfiguredPersonalKeysOverHTTP(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 3))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyz"[rng.IntN(26)]
		}
		return string(b)
	}
	var specs []string
	traits, props := map[string]any{}, map[string]any{}
	var markers []string
	for i := range 24 {
		key := word(4+rng.IntN(6)) + "_" + word(3)
		spec := key
		if rng.IntN(2) == 0 {
			spec += "=" + string(mask.Kinds[rng.IntN(len(mask.Kinds))])
		}
		specs = append(specs, spec)
		marker := "M" + word(63)
		markers = append(markers, marker[1:41])
		written := key
		if rng.IntN(2) == 0 {
			written = strings.ToUpper(key)
		}
		switch i % 3 {
		case 0:
			traits[written] = marker
		case 1:
			traits["extra"+word(3)] = map[string]any{written: marker}
		default:
			props[written] = []any{marker}
		}
	}
	rules, err := mask.NewRules(specs)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixtureWith(t, b.Open, nil, func(c *server.Config) { c.Masking = rules })
			kf.send(t, "/v1/identify", string(mustJSON(map[string]any{"userId": "u-fuzz", "traits": traits, "messageId": "f1"})))
			kf.send(t, "/v1/track", string(mustJSON(map[string]any{"userId": "u-fuzz", "event": "X", "properties": props, "messageId": "f2"})))
			const q = `{lookup(type:"user_id",value:"u-fuzz"){traits traitSources{path value} events{edges{node{properties traits}}}}}`
			masked := string(mustJSON(kf.mustAs(t, kf.create(t, auth.RoleSupport), q, nil)))
			whole := string(mustJSON(kf.must(t, q, nil)))
			leaked := 0
			for _, m := range markers {
				if strings.Contains(masked, m) {
					leaked++
				}
				if !strings.Contains(whole, m) {
					t.Errorf("read key lacks marker %s", m)
				}
			}
			t.Logf("%d configured keys, %d markers leaked to support", len(specs), leaked)
			if leaked > 0 {
				t.Errorf("support's answer: %s", masked)
			}
		})
	}
}
