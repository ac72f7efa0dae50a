package client

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/idgraph/idgraph/match"
	"github.com/idgraph/idgraph/server"
)

// MatchOptions configure a bulk re-score.
type MatchOptions struct {
	PageSize int
	// ResumeFile keeps the cursor: a run that stops (or is stopped) starts
	// again where it left off.
	ResumeFile string
	Progress   io.Writer
	// DryRun changes nothing and writes each planned merge and review item
	// to Plan, with the thresholds Accept and Review (nil: the server's).
	DryRun         bool
	Accept, Review *float64
	Plan           io.Writer
	// Train asks the server to train a new model first; the run then
	// starts from the beginning, whatever the resume file says.
	Train bool
}

// MatchSummary is what a bulk re-score did.
type MatchSummary struct {
	Processed, Matches, Merges int
	// Matching is what the server decided, when it said (a run that
	// resumes does not ask).
	Matching *match.Decision
	// Bulk, when set, says the server linked the imported records in one
	// bulk pass rather than profile by profile.
	Bulk *match.LinkReport
}

// Match re-scores every profile with the server's model, a page at a time.
// The client's key must be the steward key.
func (c *Client) Match(ctx context.Context, opts MatchOptions) (*MatchSummary, error) {
	if opts.PageSize <= 0 || opts.PageSize > server.MaxMatchPage {
		opts.PageSize = 200
	}
	after := ""
	if opts.ResumeFile != "" && !opts.Train {
		if data, err := os.ReadFile(opts.ResumeFile); err == nil {
			after = strings.TrimSpace(string(data))
		}
	}
	sum := &MatchSummary{}
	timeout := c.HTTP.Timeout
	defer func() { c.HTTP.Timeout = timeout }()
	start := time.Now()
	total := 0
	for {
		var resp server.MatchResponse
		c.HTTP.Timeout = timeout
		if after == "" {
			// The first page may train a model on every stored record first.
			c.HTTP.Timeout = max(timeout, 30*time.Minute)
		}
		if err := c.PostBearer(ctx, "/v1/match", server.MatchRequest{After: after, Limit: opts.PageSize, DryRun: opts.DryRun, Accept: opts.Accept, Review: opts.Review, Train: opts.Train && after == ""}, &resp); err != nil {
			return sum, fmt.Errorf("match: after %q: %w", after, err)
		}
		if resp.Total > 0 {
			total = resp.Total
		}
		if resp.Matching != nil {
			sum.Matching = resp.Matching
		}
		if resp.Bulk != nil {
			sum.Bulk = resp.Bulk
		}
		sum.Processed += resp.Processed
		sum.Matches += resp.Matches
		sum.Merges += resp.Merges
		after = resp.Next
		for _, p := range resp.Planned {
			if opts.Plan != nil {
				fmt.Fprintf(opts.Plan, "%s\t%s\t%s\t%.4f\t%s — %s\t%s\n", p.Kind, p.Profiles[0], p.Profiles[1], p.Score, p.Edge[0], p.Edge[1], p.Reason)
			}
		}
		if opts.ResumeFile != "" && !opts.DryRun {
			if err := os.WriteFile(opts.ResumeFile, []byte(after+"\n"), 0o600); err != nil {
				return sum, fmt.Errorf("match: resume file: %w", err)
			}
		}
		if opts.Progress != nil {
			fmt.Fprint(opts.Progress, "\r"+progressBar(sum, total, resp.Done, time.Since(start)))
		}
		if resp.Done {
			if opts.Progress != nil {
				fmt.Fprintln(opts.Progress)
			}
			if opts.ResumeFile != "" {
				os.Remove(opts.ResumeFile) // finished: the next run starts from the beginning
			}
			return sum, nil
		}
	}
}

// progressBar draws one line: a bar over the live profiles counted when
// the run started (merges absorb some before their page comes, so a run
// may end short of the count: it shows 100% when done), the counts, the
// rate and the time left.
func progressBar(sum *MatchSummary, total int, done bool, elapsed time.Duration) string {
	const width = 30
	frac := 1.0
	if total > 0 && !done {
		frac = min(float64(sum.Processed)/float64(total), 1)
	}
	fill := int(frac * width)
	rate := float64(sum.Processed) / max(elapsed.Seconds(), 1e-3)
	eta := "–"
	if rate > 0 && total > sum.Processed && !done {
		eta = (time.Duration(float64(total-sum.Processed)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s%s] %3.0f%% %d/%d profiles, %d scored, %d merges, %.0f/s, %s left ",
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), frac*100, sum.Processed, total, sum.Matches, sum.Merges, rate, eta)
}
