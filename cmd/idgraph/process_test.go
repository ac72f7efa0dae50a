package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/envelope"
	"github.com/idgraph/idgraph/neo4j"
)

// These tests run the real binary as separate processes: killed with
// SIGKILL, sharing one Neo4j, losing its Neo4j.

const (
	testWriteKey = "wk_proc"
	testReadKey  = "rk_proc"
)

var build struct {
	once sync.Once
	path string
	err  error
}

func binary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "idgraph-bin")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "idgraph")
		out, err := exec.Command("go", "build", "-race", "-o", build.path, ".").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is one running idgraph serve.
type proc struct {
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
}

// syncBuffer is the server's output: written by the process's copier,
// read by the test while the server runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs idgraph serve on the store, with more flags if given.
func startServe(t *testing.T, addr, store string, flags ...string) *proc {
	t.Helper()
	return startServeArgs(t, addr, append([]string{"--store", store, "--write-key", testWriteKey, "--read-key", testReadKey}, flags...)...)
}

// startServeArgs starts idgraph serve --addr addr with the other
// arguments and waits until it answers /healthz.
func startServeArgs(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	return startServeBinary(t, binary(t), addr, args...)
}

// startServeBinary is startServeArgs with another build of idgraph.
func startServeBinary(t *testing.T, bin, addr string, args ...string) *proc {
	t.Helper()
	p := &proc{addr: addr, log: &syncBuffer{}}
	p.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "bolt://") }) {
		p.cmd.Env = neo4jEnv(t)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Generous: on a fresh Neo4j, serve first creates the schema, which
	// takes minutes when the JVM competes with a whole test run for 2 cores.
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if p.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	t.Fatalf("idgraph serve did not come up on %s:\n%s", addr, p.log)
	return nil
}

// neo4jEnv is the environment of an idgraph command on the test Neo4j. A
// Neo4j store's default pepper file, and the erasure ledger and keyring
// beside it, are in the working directory, the package's source: keep
// tests out of it. One pepper, ledger and keyring for every command a test
// runs on the store, in a directory of the test's.
func neo4jEnv(t *testing.T) []string {
	t.Helper()
	env := os.Environ()
	if os.Getenv("IDGRAPH_PEPPER") == "" {
		env = append(env, "IDGRAPH_PEPPER="+strings.Repeat("5e", 32))
	}
	return append(env, "IDGRAPH_PEPPER_FILE="+filepath.Join(testDir(t), "idgraph.pepper"))
}

// testDirs maps a test's name to its directory for neo4jEnv.
var testDirs sync.Map

func testDir(t *testing.T) string {
	t.Helper()
	if p, ok := testDirs.Load(t.Name()); ok {
		return p.(string)
	}
	p, _ := testDirs.LoadOrStore(t.Name(), t.TempDir())
	return p.(string)
}

// testKeyring is the keyring file of the test's commands on Neo4j: beside
// the pepper file, by default (made by the first command that opens the
// store with it).
func testKeyring(t *testing.T) string {
	t.Helper()
	return filepath.Join(testDir(t), "idgraph.keyring")
}

// openSealedNeo4j opens the test Neo4j (already locked and emptied by
// backends.OpenNeo4j) with the test's keyring, to read what the servers
// it started stored encrypted.
func openSealedNeo4j(t *testing.T, uri, user, pass string) *neo4j.Store {
	t.Helper()
	ring, err := envelope.OpenKeyring(testKeyring(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := neo4j.Open(context.Background(), uri, user, pass, neo4j.WithKeyring(ring))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// gqlError is one GraphQL error of an answer.
type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// postGraphQL runs a query on the serve process at url ("http://" and its
// address) with the key as a bearer token, and returns the answer's data
// and errors; a failed request or an answer that is not GraphQL's JSON
// fails the test. Every test that asks serve over GraphQL goes through it.
func postGraphQL(t *testing.T, url, key, query string, vars map[string]any) (map[string]any, []gqlError) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Data   map[string]any `json:"data"`
		Errors []gqlError     `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("%s: status %d: %v", query, resp.StatusCode, err)
	}
	return res.Data, res.Errors
}

// serveGraphQL returns postGraphQL for the server and key, failing the
// test on any GraphQL error.
func serveGraphQL(t *testing.T, url, key string) func(query string, vars map[string]any) map[string]any {
	return func(query string, vars map[string]any) map[string]any {
		t.Helper()
		data, errs := postGraphQL(t, url, key, query, vars)
		if len(errs) > 0 {
			t.Fatalf("%s: %+v", query, errs)
		}
		return data
	}
}

// postAPI posts a body to one of serve's HTTP API routes (url is the
// route's) with the key as Basic auth, and returns the status; a failed
// request fails the test.
func postAPI(t *testing.T, url, key, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(key, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("idgraph serve exited with %v after SIGTERM:\n%s", err, p.log)
	}
}

// message i: its own anonymous ID, and one of 40 user IDs for every other
// message, so that batches merge profiles while they are killed.
func message(i int) map[string]any {
	m := map[string]any{"type": "identify", "messageId": fmt.Sprintf("msg-%d", i), "anonymousId": fmt.Sprintf("anon-%d", i)}
	if i%2 == 0 {
		m["userId"] = fmt.Sprintf("user-%d", i%40)
	}
	return m
}

// sendBatch posts the messages; it returns the status code, or 0 when the
// request failed on the network.
func sendBatch(addr string, ids []int) (int, http.Header) {
	msgs := make([]map[string]any, len(ids))
	for i, id := range ids {
		msgs[i] = message(id)
	}
	body, _ := json.Marshal(map[string]any{"batch": msgs})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/batch", bytes.NewReader(body))
	req.SetBasicAuth(testWriteKey, "")
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// sender sends batches of ten from a shared queue until ctx ends; batches
// that were not acknowledged go back on the queue to be sent again, as an
// SDK would retry them, so a batch may be delivered twice.
type sender struct {
	mu       sync.Mutex
	queue    [][]int
	acked    map[int]bool
	statuses map[int]int
}

func newSender(n int) *sender {
	s := &sender{acked: map[int]bool{}, statuses: map[int]int{}}
	for i := 0; i < n; i += 10 {
		var b []int
		for j := i; j < min(i+10, n); j++ {
			b = append(b, j)
		}
		s.queue = append(s.queue, b)
	}
	return s
}

func (s *sender) run(ctx context.Context, addr string, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s.mu.Lock()
				if len(s.queue) == 0 {
					s.mu.Unlock()
					return
				}
				b := s.queue[0]
				s.queue = s.queue[1:]
				s.mu.Unlock()
				code, hdr := sendBatch(addr, b)
				s.mu.Lock()
				s.statuses[code]++
				if code == 200 {
					for _, id := range b {
						s.acked[id] = true
					}
				} else {
					s.queue = append(s.queue, b)
					if code == 503 && hdr.Get("Retry-After") == "" {
						s.statuses[-503]++ // a 503 without Retry-After
					}
				}
				s.mu.Unlock()
				if code != 200 {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
}

func (s *sender) done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0
}
