package deploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// internalDetail is the message of the panics the test provokes: it must
// reach no answer.
const internalDetail = "internal-detail-7Qx2: index out of range [7] with length 3"

// panickyStore is a store whose identifier reads panic, as a bug in a
// backend would.
type panickyStore struct{ graph.Store }

func (panickyStore) Identifier(context.Context, graph.Key) (*graph.Identifier, error) {
	panic(internalDetail)
}

func (panickyStore) GetIdentifiers(context.Context, []graph.Key) ([]*graph.Identifier, error) {
	panic(internalDetail)
}

// panickySuppressor panics on every identifier, as a bug on the ingest
// path would.
type panickySuppressor struct{}

func (panickySuppressor) Suppressed(graph.Key) bool { panic(internalDetail) }

// leak matches what a Go stack trace or panic message shows.
var leak = regexp.MustCompile(`goroutine \d+|\.go:\d+|runtime\.|panic|github\.com/|internal-detail`)

// TestPanicsShowNoInternals: in production, a panic in a GraphQL resolver
// and one on the ingest path are answered "internal error" with no stack
// trace, file path or panic message, on every backend. (It lives here, not
// with the server's tests, because the server's test binary fails on any
// panic, as a bug.)
func TestPanicsShowNoInternals(t *testing.T) {
	const read, write = "rk_prod", "wk_prod"
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			store := panickyStore{b.Open(t)}
			st := graph.NewStitcher(store, graph.DefaultConfig())
			st.Suppressor = panickySuppressor{}
			srv := server.New(server.Config{Store: store, Stitcher: st, Normalizer: graph.NewNormalizer("US"), Broker: graph.NewBroker(),
				Keys: server.Keys{Write: []string{write}, Read: []string{read}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				AuthFailures: -1, Rates: map[auth.Role]server.Rate{}})
			hs := httptest.NewUnstartedServer(nil)
			hs.Config = srv.HTTPServer()
			hs.Start()
			defer hs.Close()
			defer srv.Close()
			for _, r := range []struct{ name, path, auth, body string }{
				{"a resolver", "/graphql", "Bearer " + read, `{"query":"{ lookup(type: \"email\", value: \"ann@corp.io\") { id } }"}`},
				{"ingest", "/v1/track", "Basic " + basicUser(write), `{"userId":"u-1","event":"Seen","anonymousId":"a-1"}`},
			} {
				req, _ := http.NewRequest(http.MethodPost, hs.URL+r.path, strings.NewReader(r.body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", r.auth)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var answer struct {
					Message string `json:"message"`
					Errors  []struct {
						Message string `json:"message"`
					} `json:"errors"`
				}
				json.Unmarshal(body, &answer)
				if len(answer.Errors) > 0 {
					answer.Message = answer.Errors[0].Message
				}
				if leak.Match(body) || answer.Message != "internal error" {
					t.Errorf("a panic in %s answered %d: %s", r.name, resp.StatusCode, body)
				}
				t.Logf("%s: a panic in %s answered %d %s", b.Name, r.name, resp.StatusCode, body)
			}
			if n := srv.Panics(); n != 2 {
				t.Errorf("%d panics recovered; want the 2 provoked (else the test proves nothing)", n)
			}
		})
	}
}

// basicUser is a write key as Segment's SDKs send it: the Basic-auth user.
func basicUser(key string) string { return base64.StdEncoding.EncodeToString([]byte(key + ":")) }
