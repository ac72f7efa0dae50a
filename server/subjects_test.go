package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// exportSubject calls GET /v1/export/subject and returns the status, the
// lines and the response.
func (f *fixture) exportSubject(t *testing.T, key, subject string) (int, []server.SubjectLine, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/export/subject?subject="+url.QueryEscape(subject), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []server.SubjectLine
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l server.SubjectLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return resp.StatusCode, lines, resp
}

// TestExportSubject: an admin's access export holds the person's profiles,
// identifiers, every event, merges, steward decisions and the audit
// entries naming them, with 0 records of another person; other roles are
// refused; each export is audited; a key is limited to 5 a minute.
func TestExportSubject(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixture(t, b.Open, nil)
			steward, read := kf.create(t, auth.RoleSteward), kf.create(t, auth.RoleRead)
			send := func(body string) {
				t.Helper()
				if code, out := kf.post(t, "/v1/batch", writeKey, body); code != 200 {
					t.Fatalf("batch: %d %s", code, out)
				}
			}
			var batch []string
			for i := range 30 {
				batch = append(batch, fmt.Sprintf(`{"type":"track","anonymousId":"anon-x1","event":"Viewed","messageId":"ann-%d","properties":{"i":%d}}`, i, i))
				batch = append(batch, fmt.Sprintf(`{"type":"track","userId":"u-bob","event":"Viewed","messageId":"bob-%d"}`, i))
			}
			batch = append(batch, `{"type":"identify","userId":"u-ann","anonymousId":"anon-x1","messageId":"ann-id","traits":{"email":"ann@corp.io"},"context":{"consent":{"categoryPreferences":{"marketing":true}}}}`,
				`{"type":"identify","userId":"u-bob","messageId":"bob-id","context":{"consent":{"categoryPreferences":{"analytics":false}}}}`,
				`{"type":"identify","userId":"u-ann2","messageId":"ann2-id","traits":{"name":"Ann"}}`)
			send(`{"batch":[` + strings.Join(batch, ",") + `]}`)
			kf.mustAs(t, steward, `mutation { link(a: {type: "email", value: "ann@corp.io"}, b: {type: "user_id", value: "u-ann2"}) { audit { id } } }`, nil)

			for _, tc := range []struct {
				key, subject string
				want         int
			}{{read, "email:ann@corp.io", 403}, {steward, "email:ann@corp.io", 403}, {"", "email:ann@corp.io", 401},
				{kf.admin, "email:nobody@corp.io", 404}, {kf.admin, "ann@corp.io", 400}, {kf.admin, "email:", 400}} {
				if code, _, _ := kf.exportSubject(t, tc.key, tc.subject); code != tc.want {
					t.Errorf("export %q with %.12s: %d, want %d", tc.subject, tc.key, code, tc.want)
				}
			}
			code, lines, resp := kf.exportSubject(t, kf.admin, "email:ANN@corp.io")
			if code != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("export: %d %s", code, resp.Header.Get("Content-Type"))
			}
			counts := map[string]int{}
			for _, l := range lines {
				counts[l.Kind]++
				raw, _ := json.Marshal(l.Data)
				if strings.Contains(string(raw), "bob") {
					t.Errorf("a record of another person: %s %s", l.Kind, raw)
				}
			}
			ids := map[string]bool{}
			for _, l := range lines {
				if l.Kind == "identifier" {
					k := l.Data.(map[string]any)
					ids[fmt.Sprint(k["type"], ":", k["value"])] = true
				}
			}
			for _, k := range []string{"email:ann@corp.io", "user_id:u-ann", "anonymous_id:anon-x1", "user_id:u-ann2"} {
				if !ids[k] {
					t.Errorf("identifier %s missing from %v", k, ids)
				}
			}
			// Ann's choice, on each of the message's identifiers; not Bob's.
			if counts["consent"] != 3 {
				t.Errorf("%d consent lines, want ann's choice on her 3 identifiers", counts["consent"])
			}
			if counts["subject"] != 1 || counts["event"] != 32 || counts["merge"] < 1 || counts["steward"] < 1 ||
				counts["profile"] < 2 || counts["end"] != 1 || lines[len(lines)-1].Kind != "end" {
				t.Fatalf("counts %v", counts)
			}
			var access []map[string]any
			for _, l := range lines {
				if l.Kind == "access" {
					access = append(access, l.Data.(map[string]any))
				}
			}
			// Her message's consent choice (an entry since consent from
			// messages is audited) and the steward's link.
			if len(access) != 2 || access[0]["action"] != "messageConsent" || access[1]["action"] != "link" {
				t.Fatalf("access entries: %v", access)
			}
			// The export itself is audited, and the next one lists it.
			_, lines, _ = kf.exportSubject(t, kf.admin, "user_id:u-ann")
			es := kf.chain(t)
			last := es[len(es)-1]
			if last.Action != "exportSubject" || last.Outcome != "ok" || last.Role != "admin" || last.Target != "user_id:u-ann" {
				t.Fatalf("last entry %+v", last)
			}
			n := 0
			for _, l := range lines {
				if l.Kind == "access" && l.Data.(map[string]any)["action"] == "exportSubject" {
					n++
				}
			}
			if n != 1 { // the first export of ann (the 404 named nobody@)
				t.Fatalf("the second export lists %d exports, want 1", n)
			}
			refused := 0
			for _, e := range es {
				if e.Action == "exportSubject" && e.Outcome != "ok" {
					refused++
				}
			}
			if refused != 5 { // 2 forbidden, 404, 2 invalid; not the one without a key
				t.Fatalf("%d refused exports audited, want 5", refused)
			}
			// 5 a minute per key: the admin has used 5 (3 refused for
			// their subject count too).
			code, _, resp = kf.exportSubject(t, kf.admin, "user_id:u-ann")
			if code != 429 || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("sixth export: %d, Retry-After %q", code, resp.Header.Get("Retry-After"))
			}
		})
	}
}
