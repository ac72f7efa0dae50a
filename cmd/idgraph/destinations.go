package main

import (
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

const destinationsUsage = `usage: idgraph destinations <command> [flags]

commands:
  list                        every destination: id, name, kind, enabled, segments, URL
  health [ID]                 pending changes, oldest pending age, delivered, failed attempts, dead letters,
                              success rate, last error, the change being retried
  redeliver ID SEQUENCE       send a dead letter again now
  replay ID --from-sequence N            send again everything the destination wants from sequence N on
  replay ID --from TIME --to TIME        a job sending again the changes recorded in [from, to) (RFC 3339)
  resync ID [--segment KEY] [--trait KEY] [--wait]
                              a job sending the current members, and exits for those no longer members;
                              computed traits' values, and null for values gone (default: everything connected)
  jobs ID                     the destination's resync and replay jobs, newest first, with their progress

Every command talks to a running server with an admin key (--key, default $IDGRAPH_ADMIN_KEY)
(docs/activation.md).
`

func runDestinations(ctx context.Context, args []string) error {
	if done, err := commandHelp("destinations", destinationsUsage, args); done {
		return err
	}
	fs := flag.NewFlagSet("destinations "+args[0], flag.ContinueOnError)
	srv, key := serverFlags(fs, "admin")
	fromSeq := fs.String("from-sequence", "", "replay: the first sequence to send again")
	var from, to timeFlag
	fs.Var(&from, "from", "replay: the start of the time range (RFC 3339, included)")
	fs.Var(&to, "to", "replay: the end of the time range (RFC 3339, excluded)")
	segment := fs.String("segment", "", "resync: this connected segment (default: every connected segment and trait)")
	trait := fs.String("trait", "", "resync: this connected computed trait (default: every connected segment and trait)")
	wait := fs.Bool("wait", false, "resync: wait for the job to finish, printing its progress")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	c := client.New(*srv, *key)
	need := func(n int, what string) error {
		if len(pos) != n {
			return fmt.Errorf("usage: idgraph destinations %s %s", args[0], what)
		}
		return nil
	}
	switch args[0] {
	case "list":
		ds, err := c.Destinations(ctx)
		if err != nil {
			return err
		}
		printDestinations(os.Stdout, ds)
	case "health":
		if len(pos) > 1 {
			return need(1, "[ID]")
		}
		ds, err := c.Destinations(ctx)
		if err != nil {
			return err
		}
		if len(pos) == 1 {
			ds = filterDestinations(ds, pos[0])
			if len(ds) == 0 {
				return fmt.Errorf("destinations health: no destination %q", pos[0])
			}
		}
		printHealth(os.Stdout, ds)
	case "redeliver":
		if err := need(2, "ID SEQUENCE"); err != nil {
			return err
		}
		res, err := c.Redeliver(ctx, pos[0], pos[1])
		if err != nil {
			return err
		}
		fmt.Println(attemptLine(res))
		if !res.OK {
			return fmt.Errorf("redeliver: the receiver did not accept it")
		}
	case "replay":
		if err := need(1, "ID (--from-sequence N | --from TIME --to TIME)"); err != nil {
			return err
		}
		if err := c.ReplayDeliveries(ctx, pos[0], *fromSeq, from.t, to.t); err != nil {
			return err
		}
		if *fromSeq != "" {
			fmt.Printf("replay of %s from sequence %s asked: health's pending shows the progress\n", pos[0], *fromSeq)
			return nil
		}
		js, err := c.DeliveryJobs(ctx, pos[0])
		if err != nil {
			return err
		}
		if len(js) > 0 {
			fmt.Printf("queued %s job %s: sequences %s to %s\n", js[0].Kind, js[0].ID, js[0].FromSequence, js[0].ToSequence)
		}
	case "resync":
		if err := need(1, "ID [--segment KEY] [--trait KEY] [--wait]"); err != nil {
			return err
		}
		j, err := c.Resync(ctx, pos[0], *segment, *trait)
		if err != nil {
			return err
		}
		fmt.Printf("queued resync job %s of %s\n", j.ID, strings.Join(append(j.Segments, j.Traits...), ", "))
		if *wait {
			return awaitDeliveryJob(ctx, c, pos[0], j.ID, os.Stdout)
		}
	case "jobs":
		if err := need(1, "ID"); err != nil {
			return err
		}
		js, err := c.DeliveryJobs(ctx, pos[0])
		if err != nil {
			return err
		}
		printJobs(os.Stdout, js)
	default:
		fmt.Fprint(os.Stderr, destinationsUsage)
		return fmt.Errorf("destinations: unknown command %q", args[0])
	}
	return nil
}

// timeFlag is an optional RFC 3339 time.
type timeFlag struct{ t *time.Time }

func (f *timeFlag) String() string {
	if f.t == nil {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("a time is RFC 3339, e.g. 2026-12-01T09:00:00Z: %w", err)
	}
	f.t = &t
	return nil
}

func filterDestinations(ds []client.Destination, id string) []client.Destination {
	for _, d := range ds {
		if d.ID == id {
			return []client.Destination{d}
		}
	}
	return nil
}

func printDestinations(w io.Writer, ds []client.Destination) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tKIND\tENABLED\tSEGMENTS\tURL")
	for _, d := range ds {
		enabled := "yes"
		if !d.Enabled {
			enabled = "no: " + d.DisabledReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Name, d.Kind, enabled, strings.Join(d.Segments, ","), d.URL)
	}
	tw.Flush()
}

func printHealth(w io.Writer, ds []client.Destination) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPENDING\tOLDEST\tDELIVERED\tFAILED\tDEAD\tSUCCESS\tRETRYING\tLAST ERROR")
	for _, d := range ds {
		h := d.Health
		pending := fmt.Sprint(h.Pending)
		if h.PendingCapped {
			pending += "+"
		}
		oldest, rate, retrying := "-", "-", "-"
		if h.OldestPendingAge != nil {
			oldest = (time.Duration(*h.OldestPendingAge) * time.Second).String()
		}
		if h.SuccessRate != nil {
			rate = fmt.Sprintf("%.1f%%", 100**h.SuccessRate)
		}
		if h.RetryingSequence != "" {
			retrying = fmt.Sprintf("%s (%d attempts)", h.RetryingSequence, h.RetryAttempts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", d.ID, pending, oldest, h.Delivered, h.FailedAttempts, h.DeadLetters,
			rate, retrying, h.LastError)
	}
	tw.Flush()
}

func printJobs(w io.Writer, js []client.DeliveryJob) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tPROGRESS\tCREATED\tERROR")
	for _, j := range js {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Kind, j.State, j.Done, j.Total, j.CreatedAt.Format(time.RFC3339), j.Error)
	}
	tw.Flush()
}

func attemptLine(r *client.DeliveryAttempt) string {
	status := "no answer"
	if r.Status != nil {
		status = fmt.Sprint(*r.Status)
	}
	line := fmt.Sprintf("ok: %v, status %s, %.0f ms", r.OK, status, r.DurationMs)
	if r.Error != "" {
		line += ": " + r.Error
	}
	return line
}

// awaitDeliveryJob polls the job until it finishes, printing its progress
// as it changes; a failed job is an error.
func awaitDeliveryJob(ctx context.Context, c *client.Client, dst, id string, w io.Writer) error {
	last := ""
	for {
		js, err := c.DeliveryJobs(ctx, dst)
		if err != nil {
			return err
		}
		for _, j := range js {
			if j.ID != id {
				continue
			}
			if line := fmt.Sprintf("%s %d/%d %s", j.State, j.Done, j.Total, j.Error); line != last {
				fmt.Fprintln(w, line)
				last = line
			}
			if j.State == "FAILED" {
				return fmt.Errorf("resync job %s failed: %s", id, j.Error)
			}
			if j.Finished() {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
