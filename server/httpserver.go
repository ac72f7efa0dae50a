package server

import (
	"cmp"
	"net/http"
	"time"
)

// Timeouts bound the HTTP server's connections: a client that sends its
// headers slowly, or stops reading an answer, holds a connection no longer
// than these. Zero fields take DefaultTimeouts'.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, its body included.
	Read time.Duration
	// Write bounds writing an answer, from the end of the request's
	// headers. Streaming answers (the profile export, the console's
	// exports) get it afresh before each write, so they may last as long
	// as the client keeps reading; subscriptions over WebSocket leave it
	// (and Read) once upgraded: they have their own keep-alive pings.
	Write time.Duration
	// Idle bounds a kept-alive connection between requests.
	Idle time.Duration
}

// DefaultTimeouts are serve's.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 60 * time.Second, Write: 60 * time.Second, Idle: 120 * time.Second}

func (t Timeouts) orDefaults() Timeouts {
	d := DefaultTimeouts
	return Timeouts{ReadHeader: cmp.Or(t.ReadHeader, d.ReadHeader), Read: cmp.Or(t.Read, d.Read), Write: cmp.Or(t.Write, d.Write), Idle: cmp.Or(t.Idle, d.Idle)}
}

// HTTPServer returns the HTTP server for Handler, with the configured
// timeouts; the caller sets its address or listener.
func (s *Server) HTTPServer() *http.Server {
	t := s.cfg.Timeouts
	return &http.Server{Handler: s.Handler(), ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write,
		IdleTimeout: t.Idle, MaxHeaderBytes: 64 << 10}
}

// streaming gives each write of h's answer the whole write timeout again,
// through http.ResponseController: a long export goes on while its client
// reads, and one that stops reading is cut off within the timeout.
func (s *Server) streaming(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h(&deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: s.cfg.Timeouts.Write}, r)
	}
}

type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) // ErrNotSupported (an in-memory writer) needs none
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *deadlineWriter) Flush() { _ = w.rc.Flush() }

// unbounded lifts the connection's read and write deadlines before a
// WebSocket upgrade: the hijacked connection keeps them otherwise, and
// every subscription would end at the server's timeouts.
func unbounded(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}
