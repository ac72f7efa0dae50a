package server_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/internal/backends"
)

// TestSegmentMembersExport, on both backends: a segment's members as CSV
// with the columns asked for (several identifiers of a type in one cell,
// formulas neutralised, phones left alone) and as JSON lines; the point in
// time in a header; refusals naming what is wrong.
func TestSegmentMembersExport(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withSegments(t, b.Open)
			f.send(t, "/v1/identify", `{"userId":"u1","traits":{"plan":"pro","email":"ann@mailbox.org","phone":"+33612345678","name":"=HYPERLINK(\"http://evil\")"}}`)
			f.send(t, "/v1/identify", `{"userId":"u1","traits":{"email":"ann.b@mailbox.org"}}`)
			f.send(t, "/v1/identify", `{"userId":"u2","traits":{"plan":"pro","score":-3}}`)
			f.send(t, "/v1/identify", `{"userId":"u3","traits":{"plan":"free"}}`)
			f.mustAs(t, stewKey, createSeg, map[string]any{"key": "pro", "def": `trait("plan") = "pro"`})
			f.awaitLive(t, "pro")
			f.await(t, `{ segment(key: "pro") { size } }`, "segment.size", "2")

			get := func(key, path string) (int, string, string) {
				t.Helper()
				code, h, body := f.do(t, "GET", path, map[string]string{"Authorization": "Bearer " + key}, nil)
				return code, h.Get("X-Idgraph-As-Of-Sequence"), body
			}
			q := url.Values{"identifiers": {"user_id,email", "phone"}, "traits": {"plan,name,score"}}
			code, seq, body := get(readKey, "/v1/segments/pro/members.csv?"+q.Encode())
			if code != 200 || seq == "" || seq == "0" {
				t.Fatalf("members.csv: %d (sequence %q) %s", code, seq, body)
			}
			rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(rows[0], ","); got != "profile_id,user_id,email,phone,plan,name,score" {
				t.Fatalf("header %q", got)
			}
			var lines []string
			for _, r := range rows[1:] {
				lines = append(lines, strings.Join(r[1:], "|"))
			}
			slices.Sort(lines)
			want := []string{
				`u1|ann.b@mailbox.org ann@mailbox.org|+33612345678|pro|'=HYPERLINK("http://evil")|`,
				`u2|||pro||-3`,
			}
			if !slices.Equal(lines, want) {
				t.Fatalf("rows\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
			}

			code, _, body = get(readKey, "/v1/segments/pro/members.jsonl?traits=plan")
			if code != 200 {
				t.Fatalf("members.jsonl: %d %s", code, body)
			}
			var users []string
			for l := range strings.Lines(body) {
				var m struct {
					Profile     string
					Identifiers map[string][]string
					Traits      map[string]any
				}
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if m.Profile == "" || m.Traits["plan"] != "pro" {
					t.Errorf("line %q", l)
				}
				users = append(users, fmt.Sprint(m.Identifiers["user_id"]))
			}
			if slices.Sort(users); fmt.Sprint(users) != "[[u1] [u2]]" {
				t.Errorf("JSON lines of %v", users)
			}

			for _, c := range []struct {
				key, path string
				code      int
				want      string
			}{
				{readKey, "/v1/segments/nope/members.jsonl", 404, "nope"},
				{readKey, "/v1/segments/pro/members.xml", 404, "members.csv or members.jsonl"},
				{readKey, "/v1/segments/pro/members.csv", 400, "identifiers: "},
				{writeKey, "/v1/segments/pro/members.jsonl", 403, ""},
				{"", "/v1/segments/pro/members.jsonl", 401, ""},
			} {
				if code, _, body := get(c.key, c.path); code != c.code || !strings.Contains(body, c.want) {
					t.Errorf("GET %s with %q: %d %s, want %d naming %q", c.path, c.key, code, body, c.code, c.want)
				}
			}
		})
	}
}
