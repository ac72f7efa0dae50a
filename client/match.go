package client

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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
}

// MatchSummary is what a bulk re-score did.
type MatchSummary struct {
	Processed, Matches, Merges int
}

// Match re-scores every profile with the server's model, a page at a time.
func (c *Client) Match(ctx context.Context, opts MatchOptions) (*MatchSummary, error) {
	if opts.PageSize <= 0 || opts.PageSize > server.MaxMatchPage {
		opts.PageSize = 200
	}
	after := ""
	if opts.ResumeFile != "" {
		if data, err := os.ReadFile(opts.ResumeFile); err == nil {
			after = strings.TrimSpace(string(data))
		}
	}
	sum := &MatchSummary{}
	start := time.Now()
	for {
		var resp server.MatchResponse
		if err := c.PostWrite(ctx, "/v1/match", server.MatchRequest{After: after, Limit: opts.PageSize, DryRun: opts.DryRun, Accept: opts.Accept, Review: opts.Review}, &resp); err != nil {
			return sum, fmt.Errorf("match: after %q: %w", after, err)
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
			fmt.Fprintf(opts.Progress, "\r%d profiles re-scored, %d edges scored, %d merges, %.0f profiles/s ",
				sum.Processed, sum.Matches, sum.Merges, float64(sum.Processed)/time.Since(start).Seconds())
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
