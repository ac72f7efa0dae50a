package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
)

// TestDeliveryJobsOverGraphQL, on every backend: resync sends the members
// recorded before the destination was connected; its progress, the
// delivery log and a replay by time range are visible over GraphQL to
// admins only; bad input is named; /metrics has the pending count and the
// delivery latency.
func TestDeliveryJobsOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			admin := f.admin
			f.mustAs(t, admin, `mutation { createSegment(key: "pro", definition: "trait(\"plan\") = \"pro\"") { key } }`, nil)
			f.send(t, "/v1/identify", `{"userId":"a","traits":{"plan":"pro"}}`)
			f.send(t, "/v1/identify", `{"userId":"b","traits":{"plan":"pro"}}`)
			waitFor(t, "two members", func() bool {
				return get(f.mustAs(t, admin, `{ segment(key: "pro") { size } }`, nil), "segment.size") == 2.0
			})
			h := newHookReceiver(t)
			d := f.mustAs(t, admin, `mutation($url: String!) { createDestination(name: "crm", url: $url, segments: ["pro"]) { secret destination { id } } }`,
				map[string]any{"url": h.srv.URL})
			h.mu.Lock()
			h.secret = get(d, "createDestination.secret").(string)
			h.mu.Unlock()
			id := get(d, "createDestination.destination.id").(string)
			vars := map[string]any{"id": id}

			const jobs = `query($id: ID!) { deliveryJobs(destination: $id) { id kind segments state error done total asOfSequence
				fromSequence toSequence from to createdAt startedAt finishedAt } }`
			for _, q := range []string{jobs, `query($id: ID!) { deliveries(destination: $id) { cursor } }`,
				`mutation($id: ID!) { resync(destination: $id) { id } }`} {
				for _, key := range []string{readKey, stewKey} {
					if r := f.gql(t, key, q, vars); r.code() != "FORBIDDEN" {
						t.Fatalf("%s with a non-admin key: %+v", q, r)
					}
				}
			}
			const resync = `mutation($id: ID!, $seg: String) { resync(destination: $id, segment: $seg) { id kind state segments } }`
			if r := f.gql(t, admin, resync, map[string]any{"id": id, "seg": "nosuch"}); r.code() != "BAD_USER_INPUT" || !strings.HasPrefix(r.Errors[0].Message, "segment: ") {
				t.Fatalf("resync of a segment not connected: %+v", r)
			}
			if r := f.gql(t, admin, resync, map[string]any{"id": "dst_none"}); r.code() != "NOT_FOUND" {
				t.Fatalf("resync of an unknown destination: %+v", r)
			}
			j := f.mustAs(t, admin, resync, vars)
			if get(j, "resync.state") != "QUEUED" || get(j, "resync.kind") != "resync" || fmt.Sprint(get(j, "resync.segments")) != "[pro]" {
				t.Fatalf("resync: %v", j)
			}
			job := awaitJob(t, f, jobs, id)
			if job["state"] != "DONE" || job["done"] != 2.0 || job["total"] != 2.0 || job["asOfSequence"] == nil || job["finishedAt"] == nil {
				t.Fatalf("resync job %v", job)
			}
			if got := h.await(t, 2); fmt.Sprint(got) != "[segment.entered pro segment.entered pro]" {
				t.Fatalf("resync sent %v", got)
			}

			const log = `query($id: ID!, $first: Int, $after: String) { deliveries(destination: $id, first: $first, after: $after) {
				cursor sequence type webhookId status error attempt durationMs at job } }`
			all := get(f.mustAs(t, admin, log, map[string]any{"id": id, "first": 10}), "deliveries").([]any)
			if len(all) != 2 {
				t.Fatalf("deliveries %v", all)
			}
			for _, e := range all {
				e := e.(map[string]any)
				if e["type"] != "segment.entered" || e["status"] != 200.0 || e["attempt"] != 1.0 || e["job"] != job["id"] ||
					!strings.HasPrefix(e["webhookId"].(string), "msg_"+id+"_"+job["id"].(string)+"_pro_") || e["sequence"] != job["asOfSequence"] {
					t.Fatalf("delivery %v of job %v", e, job)
				}
			}
			page := get(f.mustAs(t, admin, log, map[string]any{"id": id, "first": 1, "after": all[0].(map[string]any)["cursor"]}), "deliveries").([]any)
			if len(page) != 1 || page[0].(map[string]any)["cursor"] != all[1].(map[string]any)["cursor"] {
				t.Fatalf("the page after the newest: %v, want %v", page, all[1])
			}
			if r := f.gql(t, admin, log, map[string]any{"id": id, "after": "x"}); r.code() != "BAD_USER_INPUT" || !strings.HasPrefix(r.Errors[0].Message, "after: ") {
				t.Fatalf("deliveries after x: %+v", r)
			}

			start := time.Now().UTC().Add(-time.Second)
			f.send(t, "/v1/identify", `{"userId":"c","traits":{"plan":"pro"}}`)
			h.await(t, 3)
			const replay = `mutation($id: ID!, $seq: String, $from: Time, $to: Time) {
				replayDeliveries(destination: $id, fromSequence: $seq, from: $from, to: $to) { id } }`
			end := time.Now().UTC().Add(time.Second)
			for _, bad := range []struct {
				vars  map[string]any
				field string
			}{
				{map[string]any{"seq": "1", "from": start, "to": end}, "fromSequence"},
				{map[string]any{"from": end, "to": start}, "to"},
				{map[string]any{"from": start}, "to"},
				{map[string]any{}, "from"},
			} {
				bad.vars["id"] = id
				if r := f.gql(t, admin, replay, bad.vars); r.code() != "BAD_USER_INPUT" || !strings.HasPrefix(r.Errors[0].Message, bad.field+": ") {
					t.Errorf("replay %v: %+v, want invalid naming %s", bad.vars, r, bad.field)
				}
			}
			f.mustAs(t, admin, replay, map[string]any{"id": id, "from": start, "to": end})
			job = awaitJob(t, f, jobs, id)
			if job["kind"] != "replay" || job["state"] != "DONE" || job["done"] != 1.0 || job["total"] != 1.0 || job["fromSequence"] == nil || job["from"] == nil {
				t.Fatalf("replay job %v", job)
			}
			if got := h.await(t, 4); got[3] != "segment.entered pro" {
				t.Fatalf("replayed %v", got)
			}

			resp, err := http.Get(f.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{
				fmt.Sprintf("idgraph_destination_pending{destination=%q} 0\n", id),
				fmt.Sprintf("idgraph_destination_oldest_pending_age_seconds{destination=%q} 0\n", id),
				fmt.Sprintf("idgraph_destination_delivery_latency_seconds_count{destination=%q} 1\n", id), // c's entry; not the resync's or the replay's
			} {
				if !strings.Contains(string(body), want) {
					t.Errorf("/metrics has no line %q", want)
				}
			}

			// A member who left while the segment was disconnected (that
			// change is not sent) is taken out by a resync: the current
			// members' entries again, then an exit for the one the
			// destination still holds.
			const segmentOf = `mutation($id: ID!) { %s(destination: $id, segment: "pro") { id } }`
			f.mustAs(t, admin, fmt.Sprintf(segmentOf, "disconnectSegment"), vars)
			f.send(t, "/v1/identify", `{"userId":"a","traits":{"plan":"free"}}`)
			waitFor(t, "a leaves", func() bool {
				return get(f.mustAs(t, admin, `{ segment(key: "pro") { size } }`, nil), "segment.size") == 2.0
			})
			f.mustAs(t, admin, fmt.Sprintf(segmentOf, "connectSegment"), vars)
			f.mustAs(t, admin, resync, vars)
			job = awaitJob(t, f, jobs, id)
			if job["state"] != "DONE" || job["done"] != 3.0 {
				t.Fatalf("resync after a member left: %v", job)
			}
			if got := h.await(t, 7)[4:]; fmt.Sprint(got) != "[segment.entered pro segment.entered pro segment.exited pro]" {
				t.Fatalf("resync after a member left sent %v", got)
			}
		})
	}
}

// awaitJob waits for the newest job of the destination to finish and
// returns it.
func awaitJob(t *testing.T, f *keyFixture, q, id string) map[string]any {
	t.Helper()
	var job map[string]any
	waitFor(t, "the job", func() bool {
		job = get(f.mustAs(t, f.admin, q, map[string]any{"id": id}), "deliveryJobs").([]any)[0].(map[string]any)
		return job["state"] == "DONE" || job["state"] == "FAILED"
	})
	return job
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 30 s", what)
		}
	}
}
