package audit_test

import (
	"testing"
	"time"

	"github.com/idgraph/idgraph/audit"
)

// TestCanonicalFormatIsStable: the hash of a fixed entry never changes (a
// change would break every chain already stored), and the fields outside
// the hash (target, redacted) do not move it while every field inside does.
func TestCanonicalFormatIsStable(t *testing.T) {
	base := func() *audit.Entry {
		return &audit.Entry{Seq: 7, At: time.Date(2026, 12, 2, 6, 0, 0, 123456789, time.UTC), KeyID: "Q3vK8zPa", Role: "steward",
			Action: "link", Target: "user_id:u1", TargetMAC: "ab", Subjects: []string{"cd"}, RequestID: "r1", Outcome: "ok",
			Remote: "192.0.2.1", Prev: audit.Genesis}
	}
	const want = `{"v":1,"seq":7,"at":"2026-12-02T06:00:00.123456789Z","keyId":"Q3vK8zPa","role":"steward","action":"link","targetMac":"ab","subjects":["cd"],"requestId":"r1","outcome":"ok","remote":"192.0.2.1","prev":"0000000000000000000000000000000000000000000000000000000000000000"}`
	if got := string(base().Canonical()); got != want {
		t.Fatalf("canonical bytes changed:\n got %s\nwant %s", got, want)
	}
	h := base().ComputeHash()
	outside := base()
	outside.Target, outside.Redacted = "", time.Now()
	if outside.ComputeHash() != h {
		t.Fatal("the target or the redaction mark moved the hash")
	}
	for name, edit := range map[string]func(*audit.Entry){
		"seq": func(e *audit.Entry) { e.Seq++ }, "at": func(e *audit.Entry) { e.At = e.At.Add(time.Nanosecond) },
		"keyId": func(e *audit.Entry) { e.KeyID = "x" }, "role": func(e *audit.Entry) { e.Role = "admin" },
		"action": func(e *audit.Entry) { e.Action = "split" }, "targetMac": func(e *audit.Entry) { e.TargetMAC = "ac" },
		"subjects": func(e *audit.Entry) { e.Subjects = nil }, "requestId": func(e *audit.Entry) { e.RequestID = "r2" },
		"outcome": func(e *audit.Entry) { e.Outcome = "forbidden" }, "remote": func(e *audit.Entry) { e.Remote = "192.0.2.2" },
		"prev":    func(e *audit.Entry) { e.Prev = "1" + audit.Genesis[1:] },
		"at zone": func(e *audit.Entry) { e.At = e.At.In(time.FixedZone("x", 3600)) },
	} {
		e := base()
		edit(e)
		if (e.ComputeHash() == h) != (name == "at zone") {
			t.Errorf("changing %s: hash moved %v", name, e.ComputeHash() != h)
		}
	}
}
