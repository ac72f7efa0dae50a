// Package storetest is the contract suite of auth.Store, and of the
// keyring over it: every backend passes it.
package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	graphtest "github.com/idgraph/idgraph/graph/storetest"
)

// Run runs every contract test against the backend. open returns an empty
// graph store that also keeps key records.
func Run(t *testing.T, open graphtest.Opener) {
	graphtest.RunCases(t, open, func(t *testing.T, g graph.Store) auth.Store { return graphtest.As[auth.Backend](t, g).APIKeys() },
		map[string]func(*testing.T, auth.Store){
			"RecordRoundTrip":               testRecordRoundTrip,
			"CreateClashIsConflict":         testCreateClash,
			"UnknownIDNotFound":             testUnknownID,
			"ExpireOnlySooner":              testExpireOnlySooner,
			"RevokeKeepsFirstTime":          testRevokeKeepsFirstTime,
			"ConcurrentCreatesOneWins":      testConcurrentCreates,
			"KeyringAuthenticates":          testKeyringAuthenticates,
			"MistypedKeyNeverLooksUp":       testMistypedNoLookup,
			"RevokedRefusedWithinOneSecond": testRevokedWithinOneSecond,
			"RotatedWorksDuringGraceOnly":   testRotateGrace,
			"StoreHoldsNoSecret":            testStoreHoldsNoSecret,
		})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func record(id string, role auth.Role) *auth.Record {
	return &auth.Record{ID: id, Role: role, Name: "test " + id, Hash: auth.Hash([]byte("0123456789abcdef"), "s-"+id), Created: t0}
}

func mustCreate(t *testing.T, s auth.Store, r *auth.Record) {
	t.Helper()
	if err := s.CreateKey(context.Background(), r); err != nil {
		t.Fatalf("create %s: %v", r.ID, err)
	}
}

func testRecordRoundTrip(t *testing.T, s auth.Store) {
	ctx := context.Background()
	a, b := record("aaaaaaa1", auth.RoleAdmin), record("bbbbbbb2", auth.RoleWrite)
	b.Created = t0.Add(-time.Hour) // listed first: oldest first
	b.Expires = t0.Add(time.Hour)
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	got, err := s.Key(ctx, "aaaaaaa1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != a.ID || got.Role != a.Role || got.Name != a.Name || string(got.Hash) != string(a.Hash) ||
		!got.Created.Equal(a.Created) || !got.Expires.IsZero() || !got.Revoked.IsZero() {
		t.Fatalf("round trip: got %+v, want %+v", got, a)
	}
	list, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "bbbbbbb2" || list[1].ID != "aaaaaaa1" || !list[0].Expires.Equal(b.Expires) {
		t.Fatalf("list: got %d records %v", len(list), list)
	}
}

func testCreateClash(t *testing.T, s auth.Store) {
	mustCreate(t, s, record("cccccccc", auth.RoleRead))
	other := record("cccccccc", auth.RoleAdmin)
	if err := s.CreateKey(context.Background(), other); graph.ErrorKind(err) != graph.KindConflict {
		t.Fatalf("second create with the id: got %v, want a conflict", err)
	}
	got, err := s.Key(context.Background(), "cccccccc")
	if err != nil || got.Role != auth.RoleRead {
		t.Fatalf("the first record must stay: got %+v, %v", got, err)
	}
}

func testUnknownID(t *testing.T, s auth.Store) {
	ctx := context.Background()
	for name, err := range map[string]error{
		"Key": func() error { _, err := s.Key(ctx, "nosuchid"); return err }(),
		"ExpireKey": func() error {
			_, err := s.ExpireKey(ctx, "nosuchid", t0, "")
			return err
		}(),
		"RevokeKey": func() error { _, err := s.RevokeKey(ctx, "nosuchid", t0); return err }(),
	} {
		if graph.ErrorKind(err) != graph.KindNotFound {
			t.Errorf("%s of an unknown id: got %v, want not_found", name, err)
		}
	}
	if list, err := s.ListKeys(ctx); err != nil || len(list) != 0 {
		t.Fatalf("an empty store lists %v, %v", list, err)
	}
}

func testExpireOnlySooner(t *testing.T, s auth.Store) {
	ctx := context.Background()
	mustCreate(t, s, record("eeeeeeee", auth.RoleRead))
	steps := []struct {
		at   time.Time
		want time.Time
	}{
		{t0.Add(48 * time.Hour), t0.Add(48 * time.Hour)},
		{t0.Add(72 * time.Hour), t0.Add(48 * time.Hour)}, // later: no change
		{t0.Add(time.Hour), t0.Add(time.Hour)},
	}
	for i, st := range steps {
		r, err := s.ExpireKey(ctx, "eeeeeeee", st.at, "ffffffff")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := s.Key(ctx, "eeeeeeee")
		if !r.Expires.Equal(st.want) || !got.Expires.Equal(st.want) || got.ReplacedBy != "ffffffff" {
			t.Fatalf("step %d: returned %v, stored %v (replaced by %q), want %v", i, r.Expires, got.Expires, got.ReplacedBy, st.want)
		}
	}
}

func testRevokeKeepsFirstTime(t *testing.T, s auth.Store) {
	ctx := context.Background()
	mustCreate(t, s, record("rrrrrrrr", auth.RoleSteward))
	for _, at := range []time.Time{t0.Add(time.Minute), t0.Add(time.Hour)} {
		if _, err := s.RevokeKey(ctx, "rrrrrrrr", at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Key(ctx, "rrrrrrrr")
	if err != nil || !got.Revoked.Equal(t0.Add(time.Minute)) {
		t.Fatalf("revoked at %v (%v), want the first revocation %v", got.Revoked, err, t0.Add(time.Minute))
	}
	if got.State(t0.Add(2*time.Hour)) != "revoked" {
		t.Fatalf("state %q, want revoked", got.State(t0.Add(2*time.Hour)))
	}
}

func testConcurrentCreates(t *testing.T, s auth.Store) {
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = s.CreateKey(context.Background(), record("dddddddd", auth.Roles[i%len(auth.Roles)])) })
	}
	wg.Wait()
	graphtest.ExactlyOneWins(t, "creates of one id", errs, graphtest.IsConflict)
}

// clock is a settable clock for the keyring.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func keyring(t *testing.T, s auth.Store, c *clock) *auth.Keyring {
	t.Helper()
	o := auth.KeyringOptions{Store: s, Pepper: []byte("pepper-for-tests-0123456789"),
		Legacy: auth.Legacy{Write: []string{"wk_legacy"}, Read: []string{"rk_legacy"}, Steward: []string{"sk_legacy"}}}
	if c != nil {
		o.Now = c.Now
	}
	k, err := auth.NewKeyring(o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testKeyringAuthenticates(t *testing.T, s auth.Store) {
	ctx := context.Background()
	k := keyring(t, s, nil)
	created := map[auth.Role]auth.Key{}
	for _, role := range auth.Roles {
		key, rec, err := k.Create(ctx, role, "for "+string(role), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != key.ID || rec.Role != role {
			t.Fatalf("create %s: record %+v for key %v", role, rec, key)
		}
		created[role] = key
	}
	for role, key := range created {
		p, err := k.Authenticate(ctx, key.String())
		if err != nil || p.Role != role || p.ID != key.ID {
			t.Errorf("%s key: got %+v, %v", role, p, err)
		}
	}
	for _, tc := range []struct {
		key  string
		role auth.Role
	}{{"wk_legacy", auth.RoleWrite}, {"rk_legacy", auth.RoleRead}, {"sk_legacy", auth.RoleSteward}} {
		if p, err := k.Authenticate(ctx, tc.key); err != nil || p.Role != tc.role {
			t.Errorf("legacy %s: got %+v, %v", tc.role, p, err)
		}
	}
	// A valid checksum over a secret the store does not know: right id,
	// wrong secret; and a key whose role text was edited (checksum redone).
	w := created[auth.RoleWrite]
	for name, forged := range map[string]auth.Key{
		"wrong secret":    {Role: w.Role, ID: w.ID, Secret: strings.Repeat("A", auth.SecretLen)},
		"role raised":     {Role: auth.RoleAdmin, ID: w.ID, Secret: w.Secret},
		"unknown id":      {Role: w.Role, ID: "ZZZZZZZZ", Secret: w.Secret},
		"other role's id": {Role: auth.RoleWrite, ID: created[auth.RoleAdmin].ID, Secret: w.Secret},
	} {
		_, err := k.Authenticate(ctx, forged.String())
		if graph.ErrorKind(err) != graph.KindUnauthorized {
			t.Errorf("%s: got %v, want unauthorized", name, err)
		}
		if err != nil && strings.Contains(err.Error(), forged.Secret) {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
	}
}

// testMistypedNoLookup: every single-character change and every
// truncation of a key fails its checksum (or its form) without a store
// lookup.
func testMistypedNoLookup(t *testing.T, s auth.Store) {
	ctx := context.Background()
	k := keyring(t, s, nil)
	key, _, err := k.Create(ctx, auth.RoleRead, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	good := key.String()
	before := k.Lookups.Load()
	tried := 0
	for i := range len(good) {
		for _, c := range []byte{'0', 'x', 'Z', '_'} {
			if good[i] == c {
				continue
			}
			typo := good[:i] + string(c) + good[i+1:]
			if _, err := k.Authenticate(ctx, typo); graph.ErrorKind(err) != graph.KindUnauthorized {
				t.Fatalf("typo at %d: got %v, want unauthorized", i, err)
			}
			tried++
		}
		if _, err := k.Authenticate(ctx, good[:i]); err == nil {
			t.Fatalf("the key cut to %d characters was accepted", i)
		}
		// Two neighbours swapped.
		if i+1 < len(good) && good[i] != good[i+1] {
			sw := good[:i] + string(good[i+1]) + string(good[i]) + good[i+2:]
			if _, err := k.Authenticate(ctx, sw); err == nil {
				t.Fatalf("swap at %d accepted", i)
			}
			tried++
		}
	}
	if n := k.Lookups.Load() - before; n != 0 {
		t.Fatalf("%d mistyped keys made %d store lookups, want 0", tried, n)
	}
	if _, err := k.Authenticate(ctx, good); err != nil {
		t.Fatal(err)
	}
	if k.Lookups.Load()-before != 1 {
		t.Fatalf("the good key made %d lookups, want 1", k.Lookups.Load()-before)
	}
	t.Logf("%d mistyped or cut keys refused with 0 store lookups", tried)
}

// testRevokedWithinOneSecond: a key revoked through one keyring is refused
// by it at once, and by a second keyring over the same store (another
// process) within a second, although that one cached the key.
func testRevokedWithinOneSecond(t *testing.T, s auth.Store) {
	ctx := context.Background()
	a, b := keyring(t, s, nil), keyring(t, s, nil)
	key, _, err := a.Create(ctx, auth.RoleSteward, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*auth.Keyring{a, b} {
		if _, err := k.Authenticate(ctx, key.String()); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := a.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, key.String()); graph.ErrorKind(err) != graph.KindUnauthorized || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the revoking keyring: got %v, want revoked", err)
	}
	for {
		_, err := b.Authenticate(ctx, key.String())
		if err != nil {
			if !strings.Contains(err.Error(), "revoked") {
				t.Fatalf("got %v, want revoked", err)
			}
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the other keyring still accepts the key %v after the revocation", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revocation seen by another keyring after %v", time.Since(start).Round(time.Millisecond))
}

func testRotateGrace(t *testing.T, s auth.Store) {
	ctx := context.Background()
	c := &clock{now: time.Now().UTC()}
	k := keyring(t, s, c)
	old, _, err := k.Create(ctx, auth.RoleWrite, "shop", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	next, rec, err := k.Rotate(ctx, old.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Role != auth.RoleWrite || rec.Name != "shop" || next.ID == old.ID {
		t.Fatalf("rotation made %+v", rec)
	}
	check := func(when string, key auth.Key, ok bool) {
		t.Helper()
		_, err := k.Authenticate(ctx, key.String())
		if (err == nil) != ok {
			t.Fatalf("%s: key %s: got %v, want ok=%v", when, key.ID, err, ok)
		}
	}
	check("during grace", old, true)
	check("during grace", next, true)
	c.Add(time.Hour - time.Second)
	check("just before the end of grace", old, true)
	c.Add(time.Second)
	check("at the end of grace", old, false)
	check("after grace", next, true)
	if _, _, err := k.Rotate(ctx, old.ID, time.Hour); graph.ErrorKind(err) != graph.KindConflict {
		t.Fatalf("rotating an expired key: got %v, want a conflict", err)
	}
	stored, err := s.Key(ctx, old.ID)
	if err != nil || stored.ReplacedBy != next.ID || stored.State(c.Now()) != "expired" {
		t.Fatalf("old record %+v, %v", stored, err)
	}
	// Grace 0 ends the old key at once.
	third, _, err := k.Rotate(ctx, next.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("rotated with no grace", next, false)
	check("the newest", third, true)
}

func testStoreHoldsNoSecret(t *testing.T, s auth.Store) {
	ctx := context.Background()
	k := keyring(t, s, nil)
	key, _, err := k.Create(ctx, auth.RoleAdmin, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if strings.Contains(string(r.Hash), key.Secret) || strings.Contains(r.Name, key.Secret) {
			t.Fatalf("a stored record holds the secret")
		}
	}
}
