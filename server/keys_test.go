package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

var testPepper = []byte("server-test-pepper-0123456789abcdef")

// keyFixture is a server whose keyring keeps idg_ keys in its store, with
// the first admin key made as serve makes it.
type keyFixture struct {
	*fixture
	keyring *auth.Keyring
	admin   string
	store   graph.Store
}

// syncBuffer collects log output written from the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newKeyFixture(t *testing.T, open storetest.Opener, log *slog.Logger) *keyFixture {
	t.Helper()
	return newKeyFixtureWith(t, open, log, nil)
}

// newKeyFixtureWith also adjusts the server's configuration (nil for none).
func newKeyFixtureWith(t *testing.T, open storetest.Opener, log *slog.Logger, configure func(*server.Config), options ...func(*graph.Stitcher)) *keyFixture {
	t.Helper()
	kf := &keyFixture{}
	f := newFixtureWith(t, open, func(cfg *server.Config) {
		if configure != nil {
			configure(cfg)
		}
		kr, err := auth.NewKeyring(auth.KeyringOptions{Store: cfg.Store.(auth.Backend).APIKeys(), Pepper: testPepper,
			Legacy: auth.Legacy(cfg.Keys)})
		if err != nil {
			t.Fatal(err)
		}
		key, ok, err := server.FirstAdminKey(context.Background(), cfg.Store, kr)
		if err != nil || !ok {
			t.Fatalf("first admin key: %v, %v", ok, err)
		}
		cfg.Keyring, kf.keyring, kf.admin, kf.store = kr, kr, key.String(), cfg.Store
		if cfg.Audit == nil {
			if cfg.Audit, err = audit.Open(cfg.Store, testPepper); err != nil {
				t.Fatal(err)
			}
		}
		if log != nil {
			cfg.Log = log
		}
	}, options...)
	kf.fixture = f
	return kf
}

func (kf *keyFixture) create(t *testing.T, role auth.Role) string {
	t.Helper()
	k, rec, err := client.New(kf.url, kf.admin).CreateKey(context.Background(), string(role), "test "+string(role), 0)
	if err != nil {
		t.Fatalf("create %s key: %v", role, err)
	}
	if rec.Role != string(role) || !strings.HasPrefix(k, "idg_"+string(role)+"_"+rec.ID+"_") {
		t.Fatalf("created %+v as %q", rec, k[:20])
	}
	return k
}

const track = `{"userId":"u-keys","event":"Order Completed"}`

// TestKeysEndToEnd runs each key kind through a real server on every
// backend: ingest with a write key (Basic auth and writeKey), reads with a
// read key, 403 with the roles named for the wrong role, 401 before any
// lookup for a mistyped key, revocation at once, rotation with grace.
func TestKeysEndToEnd(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newKeyFixture(t, b.Open, nil)
			ctx := context.Background()
			write, read, support, steward := kf.create(t, auth.RoleWrite), kf.create(t, auth.RoleRead),
				kf.create(t, auth.RoleSupport), kf.create(t, auth.RoleSteward)

			// The write key as Segment's writeKey: Basic auth user, or the body's.
			if code, body := kf.post(t, "/v1/track", write, track); code != 200 {
				t.Fatalf("write key (Basic auth): %d %s", code, body)
			}
			if code, body := kf.post(t, "/v1/track", "-", `{"userId":"u-keys","event":"x","writeKey":"`+write+`"}`); code != 200 {
				t.Fatalf("write key (writeKey field): %d %s", code, body)
			}
			for _, k := range []string{read, support, steward} {
				if r := kf.gql(t, k, `{lookup(type:"user_id", value:"u-keys"){id}}`, nil); r.Status != 200 || len(r.Errors) > 0 {
					t.Fatalf("a reading key: %d %+v", r.Status, r.Errors)
				}
			}
			// Wrong role: 403 with the roles that may.
			if code, body := kf.post(t, "/v1/track", read, track); code != 403 || !strings.Contains(body, "needs a write or admin key; this is a read key") {
				t.Fatalf("read key on /v1/track: %d %s", code, body)
			}
			if r := kf.gql(t, write, `{profiles{edges{cursor}}}`, nil); r.Status != 403 || !strings.Contains(r.Errors[0].Message, "this is a write key") {
				t.Fatalf("write key on /graphql: %d %+v", r.Status, r.Errors)
			}
			if r := kf.gql(t, support, `{profiles{edges{cursor}}}`, nil); r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "Query.profiles needs a read, steward or admin key; this is a support key") {
				t.Fatalf("support key on Query.profiles: %+v", r.Errors)
			}
			if _, _, err := client.New(kf.url, steward).CreateKey(ctx, "admin", "", 0); err == nil || !strings.Contains(err.Error(), "needs an admin key") {
				t.Fatalf("a steward key made a key: %v", err)
			}
			if code, body := kf.postBearer(t, "/v1/match", read, `{"limit":10}`); code != 403 || !strings.Contains(body, "needs a steward or admin key") {
				t.Fatalf("read key on /v1/match: %d %s", code, body)
			}

			// A mistyped key is refused by its checksum: no store lookup.
			before := kf.keyring.Lookups.Load()
			// (another letter of the key's alphabet: a flipped bit can make
			// one outside it, refused as malformed instead)
			sub := byte('a')
			if read[25] == sub {
				sub = 'b'
			}
			typo := read[:25] + string(sub) + read[26:]
			if r := kf.gql(t, typo, `{profiles{edges{cursor}}}`, nil); r.Status != 401 || !strings.Contains(r.Errors[0].Message, "checksum") {
				t.Fatalf("mistyped key: %d %+v", r.Status, r.Errors)
			}
			if code, _ := kf.post(t, "/v1/track", write[:len(write)-1], track); code != 401 {
				t.Fatalf("cut write key: %d", code)
			}
			if n := kf.keyring.Lookups.Load() - before; n != 0 {
				t.Fatalf("mistyped keys made %d store lookups", n)
			}

			// Revocation: refused by the next request.
			readID := strings.Split(read, "_")[2]
			if _, err := client.New(kf.url, kf.admin).RevokeKey(ctx, readID); err != nil {
				t.Fatal(err)
			}
			if r := kf.gql(t, read, `{profiles{edges{cursor}}}`, nil); r.Status != 401 || !strings.Contains(r.Errors[0].Message, "revoked") {
				t.Fatalf("revoked key: %d %+v", r.Status, r.Errors)
			}

			// Rotation: the old key works during grace, not after.
			writeID := strings.Split(write, "_")[2]
			next, rec, err := client.New(kf.url, kf.admin).RotateKey(ctx, writeID, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{write, next} {
				if code, body := kf.post(t, "/v1/track", k, track); code != 200 {
					t.Fatalf("during grace: %d %s", code, body)
				}
			}
			time.Sleep(1100 * time.Millisecond)
			if code, body := kf.post(t, "/v1/track", write, track); code != 401 || !strings.Contains(body, "expired") {
				t.Fatalf("after grace: %d %s", code, body)
			}
			if code, _ := kf.post(t, "/v1/track", next, track); code != 200 {
				t.Fatalf("the new key %s after the old one's grace: %d", rec.ID, code)
			}

			// The list shows every key, states right, no secret.
			keys, err := client.New(kf.url, kf.admin).ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			states := map[string]string{}
			for _, k := range keys {
				states[k.ID] = k.State
			}
			if len(keys) != 6 || states[readID] != "revoked" || states[writeID] != "expired" || states[rec.ID] != "active" {
				t.Fatalf("listed %d keys: %v", len(keys), states)
			}
			_, _, body := kf.do(t, "POST", "/graphql", map[string]string{"Authorization": "Bearer " + kf.admin, "Content-Type": "application/json"},
				[]byte(`{"query":"{apiKeys{id role name state created expires revoked replacedBy}}"}`))
			for _, k := range []string{write, read, support, steward, next, kf.admin} {
				if strings.Contains(body, k[len(k)-38:]) {
					t.Fatalf("apiKeys shows a secret")
				}
			}

			// Legacy keys still work beside the new ones.
			if code, body := kf.post(t, "/v1/track", writeKey, track); code != 200 {
				t.Fatalf("legacy write key: %d %s", code, body)
			}
			if r := kf.gql(t, stewKey, `{reviewQueue{edges{cursor}}}`, nil); len(r.Errors) > 0 {
				t.Fatalf("legacy steward key: %+v", r.Errors)
			}
		})
	}
}

// TestRevocationSeenByAnotherServer: two servers share a store (two
// processes); a key revoked through one is refused by the other within a
// second although the other has the key cached.
func TestRevocationSeenByAnotherServer(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			a := newKeyFixture(t, b.Open, nil)
			other := newFixtureWith(t, func(*testing.T) graph.Store { return a.store }, func(cfg *server.Config) {
				kr, err := auth.NewKeyring(auth.KeyringOptions{Store: cfg.Store.(auth.Backend).APIKeys(), Pepper: testPepper})
				if err != nil {
					t.Fatal(err)
				}
				cfg.Keyring = kr
			})
			read := a.create(t, auth.RoleRead)
			q := `{profiles(first:1){edges{cursor}}}`
			if r := other.gql(t, read, q, nil); len(r.Errors) > 0 {
				t.Fatalf("the other server: %+v", r.Errors)
			}
			if _, err := client.New(a.url, a.admin).RevokeKey(context.Background(), strings.Split(read, "_")[2]); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for {
				if r := other.gql(t, read, q, nil); r.Status == 401 {
					break
				}
				if time.Since(start) > time.Second {
					t.Fatalf("the other server still accepts a revoked key after %v", time.Since(start))
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("revocation took effect on the other server after %v (bound: 1 s)", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestSecretsNeverLogged drives every key path (create, rotate, revoke,
// refusals of mistyped, wrong, revoked and expired keys, a GraphQL body
// that fails to decode with a key in it) with the log captured at debug
// level: no secret appears.
func TestSecretsNeverLogged(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kf := newKeyFixture(t, backends.OpenPebble, log)
	ctx := context.Background()
	admin := client.New(kf.url, kf.admin)
	var secrets []string
	for _, role := range auth.Roles {
		k, _, err := admin.CreateKey(ctx, string(role), "", 0)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, k)
	}
	id := func(k string) string { return strings.Split(k, "_")[2] }
	rotated, _, err := admin.RotateKey(ctx, id(secrets[0]), 0)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, rotated, kf.admin)
	if _, err := admin.RevokeKey(ctx, id(secrets[1])); err != nil {
		t.Fatal(err)
	}
	for _, k := range secrets {
		kf.post(t, "/v1/track", k, track)
		kf.post(t, "/v1/track", k[:len(k)-1]+"x", track)
		kf.gql(t, k, `{profiles{edges{cursor}}}`, nil)
		kf.gqlBody(t, k, `{"query": "{profiles{edges{cursor}}}", "variables": {"k": "`+k+`"`) // truncated JSON
		kf.gqlBody(t, k, `{"query": "mutation { createApiKey(role: \"`+k+`\") { key } }"}`)
		kf.postBearer(t, "/v1/match", k, `{"limit": "`+k+`"}`)
	}
	out := logs.String()
	for _, k := range secrets {
		secret := k[len(k)-38 : len(k)-6]
		if strings.Contains(out, secret) {
			t.Fatalf("a secret reached the log:\n%s", out)
		}
	}
	t.Logf("%d keys through %d requests: %d bytes of log, no secret in it", len(secrets), 6*len(secrets), len(out))
}

// TestLegacyKeysLoadAndRetire: keys an older version stored still load;
// --retire-legacy-keys deletes them; flags still win; a new store gets
// no legacy key.
func TestLegacyKeysLoadAndRetire(t *testing.T) {
	ctx := context.Background()
	store := backends.OpenPebble(t)
	if keys, err := server.LoadKeys(ctx, store, "", "", "", false); err != nil || !keys.Empty() {
		t.Fatalf("a new store: %+v, %v; want no legacy keys", keys, err)
	}
	if _, err := store.InitSetting(ctx, "read_key", "rk_stored"); err != nil {
		t.Fatal(err)
	}
	keys, err := server.LoadKeys(ctx, store, "wk_flag", "", "", false)
	if err != nil || len(keys.Read) != 1 || keys.Read[0] != "rk_stored" || keys.Write[0] != "wk_flag" || len(keys.Steward) != 0 {
		t.Fatalf("got %+v, %v", keys, err)
	}
	keys, err = server.LoadKeys(ctx, store, "wk_flag", "", "", true)
	if err != nil || len(keys.Read) != 0 || keys.Write[0] != "wk_flag" {
		t.Fatalf("retired: got %+v, %v", keys, err)
	}
	if keys, _ := server.LoadKeys(ctx, store, "", "", "", false); !keys.Empty() {
		t.Fatalf("the retired key came back: %+v", keys)
	}
	for _, tc := range []struct{ w, r, s, want string }{
		{"same", "same", "", "must all differ"},
		{"idg_write_x", "", "", "not given by flag"},
	} {
		if _, err := server.LoadKeys(ctx, store, tc.w, tc.r, tc.s, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc, err, tc.want)
		}
	}
}

// TestFirstAdminKeyOnce: concurrent first starts sharing a store make one
// admin key between them, and later starts none.
func TestFirstAdminKeyOnce(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			store := b.Open(t)
			var wg sync.WaitGroup
			made := make([]bool, 4)
			keys := make([]auth.Key, 4)
			for i := range made {
				wg.Go(func() {
					kr, err := auth.NewKeyring(auth.KeyringOptions{Store: store.(auth.Backend).APIKeys(), Pepper: testPepper})
					if err != nil {
						t.Error(err)
						return
					}
					keys[i], made[i], err = server.FirstAdminKey(ctx, store, kr)
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			winners := 0
			kr, _ := auth.NewKeyring(auth.KeyringOptions{Store: store.(auth.Backend).APIKeys(), Pepper: testPepper})
			for i, ok := range made {
				if ok {
					winners++
					if p, err := kr.Authenticate(ctx, keys[i].String()); err != nil || p.Role != auth.RoleAdmin {
						t.Fatalf("the first admin key: %+v, %v", p, err)
					}
				}
			}
			if winners != 1 {
				t.Fatalf("%d first admin keys, want 1", winners)
			}
			if _, ok, err := server.FirstAdminKey(ctx, store, kr); ok || err != nil {
				t.Fatalf("a later start made another: %v, %v", ok, err)
			}
			recs, _ := kr.List(ctx)
			active := 0
			for _, r := range recs {
				if r.State(time.Now()) == "active" {
					active++
				}
			}
			if active != 1 {
				t.Fatalf("%d active admin keys after concurrent first starts, want 1", active)
			}
		})
	}
}

// TestConsoleWithKeys: every reading role signs in to the console, a write
// key cannot, and a revoked key's session stops working at its next page
// (each page's GraphQL call authenticates the key again).
func TestConsoleWithKeys(t *testing.T) {
	kf := newKeyFixture(t, backends.OpenPebble, nil)
	for _, role := range []auth.Role{auth.RoleRead, auth.RoleSupport, auth.RoleSteward, auth.RoleAdmin} {
		newBrowser(t, kf.url).signIn(kf.create(t, role))
	}
	wb := newBrowser(t, kf.url)
	resp, body := wb.do("POST", "/console/login", wb.loginForm(kf.create(t, auth.RoleWrite), ""))
	if resp.StatusCode != 401 || !strings.Contains(body, "a write key cannot sign in") {
		t.Fatalf("a write key signing in: %d", resp.StatusCode)
	}
	support := kf.create(t, auth.RoleSupport)
	b := newBrowser(t, kf.url)
	b.signIn(support)
	// The review queue is not support's (it lists many people's pairs).
	if resp, _ := b.do("GET", "/console/audit", nil); resp.StatusCode != 200 {
		t.Fatalf("signed in: %d", resp.StatusCode)
	}
	if _, err := client.New(kf.url, kf.admin).RevokeKey(context.Background(), strings.Split(support, "_")[2]); err != nil {
		t.Fatal(err)
	}
	if resp, _ := b.do("GET", "/console/audit", nil); resp.StatusCode != 401 {
		t.Fatalf("a revoked key's session: %d, want 401", resp.StatusCode)
	}
}

// TestKeyMutationsRefuseBadInput: each bad argument is refused with a
// clear error naming it, and nothing is created.
func TestKeyMutationsRefuseBadInput(t *testing.T) {
	kf := newKeyFixture(t, backends.OpenPebble, nil)
	read := kf.create(t, auth.RoleRead)
	readID := strings.Split(read, "_")[2]
	tests := []struct {
		name, query, code, want string
	}{
		{"unknown role", `mutation { createApiKey(role: "Admin") { key } }`, "BAD_USER_INPUT", "role: unknown role"},
		{"empty role", `mutation { createApiKey(role: "") { key } }`, "BAD_USER_INPUT", "role: unknown role"},
		{"expiry zero", `mutation { createApiKey(role: "read", expiresIn: 0) { key } }`, "BAD_USER_INPUT", "expiresIn"},
		{"expiry past ten years", `mutation { createApiKey(role: "read", expiresIn: 400000000) { key } }`, "BAD_USER_INPUT", "expiresIn"},
		{"long name", `mutation { createApiKey(role: "read", name: "` + strings.Repeat("n", 201) + `") { key } }`, "BAD_USER_INPUT", "name"},
		{"negative grace", `mutation { rotateApiKey(id: "` + readID + `", graceSeconds: -1) { key } }`, "BAD_USER_INPUT", "graceSeconds"},
		{"rotate unknown", `mutation { rotateApiKey(id: "ZZZZZZZZ") { key } }`, "NOT_FOUND", "no key with id"},
		{"revoke unknown", `mutation { revokeApiKey(id: "ZZZZZZZZ") { id } }`, "NOT_FOUND", "no key with id"},
		{"revoke a whole key", `mutation { revokeApiKey(id: "` + read + `") { id } }`, "BAD_USER_INPUT", "id: is not a key id"},
		{"rotate a whole key", `mutation { rotateApiKey(id: "` + read + `") { key } }`, "BAD_USER_INPUT", "id: is not a key id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := kf.gql(t, kf.admin, tc.query, nil)
			if r.code() != tc.code || !strings.Contains(r.Errors[0].Message, tc.want) {
				t.Fatalf("got %d %+v, want %s about %q", r.Status, r.Errors, tc.code, tc.want)
			}
			if strings.Contains(r.Errors[0].Message, read[len(read)-38:]) {
				t.Fatalf("the error quotes a secret: %s", r.Errors[0].Message)
			}
		})
	}
	keys, err := client.New(kf.url, kf.admin).ListKeys(context.Background())
	if err != nil || len(keys) != 2 {
		t.Fatalf("after the refusals: %d keys, %v; want the admin and read keys", len(keys), err)
	}
	// Expiry through GraphQL: the key works, then is refused as expired.
	var out struct {
		K struct{ Key string } `json:"k"`
	}
	if err := client.New(kf.url, kf.admin).GraphQL(context.Background(), `mutation { k: createApiKey(role: "read", expiresIn: 1) { key } }`, nil, &out); err != nil {
		t.Fatal(err)
	}
	if r := kf.gql(t, out.K.Key, `{profiles{edges{cursor}}}`, nil); len(r.Errors) > 0 {
		t.Fatalf("before expiry: %+v", r.Errors)
	}
	time.Sleep(1100 * time.Millisecond)
	if r := kf.gql(t, out.K.Key, `{profiles{edges{cursor}}}`, nil); r.Status != 401 || !strings.Contains(r.Errors[0].Message, "expired") {
		t.Fatalf("after expiry: %d %+v", r.Status, r.Errors)
	}
}

// TestAuditActorRevealsNoKey: an audit entry names an idg_ key by its
// public id, and a legacy key by a peppered HMAC of it: two legacy keys of
// one role are told apart, and no unsalted hash of a key (which gives a
// short key away to anyone with the log) is recorded.
func TestAuditActorRevealsNoKey(t *testing.T) {
	const second = "sk_2"
	kf := newKeyFixtureWith(t, backends.OpenPebble, nil, func(cfg *server.Config) {
		cfg.Keys.Steward = []string{stewKey, second}
	})
	kf.send(t, "/v1/identify", `{"userId":"act0"}`)
	steward := kf.create(t, auth.RoleSteward)
	actors := map[string]string{}
	for i, key := range []string{steward, stewKey, second} {
		u := "act" + string(rune('1'+i))
		kf.send(t, "/v1/identify", `{"userId":"`+u+`"}`)
		d := kf.mustAs(t, key, `mutation($u: String!) { link(a: {type: "user_id", value: "act0"}, b: {type: "user_id", value: $u}) { audit { actor } } }`,
			map[string]any{"u": u})
		actors[key] = get(d, "link.audit.actor").(string)
	}
	if want := "steward-key:" + strings.Split(steward, "_")[2]; actors[steward] != want {
		t.Errorf("idg_ key's actor %q, want %q", actors[steward], want)
	}
	if actors[stewKey] == actors[second] || !strings.HasPrefix(actors[stewKey], "steward-key:legacy-steward-") {
		t.Errorf("legacy actors %q and %q", actors[stewKey], actors[second])
	}
	for key, actor := range actors {
		sum := sha256.Sum256([]byte(key))
		for n := 4; n <= 8; n++ { // any unsalted prefix a fingerprint could have used
			if strings.Contains(actor, hex.EncodeToString(sum[:n])[:n*2-2]) {
				t.Errorf("actor %q holds an unsalted hash of the key", actor)
			}
		}
		if strings.Contains(actor, key) {
			t.Errorf("actor %q holds the key", actor)
		}
	}
	// The id needs the pepper: another pepper names the same key otherwise.
	if auth.LegacyID(testPepper, auth.RoleSteward, stewKey) == auth.LegacyID([]byte("another-pepper-0123456789"), auth.RoleSteward, stewKey) {
		t.Error("a legacy key's id does not depend on the pepper")
	}
}
