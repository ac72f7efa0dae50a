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

// TestSegmentNodeSDK drives the real @segment/analytics-node, pointed at the
// server with its host option, and checks what was stitched.
func TestSegmentNodeSDK(t *testing.T) {
	dir, _ := filepath.Abs("../testdata/segment-node")
	node, err := exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "@segment", "analytics-node")); err != nil || statErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node or the SDK is missing (node: %v, SDK: %v); scripts/test installs it", err, statErr)
		}
		t.Skip("node or testdata/segment-node/node_modules missing; run scripts/test")
	}
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "send.mjs", f.url, writeKey)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, out)
		}
		var res struct{ Errors []string }
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || len(res.Errors) > 0 {
			t.Fatalf("SDK reported %v (%v)\n%s", res.Errors, err, out)
		}
		profiles := f.export(t)
		if len(profiles) != 1 {
			t.Fatalf("profiles = %+v, want one", profiles)
		}
		var ids []string
		for _, k := range profiles[0].Identifiers {
			ids = append(ids, k.String())
		}
		want := "anonymous_id:sdk-anon-1 anonymous_id:sdk-old-anon email:sdk.user@corp-mail.io user_id:sdk-user-1"
		if got := strings.Join(ids, " "); got != want {
			t.Errorf("identifiers = %s\nwant %s", got, want)
		}
		if profiles[0].Traits["name"] != "Sam SDK" {
			t.Errorf("traits = %v", profiles[0].Traits)
		}
	})
}
