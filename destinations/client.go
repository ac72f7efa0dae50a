package destinations

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClientOptions configure the HTTP client deliveries use.
type ClientOptions struct {
	URLPolicy
	// Timeout bounds one attempt, connection to last byte (default 10 s).
	Timeout time.Duration
	// MaxBody is how much of a response body is read (default 64 KiB);
	// the rest is dropped and the connection closed.
	MaxBody int64
}

// Client posts signed messages. It refuses, at connect time, every
// address its URLPolicy forbids (so a name that resolves to a public
// address when created and to 169.254.169.254 later is still refused),
// follows no redirect, uses no proxy, and reads at most MaxBody of an
// answer.
type Client struct {
	opts ClientOptions
	http *http.Client
}

// NewClient returns a client.
func NewClient(o ClientOptions) *Client {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	policy := o.URLPolicy
	dialer := &net.Dialer{
		Timeout: o.Timeout,
		// Control runs after resolution, on the very address dialled.
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("destination address %q: %w", address, err)
			}
			if err := policy.checkIP(net.IP(ap.Addr().Unmap().AsSlice())); err != nil {
				return &refusedError{err}
			}
			return nil
		},
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial in our place, past Control
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Client{opts: o, http: &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		// A redirect is the receiver's answer, not somewhere to go: it
		// could point at an internal address.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// refusedError is an address the policy forbids.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// Message is one signed webhook message.
type Message struct {
	ID   string // webhook-id: the same on every retry
	At   time.Time
	Body []byte
}

// Result is a receiver's answer to one attempt.
type Result struct {
	Status int // 0: no answer (refused, unreachable, timed out)
	// RetryAfter is the wait a 429 or 5xx asked for (0: none).
	RetryAfter time.Duration
	Err        string // why it failed, for health and dead letters
	Duration   time.Duration
}

// OK reports a 2xx answer.
func (r Result) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Send posts m to the URL, signed with each key (the current secret, and
// the previous one during a rotation's grace period), and returns the
// answer.
func (c *Client) Send(ctx context.Context, rawURL string, keys [][]byte, m Message) Result {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = Sign(k, m.ID, m.At, m.Body)
	}
	return c.post(ctx, rawURL, m.Body, map[string]string{
		"User-Agent":        "idgraph-webhooks/1",
		"webhook-id":        m.ID,
		"webhook-timestamp": strconv.FormatInt(m.At.Unix(), 10),
		// Standard Webhooks: space-delimited signatures, any one valid.
		"webhook-signature": strings.Join(sigs, " "),
	})
}

// Forward posts a Segment batch to a Segment-compatible API (its
// /v1/batch under the URL) with the source's write key, as Segment's own
// libraries do (Basic auth, the key as user name), and returns the answer.
func (c *Client) Forward(ctx context.Context, baseURL, writeKey string, batch []byte) Result {
	return c.post(ctx, strings.TrimRight(baseURL, "/")+"/v1/batch", batch, map[string]string{
		"User-Agent":    "idgraph-forwarder/1",
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":")),
	})
}

// post sends a JSON body with the headers and returns the answer.
func (c *Client) post(ctx context.Context, rawURL string, body []byte, header map[string]string) Result {
	start := time.Now()
	res := c.do(ctx, rawURL, body, header)
	res.Duration = time.Since(start)
	return res
}

func (c *Client) do(ctx context.Context, rawURL string, body []byte, header map[string]string) Result {
	u, err := c.opts.CheckURL(rawURL)
	if err != nil {
		return Result{Err: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Result{Err: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var refused *refusedError
		if errors.As(err, &refused) {
			return Result{Err: "refused: " + refused.Error()}
		}
		// The URL may carry a token in its query: say what failed without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Result{Err: "no answer: " + err.Error()}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxBody))
	res := Result{Status: resp.StatusCode}
	if !res.OK() {
		res.Err = fmt.Sprintf("HTTP %d", resp.StatusCode)
		if s := strings.TrimSpace(string(head[:min(len(head), 200)])); s != "" {
			res.Err += ": " + s
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			res.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	return res
}

// maxRetryAfter caps what a receiver may ask for.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		d = time.Duration(min(n, int(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
