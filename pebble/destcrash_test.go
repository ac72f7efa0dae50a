package pebble

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/segments"
)

const crashSecret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// openCrashable opens a store on fs (a crashable in-memory file system).
func openCrashable(t *testing.T, fs vfs.FS) *Store {
	t.Helper()
	s, err := open("crash", crashSecret, fs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRetryStateLostInACrash: a retry state (PutRetryState) is not synced,
// so a crash right after it leaves the cursor as the last synced write
// stored it, never a later or mixed state; a synced write after it makes
// it durable too.
func TestRetryStateLostInACrash(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	s := openCrashable(t, fs)
	g := s.Destinations()
	c := &destinations.Cursor{Destination: "dst_c", After: 7, FailedTries: 1,
		Head: &destinations.Head{Sequence: 8, Attempts: 1, LastStatus: 500}}
	if err := g.PutCursor(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Head.Attempts, c.FailedTries = 2, 2
	if err := g.PutRetryState(ctx, c); err != nil {
		t.Fatal(err)
	}
	crashed := openCrashable(t, fs.CrashClone(vfs.CrashCloneCfg{}))
	got, err := crashed.Destinations().Cursor(ctx, "dst_c")
	crashed.Close()
	if err != nil || got.After != 7 || got.Head == nil || got.Head.Attempts != 1 || got.FailedTries != 1 {
		t.Fatalf("after a crash: %+v (head %+v), %v; want the synced state, attempt 1", got, got.Head, err)
	}
	// A synced write of another key carries the retry state with it.
	if err := g.PutDeadLetter(ctx, &destinations.DeadLetter{Destination: "dst_other"}); err != nil {
		t.Fatal(err)
	}
	crashed = openCrashable(t, fs.CrashClone(vfs.CrashCloneCfg{}))
	got, err = crashed.Destinations().Cursor(ctx, "dst_c")
	crashed.Close()
	if err != nil || got.Head == nil || got.Head.Attempts != 2 {
		t.Fatalf("after a later synced write and a crash: %+v, %v; want attempt 2", got, err)
	}
	s.Close()
}

// crashFeed is a change feed held outside the crashing store (as durable
// as the store's own records would be).
type crashFeed struct {
	segments.Store
	recs []*segments.ChangeRecord
}

func (f *crashFeed) Changes(_ context.Context, after uint64, limit int) ([]*segments.ChangeRecord, error) {
	var out []*segments.ChangeRecord
	for _, r := range f.recs {
		if r.Sequence > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *crashFeed) Definition(_ context.Context, r segments.Ref) (*segments.Definition, error) {
	return &segments.Definition{Key: r.Key, Version: 1}, nil
}

// TestCrashesWhileRetrying: a receiver refuses the first attempts of
// every third record; the store crashes (only synced writes survive) each
// time it has refused a few, and a new process goes on from the crashed
// copy. Every record still reaches the receiver, under its webhook-id,
// and each profile's records first arrive in order: losing retry states
// costs at most earlier retries.
func TestCrashesWhileRetrying(t *testing.T) {
	const records, profiles, crashes = 60, 7, 6
	feed := &crashFeed{}
	var (
		mu       sync.Mutex
		refused  = map[uint64]int{}
		ids      = map[uint64][]string{}
		order    = map[string][]uint64{}
		refusals = make(chan struct{}, 1000)
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Data destinations.SegmentChange `json:"data"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("a message that does not parse: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		seq := m.Data.Sequence
		if seq%3 == 0 && refused[seq] < 4 {
			refused[seq]++
			refusals <- struct{}{}
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		if len(ids[seq]) == 0 {
			order[m.Data.Profile] = append(order[m.Data.Profile], seq)
		}
		ids[seq] = append(ids[seq], r.Header.Get("webhook-id"))
	}))
	defer recv.Close()

	sealer, err := destinations.NewSealer([]byte("test-pepper-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	schedule := make([]time.Duration, 1000) // never a dead letter
	for i := range schedule {
		schedule[i] = time.Millisecond
	}
	manager := func(s *Store) *destinations.Manager {
		m, err := destinations.NewManager(destinations.Options{Store: s.Destinations(), Segments: feed, Sealer: sealer,
			Client:   destinations.NewClient(destinations.ClientOptions{URLPolicy: destinations.URLPolicy{AllowHTTP: true, AllowPrivate: true}, Timeout: 3 * time.Second}),
			Schedule: schedule, Jitter: -1, Poll: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	start := func(s *Store) func() {
		m := manager(s)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); m.Run(ctx) }()
		return func() { cancel(); <-done }
	}

	fs := vfs.NewCrashableMem()
	s := openCrashable(t, fs)
	d, _, err := manager(s).Create(context.Background(), "crm", recv.URL+"/hook", []string{"s"})
	if err != nil {
		t.Fatal(err)
	}
	// The records, written after the connection and before any worker
	// reads the feed.
	t1 := time.Now().UTC()
	for i := 1; i <= records; i++ {
		dir := map[bool]string{true: segments.Entered, false: segments.Exited}[(i/profiles)%2 == 0]
		feed.recs = append(feed.recs, &segments.ChangeRecord{Sequence: uint64(i), Segment: "s", Version: 1,
			Profile: fmt.Sprintf("p%d", i%profiles), Direction: dir, Reason: segments.ReasonData, Time: t1})
	}
	stop := start(s)
	lost := 0
	for range crashes {
		for range 3 {
			select {
			case <-refusals:
			case <-time.After(10 * time.Second):
				t.Fatal("no refusal in 10 s")
			}
		}
		// The crash: what was synced survives; the process stops (its
		// later writes go to the lost file system).
		before, _ := s.Destinations().Cursor(context.Background(), d.ID)
		crashed := fs.CrashClone(vfs.CrashCloneCfg{})
		stop()
		s.Close()
		fs = crashed
		s = openCrashable(t, fs)
		after, err := s.Destinations().Cursor(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.After > before.After {
			t.Fatalf("the crash moved the cursor on: %d → %d", before.After, after.After)
		}
		if before.Head != nil && (after.Head == nil || after.Head.Attempts < before.Head.Attempts) {
			lost++
		}
		stop = start(s)
	}
	defer func() { stop(); s.Close() }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(ids)
		mu.Unlock()
		if n == records {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records received after the crashes", n, records)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for seq, got := range ids {
		for _, id := range got {
			if want := destinations.MessageID(d.ID, seq); id != want {
				t.Errorf("record %d under %q, want %q", seq, id, want)
			}
		}
	}
	for p, seqs := range order {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				t.Errorf("profile %s: records first arrived in the order %v", p, seqs)
			}
		}
	}
	t.Logf("%d crashes, %d of them lost a retry state; %d records received", crashes, lost, len(ids))
}
