package server_test

import (
	"strings"
	"testing"

	"github.com/idgraph/idgraph/internal/backends"
)

// TestDestinationBatchSizeOverGraphQL, on every backend: admins only; a
// new destination sends one change per request; sizes outside 1 to 100
// are refused naming the field.
func TestDestinationBatchSizeOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			h := newHookReceiver(t)
			d := f.mustAs(t, f.admin, `mutation($url: String!) { createDestination(name: "b", url: $url) { destination { id batchSize } } }`,
				map[string]any{"url": h.srv.URL})
			if got := get(d, "createDestination.destination.batchSize"); got != 1.0 {
				t.Fatalf("a new destination's batchSize: %v, want 1", got)
			}
			id := get(d, "createDestination.destination.id").(string)
			const set = `mutation($id: ID!, $n: Int!) { setDestinationBatchSize(destination: $id, batchSize: $n) { batchSize } }`
			for _, key := range []string{readKey, stewKey} {
				if r := f.gql(t, key, set, map[string]any{"id": id, "n": 10}); r.code() != "FORBIDDEN" {
					t.Fatalf("setDestinationBatchSize with a non-admin key: %+v", r)
				}
			}
			for _, n := range []int{0, -3, 101} {
				r := f.gql(t, f.admin, set, map[string]any{"id": id, "n": n})
				if r.code() != "BAD_USER_INPUT" || !strings.HasPrefix(r.Errors[0].Message, "batchSize: ") {
					t.Errorf("batch size %d: %+v, want invalid on batchSize", n, r)
				}
			}
			if got := get(f.mustAs(t, f.admin, set, map[string]any{"id": id, "n": 25}), "setDestinationBatchSize.batchSize"); got != 25.0 {
				t.Fatalf("batchSize after setting 25: %v", got)
			}
			ds := f.mustAs(t, f.admin, `{ destinations { batchSize } }`, nil)
			if got := get(get(ds, "destinations").([]any)[0], "batchSize"); got != 25.0 {
				t.Fatalf("listed batchSize %v, want 25", got)
			}
		})
	}
}
