package main

import (
	"bytes"
	"context"
	enc "encoding/binary"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cpebble "github.com/cockroachdb/pebble/v2"
	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
)

// TestAuditVerifyCommand: key management through a served embedded store
// is chained; `idgraph audit verify` passes on it, and after one entry is
// edited in the store's files it exits non-zero naming that entry.
func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "data")
	out, _ := idgraph(t, true, "init", "--store", store)
	admin := keyPattern.FindString(out)
	addr := freeAddr(t)
	p := startServeArgs(t, addr, "--store", store)
	srv := []string{"--server", "http://" + addr, "--key", admin}
	out, _ = idgraph(t, true, append([]string{"keys", "create", "--role", "write"}, srv...)...)
	write := keyPattern.FindString(out)
	idgraph(t, false, append([]string{"keys", "create", "--role", "bogus"}, srv...)...) // refused: audited as invalid
	idgraph(t, true, append([]string{"keys", "list"}, srv...)...)
	// An access request through the CLI; a person unknown fails, audited.
	resp, err := http.Post("http://"+addr+"/v1/identify", "application/json", strings.NewReader(`{"writeKey":"`+write+`","userId":"u-cli","traits":{"email":"cli@corp.io"}}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("identify: %v %v", resp, err)
	}
	resp.Body.Close()
	out, _ = idgraph(t, true, append([]string{"export-subject", "email:CLI@corp.io"}, srv...)...)
	if !strings.Contains(out, `"kind":"identifier"`) || !strings.Contains(out, `"value":"u-cli"`) || !strings.HasSuffix(strings.TrimSpace(out), "}}") {
		t.Fatalf("export-subject: %s", out)
	}
	if _, errOut := idgraph(t, false, append([]string{"export-subject", "email:nobody@corp.io"}, srv...)...); !strings.Contains(errOut, "no one has that identifier") {
		t.Fatalf("export-subject of nobody: %s", errOut)
	}
	p.stop(t)

	out, _ = idgraph(t, true, "audit", "verify", "--store", store)
	if !strings.Contains(out, "audit chain: 5 entries verified") {
		t.Fatalf("verify: %s", out)
	}
	db, err := cpebble.Open(filepath.Join(store, "graph"), &cpebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	// The first entry is init's admin key: its public id, never its secret.
	first, closer, err := db.Get(enc.BigEndian.AppendUint64([]byte("ac/"), 1))
	if err != nil {
		t.Fatal(err)
	}
	adminID := strings.Split(admin, "_")[2]
	adminSecret := strings.TrimPrefix(admin, "idg_admin_"+adminID+"_")
	if s := string(first); !strings.Contains(s, `"action":"firstAdminKey"`) || !strings.Contains(s, adminID) || strings.Contains(s, adminSecret[:16]) {
		t.Errorf("entry 1: %s", s)
	}
	closer.Close()
	k := enc.BigEndian.AppendUint64([]byte("ac/"), 3)
	v, closer, err := db.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(v, []byte(`"outcome":"invalid"`), []byte(`"outcome":"ok"`), 1)
	closer.Close()
	if err := db.Set(k, edited, cpebble.Sync); err != nil || bytes.Equal(v, edited) {
		t.Fatalf("tamper: %v (changed: %v)", err, !bytes.Equal(v, edited))
	}
	db.Close()
	out, errOut := idgraph(t, false, "audit", "verify", "--store", store)
	if !strings.Contains(errOut, "audit chain broken at entry 3: its content does not match its hash") || !strings.Contains(out, "2 entries verified") {
		t.Fatalf("verify after tampering: stdout %q stderr %q", out, errOut)
	}
}

// TestAuditVerifyCommandNeo4j: the same on Neo4j, the entry edited with
// Cypher.
func TestAuditVerifyCommandNeo4j(t *testing.T) {
	g := backends.OpenNeo4j(t)
	pepper := []byte("cmd-audit-test-pepper-0123456789")
	l, err := audit.Open(g, pepper)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, a := range []string{"createApiKey", "link", "revokeApiKey"} {
		if _, err := l.Append(ctx, audit.Record{Action: a, Target: "t-" + a}); err != nil {
			t.Fatal(err)
		}
	}
	uri, _, _ := backends.Neo4jURI(t)
	verify := func(wantOK bool) (string, string) {
		cmd := exec.Command(binary(t), "audit", "verify", "--store", uri)
		cmd.Env = append(os.Environ(), "IDGRAPH_PEPPER="+hex.EncodeToString(pepper))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); (err == nil) != wantOK {
			t.Fatalf("audit verify: %v\n%s\n%s", err, &stdout, &stderr)
		}
		return stdout.String(), stderr.String()
	}
	if out, _ := verify(true); !strings.Contains(out, "3 entries verified") {
		t.Fatalf("verify: %s", out)
	}
	d, err := neo4jdriver.NewDriverWithContext(uri, neo4jdriver.NoAuth())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	if _, err := neo4jdriver.ExecuteQuery(ctx, d, `MATCH (l:AuditLink {seq: 2}) SET l.data = replace(l.data, '"action":"link"', '"action":"split"')`,
		nil, neo4jdriver.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	if _, errOut := verify(false); !strings.Contains(errOut, "broken at entry 2") {
		t.Fatalf("verify after tampering: %s", errOut)
	}
}

// TestFirstAdminKeyAudited, on both backends: the first admin key that
// init or serve makes on a new store is the chain's entry, an action of
// the system naming the key's public id and the command, never its
// secret; the chain verifies.
func TestFirstAdminKeyAudited(t *testing.T) {
	pepper := []byte("cmd-first-admin-pepper-0123456789")
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			store := b.Open(t)
			kr, err := openKeyring(store, pepper, server.Keys{})
			if err != nil {
				t.Fatal(err)
			}
			l, err := audit.Open(store, pepper)
			if err != nil {
				t.Fatal(err)
			}
			key, ok, err := server.FirstAdminKey(ctx, store, kr)
			if err != nil || !ok {
				t.Fatalf("first admin key: %v %v", ok, err)
			}
			if err := recordFirstAdminKey(ctx, l, key, "serve"); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.Verify(ctx, l.Store(), pepper)
			if err != nil || rep.Broken != nil || rep.Entries != 1 {
				t.Fatalf("verify: %+v %v", rep, err)
			}
			es, err := l.Store().Entries(ctx, 0, 10)
			if err != nil || len(es) != 1 {
				t.Fatalf("entries: %v %v", es, err)
			}
			e := es[0]
			if e.Action != "firstAdminKey" || e.Role != "system" || e.Outcome != audit.OutcomeOK ||
				e.Target != `{"by":"serve","id":"`+key.ID+`","role":"admin"}` || strings.Contains(e.Target, key.Secret) {
				t.Errorf("entry = %+v", e)
			}
		})
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(format)
}
