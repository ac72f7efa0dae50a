package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSuppressionsCLI: idgraph suppressions add (arguments, a file with
// comments, bare values with --type, a file of 1,001 lines sent in two
// calls of --per-call 1000: the race-built server takes over its 10 s
// execution limit for a call of 10,000), counts, list (hashes, never values) and remove against a real
// serve process with the admin key; bad input is refused naming the
// argument, the line or the field, a refused call applies nothing, and a
// read key is refused.
func TestSuppressionsCLI(t *testing.T) {
	_, url, admin := serveDestinations(t)
	dir := t.TempDir()
	cli := func(ok bool, args ...string) (string, string) {
		t.Helper()
		return idgraph(t, ok, append([]string{"suppressions"}, append(args, "--server", url, "--key", admin)...)...)
	}
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	expect := func(out, want string) {
		t.Helper()
		if !strings.Contains(out, want) {
			t.Errorf("output %q, want %q", out, want)
		}
	}

	out, _ := cli(true, "add", "email:Ann.Marker@Corp.io", "phone:(415) 555-0134")
	expect(out, "added 2 to global, 0 unchanged")
	// The same email in another case is the same entry (normalised as ingest does).
	out, _ = cli(true, "add", "--file", write("more.txt", "# unsubscribed in March\nemail:ann.marker@corp.io\n\nuser_id:u-9\n"))
	expect(out, "added 1 to global, 1 unchanged")
	out, _ = cli(true, "add", "--scope", "channel:sms", "--type", "phone", "--file", write("sms.txt", "+14155550100\n+14155550101\n"))
	expect(out, "added 2 to channel:sms")

	out, _ = cli(true, "counts")
	for _, row := range []string{`global\s+email\s+1`, `global\s+phone\s+1`, `global\s+user_id\s+1`, `channel:sms\s+phone\s+2`} {
		if !regexp.MustCompile(row).MatchString(out) {
			t.Errorf("counts: no row %s in\n%s", row, out)
		}
	}
	out, _ = cli(true, "list")
	if rows := regexp.MustCompile(`(?m)^[0-9a-f]{64}\s+(email|phone|user_id)\s+\d{4}-`).FindAllString(out, -1); len(rows) != 3 || strings.Contains(strings.ToLower(out), "marker") {
		t.Errorf("list: %d rows of hash, type and time, want 3 and no value:\n%s", len(rows), out)
	}

	out, _ = cli(true, "remove", "email:ANN.MARKER@corp.io", "user_id:u-missing")
	expect(out, "removed 1 from global, 1 unchanged")

	// A file over one call's entries goes in several calls.
	var big strings.Builder
	for i := range 1_001 {
		fmt.Fprintf(&big, "anonymous_id:a-%05d\n", i)
	}
	out, _ = cli(true, "add", "--scope", "channel:ads", "--per-call", "1000", "--file", write("big.txt", big.String()))
	expect(out, "added 1001 to channel:ads, 0 unchanged")

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "ann@corp.io"}, "argument 1"},
		{[]string{"add", "--file", write("bad.txt", "email:a@corp.io\n\nnot-an-identifier\n")}, "line 3"},
		{[]string{"add", "--scope", "planet", "email:a@corp.io"}, "global, destination:ID or channel:NAME"},
		{[]string{"add"}, "no identifiers given"},
		{[]string{"add", "--per-call", "10001", "email:a@corp.io"}, "--per-call: 1 to 10000"},
		{[]string{"add", "email:not an email", "email:b@corp.io"}, "entries[0].value"},
		{[]string{"add", "--scope", "destination:dst_none", "email:b@corp.io"}, "is not a destination id"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		if _, stderr := cli(false, bad.args...); !strings.Contains(stderr, bad.want) {
			t.Errorf("suppressions %v: stderr %q, want %q", bad.args, stderr, bad.want)
		}
	}
	// The refused call with b@corp.io in it applied nothing.
	out, _ = cli(true, "counts")
	if regexp.MustCompile(`global\s+email\s+[1-9]`).MatchString(out) {
		t.Errorf("counts after refused calls:\n%s", out)
	}
	readKey := keyPattern.FindString(func() string {
		o, _ := idgraph(t, true, "keys", "create", "--role", "read", "--server", url, "--key", admin)
		return o
	}())
	if _, stderr := idgraph(t, false, "suppressions", "counts", "--server", url, "--key", readKey); !strings.Contains(stderr, "FORBIDDEN") {
		t.Errorf("counts with a read key: %q", stderr)
	}
}
