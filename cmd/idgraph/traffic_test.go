package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTrafficCommands runs what the README shows: synth traffic, serve,
// send (sequential, then again with concurrent clients: a redelivery),
// score; and checks that send fails loudly on a refused key.
func TestTrafficCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "traffic")
	run := cli(t)
	out := run(true, "synth", "traffic", "--people", "60", "--seed", "7", "--out", dir)
	if !regexp.MustCompile(`60 people, \d+ messages`).MatchString(out) {
		t.Errorf("synth traffic printed no stats:\n%s", out)
	}
	for _, f := range []string{"messages.jsonl", "senders.txt", "crm.csv", "truth.csv", "stats.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("synth traffic wrote no %s", f)
		}
	}
	// The records generator is still idgraph synth.
	if out := run(true, "synth", "--records", "20"); !strings.HasPrefix(out, "rec_id,") {
		t.Errorf("idgraph synth no longer writes records:\n%.200s", out)
	}

	p := startServe(t, freeAddr(t), t.TempDir())
	stopped := false
	defer func() {
		if !stopped {
			p.stop(t)
		}
	}()
	url := "http://" + p.addr
	out = run(true, "send", "--server", url, "--key", testWriteKey, "--batch", "50", dir)
	if !regexp.MustCompile(`(?m)^messages: \d+ messages in \d+ batches .* 0 failed batches$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^crm.csv: read \d+, stored \d+`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^answers: 200: \d+$`).MatchString(out) {
		t.Errorf("send printed:\n%s", out)
	}
	run(true, "send", "--server", url, "--key", testWriteKey, "--clients", "3", "--crm=false", dir)
	out = run(true, "score", "--server", url, "--key", testReadKey, dir)
	for _, what := range []string{"identifiers", "events"} {
		if !regexp.MustCompile(`(?m)^` + what + `: precision (0\.\d+|1\.0+) recall \S+ F1 \S+ \(\d+ items`).MatchString(out) {
			t.Errorf("score printed no %s line:\n%s", what, out)
		}
	}

	out = run(false, "send", "--server", url, "--key", "not-the-key", dir)
	if !strings.Contains(out, "401") {
		t.Errorf("send with a refused key:\n%s", out)
	}
	p.stop(t)
	stopped = true
	if strings.Contains(p.log.String(), "panic") {
		t.Errorf("the server logged a panic:\n%s", p.log)
	}
}
