package pebble_test

import (
	"context"
	"testing"

	"github.com/idgraph/idgraph/internal/diskscan"
	"github.com/idgraph/idgraph/pebble"
)

// TestScrubLeavesNoOldValue: a legacy key older versions stored in plain
// text is, once blanked and scrubbed (serve --retire-legacy-keys), in no
// file of the store: not its write-ahead log, not a table.
func TestScrubLeavesNoOldValue(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const legacy = "rk_plain_text_9d2c7e1a4b"
	s, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSetting(ctx, "read_key", legacy); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if holding, _, _ := diskscan.Holding(t, dir, []byte(legacy)); len(holding) == 0 {
		t.Fatal("the control was not found: the scan does not see what is written")
	}
	s, err = pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSetting(ctx, "read_key", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Scrub(ctx); err != nil {
		t.Fatal(err)
	}
	// The store goes on working over its zeroed logs, reused as Pebble
	// recycles them, and keeps what it is given after a reopen.
	for i, name := range []string{"after_1", "after_2", "after_3"} {
		if err := s.PutSetting(ctx, name, string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
		if err := s.Scrub(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutSetting(ctx, "after_4", "d"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	holding, files, _ := diskscan.Holding(t, dir, []byte(legacy))
	if len(holding) > 0 {
		t.Errorf("after the scrub the retired key is still in %v", holding)
	}
	t.Logf("%d files scanned", files)
	s, err = pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, want := range map[string]string{"read_key": "", "after_1": "a", "after_2": "b", "after_3": "c", "after_4": "d"} {
		if v, _, err := s.Setting(ctx, name); err != nil || v != want {
			t.Errorf("after a reopen %s = %q, %v; want %q", name, v, err, want)
		}
	}
}
