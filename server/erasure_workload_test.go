package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/server"
	"github.com/idgraph/idgraph/traffic"
)

// erasurePeople sizes TestErasureReingestWorkload: 200 people (about
// 7,000 messages) in CI, IDGRAPH_ERASURE_PEOPLE for a full run.
func erasurePeople(t *testing.T) int {
	if v := os.Getenv("IDGRAPH_ERASURE_PEOPLE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("IDGRAPH_ERASURE_PEOPLE: %q is not a number of people ≥ 100", v)
		}
		return n
	}
	return 200
}

// TestErasureReingestWorkload, on both backends: the CDP workload
// (package traffic: households and shared devices, library computers, form
// fills, CRM records, late messages and redeliveries) is ingested through
// the HTTP server; 100 random people are erased, each by ONE random
// identifier of theirs (any type: email, phone, anonymous, user, device,
// CRM ID), through the erase mutation; then every message and CRM record
// they ever sent is replayed and new messages and records are sent, each
// carrying one of their identifiers beside a fresh one. Then:
//
//   - no profile holds an identifier of an erased profile (0 re-created);
//   - by the generator's truth, no profile holds any identifier of an
//     erased person whom stitching had put in one profile; for a person
//     stitching had left in several profiles (a device never signed in
//     on), only the profiles erased go, and the others are the profiles
//     they were before, unchanged (not re-created);
//   - every profile that was not erased is exactly what it was (ID,
//     identifiers, traits), and no profile is new.
func TestErasureReingestWorkload(t *testing.T) {
	const erased = 100
	o := traffic.Defaults()
	o.People, o.Seed = erasurePeople(t), 23
	s := traffic.Generate(o)
	for _, b := range backends.All() {
		t.Run(b.Name, func(t *testing.T) {
			kf := newEraseFixture(t, b.Open, func(cfg *server.Config) {
				// An erasure on a large store of a loaded machine may take
				// longer than a query's 10 s; it is an admin's rare call.
				cfg.GraphQLTimeout = 2 * time.Minute
			})
			start := time.Now()
			half := len(s.Records) / 2
			kf.importRecords(t, s.Records[:half])
			kf.sendBatches(t, s.Messages, 100)
			kf.importRecords(t, s.Records[half:])
			ingest := time.Since(start)
			before := kf.exportJSON(t)
			profileOf := map[graph.Key]string{}
			byID := map[string]server.ExportedProfile{}
			for _, p := range before {
				byID[p.ID] = p
				for _, k := range p.Identifiers {
					profileOf[k] = p.ID
				}
			}
			// Each person's own identifiers that the store holds (the
			// truth leaves out shared ones: family tablets, junk values).
			owned := map[int][]graph.Key{}
			for k, person := range s.Owner {
				if _, ok := profileOf[k]; ok {
					owned[person] = append(owned[person], k)
				}
			}
			people := make([]int, 0, len(owned))
			for person, ks := range owned {
				slices.SortFunc(ks, func(a, b graph.Key) int { return strings.Compare(a.String(), b.String()) })
				people = append(people, person)
			}
			slices.Sort(people)
			r := rand.New(rand.NewPCG(7, 7))
			r.Shuffle(len(people), func(i, j int) { people[i], people[j] = people[j], people[i] })
			chosen := people[:erased]

			// Erase each by one random identifier of theirs, from 4
			// clients at once (as admins would).
			erasedProfiles, suppressed := map[string]bool{}, map[graph.Key]bool{}
			isChosen, types := map[int]bool{}, map[string]int{}
			subjects := make(chan string, erased)
			for _, person := range chosen {
				isChosen[person] = true
				k := owned[person][r.IntN(len(owned[person]))]
				types[k.Type]++
				pid := profileOf[k]
				if !erasedProfiles[pid] {
					erasedProfiles[pid] = true
					for _, id := range byID[pid].Identifiers {
						suppressed[id] = true
					}
				}
				subjects <- k.Type + ":" + k.Value
			}
			close(subjects)
			start = time.Now()
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for subj := range subjects {
						if r := kf.gql(t, kf.admin, `mutation($s: String!) { erase(subject: $s) { found } }`, map[string]any{"s": subj}); r.Status != 200 || len(r.Errors) > 0 {
							t.Errorf("erase %s: %d %+v", subj, r.Status, r.Errors)
						}
					}
				})
			}
			wg.Wait()
			erasing := time.Since(start)

			// Replay everything they sent, then new messages and records,
			// each with one of their identifiers that erasure suppressed.
			var replay []traffic.Message
			for _, m := range s.Messages {
				if isChosen[m.Person] {
					replay = append(replay, m)
				}
			}
			var records []traffic.Record
			for _, rec := range s.Records {
				if isChosen[rec.Person] {
					records = append(records, rec)
				}
			}
			kf.sendBatches(t, replay, 100)
			kf.importRecords(t, records)
			var fresh []traffic.Message
			var freshRecords []traffic.Record
			for _, person := range chosen {
				for _, k := range owned[person] {
					if !suppressed[k] {
						continue
					}
					n := len(fresh) + len(freshRecords)
					if body := messageCarrying(k, n); body != "" {
						fresh = append(fresh, traffic.Message{Body: json.RawMessage(body), Person: person})
					} else {
						freshRecords = append(freshRecords, traffic.Record{Line: n + 1, Person: person,
							Identifiers: map[string]string{k.Type: k.Value, graph.TypeEmail: fmt.Sprintf("fresh-%d@example.org", n)}})
					}
				}
			}
			kf.sendBatches(t, fresh, 100)
			kf.importRecords(t, freshRecords)

			after := kf.exportJSON(t)
			storetest.CheckInvariants(t, kf.store)
			now, afterByID := map[graph.Key]string{}, map[string]server.ExportedProfile{}
			for _, p := range after {
				afterByID[p.ID] = p
				for _, k := range p.Identifiers {
					now[k] = p.ID
				}
			}
			recreated := 0
			for k := range suppressed {
				if pid, ok := now[k]; ok {
					recreated++
					if recreated <= 5 {
						t.Errorf("%s was erased and is in profile %s again", k, pid)
					}
				}
			}
			// By the truth: whole people gone, or only their other,
			// untouched profiles left.
			whole, split, leftInOthers := 0, 0, 0
			for _, person := range chosen {
				inOne := true
				for _, k := range owned[person] {
					inOne = inOne && suppressed[k]
				}
				if inOne {
					whole++
				} else {
					split++
				}
				for _, k := range owned[person] {
					pid, ok := now[k]
					switch {
					case !ok:
					case inOne:
						t.Errorf("person %d was in one profile, erased, and %s is in profile %s", person, k, pid)
					case erasedProfiles[pid] || !sameJSON(byID[pid], afterByID[pid]):
						t.Errorf("person %d: %s is in profile %s, erased or changed since", person, k, pid)
					default:
						leftInOthers++
					}
				}
			}
			var want []server.ExportedProfile
			for _, p := range before {
				if !erasedProfiles[p.ID] {
					want = append(want, p)
				}
			}
			if !sameJSON(after, want) {
				t.Errorf("the profiles not erased changed: %d before (less %d erased), %d after:\n%s",
					len(want), len(erasedProfiles), len(after), diffLines(partition(want), partition(after)))
			}
			t.Logf("%d people, %d messages, %d records ingested in %v; %d profiles", s.Stats.People, len(s.Messages), len(s.Records), ingest.Round(time.Millisecond), len(before))
			t.Logf("erased %d people by one identifier each %v in %v: %d profiles, %d identifiers suppressed; %d people were in one profile, %d in several (%d of their identifiers left in untouched profiles)",
				erased, types, erasing.Round(time.Millisecond), len(erasedProfiles), len(suppressed), whole, split, leftInOthers)
			t.Logf("replayed %d messages and %d records, sent %d new messages and %d new records: %d profiles re-created, %d profiles not erased changed",
				len(replay), len(records), len(fresh), len(freshRecords), recreated, changedProfiles(want, afterByID))
		})
	}
}

// messageCarrying is a new Segment call carrying k and a fresh anonymous
// ID, or "" for a type that calls do not carry (imported instead).
func messageCarrying(k graph.Key, n int) string {
	anon := fmt.Sprintf("fresh-anon-%d", n)
	var m map[string]any
	switch k.Type {
	case graph.TypeUserID:
		m = map[string]any{"type": "track", "userId": k.Value, "anonymousId": anon, "event": "Came Back"}
	case graph.TypeAnonymousID:
		m = map[string]any{"type": "page", "anonymousId": k.Value, "name": "Back", "userId": "fresh-user-" + strconv.Itoa(n)}
	case graph.TypeEmail:
		m = map[string]any{"type": "identify", "anonymousId": anon, "traits": map[string]any{"email": k.Value, "name": "Fresh Person"}}
	case graph.TypePhone:
		m = map[string]any{"type": "identify", "anonymousId": anon, "traits": map[string]any{"phone": k.Value}}
	default:
		return ""
	}
	m["messageId"] = fmt.Sprintf("fresh-%d", n)
	b, _ := json.Marshal(m)
	return string(b)
}

// changedProfiles counts the profiles of want that got (by ID) differs in.
func changedProfiles(want []server.ExportedProfile, got map[string]server.ExportedProfile) int {
	n := 0
	for _, p := range want {
		if !sameJSON(p, got[p.ID]) {
			n++
		}
	}
	return n
}
