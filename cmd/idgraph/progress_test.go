package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/match"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		done, total int64
		want        []string
	}{
		{0, 1_000_000, []string{"comparing  [..............................]   0%", "0/1.0M pairs", "0/s", "– left"}},
		{250_000, 1_000_000, []string{"[#######.......................]  25%", "250k/1.0M pairs", "25k/s", "30s left", "(run 1m0s)"}},
		{1_000_000, 1_000_000, []string{"[##############################] 100%", "– left"}},
		{5, 0, []string{"comparing  10s (run 1m0s)"}}, // no total: no bar to draw
	}
	for _, tc := range tests {
		got := progressLine("comparing", "pairs", tc.done, tc.total, 10*time.Second, time.Minute)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("progressLine(%d/%d) = %q, want %q in it", tc.done, tc.total, got, w)
			}
		}
	}
}

// A real run reports its phases: on a terminal as one line redrawn in
// place per phase, elsewhere as plain lines.
func TestReportProgressOfARun(t *testing.T) {
	tab, _ := match.Synthesize(match.SynthOptions{Records: 3000, Seed: 5})
	cfg, _ := match.Detect(tab.Header, tab.Rows, "")
	for _, tty := range []bool{false, true} {
		ds, err := match.NewTableDataset(cfg, cfg.IDColumn, tab, nil)
		if err != nil {
			t.Fatal(err)
		}
		var p match.Progress
		var buf bytes.Buffer
		stop := reportProgress(&p, &buf, tty, time.Millisecond)
		_, err = match.Run(ds, match.Options{Progress: &p})
		time.Sleep(10 * time.Millisecond)
		stop()
		if err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !strings.Contains(out, "comparing  [") || !strings.Contains(out, " pairs, ") || !strings.Contains(out, "clustering") {
			t.Errorf("tty %v: phases missing from %q", tty, out)
		}
		if got := strings.Contains(out, "\r"); got != tty {
			t.Errorf("tty %v: carriage returns %v in %q", tty, got, out)
		}
		if !strings.HasSuffix(out, "\n") {
			t.Errorf("tty %v: the report does not end its line: %q", tty, out)
		}
	}
}
