package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
)

// Rate limits per key, and a throttle on failed authentication per
// address (docs/security.md, Limits).

// Rate is a token bucket: PerSecond requests a second on average, Burst at
// once.
type Rate struct {
	PerSecond float64
	Burst     int
}

func (r Rate) String() string {
	return strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + "/" + strconv.Itoa(r.Burst)
}

// DefaultRates are the requests a second each key may make, by role. A
// write key is public and shared by every page and app of a site, so it
// gets the most; the others belong to one integration or person.
var DefaultRates = map[auth.Role]Rate{
	auth.RoleWrite:   {PerSecond: 1000, Burst: 2000},
	auth.RoleMint:    {PerSecond: 200, Burst: 400}, // a token per page a backend serves
	auth.RoleRead:    {PerSecond: 100, Burst: 200},
	auth.RoleSupport: {PerSecond: 20, Burst: 40},
	auth.RoleSteward: {PerSecond: 50, Burst: 100},
	auth.RoleAdmin:   {PerSecond: 50, Burst: 100},
}

// DefaultAuthFailures is how many failed authentications an address may
// make in a burst; the allowance refills at that many a minute.
const DefaultAuthFailures = 20

// ParseRates reads --rate-limits: "write=1000/2000,read=100/200" (requests
// a second, then the burst; a role given alone with "off" is not
// limited). Roles not named keep DefaultRates; "off" alone turns every
// limit off.
func ParseRates(s string) (map[auth.Role]Rate, error) {
	out := map[auth.Role]Rate{}
	if strings.TrimSpace(s) == "off" {
		return out, nil
	}
	for r, v := range DefaultRates {
		out[r] = v
	}
	m, err := parseRoleList(s, func(v string) (Rate, error) {
		if v == "off" {
			return Rate{}, nil
		}
		rate, burst, ok := strings.Cut(v, "/")
		per, err1 := strconv.ParseFloat(rate, 64)
		b, err2 := strconv.Atoi(burst)
		if !ok || err1 != nil || err2 != nil || per <= 0 || b < 1 {
			return Rate{}, fmt.Errorf("want requests-a-second/burst, e.g. 100/200, or off")
		}
		return Rate{PerSecond: per, Burst: b}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	for r, v := range m {
		out[r] = v
	}
	return out, nil
}

// keyLimits holds a token bucket per key id, with each role's rate.
type keyLimits map[auth.Role]*buckets

func newKeyLimits(rates map[auth.Role]Rate, now func() time.Time) keyLimits {
	l := keyLimits{}
	for role, r := range rates {
		if b := newBuckets(float64(r.Burst), r.PerSecond, now); b != nil {
			l[role] = b
		}
	}
	return l
}

// take charges one request to the key; a wait over 0 refuses it.
func (l keyLimits) take(p auth.Principal) time.Duration {
	return l[p.Role].take(p.ID)
}

// limitedError refuses a request for a while: 429 with Retry-After.
type limitedError struct {
	err  *graph.Error
	wait time.Duration
}

func (e *limitedError) Error() string { return e.err.Error() }
func (e *limitedError) Unwrap() error { return e.err }

func rateLimited(wait time.Duration, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...) + ": retry in " + retryAfter(wait) + "s"
	return &limitedError{err: &graph.Error{Kind: graph.KindRateLimited, Msg: msg}, wait: wait}
}

// setRetryAfter sets Retry-After for an error that says how long to wait.
func setRetryAfter(w http.ResponseWriter, err error) {
	if le := (*limitedError)(nil); errors.As(err, &le) {
		w.Header().Set("Retry-After", retryAfter(le.wait))
	}
}

type clientKey struct{}

// withClient records the request's address for the authentication
// throttle.
func withClient(ctx context.Context, client string) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

// authenticate checks a key, throttling addresses that fail too often:
// past the burst an address is answered 429 before its key is looked at,
// so guessing keys costs a minute per DefaultAuthFailures guesses.
// Successes cost nothing. Then the key's own rate limit applies.
func (s *Server) authenticate(ctx context.Context, key string) (auth.Principal, error) {
	client, _ := ctx.Value(clientKey{}).(string)
	if client != "" {
		if wait := s.authFailures.wait(client); wait > 0 {
			s.metrics.rateLimited.WithLabelValues("auth_failures").Inc()
			return auth.Principal{}, rateLimited(wait, "too many failed authentications from %s", client)
		}
	}
	p, err := s.keyring.Authenticate(ctx, key)
	if err != nil {
		if client != "" && key != "" && graph.ErrorKind(err) == graph.KindUnauthorized {
			s.authFailures.charge(client)
		}
		return p, err
	}
	if wait := s.keyLimits.take(p); wait > 0 {
		s.metrics.rateLimited.WithLabelValues("key").Inc()
		return auth.Principal{}, rateLimited(wait, "key %s has passed its rate limit (%s requests a second)", p.ID, s.cfg.Rates[p.Role])
	}
	return p, nil
}
