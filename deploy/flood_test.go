package deploy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bomb is one hostile request of the flood.
type bomb struct {
	name, path, auth string
	header           map[string]string
	body             []byte
}

// bombs are the oversized payloads and complexity bombs of issue 14's
// security tests, each refused by a limit before it executes.
func bombs(t *testing.T) []bomb {
	t.Helper()
	gql := func(q string) []byte { b, _ := json.Marshal(map[string]string{"query": q}); return b }
	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 200 {
		fmt.Fprintf(&aliases, ` a%d: lookup(type: "user_id", value: "u-1") { graph { edges { a { type value } b { type value } } } }`, i)
	}
	aliases.WriteString("}")
	fields := "{ lookup(type: \"user_id\", value: \"u-1\") {" + strings.Repeat(" id", 20000) + " } }"
	deep := strings.Repeat("{ profile(id: \"p\") ", 1) + strings.Repeat("{ identifiers { profile ", 12) + "{ id }" + strings.Repeat(" } }", 12) + " }"
	var zeros bytes.Buffer
	zw := gzip.NewWriter(&zeros)
	zw.Write([]byte(`{"batch":[{"type":"track","event":"`))
	zw.Write(make([]byte, 50<<20))
	zw.Close()
	nested := strings.Repeat("[", 4<<20)
	big := `{"batch":[` + strings.Repeat(`{"type":"track","event":"Seen","userId":"u-1","properties":{"pad":"`+strings.Repeat("x", 1000)+`"}},`, 600) + `{}]}`
	bearer, basic := "Bearer "+floodRead, "Basic "+basicUser(floodWrite)
	return []bomb{
		{name: "200 aliases of a graph", path: "/graphql", auth: bearer, body: gql(aliases.String())},
		{name: "20,000 fields (tokens)", path: "/graphql", auth: bearer, body: gql(fields)},
		{name: "depth 26", path: "/graphql", auth: bearer, body: gql(deep)},
		{name: "GraphQL body 100 KB", path: "/graphql", auth: bearer, body: gql(`{ __typename }` + strings.Repeat(" ", 100<<10))},
		{name: "batched operations", path: "/graphql", auth: bearer, body: []byte(`[` + strings.Repeat(`{"query":"{ __typename }"},`, 50) + `{"query":"{ __typename }"}]`)},
		{name: "gzip bomb (50 MB inflated)", path: "/v1/batch", auth: basic, header: map[string]string{"Content-Encoding": "gzip"}, body: zeros.Bytes()},
		{name: "batch 600 KB", path: "/v1/batch", auth: basic, body: []byte(big)},
		{name: "import nested 4 MB", path: "/v1/import", auth: basic, body: []byte(nested)},
		{name: "track nested 10,000", path: "/v1/track", auth: basic, body: []byte(strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000))},
	}
}

const (
	floodWrite = "wk_flood"
	floodRead  = "rk_flood"
	floodUsers = 500
)

// TestBombFlood runs the binary built as the image builds it (embedded
// store) and measures, with 100 concurrent clients sending the bombs above
// round and round from another address (127.0.0.2) than the lookups: how
// long each takes to be refused, the server's RSS growth, and normal
// lookups' p99 against a baseline without the flood. Twice: with the
// per-address refusal limit off (--refusal-burst 0: every bomb meets its
// own limit) and at its default. It asserts what does not depend on the
// machine (every bomb refused with a 4xx or a GraphQL error, never a 5xx
// or executed) and prints the figures (docs/benchmarks.md, "Bomb flood").
func TestBombFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a load measurement")
	}
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("no 127.0.0.2 to send the flood from: %v", err)
	} else {
		ln.Close()
	}
	bin := imageBinary(t)
	bs := bombs(t)
	for _, burst := range []string{"0", ""} {
		name := map[string]string{"0": "refusal limit off", "": "refusal limit default"}[burst]
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			root := t.TempDir()
			addr := freeLoopback(t)
			env := map[string]string{"IDGRAPH_ADDR": addr, "IDGRAPH_STORE": filepath.Join(root, "data"),
				"IDGRAPH_PEPPER_FILE": filepath.Join(root, "idgraph.pepper"), "IDGRAPH_WRITE_KEY": floodWrite,
				"IDGRAPH_READ_KEY": floodRead, "IDGRAPH_RATE_LIMITS": "off", "IDGRAPH_MODEL": "off", "TMPDIR": root}
			if burst != "" {
				env["IDGRAPH_REFUSAL_BURST"] = burst
			}
			p := start(t, bin, root, "", env, []string{"serve"})
			waitReady(t, p, addr)
			seed(t, addr)
			base := lookups(t, addr, nil)
			rssBefore := rss(t, p.cmd.Process.Pid, "VmRSS")
			cpuBefore := cpuTicks(p.cmd.Process.Pid)

			stop := make(chan struct{})
			var (
				mu        sync.Mutex
				lat       []time.Duration
				statuses  = map[string]int{}
				peak      atomic.Int64
				wg        sync.WaitGroup
				serverErr atomic.Int64
			)
			go func() { // sample the server's RSS during the flood
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
						if v := rss(t, p.cmd.Process.Pid, "VmRSS"); v > peak.Load() {
							peak.Store(v)
						}
					}
				}
			}()
			hostile := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100,
				DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
			for c := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := c; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						b := bs[i%len(bs)]
						status, d := send(hostile, addr, b)
						mu.Lock()
						lat = append(lat, d)
						statuses[b.name+" "+status]++
						mu.Unlock()
						if strings.HasPrefix(status, "5") || status == "200 executed" {
							serverErr.Add(1)
						}
					}
				}()
			}
			time.Sleep(500 * time.Millisecond) // the flood under way
			during := lookups(t, addr, stop)
			close(stop)
			wg.Wait()
			cpu := time.Duration(cpuTicks(p.cmd.Process.Pid)-cpuBefore) * 10 * time.Millisecond // USER_HZ 100

			slices.Sort(lat)
			over := len(lat) - sort(lat, 50*time.Millisecond)
			t.Logf("%s: %d bombs from 100 clients in %v; refused in p50 %v, p99 %v, max %v; %d (%.1f%%) took over 50 ms",
				name, len(lat), during.wall.Round(time.Millisecond), pct(lat, 50), pct(lat, 99), lat[len(lat)-1].Round(time.Millisecond), over, 100*float64(over)/float64(len(lat)))
			t.Logf("%s: server CPU %v in %v of flood (%.2f ms a request, lookups included)", name, cpu, during.wall.Round(time.Millisecond),
				float64(cpu.Microseconds())/1000/float64(len(lat)+len(during.lat)))
			t.Logf("%s: server RSS %d MB before, peak %d MB during (growth %d MB); VmHWM %d MB", name, rssBefore>>10, peak.Load()>>10,
				(peak.Load()-rssBefore)>>10, rss(t, p.cmd.Process.Pid, "VmHWM")>>10)
			t.Logf("%s: lookups alone p50 %v p99 %v (%.0f/s); during the flood p50 %v p99 %v (%.0f/s): p99 ratio %.2f", name,
				pct(base.lat, 50), pct(base.lat, 99), base.rate(), pct(during.lat, 50), pct(during.lat, 99), during.rate(),
				float64(pct(during.lat, 99))/float64(pct(base.lat, 99)))
			var keys []string
			for k := range statuses {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				t.Logf("%s:   %s × %d", name, k, statuses[k])
			}
			if n := serverErr.Load(); n > 0 {
				t.Errorf("%d bombs answered 5xx or executed", n)
			}
			if during.failed > 0 || base.failed > 0 {
				t.Errorf("lookups failed: %d alone, %d during the flood", base.failed, during.failed)
			}
			p.stop(t)
		})
	}
}

// sort returns how many of the sorted durations are at most d.
func sort(sorted []time.Duration, d time.Duration) int {
	i, _ := slices.BinarySearch(sorted, d+1)
	return i
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)].Round(10 * time.Microsecond)
}

// send posts a bomb and reads its answer: "413", "400", "429", "200 refused"
// (a GraphQL error), "200 executed", or "closed" (the server closed the
// connection unread).
func send(c *http.Client, addr string, b bomb) (string, time.Duration) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+b.path, bytes.NewReader(b.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", b.auth)
	for k, v := range b.header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.Do(req)
	d := time.Since(start)
	if err != nil {
		return "closed", d
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode == 200 {
		if bytes.Contains(body, []byte(`"errors"`)) {
			return "200 refused", d
		}
		return "200 executed", d
	}
	return strconv.Itoa(resp.StatusCode), d
}

// seed stores floodUsers people, one batch.
func seed(t *testing.T, addr string) {
	t.Helper()
	var msgs []string
	for i := range floodUsers {
		msgs = append(msgs, fmt.Sprintf(`{"type":"identify","userId":"u-%d","anonymousId":"a-%d","traits":{"email":"u%d@corp.io"}}`, i, i, i))
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(msgs, ",")+`]}`))
	req.Header.Set("Authorization", "Basic "+basicUser(floodWrite))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("seed: %v %v", resp, err)
	}
	resp.Body.Close()
}

type lookupRun struct {
	lat    []time.Duration
	wall   time.Duration
	failed int
}

func (r lookupRun) rate() float64 { return float64(len(r.lat)) / r.wall.Seconds() }

// lookups runs 2,000 GraphQL lookups from 4 clients on 127.0.0.1, for 5 s
// at most (stop, if given, ends them early too), and returns their sorted
// latencies.
func lookups(t *testing.T, addr string, stop chan struct{}) lookupRun {
	t.Helper()
	var (
		mu  sync.Mutex
		run lookupRun
		wg  sync.WaitGroup
	)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	start := time.Now()
	deadline := make(chan struct{})
	timer := time.AfterFunc(5*time.Second, func() { close(deadline) })
	defer timer.Stop()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				select {
				case <-stop:
					return
				case <-deadline:
					return
				default:
				}
				q, _ := json.Marshal(map[string]string{"query": fmt.Sprintf(`{ lookup(type: "user_id", value: "u-%d") { id } }`, (w*500+i)%floodUsers)})
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+addr+"/graphql", bytes.NewReader(q))
				req.Header.Set("Authorization", "Bearer "+floodRead)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := c.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					ok = ok && !bytes.Contains(body, []byte(`"errors"`))
				}
				d := time.Since(t0)
				mu.Lock()
				if ok {
					run.lat = append(run.lat, d)
				} else {
					run.failed++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	run.wall = time.Since(start)
	slices.Sort(run.lat)
	return run
}

// cpuTicks is the process's user + system CPU time in clock ticks
// (/proc/PID/stat fields 14 and 15).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(b), ") ") // the command name may hold spaces
	f := strings.Fields(rest)
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// rss reads a size field (kB) of /proc/PID/status.
func rss(t *testing.T, pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
