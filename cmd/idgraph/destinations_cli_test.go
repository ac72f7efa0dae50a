package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDestinationsCLI: idgraph destinations list, health, resync --wait,
// jobs, replay and redeliver against a real serve process, with the admin
// key; bad input is refused naming the field, and a non-admin key is
// refused.
func TestDestinationsCLI(t *testing.T) {
	_, url, admin := serveDestinations(t)
	var mu sync.Mutex
	var reasons []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Data struct {
				Reason string `json:"reason"`
			} `json:"data"`
		}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &m)
		mu.Lock()
		reasons = append(reasons, m.Data.Reason)
		mu.Unlock()
	}))
	defer recv.Close()
	received := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), reasons...) }

	gql := serveGraphQL(t, url, admin)
	createLiveSegment(t, gql, "pro", `trait("plan") = "pro"`)
	identifyPlan(t, url, admin, "u1", "pro")
	identifyPlan(t, url, admin, "u2", "pro")
	for deadline := time.Now().Add(30 * time.Second); gql(`{ segment(key: "pro") { size } }`, nil)["segment"].(map[string]any)["size"] != 2.0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("two members never counted")
		}
	}
	// Connected after its members entered: only a resync sends them.
	id := gql(`mutation($url: String!) { createDestination(name: "crm", url: $url, segments: ["pro"]) { destination { id } } }`,
		map[string]any{"url": recv.URL})["createDestination"].(map[string]any)["destination"].(map[string]any)["id"].(string)

	cli := func(ok bool, args ...string) (string, string) {
		t.Helper()
		return idgraph(t, ok, append([]string{"destinations"}, append(args, "--server", url, "--key", admin)...)...)
	}
	if out, _ := cli(true, "list"); !regexp.MustCompile(id + `\s+crm\s+webhook\s+yes\s+pro\s+`).MatchString(out) {
		t.Fatalf("list:\n%s", out)
	}
	out, _ := cli(true, "resync", id, "--wait")
	if !strings.Contains(out, "queued resync job job_") || !strings.Contains(out, "DONE 2/2") {
		t.Fatalf("resync --wait:\n%s", out)
	}
	if got := received(); len(got) != 2 || got[0] != "resync" || got[1] != "resync" {
		t.Fatalf("the receiver got reasons %v", got)
	}
	if out, _ := cli(true, "jobs", id); !regexp.MustCompile(`job_\w+\s+resync\s+DONE\s+2/2`).MatchString(out) {
		t.Fatalf("jobs:\n%s", out)
	}
	if _, errOut := cli(false, "resync", id, "--trait", "ltv"); !strings.Contains(errOut, `trait: computed trait "ltv" is not connected`) {
		t.Fatalf("resync --trait of a trait not connected:\n%s", errOut)
	}
	if out, _ := cli(true, "health", id); !strings.Contains(out, "PENDING") || !regexp.MustCompile(id+`\s+0\s+-\s+0\s+0\s+0`).MatchString(out) {
		t.Fatalf("health:\n%s", out)
	}

	start := time.Now().UTC().Add(-time.Second).Format(time.RFC3339Nano)
	identifyPlan(t, url, admin, "u3", "pro")
	for deadline := time.Now().Add(30 * time.Second); len(received()) < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("u3's entry never arrived: %v", received())
		}
	}
	end := time.Now().UTC().Add(time.Second).Format(time.RFC3339Nano)
	if out, _ := cli(true, "replay", id, "--from", start, "--to", end); !strings.Contains(out, "queued replay job") {
		t.Fatalf("replay by time:\n%s", out)
	}
	for deadline := time.Now().Add(30 * time.Second); len(received()) < 4; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the replay never arrived: %v", received())
		}
	}
	if got := received(); got[3] != "data" {
		t.Fatalf("replayed %v", got)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", id, "--from", end, "--to", start}, "to: "},
		{[]string{"replay", id, "--from-sequence", "1", "--from", start, "--to", end}, "fromSequence: "},
		{[]string{"replay", id, "--from", "yesterday"}, "RFC 3339"},
		{[]string{"resync", id, "--segment", "nosuch"}, "segment: "},
		{[]string{"redeliver", id, "5"}, "no dead letter"},
		{[]string{"jobs", "dst_none"}, "NOT_FOUND"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		if _, stderr := cli(false, bad.args...); !strings.Contains(stderr, bad.want) {
			t.Errorf("destinations %v: stderr %q, want %q", bad.args, stderr, bad.want)
		}
	}
	readKey := keyPattern.FindString(func() string {
		o, _ := idgraph(t, true, "keys", "create", "--role", "read", "--server", url, "--key", admin)
		return o
	}())
	if _, stderr := idgraph(t, false, "destinations", "list", "--server", url, "--key", readKey); !strings.Contains(stderr, "FORBIDDEN") {
		t.Errorf("list with a read key: %q", stderr)
	}
}
