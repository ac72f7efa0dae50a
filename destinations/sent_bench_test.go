package destinations_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/segments"
)

// BenchmarkDeliverySentState measures what sent state and an identifier
// policy cost a delivery: b.N change records (entries and exits of 200
// profiles with a user ID and an email each) delivered to a loopback
// receiver, without either ("plain"), with sent state only ("sent"), and
// with both ("sent+policy").
func BenchmarkDeliverySentState(b *testing.B) {
	for _, c := range []struct {
		name         string
		sent, policy bool
	}{{"plain", false, false}, {"sent", true, false}, {"sent+policy", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := pebble.OpenMem()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			st := graph.NewStitcher(s, graph.DefaultConfig())
			var profiles []string
			for i := range 200 {
				u := graph.Key{Type: graph.TypeUserID, Value: fmt.Sprintf("u%d", i)}
				e := graph.Key{Type: "email", Value: fmt.Sprintf("u%d@corp.io", i)}
				if _, err := st.Ingest(ctx, []*graph.Observation{{MessageID: u.Value, Time: time.Now(), Identifiers: []graph.Key{u, e}, Event: graph.Event{Type: "identify"}}}); err != nil {
					b.Fatal(err)
				}
				n, err := s.Identifier(ctx, u)
				if err != nil {
					b.Fatal(err)
				}
				profiles = append(profiles, n.Profile)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
			defer srv.Close()
			sealer, _ := destinations.NewSealer([]byte("test-pepper-0123456789abcdef"))
			fd := &feed{}
			o := destinations.Options{Store: s.Destinations(), Segments: fd, Sealer: sealer, Profiles: s, Poll: 20 * time.Millisecond,
				Client: destinations.NewClient(destinations.ClientOptions{URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}}),
				Log:    slog.New(slog.DiscardHandler)}
			if c.sent {
				o.Sent = s.SentState()
			}
			m, err := destinations.NewManager(o)
			if err != nil {
				b.Fatal(err)
			}
			d, _, err := m.Create(ctx, "bench", srv.URL, []string{"vip"})
			if err != nil {
				b.Fatal(err)
			}
			if c.policy {
				if _, err := m.SetIdentifierPolicy(ctx, d.ID, &destinations.IdentifierPolicy{Types: []string{"email", "user_id"}, Mode: "all"}); err != nil {
					b.Fatal(err)
				}
			}
			run, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); m.Run(run) }()
			defer func() { stop(); <-done }()
			b.ResetTimer()
			var last uint64
			for i := range b.N {
				dir := segments.Entered
				if (i/len(profiles))%2 == 1 {
					dir = segments.Exited
				}
				last = fd.add("vip", profiles[i%len(profiles)], dir)
			}
			m.Wake()
			for {
				cur, err := m.Cursor(ctx, d.ID)
				if err != nil {
					b.Fatal(err)
				}
				if cur.After == last {
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
		})
	}
}
