package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Bad --retention-* values are refused before anything opens, naming the
// flag; good ones parse.
func TestServeRetentionFlags(t *testing.T) {
	p, err := retentionPolicy("395d", "Page Viewed=30d, Order Completed=2000d,page=36h,Kept=0", "730d", time.Hour, 500)
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	if p.Default != 395*day || p.ByType["Page Viewed"] != 30*day || p.ByType["Order Completed"] != 2000*day ||
		p.ByType["page"] != 36*time.Hour || p.ByType["Kept"] != 0 || p.InactiveProfiles != 730*day {
		t.Errorf("policy %s", p)
	}
	// Imported records are kept unless named.
	if ttl, ok := p.ByType["record"]; !ok || ttl != 0 {
		t.Errorf("imported records: ttl %s (named %v), want kept", ttl, ok)
	}
	if p, err := retentionPolicy("395d", "record=90d", "0", time.Hour, 500); err != nil || p.ByType["record"] != 90*day {
		t.Errorf("records named: %s %v", p, err)
	}
	for _, tc := range []struct{ args, flag string }{
		{"--retention-default=forever", "--retention-default"},
		{"--retention-default=-3d", "--retention-default"},
		{"--retention=Page Viewed", "--retention"},
		{"--retention==30d", "--retention"},
		{"--retention=a=1d,a=2d", "--retention"},
		{"--retention=a=1y", "--retention"},
		{"--retention-inactive-profiles=soon", "--retention-inactive-profiles"},
		{"--retention-sweep-every=-1h", "--retention-sweep-every"},
		{"--retention-batch=0", "--retention-batch"},
		{"--retention-batch=1000001", "--retention-batch"},
	} {
		dir := filepath.Join(t.TempDir(), "store")
		err := serve(context.Background(), []string{"--store", dir, tc.args})
		if err == nil || !strings.Contains(err.Error(), tc.flag+":") {
			t.Errorf("%s: got %v, want an error naming %s", tc.args, err, tc.flag)
		}
	}
}

// serveWithRetention starts a serve on a new store that keeps page views
// 30 days and sweeps every the given pause ("0": only when an admin asks),
// and returns its URL and the first admin key.
func serveWithRetention(t *testing.T, every string) (url, admin string) {
	t.Helper()
	store := filepath.Join(t.TempDir(), "data")
	out, _ := idgraph(t, true, "init", "--store", store)
	addr := freeAddr(t)
	p := startServeArgs(t, addr, "--store", store, "--model", "off", "--retention", "Page Viewed=30d", "--retention-sweep-every", every)
	t.Cleanup(func() { p.stop(t) })
	return "http://" + addr, keyPattern.FindString(out)
}

// TestRetentionCLI: idgraph retention show and sweep against a real serve
// process with periodic sweeps off: the policy is shown, a sweep deletes
// the expired page views and says so, show then has it as the last sweep,
// and a key that is not admin is refused.
func TestRetentionCLI(t *testing.T) {
	url, admin := serveWithRetention(t, "0")
	for i, age := range []time.Duration{40 * 24 * time.Hour, 35 * 24 * time.Hour, time.Hour} {
		body := fmt.Sprintf(`{"userId":"u1","event":"Page Viewed","messageId":"v%d","timestamp":%q}`, i, time.Now().UTC().Add(-age).Format(time.RFC3339))
		if code := postAPI(t, url+"/v1/track", admin, body); code != 200 {
			t.Fatalf("track: %d", code)
		}
	}
	cli := func(ok bool, key string, args ...string) string {
		t.Helper()
		out, errOut := idgraph(t, ok, append([]string{"retention"}, append(args, "--server", url, "--key", key)...)...)
		return out + errOut
	}
	show := cli(true, admin, "show")
	for _, want := range []string{"default\t395d", "Page Viewed\t30d", "periodic sweeps\toff", "last sweep\tnone"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	if out := cli(true, admin, "sweep"); !regexp.MustCompile(`: 2 events deleted, 1 profiles touched, 0 profiles expired, .*; Page Viewed 2\n`).MatchString(out) {
		t.Errorf("sweep:\n%s", out)
	}
	if out := cli(true, admin, "show"); !strings.Contains(out, "last sweep\t") || !strings.Contains(out, "2 events deleted") {
		t.Errorf("show after the sweep:\n%s", out)
	}
	if out := cli(true, admin, "sweep"); !strings.Contains(out, ": 0 events deleted") {
		t.Errorf("a second sweep:\n%s", out)
	}
	created, _ := idgraph(t, true, "keys", "create", "--role", "read", "--name", "reader", "--server", url, "--key", admin)
	read := keyPattern.FindString(created)
	if out := cli(false, read, "sweep"); !strings.Contains(out, "FORBIDDEN") {
		t.Errorf("a read key's sweep:\n%s", out)
	}
}

// TestRetentionAtIngest: with periodic sweeps on, a serve keeps no event
// that arrives already past its time to live (a late upload): the person
// is stitched and the event counted as expired, never stored; a recent
// one is kept.
func TestRetentionAtIngest(t *testing.T) {
	url, admin := serveWithRetention(t, "1h")
	for i, age := range []time.Duration{40 * 24 * time.Hour, time.Hour} {
		body := fmt.Sprintf(`{"userId":"u1","anonymousId":"a%d","event":"Page Viewed","messageId":"v%d","timestamp":%q}`, i, i, time.Now().UTC().Add(-age).Format(time.RFC3339))
		if code := postAPI(t, url+"/v1/track", admin, body); code != 200 {
			t.Fatalf("track: %d", code)
		}
	}
	data := serveGraphQL(t, url, admin)(`{ lookup(type: "anonymous_id", value: "a0") { identifiers { type value } events { edges { node { messageId } } } } }`, nil)
	if got := fmt.Sprint(data); !strings.Contains(got, "value:a1") || strings.Contains(got, "messageId:v0") || !strings.Contains(got, "messageId:v1") {
		t.Errorf("the late page view's person: %s; want a0 stitched with u1 and a1, and only v1 kept", got)
	}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{`idgraph_messages_total{outcome="expired"} 1`, `idgraph_messages_total{outcome="stored"} 1`} {
		if !strings.Contains(string(metrics), line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
