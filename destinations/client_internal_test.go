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

// TestJitterBounds: each wait is within ± the share of the step, the
// waits differ (they spread retries that failed together), and no share
// or no step leaves the step as it is.
func TestJitterBounds(t *testing.T) {
	tests := []struct {
		step  time.Duration
		share float64
	}{
		{5 * time.Second, 0.2}, {24 * time.Hour, 0.2}, {time.Minute, 0.5}, {time.Minute, 1},
	}
	for _, tc := range tests {
		lo := time.Duration(float64(tc.step) * (1 - tc.share))
		hi := time.Duration(float64(tc.step) * (1 + tc.share))
		seen := map[time.Duration]bool{}
		for range 1000 {
			got := jitter(tc.step, tc.share)
			if got < lo || got > hi {
				t.Fatalf("jitter(%v, %v) = %v, outside [%v, %v]", tc.step, tc.share, got, lo, hi)
			}
			seen[got] = true
		}
		if len(seen) < 100 {
			t.Errorf("jitter(%v, %v): %d distinct waits in 1000, want them spread", tc.step, tc.share, len(seen))
		}
	}
	for _, tc := range []struct {
		step  time.Duration
		share float64
	}{{time.Minute, 0}, {time.Minute, -1}, {0, 0.2}} {
		if got := jitter(tc.step, tc.share); got != tc.step {
			t.Errorf("jitter(%v, %v) = %v, want the step", tc.step, tc.share, got)
		}
	}
}
