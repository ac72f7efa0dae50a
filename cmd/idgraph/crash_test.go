package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/graph/storetest"
	"github.com/idgraph/idgraph/internal/backends"
	"github.com/idgraph/idgraph/pebble"
)

// verifyDelivered checks that each of the n messages is stored exactly once
// and that every identifier belongs to exactly one profile.
func verifyDelivered(t *testing.T, s graph.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		evs, err := graph.Timeline(ctx, s, []graph.Key{{Type: graph.TypeAnonymousID, Value: fmt.Sprintf("anon-%d", i)}}, nil, 10)
		if err != nil {
			t.Fatalf("events of message %d: %v", i, err)
		}
		if len(evs) != 1 || evs[0].MessageID != fmt.Sprintf("msg-%d", i) {
			t.Fatalf("message %d is stored %d times, want once", i, len(evs))
		}
	}
	storetest.CheckInvariants(t, s)
}

// TestKill9LosesNothingAcknowledged kills the server with SIGKILL at random
// moments while four clients ingest, restarts it, and checks that every
// message is stored exactly once.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	const n = 3000
	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	s := newSender(n)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills := 0
	for round := 0; !s.done() && round < 50; round++ {
		p := startServe(t, addr, dir)
		ctx, cancel := context.WithCancel(context.Background())
		finished := make(chan struct{})
		go func() { s.run(ctx, addr, 4); close(finished) }()
		if kills < 5 {
			select {
			case <-time.After(time.Duration(50+rng.IntN(500)) * time.Millisecond):
				p.kill(t)
				kills++
			case <-finished:
				p.stop(t)
			}
		} else {
			<-finished
			p.stop(t)
		}
		cancel()
		<-finished
	}
	if !s.done() {
		t.Fatalf("messages still unacknowledged after 50 restarts; statuses %v", s.statuses)
	}
	t.Logf("%d kills; answers by status: %v", kills, s.statuses)
	store, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	verifyDelivered(t, store, n)
}

func neo4jDSN(t *testing.T) string {
	t.Helper()
	uri, user, pass := backends.Neo4jURI(t)
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

// TestTwoProcessesShareNeo4j runs two servers on one Neo4j, ingesting
// overlapping data at once, and compares the profiles with one server
// ingesting the same data sequentially on the embedded store.
func TestTwoProcessesShareNeo4j(t *testing.T) {
	const n = 1500
	dsn := neo4jDSN(t)
	backends.OpenNeo4j(t) // locks and empties the test database
	uri, user, pass := backends.Neo4jURI(t)
	store := openSealedNeo4j(t, uri, user, pass)
	a, b := freeAddr(t), freeAddr(t)
	p1, p2 := startServe(t, a, dsn), startServe(t, b, dsn)
	s := newSender(n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() { s.run(ctx, a, 3); done <- struct{}{} }()
	go func() { s.run(ctx, b, 3); done <- struct{}{} }()
	<-done
	<-done
	p1.stop(t)
	p2.stop(t)
	if !s.done() {
		t.Fatalf("not every batch was acknowledged: %v", s.statuses)
	}
	verifyDelivered(t, store, n)
	concurrent := storetest.Partition(t, store)

	dir := filepath.Join(t.TempDir(), "seq")
	addr := freeAddr(t)
	p := startServe(t, addr, dir)
	seq := newSender(n)
	seq.run(context.Background(), addr, 1)
	p.stop(t)
	emb, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	sequential := storetest.Partition(t, emb)
	if strings.Join(concurrent, "\n") != strings.Join(sequential, "\n") {
		t.Fatalf("two processes on Neo4j made %d profiles, a sequential run %d; they differ", len(concurrent), len(sequential))
	}
	t.Logf("%d profiles, same partition", len(concurrent))
}

// TestNeo4jOutage stops Neo4j in the middle of ingestion: the service
// answers 503 with Retry-After meanwhile, recovers by itself when Neo4j is
// back, and loses nothing it acknowledged.
func TestNeo4jOutage(t *testing.T) {
	backends.Neo4jURI(t) // the same rule as every Neo4j test: never skipped under CI
	scripts, _ := filepath.Abs("../../scripts")
	dataDir := t.TempDir()
	port := strings.Split(freeAddr(t), ":")[1]
	startNeo4j := func() {
		t.Helper()
		cmd := exec.Command(filepath.Join(scripts, "neo4j-dev-start.sh"), dataDir, port)
		// A JVM started beside a whole test run on 2 cores can take more
		// than the script's default 120 s to open Bolt.
		cmd.Env = append(os.Environ(), "NEO4J_DEV_START_TIMEOUT=600")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("start neo4j: %v\n%s", err, out)
		}
	}
	stopNeo4j := func() {
		if out, err := exec.Command(filepath.Join(scripts, "neo4j-dev-stop.sh"), dataDir).CombinedOutput(); err != nil {
			t.Errorf("stop neo4j: %v\n%s", err, out)
		}
	}
	startNeo4j()
	t.Cleanup(stopNeo4j)
	dsn := "bolt://127.0.0.1:" + port
	addr := freeAddr(t)
	p := startServe(t, addr, dsn)
	defer p.stop(t)

	const n = 2000
	s := newSender(n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	finished := make(chan struct{})
	go func() { s.run(ctx, addr, 3); close(finished) }()
	time.Sleep(time.Second)
	stopNeo4j()
	time.Sleep(8 * time.Second)
	startNeo4j()
	<-finished
	if !s.done() {
		t.Fatalf("ingestion did not recover: %v", s.statuses)
	}
	if s.statuses[503] == 0 {
		t.Errorf("no 503 while Neo4j was down: %v", s.statuses)
	}
	if s.statuses[-503] > 0 {
		t.Errorf("%d answers of 503 without Retry-After", s.statuses[-503])
	}
	t.Logf("answers by status: %v", s.statuses)
	verifyDelivered(t, openSealedNeo4j(t, dsn, "", ""), n)
}
