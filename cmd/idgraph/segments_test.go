package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
)

const testStewardKey = "sk_proc"

// TestSegmentsApplyDiffExplain runs what docs/segments.md shows against a
// real server on each backend: diff and apply a directory of definitions
// (a new one reading another new one, an edit, a segment left on the
// server, an invalid file reported at its line and column, a read key
// refused), then explain a membership.
func TestSegmentsApplyDiffExplain(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			store := t.TempDir()
			if b.Name == "neo4j" {
				backends.OpenNeo4j(t) // locks and empties the test database
				store = neo4jDSN(t)
			}
			p := startServe(t, freeAddr(t), store, "--segments", "--steward-key", testStewardKey)
			defer p.stop(t)
			// Ten profiles; the even ones have a user ID (user-0, user-2, …).
			if code, _ := sendBatch(p.addr, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}); code != 200 {
				t.Fatalf("batch: %d", code)
			}
			url := "http://" + p.addr
			run := cli(t)
			dir := t.TempDir()
			write := func(name, def string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(dir, name), []byte(def+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("known.seg", `has_id("user_id")`)
			write("anon.seg", `not has_id("user_id")`)
			// Created before known (key order), which it reads: apply
			// retries it once known exists.
			write("a_vip.seg", "in_segment(\"known\")\n  and id_count(\"anonymous_id\") >= 1")
			write("README.md", "not a definition")
			want := func(out string, lines ...string) {
				t.Helper()
				for _, l := range lines {
					if !regexp.MustCompile(`(?m)^` + l + `$`).MatchString(out) {
						t.Errorf("no line %q in:\n%s", l, out)
					}
				}
			}

			out := run(true, "segments", "diff", dir, "--server", url, "--key", testStewardKey)
			want(out, `new +a_vip +.*: UNKNOWN_REFERENCE: .*`, `new +anon +5 members with .*anon.seg`, `new +known +5 members with .*known.seg`)

			out = run(false, "segments", "apply", dir, "--server", url, "--key", testReadKey)
			if !strings.Contains(out, "FORBIDDEN") {
				t.Errorf("apply with a read key:\n%s", out)
			}
			out = run(false, "segments", "diff", dir, "--server", url, "--key", "not-a-key")
			if !strings.Contains(out, "401") || !strings.Contains(out, "UNAUTHENTICATED") {
				t.Errorf("diff with no valid key:\n%s", out)
			}
			out = run(true, "segments", "apply", dir, "--server", url, "--key", testStewardKey)
			want(out, `created +a_vip +now version 1 \(backfilling\)`, `created +anon +now version 1 \(backfilling\)`, `created +known +now version 1 \(backfilling\)`)

			// Backfilled: diff shows them unchanged, LIVE, with their sizes.
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(out, "a_vip  version 1, LIVE, 5 members") || strings.Contains(out, "BACKFILLING") {
				if time.Now().After(deadline) {
					t.Fatalf("not backfilled after 60 s:\n%s", out)
				}
				time.Sleep(100 * time.Millisecond)
				out = run(true, "segments", "diff", dir, "--server", url, "--key", testStewardKey)
			}
			want(out, `unchanged +a_vip +version 1, LIVE, 5 members`, `unchanged +anon +version 1, LIVE, 5 members`, `unchanged +known +version 1, LIVE, 5 members`)

			// Edit one, add an invalid one, take one out of the directory;
			// reformat one, which stays unchanged.
			write("a_vip.seg", "# VIPs: known and seen anonymously\nin_segment( \"known\" ) and (id_count(\"anonymous_id\")>=1)")
			write("known.seg", `has_id("user_id") and id_count("user_id") >= 2`)
			write("bad.seg", "has_id(\"user_id\") and\n  events(\"x\").within(0d).exists()")
			os.Remove(filepath.Join(dir, "anon.seg"))
			out = run(true, "segments", "diff", dir, "--server", url, "--key", testStewardKey)
			want(out, `changed +known +version 1, LIVE, 5 members; 0 members with .*known.seg`,
				`absent +anon +version 1, LIVE, 5 members; not in .*: left alone`,
				`new +bad +.*bad.seg:2:22: BAD_WINDOW: window 0d is not positive .*`, `unchanged +a_vip +version 1, LIVE, 5 members`)
			out = run(false, "segments", "apply", dir, "--server", url, "--key", testStewardKey)
			want(out, `failed +bad +.*bad.seg:2:22: BAD_WINDOW: .*`, `updated +known +version 1, LIVE, 5 members; now version 2 \(backfilling\)`,
				`absent +anon +version 1, LIVE, 5 members; not in .*: left alone`, `idgraph: segments apply: 1 of 4 segments failed`)

			// explain, by identifier: the edit applies at once.
			out = run(true, "segments", "explain", "user_id:user-2", "known", "--server", url, "--key", testReadKey)
			want(out, `profile p_\S+ is not a member of known \(version 2\) at .*`,
				`  has_id\("user_id"\) and id_count\("user_id"\) >= 2 = false`, `    has_id\("user_id"\) = true`, `      id_count\("user_id"\) = 1`)
			out = run(false, "segments", "explain", "user_id:user-2", "nope", "--server", url, "--key", testReadKey)
			if !strings.Contains(out, "NOT_FOUND") {
				t.Errorf("explain an unknown segment:\n%s", out)
			}
			os.Remove(filepath.Join(dir, "bad.seg"))
			out = run(true, "segments", "diff", dir, "--server", url, "--key", testStewardKey)
			want(out, `unchanged +known +version 2, .*`)
		})
	}
}
