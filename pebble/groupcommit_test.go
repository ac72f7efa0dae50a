package pebble

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/idgraph/idgraph/audit"
)

// TestGroupCommit: appenders that share durable writes (audit.Log's group
// commit) keep one valid chain, and every entry acknowledged before a
// crash is in the store that reopens after it, with the hash its appender
// was given, on a chain that still verifies.
func TestGroupCommit(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	fs := vfs.NewCrashableMem()
	s := openCrashable(t, fs)
	defer s.Close()
	l := audit.New(s.AuditChain(), key)
	const writers, each = 16, 25
	var (
		mu     sync.Mutex
		acked  []*audit.Entry
		wg     sync.WaitGroup
		failed = make(chan error, writers*each)
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e, err := l.Append(context.Background(), audit.Record{Action: "link", Target: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					failed <- err
					return
				}
				mu.Lock()
				acked = append(acked, e)
				mu.Unlock()
			}
		})
	}
	// Crash while the appenders run, after some have been acknowledged.
	var before []*audit.Entry
	for {
		mu.Lock()
		n := len(acked)
		if n >= writers*each/3 {
			before = append(before, acked...)
		}
		mu.Unlock()
		if before != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	crash := fs.CrashClone(vfs.CrashCloneCfg{})
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Fatal(err)
	}
	check := func(name string, st audit.Store, want []*audit.Entry, entries int) {
		t.Helper()
		rep, err := audit.Verify(context.Background(), st, key)
		if err != nil || rep.Broken != nil || rep.Entries < entries {
			t.Fatalf("%s: %d entries, broken %v, %v; want at least %d, none broken", name, rep.Entries, rep.Broken, err, entries)
		}
		stored, err := st.Entries(context.Background(), 0, rep.Entries)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range want {
			if got := stored[e.Seq-1]; got.Hash != e.Hash || got.Target != e.Target {
				t.Errorf("%s: acknowledged entry %d (%s) is stored as %s (%s)", name, e.Seq, e.Target, got.Hash, got.Target)
			}
		}
	}
	check("live store", s.AuditChain(), acked, writers*each)
	crashed := openCrashable(t, crash)
	defer crashed.Close()
	check("after the crash", crashed.AuditChain(), before, len(before))
}
