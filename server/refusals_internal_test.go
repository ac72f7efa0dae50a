package server

import (
	"fmt"
	"testing"
	"time"
)

// The budget refills at a tenth of the burst per second, a flood does not
// lock a client out for longer than one refill, and unknown clients cost
// nothing.
func TestRefusalLimiterRefill(t *testing.T) {
	now := time.Unix(0, 0)
	l := newRefusalLimiter(10, func() time.Time { return now })
	if l.wait("a") != 0 || l.clients.Len() != 0 {
		t.Fatal("an unknown client waits or is remembered")
	}
	for range 10 {
		l.charge("a")
	}
	if w := l.wait("a"); w != time.Second {
		t.Fatalf("after the burst: wait %v, want 1s", w)
	}
	if l.wait("b") != 0 {
		t.Fatal("another client waits")
	}
	now = now.Add(time.Second)
	if w := l.wait("a"); w != 0 {
		t.Fatalf("after a second: wait %v, want 0", w)
	}
	for range 1000 {
		l.charge("a")
	}
	if w := l.wait("a"); w > 11*time.Second {
		t.Fatalf("after a flood: wait %v, want at most 11s", w)
	}
	if newRefusalLimiter(0, time.Now) != nil || newRefusalLimiter(-1, time.Now).wait("a") != 0 {
		t.Fatal("a limit of 0 or less limits")
	}
}

// BenchmarkBucketTake is one key's rate-limit check among 10,000 keys.
func BenchmarkBucketTake(b *testing.B) {
	l := newBuckets(1e9, 1e9, time.Now)
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key%05d", i)
	}
	b.ResetTimer()
	for i := range b.N {
		if l.take(keys[i%len(keys)]) != 0 {
			b.Fatal("limited")
		}
	}
}
