package pebble

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// Readers filling the record cache while commits replace a value (and the
// cache evicts it) never leave an old value in the cache: a reader that
// read before a commit must not put what it read back after it.
func TestRecordCacheNeverStale(t *testing.T) {
	s, err := open(t.TempDir(), goldenSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := key(pProfile, []byte("p"))
	write := func(i int) {
		b := s.db.NewBatch()
		defer b.Close()
		w := &batchWriter{b: b}
		w.put(k, []byte(strconv.Itoa(i)))
		if err := s.commit(b, w.records); err != nil {
			t.Error(err)
		}
	}
	write(0)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, _, err := s.get(pProfile, []byte("p")); err != nil {
					t.Error(err)
					return
				}
				s.records.Remove(string(k)) // as eviction would
				tx := &tx{s: s}
				if _, _, err := tx.get(k); err != nil {
					t.Error(err)
				}
				tx.close()
			}
		}()
	}
	// Between commits (one writer) the cache holds the last value or
	// nothing.
	stale := 0
	for i := 1; i <= 1000 && stale == 0; i++ {
		write(i)
		want := []byte(strconv.Itoa(i))
		for range 20 {
			runtime.Gosched()
			if v, ok := s.records.Get(string(k)); ok && !bytes.Equal(v, want) {
				t.Errorf("cache holds %q after the commit of %q", v, want)
				stale++
				break
			}
		}
	}
	stop.Store(true)
	wg.Wait()
}
