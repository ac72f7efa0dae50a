package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/server"
)

// runCeiling serves /v1/batch with a handler that only decodes each message
// and fsync-appends the batch to a file: the ceiling that idgraph's ingest
// figures are reported beside (docs/benchmarks.md).
func runCeiling(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench-ceiling", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	dir := fs.String("dir", os.TempDir(), "directory for the append-only file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(*dir, "idgraph-ceiling.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := &collect.Decoder{Normalizer: graph.NewNormalizer("US"), Source: "ceiling"}
	var mu sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, server.MaxBatchBytes+1))
		var b collect.Batch
		if err == nil {
			err = collect.Unmarshal(body, &b, "")
		}
		now := time.Now()
		for _, raw := range b.Batch {
			if err == nil {
				_, err = dec.DecodeMessage("", raw, now, b.SentAt, b.Context)
			}
		}
		if err == nil {
			mu.Lock()
			if _, err = f.Write(body); err == nil {
				err = f.Sync()
			}
			mu.Unlock()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"success":true}`)
	})
	mux := http.NewServeMux()
	mux.Handle("/v1/batch", h)
	mux.HandleFunc("/graphql", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Query     string         `json:"query"`
			Variables map[string]any `json:"variables"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 256<<10)).Decode(&req); err != nil || req.Query == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, fixedProfile)
	})
	hs := &http.Server{Addr: *addr, Handler: mux}
	go func() { <-ctx.Done(); hs.Close() }()
	fmt.Fprintln(os.Stderr, "ceiling handler on", *addr)
	if err := hs.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// fixedProfile is what the lookup benchmark's query returns for a profile
// with 10 identifiers.
const fixedProfile = `{"data":{"lookup":{"id":"p_18ec7834467dea3ec3adcf220e5d","traits":{"email":"lk1@bench.io","name":"Bench Person 1","phone":"+14151000001","plan":"pro"},"identifiers":[{"type":"advertising_id","value":"lk-ad-1"},{"type":"anonymous_id","value":"lk-anon-1-0"},{"type":"anonymous_id","value":"lk-anon-1-1"},{"type":"anonymous_id","value":"lk-anon-1-2"},{"type":"anonymous_id","value":"lk-anon-1-3"},{"type":"crm_id","value":"C-1"},{"type":"device_id","value":"lk-dev-1"},{"type":"email","value":"lk1@bench.io"},{"type":"phone","value":"+14151000001"},{"type":"user_id","value":"lk-user-1"}]}}}`
