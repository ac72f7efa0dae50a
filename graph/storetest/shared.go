package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// testSharedDeviceRepaired: a family tablet. Bob browses anonymously on
// the tablet Ann signed into, so his sessions land in Ann's profile; when
// Bob signs in on it, the tablet is found shared and Ann's profile is
// repaired as a steward's split would: the tablet (and its sessions) leave
// it, the edges that held it wait for review, the repair is audited with
// actor system, and undoing it gives the profile back exactly.
func testSharedDeviceRepaired(t *testing.T, s graph.Store) {
	ctx := context.Background()
	Ingest(t, s,
		Obs("m0", t0, "anonymous_id:tablet"),
		identify("m1", t0.Add(time.Minute), map[string]any{"name": "Ann"}, "user_id:ann", "anonymous_id:tablet", "email:ann@x.io"),
		Obs("m2", t0.Add(2*time.Minute), "anonymous_id:tablet"),
	)
	wantPartition(t, s, "anonymous_id:tablet email:ann@x.io user_id:ann")
	ann := ProfileOf(t, s, "user_id:ann")
	r := Ingest(t, s, identify("m3", t0.Add(3*time.Minute), map[string]any{"name": "Bob"}, "user_id:bob", "anonymous_id:tablet", "email:bob@x.io"))
	if r.Repaired != 1 || len(r.RepairErrors) > 0 {
		t.Fatalf("repaired %d profiles (errors %v), want 1", r.Repaired, r.RepairErrors)
	}
	wantPartition(t, s, "email:ann@x.io user_id:ann", "anonymous_id:tablet", "email:bob@x.io user_id:bob")
	if got := ProfileOf(t, s, "user_id:ann"); got.ID != ann.ID || got.Traits["name"].Value != "Ann" {
		t.Errorf("Ann's profile after the repair: %s named %v, want %s named Ann", got.ID, got.Traits["name"].Value, ann.ID)
	}
	for _, pair := range [][2]string{{"user_id:ann", "anonymous_id:tablet"}, {"email:ann@x.io", "anonymous_id:tablet"}, {"user_id:bob", "anonymous_id:tablet"}} {
		if e := edge(t, s, pair[0], pair[1]); e.Status != graph.StatusPending || e.Reason != graph.ReasonShared {
			t.Errorf("edge %s–%s = %s/%s, want pending/shared", pair[0], pair[1], e.Status, e.Reason)
		}
	}
	// Bob's anonymous session is no longer on Ann's timeline.
	evs, err := graph.Timeline(ctx, s, []graph.Key{key("user_id:ann"), key("email:ann@x.io")}, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.MessageID == "m2" || ev.MessageID == "m0" {
			t.Errorf("Ann's timeline still shows the tablet's anonymous %s", ev.MessageID)
		}
	}
	// A steward sees it in the queue.
	items, err := s.ReviewQueue(ctx, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(items, func(it graph.QueueItem) bool {
		return it.Edge.Reason == graph.ReasonShared && slices.Contains([]graph.Key{it.Edge.A, it.Edge.B}, key("user_id:ann"))
	}) {
		t.Errorf("the review queue does not show Ann's tablet edge: %+v", items)
	}
	log, err := s.AuditLog(ctx, graph.AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var repair *graph.AuditEntry
	for _, a := range log {
		if a.Actor == "system" && a.Action == graph.ActionSplit {
			repair = a
		}
	}
	if repair == nil || len(repair.Moved) != 1 || repair.Moved[0].Key != key("anonymous_id:tablet") {
		t.Fatalf("no system split moving the tablet in the audit log: %+v", log)
	}
	// Nothing is left to repair, so a restart's sweep changes nothing.
	if n, err := steward(s).RepairShared(ctx); err != nil || n != 0 {
		t.Errorf("RepairShared after a repair: %d, %v; want 0, nil", n, err)
	}
	// A steward who knows better undoes it, as any split.
	if _, err := steward(s).UndoSplit(ctx, "steward-1", repair.ID, "it is Ann's"); err != nil {
		t.Fatal(err)
	}
	wantPartition(t, s, "anonymous_id:tablet email:ann@x.io user_id:ann", "email:bob@x.io user_id:bob")
}
