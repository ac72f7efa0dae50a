package server_test

import (
	"fmt"
	"strings"
	"testing"
)

// One message with an absurd time used to be stored unreadable: every
// later message for the identifier answered 500 and export broke off.
// Now the time is replaced by receivedAt and reported, and everything
// around it stays readable.
func TestHostileTimestampsDoNotPoison(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		stamps := []string{`"timestamp":"9223372036854775807"`, `"timestamp":"-1"`, `"timestamp":"-9223372036854775808"`,
			`"timestamp":"0001-01-01T00:00:00Z"`, `"originalTimestamp":"9999-12-31T23:59:59Z"`,
			`"timestamp":"2020-01-01T00:00:00Z","sentAt":"9223372036854775807"`}
		for i, ts := range stamps {
			u := fmt.Sprintf("victim%d", i)
			code, body := f.post(t, "/v1/identify", writeKey, `{"userId":"`+u+`",`+ts+`}`)
			if code != 200 || !strings.Contains(body, `"rejected":[{"field":"`) || !strings.Contains(body, "receivedAt used instead") {
				t.Errorf("identify with %s: %d %s, want 200 naming the field in rejected", ts, code, body)
			}
			f.send(t, "/v1/track", `{"userId":"`+u+`","event":"x"}`)
			data := f.must(t, `query($u: String!) { lookup(type: "user_id", value: $u) { id events(first: 5) { edges { node { type timestamp } } } } }`, map[string]any{"u": u})
			if n := len(get(data, "lookup.events.edges").([]any)); n != 2 {
				t.Errorf("%s: %d events, want 2", u, n)
			}
		}
		// The batch envelope's sentAt applies to its messages.
		code, body := f.post(t, "/v1/batch", writeKey, `{"sentAt":"-9223372036854775808","batch":[{"type":"track","userId":"victim0","event":"y","timestamp":"2026-01-01T00:00:00Z"}]}`)
		if code != 200 || !strings.Contains(body, `"field":"timestamp"`) {
			t.Errorf("batch with an absurd sentAt: %d %s", code, body)
		}
		if got := len(f.export(t)); got != len(stamps) {
			t.Errorf("exported %d profiles, want %d", got, len(stamps))
		}
		data := f.must(t, `{ search(query: "victim") { value } }`, nil)
		if n := len(data["search"].([]any)); n != len(stamps) {
			t.Errorf("search found %d, want %d", n, len(stamps))
		}
	})
}
