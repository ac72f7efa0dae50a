package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/internal/backends"
)

// TestMessageConsentAudited, on both backends: a message whose consent
// context changes a status of its identifiers (a first choice, or one
// unlike the last) is one audit entry naming them; a message repeating the
// status, or carrying no consent, is none.
func TestMessageConsentAudited(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixtureWith(t, b.Open, nil, consentPurposes)
			msg := func(id string, choice string) string {
				ctx := ""
				if choice != "" {
					ctx = `,"context":{"consent":{"categoryPreferences":{"analytics":` + choice + `}}}`
				}
				return fmt.Sprintf(`{"type":"track","event":"Seen","userId":"u-consenting","messageId":%q%s}`, id, ctx)
			}
			before := len(kf.chain(t))
			steps := []struct {
				msgs []string
				want []string // the messages audited
			}{
				{[]string{msg("m1", "true"), msg("m2", "true"), msg("m3", "false")}, []string{"m1", "m3"}},
				{[]string{msg("m4", "false"), msg("m5", "")}, nil},
				{[]string{msg("m6", "true")}, []string{"m6"}},
				{[]string{msg("m6", "true")}, nil}, // sent again
			}
			for i, st := range steps {
				kf.send(t, "/v1/batch", `{"batch":[`+strings.Join(st.msgs, ",")+`]}`)
				es := kf.chain(t)[before:]
				before += len(es)
				var got []string
				for _, e := range es {
					if e.Action != "messageConsent" || e.Outcome != "ok" || e.Role != "write" || len(e.Subjects) != 1 {
						t.Errorf("step %d: entry %+v", i+1, e)
					}
					if strings.Contains(e.Target, "u-consenting") {
						t.Errorf("step %d: the entry keeps the identifier readable: %s", i+1, e.Target)
					}
					for _, m := range []string{"m1", "m3", "m6"} {
						if strings.Contains(e.Target, `"messageId":"`+m+`"`) {
							got = append(got, m)
						}
					}
				}
				slices.Sort(got) // appended concurrently, in one write
				if fmt.Sprint(got) != fmt.Sprint(st.want) && (len(got) > 0 || len(st.want) > 0) {
					t.Errorf("step %d: audited %v, want %v", i+1, got, st.want)
				}
			}
			l, err := audit.Open(kf.store, testPepper)
			if err != nil {
				t.Fatal(err)
			}
			if mine, err := l.EntriesFor(context.Background(), "user_id:u-consenting"); err != nil || len(mine) != 3 {
				t.Errorf("the person's consent entries: %d (%v), want 3", len(mine), err)
			}
		})
	}
}
