package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// HostileRequest is one costly request a hostile client repeats: a body
// posted to a path, with the read key as a bearer token (/graphql) or the
// write key as Basic auth (everything else).
type HostileRequest struct {
	Path string
	Body []byte
}

// HostileStats counts the answers hostile clients got, by status (0: no
// answer, the network error counted instead).
type HostileStats struct {
	Requests int
	Status   map[int]int
	Errors   int
	FirstErr error
}

func (s HostileStats) String() string {
	codes := make([]int, 0, len(s.Status))
	for c := range s.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var b strings.Builder
	fmt.Fprintf(&b, "%d hostile requests answered", s.Requests)
	for _, c := range codes {
		fmt.Fprintf(&b, ", %d× %d", s.Status[c], c)
	}
	if s.Errors > 0 {
		fmt.Fprintf(&b, ", %d lost (%v)", s.Errors, s.FirstErr)
	}
	return b.String()
}

// Hostile runs clients goroutines that send reqs round and round, each
// over its own kept-alive connection and pausing pause between requests,
// until ctx ends.
// It costs the client little CPU (the bodies are built once), so that a
// measurement on one machine charges the hostile load to the server.
// readKey authenticates /graphql, writeKey the other paths.
func Hostile(ctx context.Context, server, readKey, writeKey string, reqs []HostileRequest, clients int, pause time.Duration) HostileStats {
	server = strings.TrimRight(server, "/")
	stats := HostileStats{Status: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: time.Minute}
			defer hc.CloseIdleConnections()
			for i := w; ctx.Err() == nil; i++ {
				r := reqs[i%len(reqs)]
				code, err := sendHostile(ctx, hc, server, readKey, writeKey, r)
				if ctx.Err() != nil {
					return // cut off by the end of the run: not an answer
				}
				mu.Lock()
				if err != nil {
					stats.Errors++
					stats.FirstErr = cmpErr(stats.FirstErr, err)
				} else {
					stats.Requests++
					stats.Status[code]++
				}
				mu.Unlock()
				select {
				case <-time.After(pause):
				case <-ctx.Done():
				}
			}
		}()
	}
	wg.Wait()
	return stats
}

func sendHostile(ctx context.Context, hc *http.Client, server, readKey, writeKey string, r HostileRequest) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.Path == "/graphql" {
		req.Header.Set("Authorization", "Bearer "+readKey)
	} else {
		req.SetBasicAuth(writeKey, "")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

func cmpErr(first, err error) error {
	if first != nil || errors.Is(err, context.Canceled) {
		return first
	}
	return err
}
