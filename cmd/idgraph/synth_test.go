package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// synth --shape messy writes a file that eval detects and scores, and
// refuses a shape it does not know.
func TestSynthMessyThroughEval(t *testing.T) {
	run := cli(t)
	file := filepath.Join(t.TempDir(), "m.csv")
	for _, bad := range [][]string{{"--shape", "tidy"}, {"--shape", "messy", "--segment"}} {
		if out := run(false, append([]string{"synth", "--records", "10"}, bad...)...); !strings.Contains(out, strings.TrimPrefix(bad[len(bad)-1], "--")) {
			t.Errorf("%v: %s", bad, out)
		}
	}
	run(true, "synth", "--shape", "messy", "--records", "2000", "--seed", "3", "--out", file)
	out := run(true, "eval", "-v", file)
	for _, want := range []string{
		"first_and_surname ignore", "first_name       given_name", "full_name        full_name",
		"per record;", "blocking recall",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q:\n%s", want, out)
		}
	}
}

// cli returns a runner of the built idgraph binary that fails the test
// when the command's success is not wantOK, and returns its output.
func cli(t *testing.T) func(wantOK bool, args ...string) string {
	bin := binary(t)
	return func(wantOK bool, args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if ok := err == nil; ok != wantOK {
			t.Fatalf("idgraph %s: exit error %v, want success %v:\n%s", strings.Join(args, " "), err, wantOK, out)
		}
		return string(out)
	}
}
