// Package server is idgraph's HTTP server: the Segment-compatible
// collection API, record import, profile export, health and metrics.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segment"
)

// Size limits from Segment's HTTP Tracking API.
const (
	MaxMessageBytes = 32 << 10
	MaxBatchBytes   = 500 << 10
	MaxImportBytes  = 4 << 20
)

// Keys are the API keys: write keys send data, read keys read it.
type Keys struct {
	Write []string
	Read  []string
}

func matchKey(keys []string, k string) bool {
	ok := 0
	for _, want := range keys {
		ok |= subtle.ConstantTimeCompare([]byte(want), []byte(k))
	}
	return k != "" && ok == 1
}

// Server serves the HTTP API.
type Server struct {
	store    graph.Store
	stitcher *graph.Stitcher
	norm     *graph.Normalizer
	keys     Keys
	log      *slog.Logger
	metrics  *metrics
	now      func() time.Time
}

// New returns a server over the store.
func New(store graph.Store, stitcher *graph.Stitcher, norm *graph.Normalizer, keys Keys, log *slog.Logger) *Server {
	return &Server{store: store, stitcher: stitcher, norm: norm, keys: keys, log: log, metrics: newMetrics(),
		now: func() time.Time { return time.Now().UTC() }}
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for typ := range segment.Types {
		s.route(mux, "POST /v1/"+typ, s.handleMessage(typ))
	}
	s.route(mux, "POST /v1/batch", s.handleBatch)
	s.route(mux, "POST /v1/import", s.handleImport)
	s.route(mux, "GET /v1/export/profiles", s.handleExportProfiles)
	s.route(mux, "GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]any{"ok": true}) })
	s.route(mux, "GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, graph.Errorf(graph.KindNotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// route registers h with metrics and panic recovery.
func (s *Server) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: 200}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic", "route", pattern, "panic", p, "stack", string(debug.Stack()))
				writeError(sw, fmt.Errorf("panic: %v", p))
			}
			s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(sw.code)).Inc()
			s.metrics.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		}()
		h(sw, r)
	})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		writeError(w, &graph.Error{Kind: graph.KindUnavailable, Msg: "store unreachable", Err: err})
		return
	}
	writeJSON(w, 200, map[string]any{"ok": true})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

var statusOf = map[graph.Kind]int{
	graph.KindInvalid:      http.StatusBadRequest,
	graph.KindUnauthorized: http.StatusUnauthorized,
	graph.KindForbidden:    http.StatusForbidden,
	graph.KindNotFound:     http.StatusNotFound,
	graph.KindTooLarge:     http.StatusRequestEntityTooLarge,
	graph.KindUnavailable:  http.StatusServiceUnavailable,
}

// writeError answers with the status of the error's kind and a message that
// names the field at fault; internals are never shown.
func writeError(w http.ResponseWriter, err error) {
	kind := graph.ErrorKind(err)
	if errors.Is(err, context.DeadlineExceeded) {
		kind = graph.KindUnavailable
	}
	code, ok := statusOf[kind]
	if !ok {
		code = http.StatusInternalServerError
	}
	if kind == graph.KindUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	msg := graph.ErrorMessage(err)
	if kind == graph.KindUnavailable {
		msg = "store unavailable, retry later"
	}
	writeJSON(w, code, map[string]any{"success": false, "code": string(kind), "message": msg})
}

type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	messages   *prometheus.CounterVec
	merges     prometheus.Counter
	hubs       prometheus.Counter
	rejectedID prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_http_requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "idgraph_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idgraph_messages_total",
			Help: "Messages and records by outcome (stored, duplicate)."}, []string{"outcome"}),
		merges:     prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_merges_total", Help: "Profile merges."}),
		hubs:       prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_hubs_total", Help: "Values marked as hubs."}),
		rejectedID: prometheus.NewCounter(prometheus.CounterOpts{Name: "idgraph_rejected_identifiers_total", Help: "Identifier values refused (invalid or placeholder)."}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.messages, m.merges, m.hubs, m.rejectedID,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) record(r graph.Result, rejected int) {
	m.messages.WithLabelValues("stored").Add(float64(r.Stored))
	m.messages.WithLabelValues("duplicate").Add(float64(r.Duplicates))
	m.merges.Add(float64(r.Merges))
	m.hubs.Add(float64(r.Hubs))
	m.rejectedID.Add(float64(rejected))
}
