package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/internal/envelope"
)

// marker64 is 64 random hexadecimal characters, found in a file or an
// answer only if the value was copied there.
func marker64(t *testing.T) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// runNeo4jCmd runs an idgraph command with neo4jEnv, returning its output
// and error.
func runNeo4jCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = neo4jEnv(t)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sealedValue is one encrypted property as Neo4j stores it, with the
// wrapped data key it names: what a copy of Neo4j's files would hold.
type sealedValue struct {
	aad, keyID string
	sealed     []byte
	wrapped    []byte
}

// rawStore reads Neo4j's properties directly, through a driver session of
// its own: no idgraph code decrypts or filters them.
type rawStore struct {
	t *testing.T
	d neo4jdriver.DriverWithContext
}

func openRaw(t *testing.T) *rawStore {
	t.Helper()
	uri, user, pass := backends.Neo4jURI(t)
	auth := neo4jdriver.NoAuth()
	if user != "" {
		auth = neo4jdriver.BasicAuth(user, pass, "")
	}
	d, err := neo4jdriver.NewDriverWithContext(uri, auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return &rawStore{t: t, d: d}
}

func (r *rawStore) query(cypher string) []*neo4jdriver.Record {
	r.t.Helper()
	res, err := neo4jdriver.ExecuteQuery(context.Background(), r.d, cypher, nil, neo4jdriver.EagerResultTransformer)
	if err != nil {
		r.t.Fatal(err)
	}
	return res.Records
}

// plainMarkers counts the markers found as plain text in any property of
// any node or relationship: strings, lists of strings and byte arrays.
func (r *rawStore) plainMarkers(markers []string) (found []string, properties int) {
	r.t.Helper()
	var all bytes.Buffer
	for _, q := range []string{`MATCH (n) RETURN properties(n)`, `MATCH ()-[x]->() RETURN properties(x)`} {
		for _, rec := range r.query(q) {
			props, _ := rec.Values[0].(map[string]any)
			for _, v := range props {
				properties++
				switch v := v.(type) {
				case []byte:
					all.Write(v)
				default:
					fmt.Fprint(&all, v)
				}
				all.WriteByte(0)
			}
		}
	}
	for _, m := range markers {
		if bytes.Contains(all.Bytes(), []byte(m)) {
			found = append(found, m)
		}
	}
	return found, properties
}

// sealedValues reads every sealed profile trait and event payload with
// the wrapped key it names.
func (r *rawStore) sealedValues() []sealedValue {
	r.t.Helper()
	wrapped := map[string][]byte{}
	for _, rec := range r.query(`MATCH (k:DataKey) RETURN k.id, k.wrapped`) {
		wrapped[rec.Values[0].(string)], _ = rec.Values[1].([]byte)
	}
	var out []sealedValue
	add := func(aad string, v any) {
		s, _ := v.(string)
		rest, ok := strings.CutPrefix(s, "enc1:")
		if !ok {
			return
		}
		id, b64, _ := strings.Cut(rest, ":")
		b, err := base64.RawStdEncoding.DecodeString(b64)
		if err != nil {
			r.t.Fatalf("%q: %v", s, err)
		}
		out = append(out, sealedValue{aad: aad, keyID: id, sealed: b, wrapped: wrapped[id]})
	}
	for _, rec := range r.query(`MATCH (p:Profile) RETURN p.id, p.traits`) {
		add("profile\x00"+rec.Values[0].(string)+"\x00traits", rec.Values[1])
	}
	for _, rec := range r.query(`MATCH (e:Event) RETURN e.messageId, e.properties, e.traits, e.context`) {
		for i, f := range []string{"properties", "traits", "context"} {
			add("event\x00"+rec.Values[0].(string)+"\x00"+f, rec.Values[i+1])
		}
	}
	return out
}

// open decrypts v with the keyring: the wrapped key, then the value.
func (v sealedValue) open(ring *envelope.Keyring) (string, error) {
	key, err := ring.Unwrap(v.keyID, v.wrapped)
	if err != nil {
		return "", err
	}
	a, err := envelope.NewAEAD(key)
	if err != nil {
		return "", err
	}
	plain, err := envelope.Unseal(a, v.sealed, []byte(v.aad))
	return string(plain), err
}

// TestEncryptedErasureThroughServe: serve on Neo4j encrypts by default
// under the keyring beside the pepper; two people are ingested with
// 64-character markers in their traits, event properties and context;
// Neo4j's raw properties hold none of them in plain text; one person is
// erased and `idgraph purge` rotates the keyring, after which the erased
// person's ciphertexts and wrapped keys, as a copy of Neo4j's files would
// hold them, no longer open with the keyring file that remains, while a
// server restarted with it reads the other person.
func TestEncryptedErasureThroughServe(t *testing.T) {
	dsn := neo4jDSN(t)
	backends.OpenNeo4j(t) // locks and empties the test database
	raw := openRaw(t)
	out, err := runNeo4jCmd(t, "init", "--store", dsn)
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	admin := keyPattern.FindString(out)
	if st, err := os.Stat(testKeyring(t)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file after init: %v, %v", st, err)
	}
	ann := []string{marker64(t), marker64(t), marker64(t)}
	bob := []string{marker64(t), marker64(t), marker64(t)}
	addr := freeAddr(t)
	p := startServe(t, addr, dsn, "--model", "off")
	person := func(user string, m []string) string {
		return fmt.Sprintf(`{"type":"identify","messageId":"%[1]s-id","userId":"%[1]s","traits":{"email":"%[1]s@corp.io","note":"%[2]s"}},
			{"type":"track","messageId":"%[1]s-buy","userId":"%[1]s","event":"Bought","properties":{"note":"%[3]s"},"context":{"note":"%[4]s"}}`,
			user, m[0], m[1], m[2])
	}
	if code := postAPI(t, "http://"+addr+"/v1/batch", testWriteKey, `{"batch":[`+person("ann", ann)+`,`+person("bob", bob)+`]}`); code != 200 {
		t.Fatalf("batch: %d", code)
	}
	// Before erasure the keyring opens every ciphertext: ann's hold her
	// three markers and bob's his (waited for: the batch is acknowledged
	// before it is stitched).
	ring, err := envelope.OpenKeyring(testKeyring(t))
	if err != nil {
		t.Fatal(err)
	}
	var annSealed []sealedValue
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		annSealed = nil
		seen := map[string]bool{}
		for _, v := range raw.sealedValues() {
			plain, err := v.open(ring)
			if err != nil {
				t.Fatalf("before erasure %q does not open: %v", v.aad, err)
			}
			for i, m := range append(append([]string{}, ann...), bob...) {
				if strings.Contains(plain, m) {
					seen[m] = true
					if i < len(ann) {
						annSealed = append(annSealed, v)
					}
				}
			}
		}
		if len(seen) == len(ann)+len(bob) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ciphertexts hold %d of the 6 markers (ann's %d); serve's log:\n%s", len(seen), len(annSealed), p.log)
		}
	}
	markers := append(append([]string{}, ann...), bob...)
	if found, n := raw.plainMarkers(markers); len(found) > 0 || n == 0 {
		t.Fatalf("%d of 6 markers in plain text among %d raw properties", len(found), n)
	}

	out, err = runNeo4jCmd(t, "erase", "--server", "http://"+addr, "--key", admin, "user_id:ann")
	if err != nil || !strings.Contains(out, `"found": true`) {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	p.stop(t)
	out, err = runNeo4jCmd(t, "purge", "--store", dsn)
	if err != nil {
		t.Fatalf("purge: %v\n%s", err, out)
	}
	t.Logf("purge: %s", out)
	m := regexp.MustCompile(`generation (\d+) made, generations \[1\] destroyed; (\d+) data keys rewrapped`).FindStringSubmatch(out)
	if m == nil || m[1] != "2" || m[2] == "0" {
		t.Fatalf("purge printed %q", out)
	}

	// The keyring that remains opens none of ann's wrapped keys: its only
	// generation is the new one.
	ring, err = envelope.OpenKeyring(testKeyring(t))
	if err != nil {
		t.Fatal(err)
	}
	if g := ring.Generations(); len(g) != 1 || g[0] != 2 {
		t.Fatalf("keyring generations after purge: %v", g)
	}
	for _, v := range annSealed {
		if plain, err := v.open(ring); !errors.Is(err, envelope.ErrUnknownGeneration) {
			t.Errorf("ann's %q after purge: %q, %v; want unknown key generation", v.aad, plain, err)
		}
	}
	if found, _ := raw.plainMarkers(markers); len(found) > 0 {
		t.Errorf("%d markers in plain text after erasure and purge", len(found))
	}

	// Restarted with the same keyring, the server reads bob's traits and
	// events, rewrapped under the new generation.
	p = startServe(t, addr, dsn, "--model", "off")
	data := serveGraphQL(t, "http://"+addr, testReadKey)(`{ lookup(type: "user_id", value: "bob") { traits events { edges { node { properties context } } } } }`, nil)
	got, _ := json.Marshal(data)
	for _, m := range bob {
		if !strings.Contains(string(got), m) {
			t.Errorf("bob's marker %s… is not read back after the restart: %s", m[:8], got)
		}
	}
	if data, errs := postGraphQL(t, "http://"+addr, testReadKey, `{ lookup(type: "user_id", value: "ann") { id } }`, nil); len(errs) == 0 && data["lookup"] != nil {
		t.Errorf("ann is still there: %v", data)
	}
	p.stop(t)
	checkKeyringRefusals(t, dsn)
}

// checkKeyringRefusals: on a store holding encrypted payloads, serve with
// a corrupt keyring file, a missing one or another store's, or with
// encryption off, exits with an error naming the file (or the flag),
// never a panic, and leaves no new keyring behind.
func checkKeyringRefusals(t *testing.T, dsn string) {
	t.Helper()
	dir := t.TempDir()
	corrupt, missing := filepath.Join(dir, "corrupt.keyring"), filepath.Join(dir, "missing.keyring")
	other, otherGen2 := filepath.Join(dir, "other.keyring"), filepath.Join(dir, "other2.keyring")
	if err := os.WriteFile(corrupt, []byte(`{"version":1,"current":1,"generations":{"1":"AAAA"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.OpenKeyring(other); err != nil {
		t.Fatal(err)
	}
	// Another keyring at the store's generation (2): the key is tried and
	// fails authentication.
	k2, err := envelope.OpenKeyring(otherGen2)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := k2.Rotate(); err != nil || g != 2 || k2.DropBefore(2) != nil {
		t.Fatalf("rotate: %d, %v", g, err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"corrupt", []string{"--keyring-file", corrupt}, corrupt},
		{"missing", []string{"--keyring-file", missing}, missing + " was missing"},
		{"another store's", []string{"--keyring-file", other}, other + " is not this store's"},
		{"another store's at the same generation", []string{"--keyring-file", otherGen2}, otherGen2 + " is not this store's"},
		{"encryption off", []string{"--encrypt=false"}, "holds encrypted payloads"},
		{"purge with a missing keyring", []string{"purge", "--keyring-file", missing}, missing},
	} {
		args := append([]string{"serve", "--addr", freeAddr(t), "--store", dsn}, tc.args...)
		if tc.args[0] == "purge" {
			args = append([]string{"purge", "--store", dsn}, tc.args[1:]...)
		}
		out, err := runNeo4jCmd(t, args...)
		if err == nil || !strings.Contains(out, tc.want) || strings.Contains(out, "panic") {
			t.Errorf("%s: %v, want an error naming %q:\n%s", tc.name, err, tc.want, out)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start left %s behind: %v", missing, err)
	}
}

// TestKeyringPaths: the keyring sits beside the pepper file, like the
// ledger, unless --keyring-file names it.
func TestKeyringPaths(t *testing.T) {
	for _, tc := range []struct{ dsn, pepper, flag, want string }{
		{"bolt://db:7687", "", "", "idgraph.keyring"},
		{"neo4j://u:p@db:7687", "/data/idgraph.pepper", "", "/data/idgraph.keyring"},
		{"bolt://db:7687", "/data/idgraph.pepper", "/secrets/kek", "/secrets/kek"},
		{"./idgraph-data", "", "", "idgraph-data.keyring"},
	} {
		if got := keyringPath(tc.dsn, tc.pepper, tc.flag); got != tc.want {
			t.Errorf("keyringPath(%q, %q, %q) = %q, want %q", tc.dsn, tc.pepper, tc.flag, got, tc.want)
		}
	}
}

// TestEncryptionIngestCost measures what encryption costs serve's ingest
// on Neo4j (IDGRAPH_BENCH_ENCRYPT=N batches per run; skipped otherwise):
// the same batches of 500 messages through /v1/batch to serve with
// encryption on and with --encrypt=false, alternately, on an emptied
// database each time, with a build without the race detector. It reports
// wall time per batch and serve's CPU time per batch (from /proc), and the
// ratios: on a shared machine only the ratios within one run mean much.
func TestEncryptionIngestCost(t *testing.T) {
	batches, _ := strconv.Atoi(os.Getenv("IDGRAPH_BENCH_ENCRYPT"))
	if batches <= 0 {
		t.Skip("set IDGRAPH_BENCH_ENCRYPT=N (batches per run) to measure")
	}
	dsn := neo4jDSN(t)
	store := backends.OpenNeo4j(t)
	bin := filepath.Join(t.TempDir(), "idgraph")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	type result struct{ wall, cpu time.Duration }
	total := map[bool]*result{true: {}, false: {}}
	for round := range 4 {
		for _, on := range []bool{round%2 == 0, round%2 != 0} {
			if err := store.(interface{ Reset(context.Context) error }).Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			addr := freeAddr(t)
			p := startServeBinary(t, bin, addr, "--store", dsn, "--write-key", testWriteKey, "--read-key", testReadKey,
				"--model", "off", "--encrypt="+strconv.FormatBool(on))
			send := func(prefix string) {
				body := ingestBatch(prefix)
				if code := postAPI(t, "http://"+addr+"/v1/batch", testWriteKey, body); code != 200 {
					t.Fatalf("batch: %d", code)
				}
			}
			send(fmt.Sprintf("warm-%d", round))
			cpu0, start := procCPU(t, p.cmd.Process.Pid), time.Now()
			for b := range batches {
				send(fmt.Sprintf("r%d-b%d", round, b))
			}
			// The batch is acknowledged before it is stitched: wait for the
			// last message to be stored.
			last := fmt.Sprintf("r%d-b%d-p%d", round, batches-1, ingestPeople-1)
			for deadline := time.Now().Add(5 * time.Minute); !stored(t, addr, last); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s not stored after 5 minutes:\n%s", last, p.log)
				}
			}
			wall, cpu := time.Since(start), procCPU(t, p.cmd.Process.Pid)-cpu0
			p.stop(t)
			total[on].wall += wall
			total[on].cpu += cpu
			t.Logf("round %d encrypt=%v: %.0f ms/batch wall, %.1f ms/batch serve CPU", round, on,
				float64(wall.Milliseconds())/float64(batches), float64(cpu.Microseconds())/1000/float64(batches))
		}
	}
	n := float64(4 * batches)
	t.Logf("total: plain %.0f ms/batch wall, %.1f ms CPU; encrypted %.0f ms/batch wall, %.1f ms CPU; wall ratio %.2f, CPU ratio %.2f",
		float64(total[false].wall.Milliseconds())/n, float64(total[false].cpu.Microseconds())/1000/n,
		float64(total[true].wall.Milliseconds())/n, float64(total[true].cpu.Microseconds())/1000/n,
		float64(total[true].wall)/float64(total[false].wall), float64(total[true].cpu)/float64(total[false].cpu))
}

// ingestPeople is the people of one ingestBatch: each an identify with
// three traits and four tracks with properties and context, 500 messages.
const ingestPeople = 100

func ingestBatch(prefix string) string {
	var msgs []string
	for i := range ingestPeople {
		u := fmt.Sprintf("%s-p%d", prefix, i)
		msgs = append(msgs, fmt.Sprintf(`{"type":"identify","messageId":"%[1]s-id","userId":"%[1]s","traits":{"email":"%[1]s@corp.io","name":"Ann Example","plan":"pro"}}`, u))
		for j := range 4 {
			msgs = append(msgs, fmt.Sprintf(`{"type":"track","messageId":"%[1]s-t%[2]d","userId":"%[1]s","event":"Product Viewed","properties":{"product_id":"sku-%[2]d","name":"A product with a name","price":19.99,"currency":"EUR","category":"shoes"},"context":{"ip":"203.0.113.7","page":{"url":"https://shop.example.com/p/sku-%[2]d","referrer":"https://www.example.org/"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"}}`, u, j))
		}
	}
	return `{"batch":[` + strings.Join(msgs, ",") + `]}`
}

// stored tells whether the user ID has a profile with its four tracks.
func stored(t *testing.T, addr, user string) bool {
	t.Helper()
	data, errs := postGraphQL(t, "http://"+addr, testReadKey, `query($v: String!) { lookup(type: "user_id", value: $v) { events(first: 10) { edges { cursor } } } }`,
		map[string]any{"v": user})
	if len(errs) > 0 || data["lookup"] == nil {
		return false
	}
	edges, _ := data["lookup"].(map[string]any)["events"].(map[string]any)["edges"].([]any)
	return len(edges) >= 5
}

// procCPU is a process's user and system CPU time, from /proc.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command's closing parenthesis: utime and stime
	// are the 12th and 13th, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond
}
