package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/idgraph/idgraph/client"
)

const retentionUsage = `usage: idgraph retention <command> [flags]

commands:
  show     the server's retention policy and the last sweep it ran
  sweep    run a sweep now and print what it deleted (exits 1 when the sweep stopped at an error)

Both talk to a running server with an admin key (--key, default $IDGRAPH_ADMIN_KEY)
(docs/security.md, Retention).
`

func runRetention(ctx context.Context, args []string) error {
	if done, err := commandHelp("retention", retentionUsage, args); done {
		return err
	}
	fs := flag.NewFlagSet("retention "+args[0], flag.ContinueOnError)
	srv, key := serverFlags(fs, "admin")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("usage: idgraph retention %s [--server URL] [--key KEY]", args[0])
	}
	c := client.New(*srv, *key)
	switch args[0] {
	case "show":
		r, err := c.Retention(ctx)
		if err != nil {
			return err
		}
		if r == nil {
			return fmt.Errorf("retention: the server runs no retention")
		}
		printRetention(os.Stdout, r)
	case "sweep":
		s, err := c.SweepRetention(ctx)
		if err != nil {
			return err
		}
		printSweep(os.Stdout, s)
		if s.Error != nil {
			return fmt.Errorf("retention sweep stopped: %s", *s.Error)
		}
	default:
		fmt.Fprint(os.Stderr, retentionUsage)
		return fmt.Errorf("retention: unknown command %q", args[0])
	}
	return nil
}

// ttl prints a time to live in days when whole, else as a Go duration;
// nil is kept forever.
func ttl(seconds *int) string {
	if seconds == nil || *seconds == 0 {
		return "forever"
	}
	d := time.Duration(*seconds) * time.Second
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func printRetention(w io.Writer, r *client.Retention) {
	fmt.Fprintf(w, "default\t%s\n", ttl(r.DefaultTTLSeconds))
	for _, rule := range r.Rules {
		fmt.Fprintf(w, "%s\t%s\n", rule.EventType, ttl(&rule.TTLSeconds))
	}
	fmt.Fprintf(w, "inactive profiles\t%s\n", strings.Replace(ttl(r.InactiveProfilesSeconds), "forever", "never expire", 1))
	if r.SweepEverySeconds == nil {
		fmt.Fprintln(w, "periodic sweeps\toff")
	} else {
		fmt.Fprintf(w, "periodic sweeps\tevery %s\n", time.Duration(*r.SweepEverySeconds)*time.Second)
	}
	if r.LastSweep == nil {
		fmt.Fprintln(w, "last sweep\tnone since the server started")
		return
	}
	fmt.Fprint(w, "last sweep\t")
	printSweep(w, r.LastSweep)
}

func printSweep(w io.Writer, s *client.RetentionSweep) {
	fmt.Fprintf(w, "%s: %d events deleted, %d profiles touched, %d profiles expired, %d batches, %.0f ms",
		s.StartedAt.UTC().Format(time.RFC3339), s.EventsDeleted, s.ProfilesTouched, s.ProfilesExpired, s.Batches, s.DurationMs)
	for _, e := range s.Events {
		fmt.Fprintf(w, "; %s %d", e.EventType, e.Count)
	}
	if s.Error != nil {
		fmt.Fprintf(w, "; stopped: %s", *s.Error)
	}
	fmt.Fprintln(w)
}
