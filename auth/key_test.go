package auth_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
)

func newKey(t *testing.T, role auth.Role) auth.Key {
	t.Helper()
	k, err := auth.New(role)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, role := range auth.Roles {
		for range 50 {
			k := newKey(t, role)
			s := k.String()
			if !strings.HasPrefix(s, "idg_"+string(role)+"_"+k.ID+"_"+k.Secret) || len(k.Secret) != auth.SecretLen {
				t.Fatalf("key %q does not follow idg_<role>_<id>_<secret><checksum>", k.Public())
			}
			got, err := auth.Parse(s)
			if err != nil || got != k {
				t.Fatalf("parse: got %v, %v", got.Public(), err)
			}
			if seen[k.ID] || seen[k.Secret] {
				t.Fatalf("a random id or secret repeated")
			}
			seen[k.ID], seen[k.Secret] = true, true
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good := newKey(t, auth.RoleRead).String()
	tests := []struct {
		name, key, want string
	}{
		{"empty", "", "not an idgraph key"},
		{"legacy", "rk_0123", "not an idgraph key"},
		{"no role", "idg_", "no role"},
		{"unknown role", strings.Replace(good, "_read_", "_root_", 1), "unknown role"},
		{"cut short", good[:len(good)-1], "wrong length"},
		{"one too many", good + "0", "wrong length"},
		{"id separator", good[:17] + "-" + good[18:], "wrong length"},
		{"bad character", good[:20] + "é" + good[22:], "unexpected character"},
		{"typo in secret", good[:20] + flip(good[20]) + good[21:], "checksum"},
		{"typo in checksum", good[:len(good)-1] + flip(good[len(good)-1]), "checksum"},
		{"typo in id", good[:10] + flip(good[10]) + good[11:], "checksum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.Parse(tc.key)
			if graph.ErrorKind(err) != graph.KindUnauthorized || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an unauthorized error about %q", err, tc.want)
			}
			if len(tc.key) > 20 && strings.Contains(err.Error(), tc.key[9:]) {
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// TestKeyNeverFormatted: only String gives the secret; fmt's verbs and
// slog do not.
func TestKeyNeverFormatted(t *testing.T) {
	k := newKey(t, auth.RoleAdmin)
	for _, s := range []string{fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%s", k), fmt.Sprint(k)} {
		if strings.Contains(s, k.Secret) {
			t.Fatalf("formatting printed the secret: %s", s)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range auth.Roles {
		if got, err := auth.ParseRole(string(r)); err != nil || got != r {
			t.Fatalf("%s: %v", r, err)
		}
	}
	_, err := auth.ParseRole("Admin")
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Field != "role" {
		t.Fatalf("got %v, want an invalid error naming the role field", err)
	}
}

func TestPepperFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idgraph.pepper")
	p1, err := auth.LoadPepper(path)
	if err != nil || len(p1) != 32 {
		t.Fatalf("create: %d bytes, %v", len(p1), err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	p2, err := auth.LoadPepper(path)
	if err != nil || string(p1) != string(p2) {
		t.Fatalf("reload: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadPepper(path); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("a world-readable pepper: got %v", err)
	}
	if _, err := auth.ParsePepper("abcd"); err == nil {
		t.Fatal("a 2-byte pepper was accepted")
	}
}

// FuzzParse: any input parses or is refused with an unauthorized error,
// never a panic; what parses prints back as itself.
func FuzzParse(f *testing.F) {
	for _, r := range auth.Roles {
		k, _ := auth.New(r)
		f.Add(k.String())
	}
	f.Add("idg_")
	f.Add("idg_write_")
	f.Add("wk_demo")
	f.Add("idg_admin_AAAAAAAA_" + strings.Repeat("z", 38))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := auth.Parse(s)
		if err != nil {
			if graph.ErrorKind(err) != graph.KindUnauthorized {
				t.Fatalf("%q: %v is not unauthorized", s, err)
			}
			return
		}
		if k.String() != s || !auth.ValidID(k.ID) {
			t.Fatalf("%q parsed to %q", s, k.String())
		}
	})
}

// TestGoldenKey: the example of docs/security.md parses, so the format
// (and its checksum) cannot change without the documentation and stored
// keys noticing.
func TestGoldenKey(t *testing.T) {
	const doc = "idg_write_Q3vK8zPa_h2Wq9dT0bLx7RcN4mYf1sVu6Ae3Jk5Gp2cB5EE"
	k, err := auth.Parse(doc)
	if err != nil || k.Role != auth.RoleWrite || k.ID != "Q3vK8zPa" || k.Secret != "h2Wq9dT0bLx7RcN4mYf1sVu6Ae3Jk5Gp" || k.String() != doc {
		t.Fatalf("the documented key: %v, %v", k.Public(), err)
	}
}

// TestPepperConcurrentCreation: processes starting together agree on one
// pepper, and none reads a half-written file.
func TestPepperConcurrentCreation(t *testing.T) {
	for range 20 {
		path := filepath.Join(t.TempDir(), "idgraph.pepper")
		got := make([][]byte, 8)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() { got[i], errs[i] = auth.LoadPepper(path) })
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil || string(got[i]) != string(got[0]) {
				t.Fatalf("loader %d: %v (peppers agree: %v)", i, errs[i], string(got[i]) == string(got[0]))
			}
		}
	}
}
