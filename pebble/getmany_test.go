package pebble

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	cpebble "github.com/cockroachdb/pebble/v2"
)

// TestGetManySplit: split across the CPUs, a large batch of lookups (in
// random order, some absent, one repeated) answers as one getMany does.
func TestGetManySplit(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one CPU: getManySplit is getMany")
	}
	s, err := OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var ks [][]byte
	for i := range 3000 {
		k := []byte(fmt.Sprintf("test/%08x", rng.Uint32()))
		if i%3 != 0 { // a third are never written
			if err := s.db.Set(k, []byte(fmt.Sprintf("v%d", i)), cpebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		ks = append(ks, k)
	}
	ks = append(ks, ks[17])
	want, err := s.getMany(ks)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.getManySplit(ks)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ks) {
		t.Fatalf("%d values for %d keys", len(got), len(ks))
	}
	found := 0
	for i := range ks {
		if !bytes.Equal(got[i], want[i]) || (got[i] == nil) != (want[i] == nil) {
			t.Fatalf("key %d (%s): got %q, want %q", i, ks[i], got[i], want[i])
		}
		if got[i] != nil {
			found++
		}
	}
	if found < 1900 {
		t.Fatalf("only %d keys found", found)
	}
}
