package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idgraph/idgraph/client"
)

const segmentsUsage = `usage: idgraph segments <command> [flags]

commands:
  apply DIR                 create or update the segments defined in DIR (each file KEY.seg holds
                            segment KEY's definition), with the steward key; segments not in DIR are left alone
  diff DIR                  what apply would change: new, changed, unchanged and absent segments, with their
                            membership counts now and, for new and changed ones, the previewed count
  explain PROFILE SEGMENT   why a profile (an ID, or TYPE:VALUE of one of its identifiers) is or is not
                            a member: the definition evaluated node by node

The server must run with --segments (docs/segments.md).
`

func runSegments(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, segmentsUsage)
		return fmt.Errorf("segments: no command given")
	}
	switch args[0] {
	case "apply":
		return runSegmentsApply(ctx, args[1:])
	case "diff":
		return runSegmentsDiff(ctx, args[1:])
	case "explain":
		return runSegmentsExplain(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Print(segmentsUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, segmentsUsage)
	return fmt.Errorf("segments: unknown command %q", args[0])
}

// segmentsFlags parses a segments command's flags and its positional
// arguments (flags may come after them).
func segmentsFlags(name, role string, args []string, want int, what string) (*client.Client, []string, error) {
	fs := flag.NewFlagSet("segments "+name, flag.ContinueOnError)
	srv, key := serverFlags(fs, role)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != want {
		return nil, nil, fmt.Errorf("usage: idgraph segments %s %s [--server URL] [--key %s]", name, what, strings.ToUpper(role)+"KEY")
	}
	return client.New(*srv, *key), pos, nil
}

// segmentsPlan reads diff's or apply's arguments and directory, and
// compares the directory with the server.
func segmentsPlan(ctx context.Context, name, role string, args []string, preview bool) (*client.Client, string, []*client.SegmentPlan, error) {
	c, pos, err := segmentsFlags(name, role, args, 1, "DIR")
	if err != nil {
		return nil, "", nil, err
	}
	defs, err := client.ReadSegmentDir(pos[0])
	if err != nil {
		return nil, "", nil, err
	}
	plan, err := c.PlanSegments(ctx, defs, preview)
	return c, pos[0], plan, err
}

func runSegmentsDiff(ctx context.Context, args []string) error {
	_, dir, plan, err := segmentsPlan(ctx, "diff", "read", args, true)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, p := range plan {
		fmt.Fprintf(w, "%s\t%s\t%s\n", p.Action, p.Key, planDetail(dir, p, false))
	}
	return w.Flush()
}

func runSegmentsApply(ctx context.Context, args []string) error {
	c, dir, plan, err := segmentsPlan(ctx, "apply", "steward", args, false)
	if err != nil {
		return err
	}
	applyErr := c.ApplySegments(ctx, plan)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	verbs := map[string]string{client.SegmentNew: "created", client.SegmentChanged: "updated",
		client.SegmentUnchanged: "unchanged", client.SegmentAbsent: "absent"}
	for _, p := range plan {
		verb := verbs[p.Action]
		if p.Err != nil {
			verb = "failed"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", verb, p.Key, planDetail(dir, p, true))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return applyErr
}

// planDetail describes one segment of a plan: its versions and counts, or
// its error at its place in its file.
func planDetail(dir string, p *client.SegmentPlan, applied bool) string {
	file := filepath.Join(dir, p.Key+client.SegmentFileExt)
	if p.Err != nil {
		var ge *client.GraphQLError
		if errors.As(p.Err, &ge) {
			if _, line, col, ok := ge.DefinitionPos(); ok {
				// The server's message says the position too.
				msg := strings.TrimPrefix(ge.Message, fmt.Sprintf("definition: %d:%d: ", line, col))
				return fmt.Sprintf("%s:%d:%d: %s", file, line, col, msg)
			}
		}
		return fmt.Sprintf("%s: %v", file, p.Err)
	}
	var parts []string
	if s := p.Saved; s != nil {
		parts = append(parts, fmt.Sprintf("version %d, %s, %d members", s.Version, s.Status.State, s.Size))
	}
	switch {
	case applied && p.Version > 0:
		parts = append(parts, fmt.Sprintf("now version %d (backfilling)", p.Version))
	case p.Preview != nil:
		parts = append(parts, fmt.Sprintf("%d members with %s", *p.Preview, file))
	}
	if p.Action == client.SegmentAbsent {
		parts = append(parts, "not in "+dir+": left alone")
	}
	return strings.Join(parts, "; ")
}

func runSegmentsExplain(ctx context.Context, args []string) error {
	c, pos, err := segmentsFlags("explain", "read", args, 2, "PROFILE SEGMENT")
	if err != nil {
		return err
	}
	id, err := c.ResolveProfile(ctx, pos[0])
	if err != nil {
		return err
	}
	x, err := c.ExplainMembership(ctx, id, pos[1])
	if err != nil {
		return err
	}
	printExplanation(os.Stdout, x)
	return nil
}

// printExplanation writes the tree indented, each node with its value,
// the events that decided it and its deadline.
func printExplanation(w io.Writer, x *client.Explanation) {
	is := "is not"
	if x.Member {
		is = "is"
	}
	fmt.Fprintf(w, "profile %s %s a member of %s (version %d) at %s\n", x.ProfileID, is, x.Segment.Key, x.Segment.Version, x.At.Format(time.RFC3339))
	if x.StoredMember != x.Member {
		fmt.Fprintf(w, "  (the engine has it stored as the opposite: it has not yet evaluated the latest data)\n")
	}
	if x.NextDeadline != nil {
		fmt.Fprintf(w, "  can change with no new data at %s\n", x.NextDeadline.Format(time.RFC3339))
	}
	depth := make([]int, len(x.Nodes))
	for i, n := range x.Nodes {
		if n.Parent != nil && *n.Parent < i {
			depth[i] = depth[*n.Parent] + 1
		}
		value, _ := json.Marshal(n.Value)
		fmt.Fprintf(w, "%s%s = %s", strings.Repeat("  ", depth[i]+1), n.Text, value)
		if n.EventCount > 0 {
			var ids []string
			for _, e := range n.Events {
				ids = append(ids, e.MessageID)
			}
			fmt.Fprintf(w, "  [%d events: %s]", n.EventCount, strings.Join(ids, ", "))
		}
		if n.Deadline != nil {
			fmt.Fprintf(w, "  [until %s]", n.Deadline.Format(time.RFC3339))
		}
		fmt.Fprintln(w)
	}
}
