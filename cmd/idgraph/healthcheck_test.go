package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct {
		addr, path, want string
	}{
		{":8080", "/readyz", "http://127.0.0.1:8080/readyz"},
		{"0.0.0.0:8080", "/healthz", "http://127.0.0.1:8080/healthz"},
		{"[::]:9000", "/readyz", "http://[::1]:9000/readyz"},
		{"10.1.2.3:80", "/readyz", "http://10.1.2.3:80/readyz"},
		{"localhost:8080", "/readyz", "http://localhost:8080/readyz"},
		{"8080", "/readyz", ""},
		{":8080", "readyz", ""},
		{":8080", "", ""},
	} {
		got, err := healthURL(tc.addr, tc.path)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("healthURL(%q, %q) = %q, %v; want %q", tc.addr, tc.path, got, err, tc.want)
		}
	}
}

// The healthcheck passes on 200 only: a 503 (store unreachable), another
// path's 404 and a closed port all fail it.
func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/healthz":
			w.Write([]byte(`{"ok":true}`))
		default:
			http.NotFound(w, r)
		}
	}))
	addr := strings.TrimPrefix(srv.URL, "http://")
	closed := freeAddr(t)
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--addr", addr, "--path", "/healthz"}, true},
		{[]string{"--addr", addr}, false},
		{[]string{"--addr", addr, "--path", "/nope"}, false},
		{[]string{"--addr", closed, "--path", "/healthz"}, false},
		{[]string{"--addr", "nope"}, false},
	} {
		err := runHealthcheck(context.Background(), tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("healthcheck %v = %v; want ok %v", tc.args, err, tc.ok)
		}
	}
	srv.Close()
}
