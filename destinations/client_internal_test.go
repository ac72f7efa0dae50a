package destinations

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRefusedAtConnect: a name passes CheckURL, but what it resolves to
// is checked when dialling (DNS rebinding): "localhost" resolves to
// loopback here and the dial is refused; the same dial is allowed under
// AllowPrivate.
func TestRefusedAtConnect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	dial := func(p URLPolicy) error {
		c := NewClient(ClientOptions{URLPolicy: p, Timeout: 2 * time.Second})
		conn, err := c.http.Transport.(*http.Transport).DialContext(context.Background(), "tcp", net.JoinHostPort("localhost", port))
		if err == nil {
			conn.Close()
		}
		return err
	}
	err := dial(URLPolicy{AllowHTTP: true})
	var refused *refusedError
	if !errors.As(err, &refused) {
		t.Fatalf("dialling localhost under the strict policy: got %v, want refused", err)
	}
	if err := dial(URLPolicy{AllowHTTP: true, AllowPrivate: true}); err != nil {
		t.Fatalf("dialling localhost when private addresses are allowed: %v", err)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"5", 5 * time.Second}, {" 7 ", 7 * time.Second}, {"-3", 0}, {"soon", 0},
		{"999999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	}
	for _, tc := range tests {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestDefaultScheduleSpansAboutThreeDays(t *testing.T) {
	var total time.Duration
	for _, d := range DefaultSchedule {
		total += d
	}
	if total < 60*time.Hour || total > 84*time.Hour {
		t.Fatalf("the default schedule spans %v, want about three days", total)
	}
}
