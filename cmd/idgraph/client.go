package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/match"
)

func runImport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	srv, key := serverFlags(fs, "write")
	source := fs.String("source", "", "source name recorded on every identifier and edge (e.g. crm)")
	ids := fs.String("identifiers", "", "comma-separated identifier columns; each column's name is its identifier type")
	format := fs.String("format", "", "csv or jsonl (default: from the file name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: idgraph import --server URL --key KEY --source NAME --identifiers COL[,COL…] FILE")
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	opts := client.ImportOptions{Source: *source, Identifiers: splitList(*ids)}
	switch strings.ToLower(*format) {
	case "jsonl", "ndjson":
		opts.JSONL = true
	case "":
		ext := strings.ToLower(filepath.Ext(path))
		opts.JSONL = ext == ".jsonl" || ext == ".ndjson"
	case "csv":
	default:
		return fmt.Errorf("import: unknown format %q (csv or jsonl)", *format)
	}
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		opts.Progress = os.Stderr
	}
	sum, err := client.New(*srv, *key).Import(ctx, f, opts)
	if sum != nil {
		fmt.Printf("read %d, stored %d, duplicates %d, rejected %d, values skipped %d\n",
			sum.Read, sum.Stored, sum.Duplicates, len(sum.Rejected), len(sum.Skipped))
		for _, p := range sum.Rejected {
			fmt.Printf("  line %d: rejected: %s\n", p.Line, p.Reason)
		}
		for _, p := range sum.Skipped {
			fmt.Printf("  line %d: %s skipped: %s\n", p.Line, p.Field, p.Reason)
		}
	}
	return err
}

func runExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("export profiles", flag.ContinueOnError)
	srv, key := serverFlags(fs, "read")
	purpose := fs.String("purpose", "", "export only profiles whose consent for this purpose is granted now; the withheld are counted on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	withheld, err := client.New(*srv, *key).ExportProfilesFor(ctx, os.Stdout, *purpose)
	if err == nil && *purpose != "" {
		fmt.Fprintf(os.Stderr, "withheld for %s: %s\n", *purpose, withheld)
	}
	return err
}

// runExportSubject prints everything about one person as JSON lines (an
// access request; admin key).
func runExportSubject(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("export-subject", flag.ContinueOnError)
	srv := fs.String("server", env("IDGRAPH_SERVER", "http://127.0.0.1:8080"), "server URL")
	key := fs.String("key", env("IDGRAPH_ADMIN_KEY", ""), "an admin key (default $IDGRAPH_ADMIN_KEY)")
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("usage: idgraph export-subject [--server URL] [--key ADMINKEY] type:value|profile:ID")
	}
	return client.New(*srv, *key).ExportSubject(ctx, rest[0], os.Stdout)
}

func runLoadgen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	srv, key := serverFlags(fs, "write")
	var o client.LoadOptions
	fs.IntVar(&o.Messages, "messages", 100000, "messages to send")
	fs.IntVar(&o.Clients, "clients", 4, "concurrent clients")
	fs.IntVar(&o.BatchSize, "batch", 500, "messages per /v1/batch call")
	fs.IntVar(&o.Visitors, "visitors", 0, "distinct visitors (default messages/20)")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Seed = *seed
	res, err := client.New(*srv, *key).Load(ctx, o)
	fmt.Println(res)
	return err
}

// serverFlags adds --server and --key, a "write" or "read" key, with their
// environment defaults (IDGRAPH_SERVER, IDGRAPH_WRITE_KEY, IDGRAPH_READ_KEY).
// commandHelp prints a command group's usage when asked for it, or when no
// command is given (an error then); done says there is nothing more to run.
func commandHelp(group, usage string, args []string) (done bool, err error) {
	if len(args) > 0 && args[0] != "-h" && args[0] != "--help" && args[0] != "help" {
		return false, nil
	}
	fmt.Print(usage)
	if len(args) == 0 {
		return true, fmt.Errorf("%s: no command given", group)
	}
	return true, nil
}

func serverFlags(fs *flag.FlagSet, role string) (srv, key *string) {
	srv = fs.String("server", env("IDGRAPH_SERVER", "http://127.0.0.1:8080"), "server URL")
	key = fs.String("key", env("IDGRAPH_"+strings.ToUpper(role)+"_KEY", ""), role+" key")
	return srv, key
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runBenchLookup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench-lookup", flag.ContinueOnError)
	srv, readKey := serverFlags(fs, "read")
	var o client.LookupOptions
	fs.StringVar(&o.WriteKey, "write-key", "", "write key: seed the profiles first (and send --hostile bodies to write paths)")
	fs.IntVar(&o.Profiles, "profiles", 1000, "profiles to seed and look up")
	fs.IntVar(&o.Requests, "requests", 50000, "lookups to send")
	fs.IntVar(&o.Clients, "clients", 16, "concurrent clients")
	fs.BoolVar(&o.Search, "search", false, "send searches for prefixes of loadgen's anonymous IDs (anon-N) instead of lookups")
	var hostile []client.HostileRequest
	fs.Func("hostile", "PATH=FILE: also measure while hostile clients post FILE to PATH round and round (repeat the flag for more)", func(v string) error {
		path, file, ok := strings.Cut(v, "=")
		if !ok || !strings.HasPrefix(path, "/") {
			return fmt.Errorf("want PATH=FILE, e.g. /v1/import=deep.json")
		}
		body, err := os.ReadFile(file)
		hostile = append(hostile, client.HostileRequest{Path: path, Body: body})
		return err
	})
	hostileClients := fs.Int("hostile-clients", 10, "hostile clients with --hostile")
	pause := fs.Duration("hostile-pause", 0, "each hostile client's pause between requests")
	from := fs.String("hostile-from", "", "local address the hostile clients send from (e.g. 127.0.0.2, so that the server's per-address limits tell them from the lookups)")
	pid := fs.Int("server-pid", 0, "the server's process ID: report its CPU time (Linux /proc) during each run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.WriteKey != "" && !o.Search {
		if err := client.New(*srv, o.WriteKey).SeedLookupProfiles(ctx, o.Profiles); err != nil {
			return err
		}
	}
	c := client.New(*srv, *readKey)
	// Warm the caches (and the server's connection pool) before measuring.
	if _, err := c.LoadLookups(ctx, client.LookupOptions{Profiles: o.Profiles, Requests: min(o.Profiles, 5000), Clients: o.Clients, Search: o.Search}); err != nil {
		return err
	}
	run := func(label string) error {
		cpu, self := processCPU(*pid), processCPU(os.Getpid())
		res, err := c.LoadLookups(ctx, o)
		fmt.Printf("%s%d lookups in %v: %.0f requests/s, latency p50 %v p99 %v, %d failed",
			label, res.Messages, res.Elapsed.Round(time.Millisecond), res.PerSecond, res.BatchP50.Round(time.Microsecond), res.BatchP99.Round(time.Microsecond), res.FailedCalls)
		if *pid > 0 {
			fmt.Printf(", server CPU %.2f s", (processCPU(*pid) - cpu).Seconds())
		}
		fmt.Printf(", this client's CPU %.2f s", (processCPU(os.Getpid()) - self).Seconds())
		fmt.Println()
		return err
	}
	if len(hostile) == 0 {
		return run("")
	}
	if err := run("alone: "); err != nil {
		return err
	}
	hctx, stop := context.WithCancel(ctx)
	done := make(chan client.HostileStats)
	go func() {
		done <- client.Hostile(hctx, *srv, *readKey, o.WriteKey, *from, hostile, *hostileClients, *pause)
	}()
	time.Sleep(time.Second) // let the hostile clients get going
	err := run(fmt.Sprintf("with %d hostile clients: ", *hostileClients))
	stop()
	fmt.Println("  " + (<-done).String() + " (in the whole hostile run)")
	return err
}

// processCPU reads a process's user + system CPU time from /proc (0 when
// pid is 0 or /proc cannot say): the server's, or this client's own.
func processCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): state is
	// field 3, utime and stime fields 14 and 15, in clock ticks (100 a
	// second on Linux).
	_, rest, _ := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	var user, sys int64
	fmt.Sscan(f[11], &user)
	fmt.Sscan(f[12], &sys)
	return time.Duration(user+sys) * 10 * time.Millisecond
}

func runMatch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("match", flag.ContinueOnError)
	srv := fs.String("server", env("IDGRAPH_SERVER", "http://127.0.0.1:8080"), "server URL")
	key := fs.String("key", env("IDGRAPH_STEWARD_KEY", ""), "steward key (re-scoring merges profiles and a dry run shows their identifiers)")
	var o client.MatchOptions
	fs.IntVar(&o.PageSize, "page", 200, "profiles per request")
	fs.StringVar(&o.ResumeFile, "resume-file", ".idgraph-match.cursor", "where the cursor is kept, to resume an interrupted run (\"\" for none)")
	fs.BoolVar(&o.Train, "train", false, "train a new model from the stored records first (the server trains one by itself when an imported source's columns are not covered)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "change nothing: print the merges and review items a run would make (kind, profiles, score, edge, reason)")
	accept := fs.Float64("accept", 0, "with --dry-run: the accept threshold to try (default: the server's)")
	review := fs.Float64("review", 0, "with --dry-run: the review threshold to try (default: the server's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *accept > 0 {
		o.Accept = accept
	}
	if *review > 0 {
		o.Review = review
	}
	if o.DryRun {
		o.Plan, o.ResumeFile = os.Stdout, ""
	}
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		o.Progress = os.Stderr
	}
	if o.Train && o.DryRun {
		return fmt.Errorf("match: --train and --dry-run do not go together (training replaces the server's model)")
	}
	sum, err := client.New(*srv, *key).Match(ctx, o)
	if sum != nil && sum.Matching != nil {
		printDecision(os.Stdout, sum.Matching)
	}
	if sum != nil {
		verb := "re-scored"
		if o.DryRun {
			verb = "dry run, nothing changed: would re-score"
		}
		if b := sum.Bulk; b != nil {
			fmt.Printf("%s %d imported records in one bulk pass: %d candidate pairs, %d pairs clustered together, %d held apart for review\n",
				verb, b.Records, b.Candidates, b.Joins, b.Held)
			fmt.Printf("  in the graph: %d probabilistic edges recorded, %d merges\n", sum.Matches, sum.Merges)
		} else {
			fmt.Printf("%s %d profiles: %d probabilistic edges scored, %d merges\n", verb, sum.Processed, sum.Matches, sum.Merges)
		}
	}
	return err
}

// printDecision says which model the server matched with, how it came
// by it, and what it made of each imported source's columns.
func printDecision(w io.Writer, d *match.Decision) {
	how := d.Origin
	if d.TrainedAt != nil {
		how = fmt.Sprintf("%s %s on %d records", d.Origin, d.TrainedAt.Format(time.RFC3339), d.Records)
	}
	if d.Trained {
		how = "newly " + how
	}
	fmt.Fprintf(w, "model %s (%s)\n", d.Model, how)
	for _, s := range d.Sources {
		fmt.Fprintf(w, "  source %s: %d records\n", s.Source, s.Records)
		if s.Unusable != "" {
			fmt.Fprintf(w, "    not matched: %s\n", s.Unusable)
		}
		for _, c := range s.Columns {
			field := c.Field
			if field == "" {
				field = "not compared"
			}
			fmt.Fprintf(w, "    %-20s %-14s → %-22s %s\n", c.Column, c.Kind, field, c.Reason)
		}
	}
	if len(d.Uncovered) > 0 {
		fmt.Fprintf(w, "  not yet trained for: %s (a run that is not a dry run trains)\n", strings.Join(d.Uncovered, ", "))
	}
	fmt.Fprintf(w, "  blocking: %s\n", strings.Join(d.Blocking, "; "))
	if len(d.RecordIDTypes) > 0 {
		fmt.Fprintf(w, "  record-ID types (up to %d per profile): %s\n", d.RecordIDLimit, strings.Join(d.RecordIDTypes, ", "))
	}
}
