package server_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestSegmentNodeSDK drives the real @segment/analytics-node, pointed at the
// server with its host option, and checks what was stitched.
func TestSegmentNodeSDK(t *testing.T) {
	node, dir := nodeDir(t, "segment-node", "@segment/analytics-node")
	forEachBackend(t, func(t *testing.T, f *fixture) {
		var res struct{ Errors []string }
		runNode(t, &res, node, dir, "send.mjs", f.url, writeKey)
		if len(res.Errors) > 0 {
			t.Fatalf("SDK reported %v", res.Errors)
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

// runNode runs a script of a testdata Node project and decodes the JSON
// report it prints last into report.
func runNode(t *testing.T, report any, node, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), report); err != nil {
		t.Fatalf("node's report: %v\n%s", err, out)
	}
}

// stitched lists the exported profiles as their identifiers, one line per
// profile, sorted.
func stitched(t *testing.T, f *fixture) []string {
	t.Helper()
	var out []string
	for _, p := range f.export(t) {
		var ids []string
		for _, k := range p.Identifiers {
			ids = append(ids, k.String())
		}
		out = append(out, strings.Join(ids, " "))
	}
	sort.Strings(out)
	return out
}

// TestRudderStackNodeSDK drives the real @rudderstack/rudder-sdk-node, which
// gzips every batch and labels it application/x-www-form-urlencoded: three
// people, one of them signing in on a second device.
func TestRudderStackNodeSDK(t *testing.T) {
	node, dir := nodeDir(t, "rudder-node", "@rudderstack/rudder-sdk-node")
	forEachBackend(t, func(t *testing.T, f *fixture) {
		var res struct {
			Errors   []string
			Requests []struct {
				Path, ContentType, ContentEncoding string
				Status                             int
			}
		}
		runNode(t, &res, node, dir, "send.mjs", f.url, writeKey)
		if len(res.Errors) > 0 || len(res.Requests) == 0 {
			t.Fatalf("SDK reported %v after %d requests", res.Errors, len(res.Requests))
		}
		for _, r := range res.Requests {
			if r.Path != "/v1/batch" || r.ContentEncoding != "gzip" || r.ContentType != "application/x-www-form-urlencoded" || r.Status != 200 {
				t.Errorf("request %+v, want gzip form-urlencoded batches answered 200", r)
			}
		}
		want := []string{
			"anonymous_id:rs-alice-laptop anonymous_id:rs-alice-phone email:alice.rs@example-mail.io user_id:rs-alice",
			"anonymous_id:rs-bob-tablet email:bob.rs@example-mail.io phone:+13122604347 user_id:rs-bob",
			"anonymous_id:rs-carol-desktop",
		}
		if got := stitched(t, f); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("profiles:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
