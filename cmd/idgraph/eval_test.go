package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// eval and train stream their files: each way in (detected columns, a
// saved model, a linked file, a truth column) still runs, and a
// malformed file is refused with its line.
func TestEvalAndTrainStreamFiles(t *testing.T) {
	run := cli(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "s.csv")
	model := filepath.Join(dir, "model.json")
	run(true, "synth", "--records", "3000", "--seed", "2", "--out", file)
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ragged := write("ragged.csv", "rec_id,given_name,surname\nrec-1-org,ann,lee\nrec-1-dup-0,ann\n")
	bom := write("bom.csv", "\ufeff\"rec_id\",given_name,surname\nrec-1-org,ann,lee\nrec-1-dup-0,anne,lee\n")
	truth := write("truth.csv", "person,given_name,surname,dob\n1,ann,lee,1980-01-02\n1,anne,lee,1980-01-02\n2,bob,ray,1971-03-04\n")
	tests := []struct {
		name string
		args []string
		ok   bool
		want string
	}{
		{"train", []string{"train", "--out", model, file}, true, "trained fs-"},
		{"eval", []string{"eval", file}, true, "records             3000"},
		{"eval with the saved model", []string{"eval", "--model", model, file}, true, "records             3000"},
		{"eval linking a file with itself", []string{"eval", file, "--link", file}, true, "records             6000"},
		{"eval with a truth column", []string{"eval", "--truth-column", "person", truth}, true, "true pairs          1"},
		{"eval of a file with a BOM", []string{"eval", bom}, true, "records             2"},
		{"eval of a ragged file", []string{"eval", ragged}, false, "ragged.csv: match: CSV line 3: 2 fields, the header has 3"},
		{"train on a ragged file", []string{"train", "--out", model, ragged}, false, "CSV line 3"},
		{"over --max-records", []string{"eval", "--max-records", "100", file}, false, "more than 100 records"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if out := run(tc.ok, tc.args...); !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

// A signal stops eval and train (main cancels their context on SIGTERM
// and interrupt): they return the context's error, not a report.
func TestEvalAndTrainStopOnSignal(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.csv")
	cli(t)(true, "synth", "--records", "3000", "--seed", "2", "--out", file)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, run := range map[string]func(context.Context, []string) error{"eval": runEval, "train": runTrain} {
		args := []string{file}
		if name == "train" {
			args = []string{"--out", filepath.Join(dir, "m.json"), file}
		}
		if err := run(ctx, args); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
}
