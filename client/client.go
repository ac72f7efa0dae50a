// Package client talks to an idgraph server: record import, profile
// export and load generation.
package client

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"
)

// Client sends requests to one server with one key.
type Client struct {
	Server string
	Key    string
	HTTP   *http.Client
	// Retries is how many times a request refused with 503 or lost on the
	// network is sent again (with backoff) before giving up.
	Retries int
	// Observe, when set, is told the status of every answer to a write,
	// retries included (0 and the error: lost on the network or timed
	// out). It may be called from several goroutines at once.
	Observe func(status int, err error)
}

// New returns a client for the server URL.
func New(server, key string) *Client {
	return &Client{Server: strings.TrimRight(server, "/"), Key: key, HTTP: &http.Client{Timeout: 2 * time.Minute}, Retries: 8}
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Code, e.Message) }

// PostWrite posts JSON with the write key as Basic auth user name and
// decodes the answer into out. Retries keep ingestion safe: the server
// de-duplicates by message ID.
func (c *Client) PostWrite(ctx context.Context, path string, body, out any) error {
	return c.post(ctx, path, body, out, false)
}

// PostBearer is PostWrite with the key as a bearer token (the steward key
// for /v1/match).
func (c *Client) PostBearer(ctx context.Context, path string, body, out any) error {
	return c.post(ctx, path, body, out, true)
}

func (c *Client) post(ctx context.Context, path string, body, out any, bearer bool) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("post %s: %w", path, err)
	}
	return c.postData(ctx, path, data, out, bearer)
}

// PostWriteJSON is PostWrite for a body already encoded.
func (c *Client) PostWriteJSON(ctx context.Context, path string, data []byte, out any) error {
	return c.postData(ctx, path, data, out, false)
}

func (c *Client) postData(ctx context.Context, path string, data []byte, out any, bearer bool) error {
	var err error
	backoff := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err = c.postOnce(ctx, path, data, out, bearer)
		se, isStatus := err.(*StatusError)
		retryable := err != nil && (!isStatus || se.Code == http.StatusServiceUnavailable || se.Code == http.StatusTooManyRequests)
		if !retryable || attempt >= c.Retries || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Client) postOnce(ctx context.Context, path string, data []byte, out any, bearer bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Server+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	if bearer {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	} else {
		req.SetBasicAuth(c.Key, "")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if c.Observe != nil {
		if err != nil {
			c.Observe(0, err)
		} else {
			c.Observe(resp.StatusCode, nil)
		}
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := checkStatus(resp); err != nil {
		return err
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// GetRead sends a GET with the read key as a bearer token and returns the
// open response body.
func (c *Client) GetRead(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.getReadResponse(ctx, path)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// getReadResponse is GetRead's whole response (its trailers are read once
// the body is).
func (c *Client) getReadResponse(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", path, err)
	}
	if err := checkStatus(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

func checkStatus(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var body struct {
		Message string `json:"message"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) != nil || body.Message == "" {
		body.Message = cmp.Or(firstErrorMessage(data), strings.TrimSpace(string(data)))
	}
	return &StatusError{Code: resp.StatusCode, Message: body.Message}
}

// ExportProfiles copies every profile, one JSON line each, to w.
func (c *Client) ExportProfiles(ctx context.Context, w io.Writer) error {
	_, err := c.ExportProfilesFor(ctx, w, "")
	return err
}

// ExportProfilesFor copies the profiles whose consent for purpose is
// granted ("" : every profile) to w, and returns the server's count of
// those withheld, by reason ("reason=n,…", the Idgraph-Consent-Withheld
// trailer; "" without a purpose).
func (c *Client) ExportProfilesFor(ctx context.Context, w io.Writer, purpose string) (string, error) {
	c.HTTP.Timeout = 0 // an export streams for as long as it takes
	path := "/v1/export/profiles"
	if purpose != "" {
		path += "?purpose=" + url.QueryEscape(purpose)
	}
	resp, err := c.getReadResponse(ctx, path)
	if err != nil {
		return "", fmt.Errorf("export profiles: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return "", fmt.Errorf("export profiles: %w", err)
	}
	return resp.Trailer.Get("Idgraph-Consent-Withheld"), nil
}

// ExportSubject writes everything the server holds about one person
// ("type:value" or "profile:<id>") to w as JSON lines (admin key).
func (c *Client) ExportSubject(ctx context.Context, subject string, w io.Writer) error {
	c.HTTP.Timeout = 0 // an export streams for as long as it takes
	body, err := c.GetRead(ctx, "/v1/export/subject?subject="+url.QueryEscape(subject))
	if err != nil {
		return fmt.Errorf("export subject: %w", err)
	}
	defer body.Close()
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("export subject: %w", err)
	}
	return nil
}
