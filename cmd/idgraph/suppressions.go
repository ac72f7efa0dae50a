package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idgraph/idgraph/client"
)

const suppressionsUsage = `usage: idgraph suppressions <command> [flags]

commands:
  add [TYPE:VALUE...] [--file FILE]      put identifiers on a suppression list
  remove [TYPE:VALUE...] [--file FILE]   take them off
  list                                   the scope's entries: keyed hash, type, when added (values are never kept)
  counts                                 entries by scope and identifier type

flags:
  --scope global|destination:ID|channel:NAME   the list (default global)
  --type TYPE    the identifiers' type, when the arguments or lines are bare values
  --file FILE    one identifier a line (TYPE:VALUE, or a bare value with --type; '#' comments
                 and blank lines skipped); - reads standard input
  --per-call N   entries in one call (default and most 10,000; about 2 s a call on 2 cores)

A file is sent in calls of --per-call entries, each all or nothing: a refused call stops the command
with the line it names, after the calls before it were applied. Adding and removing are
idempotent, so running the same file again after a fix is safe.

Every command talks to a running server with an admin key (--key, default $IDGRAPH_ADMIN_KEY)
(docs/activation.md, Suppression lists).
`

func runSuppressions(ctx context.Context, args []string) error {
	if done, err := commandHelp("suppressions", suppressionsUsage, args); done {
		return err
	}
	fs := flag.NewFlagSet("suppressions "+args[0], flag.ContinueOnError)
	srv, key := serverFlags(fs, "admin")
	scopeText := fs.String("scope", "global", "global, destination:ID or channel:NAME")
	typ := fs.String("type", "", "the type of bare values")
	file := fs.String("file", "", "identifiers, one a line; - for standard input")
	perCall := fs.Int("per-call", client.MaxSuppressionsPerCall, "add, remove: entries sent in one call (at most the server's 10,000)")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	scope, err := client.ParseSuppressionScope(*scopeText)
	if err != nil {
		return fmt.Errorf("suppressions %s: --%w", args[0], err)
	}
	c := client.New(*srv, *key)
	switch args[0] {
	case "add", "remove":
		ids, err := suppressionInput(pos, *file, *typ)
		if err != nil {
			return fmt.Errorf("suppressions %s: %w", args[0], err)
		}
		if *perCall < 1 || *perCall > client.MaxSuppressionsPerCall {
			return fmt.Errorf("suppressions %s: --per-call: 1 to %d, not %d", args[0], client.MaxSuppressionsPerCall, *perCall)
		}
		return changeSuppressions(ctx, c, args[0], scope, ids, *perCall, os.Stdout)
	case "list":
		if len(pos) > 0 {
			return fmt.Errorf("usage: idgraph suppressions list [--scope SCOPE]")
		}
		return listSuppressions(ctx, c, scope, os.Stdout)
	case "counts":
		if len(pos) > 0 {
			return fmt.Errorf("usage: idgraph suppressions counts")
		}
		counts, err := c.SuppressionCounts(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "SCOPE\tTYPE\tENTRIES")
		for _, n := range counts {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", n.Scope, n.Type, n.Count)
		}
		return tw.Flush()
	default:
		fmt.Fprint(os.Stderr, suppressionsUsage)
		return fmt.Errorf("suppressions: unknown command %q", args[0])
	}
}

// suppressionInput is the identifiers of the arguments and the file, in
// order; an unreadable line is refused naming it before anything is sent.
func suppressionInput(args []string, file, typ string) ([]client.Identifier, error) {
	var ids []client.Identifier
	parse := func(where, s string) error {
		if typ != "" {
			ids = append(ids, client.Identifier{Type: typ, Value: s})
			return nil
		}
		t, v, ok := strings.Cut(s, ":")
		if !ok || strings.TrimSpace(t) == "" || v == "" {
			return fmt.Errorf("%s: %q is not TYPE:VALUE (or give --type for bare values)", where, s)
		}
		ids = append(ids, client.Identifier{Type: strings.TrimSpace(t), Value: v})
		return nil
	}
	for i, a := range args {
		if err := parse(fmt.Sprintf("argument %d", i+1), a); err != nil {
			return nil, err
		}
	}
	if file != "" {
		var r io.Reader = os.Stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			r = f
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for line := 1; sc.Scan(); line++ {
			s := strings.TrimSpace(sc.Text())
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			if err := parse(fmt.Sprintf("%s line %d", file, line), s); err != nil {
				return nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no identifiers given (arguments TYPE:VALUE or --file)")
	}
	return ids, nil
}

// changeSuppressions adds or removes ids, perCall in each call.
func changeSuppressions(ctx context.Context, c *client.Client, op string, scope client.SuppressionScope, ids []client.Identifier, perCall int, w io.Writer) error {
	call, verb, prep, already := c.AddSuppressions, "added", "to", "listed"
	if op == "remove" {
		call, verb, prep, already = c.RemoveSuppressions, "removed", "from", "off the list"
	}
	changed, unchanged := 0, 0
	report := func() {
		fmt.Fprintf(w, "%s %d %s %s, %d unchanged (already %s)\n", verb, changed, prep, scope, unchanged, already)
	}
	for start := 0; start < len(ids); start += perCall {
		chunk := ids[start:min(start+perCall, len(ids))]
		res, err := call(ctx, scope, chunk)
		if err != nil {
			report()
			return fmt.Errorf("entries %d to %d (the calls before were applied): %w", start+1, start+len(chunk), err)
		}
		changed += res.Changed
		unchanged += res.Unchanged
	}
	report()
	return nil
}

// listSuppressions prints every entry of the scope, page by page.
func listSuppressions(ctx context.Context, c *client.Client, scope client.SuppressionScope, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "HASH\tTYPE\tADDED")
	for after := ""; ; {
		es, err := c.SuppressionEntries(ctx, scope, 100, after)
		if err != nil {
			return err
		}
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Hash, e.Type, e.CreatedAt.UTC().Format(time.RFC3339))
		}
		if len(es) < 100 {
			return tw.Flush()
		}
		after = es[len(es)-1].Hash
	}
}
