package main

import (
	"context"
	"path/filepath"
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
