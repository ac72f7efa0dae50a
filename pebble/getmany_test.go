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
// random order, some absent, one repeated; far apart, and in runs of
// neighbours) answers as one getMany does, with getMany's seeks or
// getRun's steps.
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
		if i >= 2000 { // a run of neighbours
			k = []byte(fmt.Sprintf("test/run%06d", i))
		}
		if i%3 != 0 { // a third are never written
			if err := s.db.Set(k, []byte(fmt.Sprintf("v%d", i)), cpebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		ks = append(ks, k)
	}
	ks = append(ks, ks[17], ks[2017], []byte("test/run999999"), []byte("tesu"))
	rng.Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
	want, err := s.getMany(ks)
	if err != nil {
		t.Fatal(err)
	}
	for name, get := range map[string]func([][]byte) ([][]byte, error){
		"getManySplit": s.getManySplit,
		"getRun":       s.getRun,
		"getRun split": func(ks [][]byte) ([][]byte, error) { return s.getSplit(ks, s.getRun) },
	} {
		got, err := get(ks)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ks) {
			t.Fatalf("%s: %d values for %d keys", name, len(got), len(ks))
		}
		found := 0
		for i := range ks {
			if !bytes.Equal(got[i], want[i]) || (got[i] == nil) != (want[i] == nil) {
				t.Fatalf("%s: key %d (%s): got %q, want %q", name, i, ks[i], got[i], want[i])
			}
			if got[i] != nil {
				found++
			}
		}
		if found < 1900 {
			t.Fatalf("%s: only %d keys found", name, found)
		}
	}
	if got, err := s.getRun(nil); err != nil || len(got) != 0 {
		t.Fatalf("getRun(none) = %q, %v", got, err)
	}
}
