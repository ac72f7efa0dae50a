package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodeDir returns a testdata Node project, failing under CI when node or
// its modules are missing (scripts/test installs them).
func nodeDir(t *testing.T, name, module string) (node, dir string) {
	t.Helper()
	dir, _ = filepath.Abs(filepath.Join("..", "testdata", name))
	node, err := exec.LookPath("node")
	_, statErr := os.Stat(filepath.Join(dir, "node_modules", module))
	if err != nil || statErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node or %s is missing (node: %v, module: %v); scripts/test installs it", module, err, statErr)
		}
		t.Skipf("node or testdata/%s/node_modules missing; run scripts/test", name)
	}
	return node, dir
}

// TestGraphQLNodeClients: graphql-ws receives the update a track call
// causes, and graphql-request queries the profile.
func TestGraphQLNodeClients(t *testing.T) {
	node, dir := nodeDir(t, "graphql-node", "graphql-ws")
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.send(t, "/v1/identify", `{"userId":"node-user","traits":{"name":"Nod"},"messageId":"n1"}`)
		id := get(f.must(t, `{lookup(type:"user_id", value:"node-user"){id}}`, nil), "lookup.id").(string)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "client.mjs", f.url, readKey, writeKey, id, "node-user")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var res map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
			t.Fatalf("node printed %s", out)
		}
		if get(res, "subscription.kind") != "UPDATED" || get(res, "subscription.profile.id") != id {
			t.Errorf("subscription saw %v", res["subscription"])
		}
		if get(res, "query.id") != id || get(res, "query.events.edges.0.node.name") != "Node Client Test" {
			t.Errorf("query saw %v", res["query"])
		}
	})
}
