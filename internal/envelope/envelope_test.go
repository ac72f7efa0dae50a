package envelope

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openRing(t *testing.T) *Keyring {
	t.Helper()
	k, err := OpenKeyring(filepath.Join(t.TempDir(), "keyring"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWrapUnwrap(t *testing.T) {
	k := openRing(t)
	if fi, err := os.Stat(k.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file: %v, %v; want mode 0600", fi, err)
	}
	dek, _ := NewKey()
	w, err := k.Wrap("k1", dek)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, dek) {
		t.Fatal("the wrapped key contains the key")
	}
	got, err := k.Unwrap("k1", w)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap: %x, %v; want %x", got, err, dek)
	}
	// A reopened keyring unwraps it too: the file holds the generation.
	k2, err := OpenKeyring(k.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.Unwrap("k1", w); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap after reopening: %x, %v", got, err)
	}
}

func TestTamperAndWrongKey(t *testing.T) {
	k := openRing(t)
	dek, _ := NewKey()
	w, _ := k.Wrap("k1", dek)
	for name, tc := range map[string]struct {
		id      string
		wrapped func() []byte
		want    error
	}{
		"flipped byte":  {"k1", func() []byte { c := bytes.Clone(w); c[len(c)-1] ^= 1; return c }, nil},
		"flipped nonce": {"k1", func() []byte { c := bytes.Clone(w); c[5] ^= 1; return c }, nil},
		"other id":      {"k2", func() []byte { return w }, nil},
		"truncated":     {"k1", func() []byte { return w[:10] }, nil},
		"unknown gen":   {"k1", func() []byte { c := bytes.Clone(w); c[0] = 9; return c }, ErrUnknownGeneration},
		"other keyring": {"k1", func() []byte { o := openRing(t); c, _ := o.Wrap("k1", dek); return c }, nil},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := k.Unwrap(tc.id, tc.wrapped())
			if err == nil {
				t.Fatalf("unwrapped %x; want an error", got)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v; want %v", err, tc.want)
			}
		})
	}
	a, _ := NewAEAD(dek)
	sealed, err := Seal(a, []byte("ada@example.com"), []byte("profile/p1/traits"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unseal(a, sealed, []byte("profile/p2/traits")); err == nil {
		t.Fatal("a value moved to another record opened")
	}
	other, _ := NewKey()
	b, _ := NewAEAD(other)
	if _, err := Unseal(b, sealed, []byte("profile/p1/traits")); err == nil {
		t.Fatal("a value opened under the wrong key")
	}
	if got, err := Unseal(a, sealed, []byte("profile/p1/traits")); err != nil || string(got) != "ada@example.com" {
		t.Fatalf("unseal: %q, %v", got, err)
	}
}

// TestRotationDestroysOldGeneration: after Rotate, keys rewrapped under the
// new generation open and the old generation still opens the others; after
// DropBefore, the old generation is gone from memory and from the file, so
// a key left wrapped under it cannot be unwrapped even by a fresh reader of
// the file.
func TestRotationDestroysOldGeneration(t *testing.T) {
	k := openRing(t)
	dek, _ := NewKey()
	erased, _ := k.Wrap("erased", dek)
	live, _ := k.Wrap("live", dek)
	before, _ := os.ReadFile(k.Path())
	g, err := k.Rotate()
	if err != nil || g != 2 || k.Current() != 2 {
		t.Fatalf("rotate: %d, %v, current %d", g, err, k.Current())
	}
	if _, err := k.Unwrap("erased", erased); err != nil {
		t.Fatalf("the old generation is gone before DropBefore: %v", err)
	}
	plain, _ := k.Unwrap("live", live)
	live, _ = k.Wrap("live", plain)
	if gen, _ := WrappedGeneration(live); gen != 2 {
		t.Fatalf("rewrapped under generation %d", gen)
	}
	if err := k.DropBefore(1); err == nil {
		t.Fatal("DropBefore a generation that is not current succeeded")
	}
	if err := k.DropBefore(2); err != nil {
		t.Fatal(err)
	}
	if got := k.Generations(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("generations %v; want [2]", got)
	}
	fresh, err := OpenKeyring(k.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Keyring{k, fresh} {
		if _, err := r.Unwrap("erased", erased); !errors.Is(err, ErrUnknownGeneration) {
			t.Fatalf("unwrap under the dropped generation: %v; want ErrUnknownGeneration", err)
		}
		if got, err := r.Unwrap("live", live); err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("rewrapped key: %x, %v", got, err)
		}
	}
	// The old generation's key bytes are not in the new file.
	after, _ := os.ReadFile(k.Path())
	old := strings.SplitN(string(before), "\"1\": \"", 2)[1][:44]
	if strings.Contains(string(after), old) {
		t.Fatal("the dropped generation is still in the keyring file")
	}
	if g, _ := k.Rotate(); g != 3 {
		t.Fatalf("next rotation gave generation %d; want 3", g)
	}
}

func TestCorruptKeyring(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not json":        "{",
		"unknown version": `{"version":2,"current":1,"generations":{"1":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}`,
		"short key":       `{"version":1,"current":1,"generations":{"1":"AAAA"}}`,
		"no current":      `{"version":1,"current":2,"generations":{"1":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := OpenKeyring(p); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// TestConcurrentCreateSharesOneKEK: processes that start at once on a
// missing keyring file (two servers on one store) must all end up with the
// one KEK in the file; with a rename each would keep its own, and keys one
// of them wrapped would be lost.
func TestConcurrentCreateSharesOneKEK(t *testing.T) {
	for round := range 20 {
		p := filepath.Join(t.TempDir(), "keyring")
		rings := make([]*Keyring, 8)
		errs := make([]error, len(rings))
		done := make(chan int)
		for i := range rings {
			go func() { rings[i], errs[i] = OpenKeyring(p); done <- i }()
		}
		for range rings {
			<-done
		}
		file, err := OpenKeyring(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range rings {
			if errs[i] != nil {
				t.Fatalf("round %d, opener %d: %v", round, i, errs[i])
			}
			w, err := k.Wrap("k", bytes.Repeat([]byte{7}, KeySize))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := file.Unwrap("k", w); err != nil {
				t.Fatalf("round %d: opener %d wrapped under a KEK the file does not hold: %v", round, i, err)
			}
		}
	}
}
