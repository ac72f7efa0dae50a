package server_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSegmentNodeSDK drives the real @segment/analytics-node, pointed at the
// server with its host option, and checks what was stitched.
func TestSegmentNodeSDK(t *testing.T) {
	node, dir := nodeDir(t, "segment-node", "@segment/analytics-node")
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
