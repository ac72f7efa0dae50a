package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// consentPurposes maps RudderStack's OneTrust-style ids onto purposes.
func consentPurposes(cfg *server.Config) {
	p, err := consent.NewPurposes(nil, map[string]string{"C0002": "analytics", "C0004": "advertising"})
	if err != nil {
		panic(err)
	}
	cfg.Purposes = p
}

// exportFor reads GET /v1/export/profiles?purpose=…: the profile IDs sent
// and the withheld counts of the trailer.
func (f *fixture) exportFor(t *testing.T, purpose string) (map[string]bool, map[string]int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/export/profiles?purpose="+purpose, nil)
	req.Header.Set("Authorization", "Bearer "+readKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("export for %q: %d %s", purpose, resp.StatusCode, data)
	}
	ids := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var p server.ExportedProfile
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		ids[p.ID] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	withheld, err := server.ParseWithheld(resp.Trailer.Get(server.WithheldTrailer))
	if err != nil {
		t.Fatal(err)
	}
	if len(withheld) != len(consent.Reasons) {
		t.Fatalf("trailer %q: want a count per reason", resp.Trailer.Get(server.WithheldTrailer))
	}
	return ids, withheld
}

func (f *fixture) profileOf(t *testing.T, typ, value string) string {
	t.Helper()
	d := f.must(t, `query($t: String!, $v: String!) { lookup(type: $t, value: $v) { id } }`, map[string]any{"t": typ, "v": value})
	id, _ := get(d, "lookup.id").(string)
	return id
}

const consentQuery = `query($p: ID, $s: IdentifierInput) { consent(profileId: $p, subject: $s) { profileId
	current { purpose state configured } history { id subject { type value } purpose status source recordedBy expiresAt } } }`

func stateOf(d map[string]any, field, purpose string) string {
	for _, c := range get(d, field+".current").([]any) {
		if get(c, "purpose") == purpose {
			return get(c, "state").(string)
		}
	}
	return ""
}

// Consent read at ingest from both SDKs' contexts gates the export; a
// merge of disagreeing people is a conflict until a choice is recorded for
// the profile; undoing the merge gives each side its own records back.
func TestConsentIngestExportMergeUndo(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixtureWith(t, b.Open, consentPurposes)
			f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"a1","messageId":"c1","timestamp":"2026-01-01T10:00:00Z",
				"context":{"consent":{"categoryPreferences":{"Analytics":true,"Advertising":false,"Sales_Calls":true,"bogus":"yes"}}}}`)
			f.send(t, "/v1/identify", `{"userId":"bob","messageId":"c2","timestamp":"2026-01-01T10:00:00Z",
				"context":{"consentManagement":{"provider":"oneTrust","allowedConsentIds":["C0002"],"deniedConsentIds":[{"consentId":"C0004"}]}}}`)
			f.send(t, "/v1/identify", `{"userId":"carl","messageId":"c3","timestamp":"2026-01-01T10:00:00Z"}`)
			f.send(t, "/v1/identify", `{"anonymousId":"d1","messageId":"c4","timestamp":"2026-01-01T10:00:00Z",
				"context":{"consent":{"categoryPreferences":{"analytics":false}}}}`)
			// Sent again: de-duplicated, nothing recorded twice.
			f.send(t, "/v1/identify", `{"userId":"ann","anonymousId":"a1","messageId":"c1","timestamp":"2026-01-01T10:00:00Z",
				"context":{"consent":{"categoryPreferences":{"Analytics":true}}}}`)
			ann, bob, carl, _ := f.profileOf(t, "user_id", "ann"), f.profileOf(t, "user_id", "bob"), f.profileOf(t, "user_id", "carl"), f.profileOf(t, "anonymous_id", "d1")

			ids, withheld := f.exportFor(t, "analytics")
			if len(ids) != 2 || !ids[ann] || !ids[bob] || withheld[consent.ReasonNotGranted] != 1 || withheld[consent.ReasonDenied] != 1 {
				t.Fatalf("analytics export = %v withheld %v, want ann and bob; carl not granted, dee denied", ids, withheld)
			}
			var buf bytes.Buffer
			if got, err := client.New(f.url, readKey).ExportProfilesFor(context.Background(), &buf, "analytics"); err != nil ||
				got != "conflict=0,denied=1,expired=0,not_granted=1" || strings.Count(buf.String(), "\n") != 2 {
				t.Fatalf("client export for analytics: %q %v, %d lines", got, err, strings.Count(buf.String(), "\n"))
			}
			ids, withheld = f.exportFor(t, "advertising")
			if len(ids) != 0 || withheld[consent.ReasonDenied] != 2 || withheld[consent.ReasonNotGranted] != 2 {
				t.Fatalf("advertising export = %v withheld %v", ids, withheld)
			}
			if r := f.gql(t, readKey, `{ consent(profileId: "x", subject: {type: "user_id", value: "ann"}) { profileId } }`, nil); r.code() != "BAD_USER_INPUT" {
				t.Errorf("both profileId and subject: %+v", r)
			}
			req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/export/profiles?purpose=sales_calls", nil)
			req.Header.Set("Authorization", "Bearer "+readKey)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
				t.Errorf("export for an unconfigured purpose: %v %v, want 400", resp, err)
			} else {
				resp.Body.Close()
			}

			d := f.must(t, consentQuery, map[string]any{"p": ann})
			if stateOf(d, "consent", "analytics") != "GRANTED" || stateOf(d, "consent", "advertising") != "DENIED" ||
				stateOf(d, "consent", "marketing") != "MISSING" || stateOf(d, "consent", "sales_calls") != "GRANTED" {
				t.Fatalf("ann's consent = %v", d)
			}
			// Two identifiers × three purposes (the non-boolean one is skipped).
			if h := get(d, "consent.history").([]any); len(h) != 6 || !strings.HasPrefix(get(h[0], "source").(string), "segment") {
				t.Fatalf("ann's history = %v", h)
			}
			for _, c := range get(d, "consent.current").([]any) {
				if get(c, "purpose") == "sales_calls" && get(c, "configured") != false {
					t.Errorf("an unknown purpose is kept but not configured: %v", c)
				}
			}

			// A read key cannot record; a steward can, and the record names its key.
			rec := `mutation($p: ID, $s: IdentifierInput, $u: String!, $st: ConsentStatus!) { recordConsent(profileId: $p, subject: $s, purpose: $u, status: $st) {
				current { purpose state } history { id purpose status recordedBy source } } }`
			if r := f.gql(t, readKey, rec, map[string]any{"p": carl, "u": "analytics", "st": "GRANTED"}); r.code() != "FORBIDDEN" {
				t.Errorf("read key recorded consent: %+v", r)
			}
			if r := f.gql(t, stewKey, rec, map[string]any{"p": carl, "u": "sales_calls", "st": "GRANTED"}); r.code() != "BAD_USER_INPUT" {
				t.Errorf("unconfigured purpose recorded: %+v", r)
			}

			// ann and dee are one person, says a steward: they disagree on analytics.
			link := f.act(t, `mutation { link(a: {type: "user_id", value: "ann"}, b: {type: "anonymous_id", value: "d1"}) { audit { merge } profiles { id } } }`, nil)
			merged, merge := get(link, "link.profiles.0.id").(string), get(link, "link.audit.merge").(string)
			d = f.must(t, consentQuery, map[string]any{"p": merged})
			if stateOf(d, "consent", "analytics") != "CONFLICT" {
				t.Fatalf("after the merge analytics is %q, want CONFLICT", stateOf(d, "consent", "analytics"))
			}
			if ids, withheld := f.exportFor(t, "analytics"); ids[merged] || withheld[consent.ReasonConflict] != 1 {
				t.Fatalf("conflict exported: %v %v", ids, withheld)
			}
			// A choice on one identifier does not resolve it; one for the profile does.
			d = f.act(t, rec, map[string]any{"s": map[string]any{"type": "user_id", "value": "ann"}, "u": "analytics", "st": "GRANTED"})
			if stateOf(d, "recordConsent", "analytics") != "CONFLICT" {
				t.Fatalf("a subject's choice resolved the conflict: %v", d)
			}
			d = f.act(t, rec, map[string]any{"p": merged, "u": "analytics", "st": "GRANTED"})
			if stateOf(d, "recordConsent", "analytics") != "GRANTED" {
				t.Fatalf("the profile's choice = %v", d)
			}
			h := get(d, "recordConsent.history").([]any)
			last := h[len(h)-1]
			if get(last, "source") != "api" || get(last, "recordedBy") == nil || get(last, "recordedBy") == stewKey {
				t.Errorf("explicit record = %v (it names the key id, never the key)", last)
			}
			if ids, _ := f.exportFor(t, "analytics"); !ids[merged] {
				t.Fatalf("granted profile withheld: %v", ids)
			}
			// bob denies advertising on one identifier, then a steward grants a
			// different person (carl): bob stays denied.
			f.act(t, rec, map[string]any{"p": carl, "u": "advertising", "st": "GRANTED"})
			if ids, _ := f.exportFor(t, "advertising"); ids[bob] || !ids[carl] {
				t.Fatalf("advertising after carl's grant: %v", ids)
			}

			// Undo the merge: dee's side has its own records (denied, then the
			// profile's grant, which it was part of); ann's side keeps ann's.
			f.act(t, `mutation($m: ID!) { undoMerge(mergeEventId: $m) { profiles { id } } }`, map[string]any{"m": merge})
			dee2, ann2 := f.profileOf(t, "anonymous_id", "d1"), f.profileOf(t, "user_id", "ann")
			if dee2 == ann2 {
				t.Fatal("undo left one profile")
			}
			for _, side := range []struct{ id, key string }{{dee2, "d1"}, {ann2, "ann"}} {
				d := f.must(t, consentQuery, map[string]any{"p": side.id})
				for _, r := range get(d, "consent.history").([]any) {
					v := get(r, "subject.value")
					if side.key == "d1" && v != "d1" || side.key == "ann" && v != "ann" && v != "a1" {
						t.Errorf("%s's side holds another's record %v", side.key, r)
					}
				}
			}

		})
	}
}

// Segment.members(purpose) leaves out members without consent and counts
// them by reason; without a purpose every member is listed.
func TestConsentSegmentMembers(t *testing.T) {
	b := backends.All()[0] // the member list is backend-neutral above the segments store (its contract runs on both)
	f := withSegments(t, b.Open)
	for i, c := range []string{`{"Analytics":true}`, `{"Analytics":false}`, `null`} {
		f.send(t, "/v1/track", fmt.Sprintf(`{"userId":"m%d","event":"Order Completed","messageId":"o%d","timestamp":%q,"context":{"consent":{"categoryPreferences":%s}}}`,
			i, i, time.Now().UTC().Format(time.RFC3339Nano), c))
	}
	f.mustAs(t, stewKey, `mutation($def: String!) { createSegment(key: "buyer", definition: $def) { key } }`, map[string]any{"def": buyerSrc})
	f.await(t, `{ segment(key: "buyer") { size } }`, "segment.size", "3")
	q := `query($p: String) { segment(key: "buyer") { members(first: 10, purpose: $p) { edges { node { id } } withheld { reason count } pageInfo { hasNextPage } } } }`
	all := f.must(t, q, nil)
	if n := len(get(all, "segment.members.edges").([]any)); n != 3 || get(all, "segment.members.withheld") != nil {
		t.Fatalf("members without a purpose = %v", all)
	}
	d := f.must(t, q, map[string]any{"p": "analytics"})
	edges := get(d, "segment.members.edges").([]any)
	if len(edges) != 1 || get(edges[0], "node.id") != f.profileOf(t, "user_id", "m0") {
		t.Fatalf("members for analytics = %v", d)
	}
	counts := map[string]any{}
	for _, w := range get(d, "segment.members.withheld").([]any) {
		counts[get(w, "reason").(string)] = get(w, "count")
	}
	if fmt.Sprint(counts) != "map[conflict:0 denied:1 expired:0 not_granted:1]" {
		t.Fatalf("withheld = %v", counts)
	}
	if r := f.gql(t, readKey, q, map[string]any{"p": "sales"}); r.code() != "BAD_USER_INPUT" {
		t.Errorf("an unconfigured purpose: %+v", r)
	}
	// The members export takes the same purpose.
	req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/segments/buyer/members.jsonl?purpose=analytics", nil)
	req.Header.Set("Authorization", "Bearer "+readKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Count(string(body), "\n") != 1 || !strings.Contains(string(body), f.profileOf(t, "user_id", "m0")) {
		t.Fatalf("members export for analytics: %d %s", resp.StatusCode, body)
	}
	if got := resp.Trailer.Get(server.WithheldTrailer); got != "conflict=0,denied=1,expired=0,not_granted=1" {
		t.Errorf("members export trailer = %q", got)
	}
}
