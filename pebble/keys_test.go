package pebble_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/auth"
	authtest "github.com/idgraph/idgraph/auth/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/internal/diskscan"
	"github.com/idgraph/idgraph/pebble"
)

func TestAPIKeysContract(t *testing.T) { authtest.Run(t, backends.OpenPebble) }

// TestKeySecretNeverOnDisk: after keys are created, rotated and revoked,
// a raw scan of every file of the store (WAL, tables, MANIFEST) finds no
// secret: only its HMAC is written.
func TestKeySecretNeverOnDisk(t *testing.T) {
	dir := t.TempDir()
	s, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := auth.NewKeyring(auth.KeyringOptions{Store: s.APIKeys(), Pepper: []byte("pebble-test-pepper-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var secrets []string
	for _, role := range auth.Roles {
		k, _, err := kr.Create(ctx, role, "disk", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		next, _, err := kr.Rotate(ctx, k.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kr.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, k.Secret, next.Secret)
	}
	// The control: a legacy key, stored in plain text as older versions
	// did, must be found, or the scan proves nothing.
	const control = "rk_control_5f1e9a0c7b3d2e4f"
	if err := s.PutSetting(ctx, "read_key", control); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seen, files, bytesRead := diskscan.Holding(t, dir, []byte(control))
	controlSeen := len(seen) > 0
	for _, sec := range secrets {
		if holding, _, _ := diskscan.Holding(t, dir, []byte(sec)); len(holding) > 0 {
			t.Errorf("%v hold a key's secret", holding)
		}
	}
	if !controlSeen {
		t.Fatal("the plain-text control key was not found: the scan does not see what is written")
	}
	t.Logf("%d secrets, %d files (%d bytes) scanned: none found (the plain-text control was)", len(secrets), files, bytesRead)
}

// TestKeyCheckTiming: a key whose secret differs from the stored one in
// its first character and one that differs in its last take the same time
// to refuse (the HMAC is compared with hmac.Equal), measured interleaved;
// the test fails only on a gross difference, since the machine is shared.
func TestKeyCheckTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	s, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kr, err := auth.NewKeyring(auth.KeyringOptions{Store: s.APIKeys(), Pepper: []byte("pebble-test-pepper-0123456789"), CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k, _, err := kr.Create(ctx, auth.RoleRead, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		b := []byte(k.Secret)
		b[i] = map[bool]byte{true: 'b', false: 'a'}[b[i] == 'a']
		return auth.Key{Role: k.Role, ID: k.ID, Secret: string(b)}.String()
	}
	first, last := flip(0), flip(auth.SecretLen-1)
	const n = 20000
	var tf, tl []time.Duration
	for range n {
		for _, c := range []struct {
			key string
			out *[]time.Duration
		}{{first, &tf}, {last, &tl}} {
			start := time.Now()
			if _, err := kr.Authenticate(ctx, c.key); err == nil {
				t.Fatal("a wrong secret was accepted")
			}
			*c.out = append(*c.out, time.Since(start))
		}
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	mf, ml := median(tf), median(tl)
	ratio := float64(mf) / float64(ml)
	t.Logf("refusing a wrong secret, median of %d each: first character differs %v, last differs %v (ratio %.3f)", n, mf, ml, ratio)
	if ratio < 0.67 || ratio > 1.5 {
		t.Fatalf("first- and last-character mismatches differ in time: ratio %.2f", ratio)
	}
}
