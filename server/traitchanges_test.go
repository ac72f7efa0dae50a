package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
)

// traitLines awaits n messages and renders them as "type key" lines, with
// "previous→value" for trait.changed (key: the segment or trait).
func traitLines(t *testing.T, h *hookReceiver, n int) ([]string, []map[string]any) {
	t.Helper()
	types := h.await(t, n)
	h.mu.Lock()
	data := append([]map[string]any(nil), h.data...)
	h.mu.Unlock()
	var lines []string
	for i, d := range data[:len(types)] { // data was read after: it has as many
		if typ, _, _ := strings.Cut(types[i], " "); typ == "trait.changed" {
			lines = append(lines, fmt.Sprintf("%s %v %v→%v", typ, d["trait"], d["previous"], d["value"]))
		} else {
			lines = append(lines, types[i])
		}
	}
	return lines, data
}

// TestTraitChangedOverGraphQL, on every backend: an admin connects a
// computed trait to a destination over GraphQL (bad input refused naming
// the field, other keys forbidden); each change of its value, computed by
// the segments engine from identify calls, reaches a real receiver as a
// signed trait.changed in sequence order with the segment's messages; an
// identify that leaves the value as it was sends nothing; disconnecting
// stops them.
func TestTraitChangedOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			admin := f.admin
			f.mustAs(t, admin, `mutation { createComputedTrait(key: "plan", definition: "lower(trait(\"plan\"))") { key } }`, nil)
			f.mustAs(t, admin, `mutation { createSegment(key: "pro", definition: "computed(\"plan\") = \"pro\"") { key } }`, nil)
			f.mustAs(t, admin, `mutation { createSegment(key: "vip", definition: "trait(\"vip\") = true") { key } }`, nil)
			h := newHookReceiver(t)
			d := f.mustAs(t, admin, `mutation($url: String!) { createDestination(name: "crm", url: $url, segments: ["pro", "vip"]) { secret destination { id } } }`,
				map[string]any{"url": h.srv.URL})
			h.mu.Lock()
			h.secret = get(d, "createDestination.secret").(string)
			h.mu.Unlock()
			id := get(d, "createDestination.destination.id").(string)

			const connect = `mutation($id: ID!, $trait: String!) { connectTrait(destination: $id, trait: $trait) { traits segments } }`
			for _, key := range []string{readKey, stewKey} {
				if r := f.gql(t, key, connect, map[string]any{"id": id, "trait": "plan"}); r.code() != "FORBIDDEN" {
					t.Fatalf("connectTrait with a non-admin key: %+v", r)
				}
			}
			for _, bad := range []struct{ id, trait, code, prefix string }{
				{id, "nosuch", "BAD_USER_INPUT", "trait: "},
				{id, "pro", "BAD_USER_INPUT", "trait: "}, // a segment, not a computed trait
				{id, "a/b", "BAD_USER_INPUT", "trait: "},
				{"dst_nope", "plan", "NOT_FOUND", ""},
			} {
				r := f.gql(t, admin, connect, map[string]any{"id": bad.id, "trait": bad.trait})
				if r.code() != bad.code || !strings.HasPrefix(r.Errors[0].Message, bad.prefix) {
					t.Errorf("connectTrait(%q, %q): %+v, want %s %q", bad.id, bad.trait, r, bad.code, bad.prefix)
				}
			}
			c := f.mustAs(t, admin, connect, map[string]any{"id": id, "trait": "plan"})
			if fmt.Sprint(get(c, "connectTrait.traits"), get(c, "connectTrait.segments")) != "[plan] [pro vip]" {
				t.Fatalf("connected: %v", c)
			}

			// One at a time, each awaited, so that each identify is its own
			// evaluation. A destination's messages go in sequence order, and
			// a save records trait changes before memberships: a message the
			// test does not want would come before the one it awaits.
			f.send(t, "/v1/identify", `{"userId":"a","traits":{"plan":"Pro"}}`)
			traitLines(t, h, 2)
			f.send(t, "/v1/identify", `{"userId":"a","traits":{"plan":"PRO","vip":true}}`) // the same value: no trait message
			traitLines(t, h, 3)
			f.send(t, "/v1/identify", `{"userId":"a","traits":{"plan":"Free"}}`)
			got, data := traitLines(t, h, 5)
			want := []string{"trait.changed plan <nil>→pro", "segment.entered pro", "segment.entered vip", "trait.changed plan pro→free", "segment.exited pro"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("messages\n%q\nwant\n%q", got, want)
			}
			for i, d := range data[:5] {
				if d["profile"] == nil || d["profile"] != data[0]["profile"] || d["version"] != 1.0 || d["reason"] != "data" ||
					i > 0 && d["sequence"].(float64) <= data[i-1]["sequence"].(float64) {
					t.Errorf("message %d: data %v", i, d)
				}
			}
			if _, ok := data[0]["previous"]; !ok {
				t.Errorf("the first value's previous is not null but absent: %v", data[0])
			}
			ds := f.mustAs(t, admin, `{ destinations { traits deadLetters { trait } } }`, nil)
			if fmt.Sprint(get(ds, "destinations")) != "[map[deadLetters:[] traits:[plan]]]" {
				t.Errorf("destinations: %v", ds)
			}

			f.mustAs(t, admin, `mutation($id: ID!) { disconnectTrait(destination: $id, trait: "plan") { id } }`, map[string]any{"id": id})
			f.send(t, "/v1/identify", `{"userId":"a","traits":{"plan":"pro"}}`)
			if got, _ := traitLines(t, h, 6); got[5] != "segment.entered pro" {
				t.Fatalf("after disconnecting the trait: %v", got)
			}
		})
	}
}

// TestTraitForwarder, on every backend: a computed trait connected to a
// forwarder over GraphQL reaches another idgraph's Segment API (embedded)
// as an identify setting traits.<trait> to each new value, computed by
// the segments engine, so that the receiving profile follows it.
func TestTraitForwarder(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			dst := newFixture(t, backends.OpenPebble) // the receiving workspace
			f.mustAs(t, f.admin, `mutation { createComputedTrait(key: "tier", definition: "lower(trait(\"plan\"))") { key } }`, nil)
			d := f.mustAs(t, f.admin, `mutation($url: String!, $key: String!) { createSegmentForwarder(name: "crm", url: $url, writeKey: $key) { id } }`,
				map[string]any{"url": dst.url, "key": writeKey})
			c := f.mustAs(t, f.admin, `mutation($id: ID!) { connectTrait(destination: $id, trait: "tier") { kind traits } }`,
				map[string]any{"id": get(d, "createSegmentForwarder.id")})
			if fmt.Sprintf("%v %v", get(c, "connectTrait.kind"), get(c, "connectTrait.traits")) != "segment [tier]" {
				t.Fatalf("connectTrait on a forwarder: %v", c)
			}
			await := func(want string) {
				t.Helper()
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					r := dst.gql(t, readKey, `{ lookup(type: "user_id", value: "tf1") { traits } }`, nil)
					if r.code() == "" && get(r.Data, "lookup.traits.tier") == want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("the receiving profile: %+v, want tier %q", r, want)
					}
				}
			}
			f.send(t, "/v1/identify", `{"userId":"tf1","traits":{"plan":"Pro"}}`)
			await("pro")
			f.send(t, "/v1/identify", `{"userId":"tf1","traits":{"plan":"FREE"}}`)
			await("free")
		})
	}
}

// TestTraitResyncOverGraphQL, on every backend: resync(destination,
// trait) sends a webhook each profile's value of the computed trait as a
// trait.changed with reason resync, the job listing the trait and
// counting them; a trait not connected is refused naming trait. A
// forwarder refuses a computed trait of its segment's key, naming trait.
func TestTraitResyncOverGraphQL(t *testing.T) {
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			f := withDestinations(t, b.Open)
			admin := f.admin
			f.mustAs(t, admin, `mutation { createComputedTrait(key: "plan", definition: "lower(trait(\"plan\"))") { key } }`, nil)
			f.mustAs(t, admin, `mutation { createSegment(key: "plan", definition: "trait(\"plan\") = \"Pro\"") { key } }`, nil)
			h := newHookReceiver(t)
			d := f.mustAs(t, admin, `mutation($url: String!) { createDestination(name: "crm", url: $url, segments: []) { secret destination { id } } }`,
				map[string]any{"url": h.srv.URL})
			h.mu.Lock()
			h.secret = get(d, "createDestination.secret").(string)
			h.mu.Unlock()
			id := get(d, "createDestination.destination.id").(string)
			const resync = `mutation($id: ID!, $trait: String) { resync(destination: $id, trait: $trait) { id traits segments } }`
			if r := f.gql(t, admin, resync, map[string]any{"id": id, "trait": "plan"}); r.code() != "BAD_USER_INPUT" || !strings.HasPrefix(r.Errors[0].Message, "trait: ") {
				t.Fatalf("resync of a trait not connected: %+v", r)
			}
			f.mustAs(t, admin, `mutation($id: ID!) { connectTrait(destination: $id, trait: "plan") { id } }`, map[string]any{"id": id})
			f.send(t, "/v1/identify", `{"userId":"a","traits":{"plan":"Pro"}}`)
			traitLines(t, h, 1)
			f.send(t, "/v1/identify", `{"userId":"b","traits":{"plan":"Free"}}`)
			traitLines(t, h, 2)

			j := f.mustAs(t, admin, resync, map[string]any{"id": id, "trait": "plan"})
			if fmt.Sprint(get(j, "resync.traits"), get(j, "resync.segments")) != "[plan] []" {
				t.Fatalf("resync: %v", j)
			}
			const jobs = `query($id: ID!) { deliveryJobs(destination: $id) { id traits state done total asOfSequence } }`
			job := awaitJob(t, f, jobs, id)
			if job["state"] != "DONE" || job["done"] != 2.0 || job["total"] != 2.0 {
				t.Fatalf("resync job %v", job)
			}
			got, data := traitLines(t, h, 4)
			resynced := []string{got[2], got[3]}
			slices.Sort(resynced)
			if fmt.Sprint(resynced) != "[trait.changed plan <nil>→free trait.changed plan <nil>→pro]" {
				t.Fatalf("the resync sent %q", got[2:])
			}
			for _, d := range data[2:4] {
				if d["reason"] != "resync" || fmt.Sprint(d["sequence"]) != job["asOfSequence"] {
					t.Errorf("a resync's message data %v, want reason resync and sequence %v", d, job["asOfSequence"])
				}
			}

			fw := f.mustAs(t, admin, `mutation($url: String!) { createSegmentForwarder(name: "fw", url: $url, writeKey: "wk", segments: ["plan"]) { id } }`,
				map[string]any{"url": h.srv.URL})
			r := f.gql(t, admin, `mutation($id: ID!) { connectTrait(destination: $id, trait: "plan") { id } }`, map[string]any{"id": get(fw, "createSegmentForwarder.id")})
			if r.code() != "BAD_USER_INPUT" || !strings.HasPrefix(r.Errors[0].Message, "trait: ") || !strings.Contains(r.Errors[0].Message, "traits.plan") {
				t.Fatalf("a forwarder's computed trait of its segment's key: %+v", r)
			}
		})
	}
}
