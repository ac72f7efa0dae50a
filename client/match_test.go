package client

import (
	"strings"
	"testing"
	"time"
)

func TestProgressBar(t *testing.T) {
	tests := []struct {
		processed, total int
		done             bool
		want             []string
	}{
		{0, 100, false, []string{"[..............................]   0%", "0/100"}},
		{50, 100, false, []string{"[###############...............]  50%", "50/100", "5s left"}},
		{80, 100, true, []string{"[##############################] 100%", "80/100"}}, // merges absorbed the rest
		{10, 0, false, []string{"100%"}},                                             // no count: nothing to divide by
	}
	for _, tc := range tests {
		got := progressBar(&MatchSummary{Processed: tc.processed, Merges: 3}, tc.total, tc.done, 5*time.Second)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("progressBar(%d/%d, done %v) = %q, want %q in it", tc.processed, tc.total, tc.done, got, w)
			}
		}
	}
}
