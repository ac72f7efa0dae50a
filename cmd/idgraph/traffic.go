package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/server"
	"github.com/idgraph/idgraph/traffic"
)

// runSynthTraffic writes a generated stream of Segment calls and CRM
// records, with the truth kept aside, for idgraph send and idgraph score.
func runSynthTraffic(args []string) error {
	fs := flag.NewFlagSet("synth traffic", flag.ContinueOnError)
	o := traffic.Defaults()
	fs.IntVar(&o.People, "people", o.People, "people who send (about 35 messages each)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "random seed (same options and seed, same stream)")
	out := fs.String("out", "", "directory to write messages.jsonl, senders.txt, crm.csv, truth.csv and stats.json to")
	fs.Float64Var(&o.Household, "household", o.Household, "share of people who live with others and share a family tablet or TV")
	fs.Float64Var(&o.Library, "library", o.Library, "share of people who sign in once on a library computer")
	fs.Float64Var(&o.Junk, "junk", o.Junk, "share of people who type a placeholder email or phone (none@none.com, 0000000000)")
	fs.Float64Var(&o.CRM, "crm", o.CRM, "share of people with a CRM record")
	fs.Float64Var(&o.CRMDuplicate, "crm-duplicate", o.CRMDuplicate, "share of CRM records with a typo'd duplicate sharing no identifier")
	fs.Float64Var(&o.Late, "late", o.Late, "share of messages delivered hours late")
	fs.Float64Var(&o.Redeliver, "redeliver", o.Redeliver, "share of messages delivered twice")
	fs.Float64Var(&o.Burst, "burst", o.Burst, "share of sessions with a burst of track calls")
	fs.Float64Var(&o.FormFill, "form-fill", o.FormFill, "share of sessions on a shared device, by someone not signed in there, that submit a form with their email")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *out == "" || o.People < 1 {
		return fmt.Errorf("usage: idgraph synth traffic --people N [--seed S] --out DIR")
	}
	s := traffic.Generate(o)
	if err := s.WriteDir(*out); err != nil {
		return fmt.Errorf("synth traffic: %w", err)
	}
	st := s.Stats
	fmt.Printf("synth traffic: %d people, %d messages (%d redelivered, %d late, %d bursts), %d CRM records (%d typo'd duplicates) in %s\n",
		st.People, st.Messages, st.Redeliveries, st.Late, st.Bursts, st.Records, st.CRMDuplicates, *out)
	fmt.Printf("  %d households sharing %d devices, %d shared-device forms, %d library logins, %d junk values, %d email changes, %d aliases, %d new-device logins\n",
		st.Households, st.SharedDevices, st.SharedDeviceForms, st.LibraryLogins, st.JunkValues, st.EmailChanges, st.Aliases, st.NewDeviceLogins)
	return nil
}

// statusCounter counts the answers a client gets, retries included, and
// keeps the first error of each kind of request lost on the network.
type statusCounter struct {
	mu   sync.Mutex
	n    map[int]int
	lost []string
}

func (s *statusCounter) observe(code int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n[code]++
	if err != nil && len(s.lost) < 5 && !slices.Contains(s.lost, err.Error()) {
		s.lost = append(s.lost, err.Error())
	}
}

// report renders the counts ("200: 9981, 503: 2, lost: 1") and how many
// were server errors or lost on the network.
func (s *statusCounter) report() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	bad := 0
	for _, code := range slices.Sorted(maps.Keys(s.n)) {
		name := fmt.Sprint(code)
		if code == 0 {
			name = "lost on the network"
		}
		if code == 0 || code >= 500 {
			bad += s.n[code]
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, s.n[code]))
	}
	out := strings.Join(parts, ", ")
	for _, e := range s.lost {
		out += "\n  lost: " + e
	}
	return out, bad
}

func runSend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	srv, key := serverFlags(fs, "write")
	var o client.ReplayOptions
	fs.IntVar(&o.BatchSize, "batch", 100, "messages per /v1/batch call")
	fs.IntVar(&o.Clients, "clients", 1, "concurrent clients; each person's messages keep their order (1: the file's order exactly)")
	crm := fs.Bool("crm", true, "import crm.csv after the messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: idgraph send --server URL --key WRITEKEY [--batch 100] [--clients 1] DIR")
	}
	dir := fs.Arg(0)
	statuses := &statusCounter{n: map[int]int{}}
	c := client.New(*srv, *key)
	c.Observe = statuses.observe
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		o.Progress = os.Stderr
	}
	res, err := c.Replay(ctx, dir, o)
	fmt.Println("messages:", res)
	if err == nil && *crm {
		var f *os.File
		if f, err = os.Open(filepath.Join(dir, "crm.csv")); err == nil {
			var sum *client.ImportSummary
			sum, err = c.Import(ctx, f, client.ImportOptions{Source: "crm", Identifiers: []string{"crm_id", "email", "phone"}, BatchSize: server.MaxImportRecords})
			f.Close()
			if sum != nil {
				fmt.Printf("crm.csv: read %d, stored %d, duplicates %d, rejected %d, values skipped %d\n",
					sum.Read, sum.Stored, sum.Duplicates, len(sum.Rejected), len(sum.Skipped))
			}
		}
	}
	counts, bad := statuses.report()
	fmt.Printf("answers: %s\n", counts)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if bad > 0 {
		// Even a 503 retried to success is a finding: ordinary traffic
		// should never see one.
		return fmt.Errorf("send: %d answers were server errors or lost on the network", bad)
	}
	return nil
}

func runScore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	srv, key := serverFlags(fs, "read")
	priority := fs.String("priority", strings.Join(graph.DefaultConfig().Priority, ","), "the server's identifier priority (serve --priority), to place each event in the profile of its first identifier")
	events := fs.Bool("events", true, "also score events (decodes every message)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: idgraph score --server URL --key READKEY DIR")
	}
	dir := fs.Arg(0)
	owner, err := traffic.ReadOwner(dir)
	if err != nil {
		return err
	}
	profileOf, err := exportPartition(ctx, client.New(*srv, *key))
	if err != nil {
		return err
	}
	fmt.Println("identifiers:", traffic.ScorePartition(owner, profileOf))
	if !*events {
		return nil
	}
	sc := traffic.NewEventScorer(profileOf, splitList(*priority))
	sc.Owner = owner
	if err := traffic.ReadMessages(dir, sc.Add); err != nil {
		return err
	}
	fmt.Println("events:", sc.Score())
	fmt.Println("events' false pairs:", sc.Diagnose(owner))
	return nil
}

// exportPartition reads every profile and returns the profile of each
// identifier.
func exportPartition(ctx context.Context, c *client.Client) (map[graph.Key]string, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(c.ExportProfiles(ctx, pw)) }()
	defer pr.Close()
	profileOf := map[graph.Key]string{}
	dec := json.NewDecoder(pr)
	for {
		var p server.ExportedProfile
		if err := dec.Decode(&p); err == io.EOF {
			return profileOf, nil
		} else if err != nil {
			return nil, fmt.Errorf("score: %w", err)
		}
		for _, k := range p.Identifiers {
			profileOf[k] = p.ID
		}
	}
}
