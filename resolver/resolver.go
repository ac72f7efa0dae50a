// Package resolver implements the GraphQL schema. Resolvers are thin: they
// call the graph's reader and the request's loaders, nothing else.
package resolver

import (
	"context"
	"encoding/base64"
	"fmt"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/erase"
	"strconv"
	"strings"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/loaders"
	"github.com/idgraph/idgraph/mask"
	"github.com/idgraph/idgraph/match"
	"github.com/idgraph/idgraph/retention"
	"github.com/idgraph/idgraph/schema"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/suppression"
)

// Resolver is the root resolver.
type Resolver struct {
	Reader     graph.Reader
	Normalizer *graph.Normalizer
	Broker     *graph.Broker
	// Stitcher carries out steward actions.
	Stitcher *graph.Stitcher
	// Trainer says what the server decided for matching (nil: no
	// automatic training).
	Trainer *match.Trainer
	// MaxPage bounds every `first` argument.
	MaxPage int
	// Segments maintains segments (nil: serve without --segments), and
	// Backfill runs a new definition's backfill in the background.
	Segments *segments.Engine
	Backfill func(*segments.Definition)
	// Keyring creates, rotates, revokes and lists keys (admin).
	Keyring *auth.Keyring
	// Masking says which keys and identifier types hold personal data,
	// masked for support keys (nil: mask.Default).
	Masking *mask.Rules
	// Destinations manages webhook destinations (admin; nil: serve
	// without --segments).
	Destinations *destinations.Manager
	// Personalisation says what a personalisation token reads of its
	// visitor (nil: DefaultPersonalisation).
	Personalisation *Personalisation
	// Consent is the one consent check (nil: the store keeps no consent),
	// and Withheld counts what it withholds (path, purpose, reason) in the
	// metrics.
	Consent  *consent.Checker
	Withheld func(path, purpose, reason string)
	// Erasure erases and suppresses people (admin; nil: the store keeps
	// no erasures).
	Erasure *erase.Service
	// Suppression keeps the delivery suppression lists (admin; nil: not
	// available).
	Suppression *suppression.Lists
	// Retention sweeps expired events and profiles (admin; nil: this
	// server runs no retention).
	Retention *retention.Sweeper
}

// eraser returns the erasure service for an admin caller.
func (r *Resolver) eraser(ctx context.Context) (*erase.Service, error) {
	if c := CallerOf(ctx); c.Role != auth.RoleAdmin {
		return nil, graph.Errorf(graph.KindForbidden, "erasure needs an admin key")
	}
	if r.Erasure == nil {
		return nil, graph.Errorf(graph.KindInvalid, "erasure is not available on this server")
	}
	return r.Erasure, nil
}

// segments returns the segments engine, or says that segments are off.
func (r *Resolver) segments() (*segments.Engine, error) {
	if r.Segments == nil {
		return nil, graph.Errorf(graph.KindInvalid, "segments are off: run the server with --segments")
	}
	return r.Segments, nil
}

// destinations returns the destinations manager for an admin caller, or
// says that destinations are off.
func (r *Resolver) destinations(ctx context.Context) (*destinations.Manager, error) {
	if err := admin(ctx); err != nil {
		return nil, err
	}
	if r.Destinations == nil {
		return nil, graph.Errorf(graph.KindInvalid, "destinations are off: run the server with --segments")
	}
	return r.Destinations, nil
}

// pageSize checks a `first` argument.
func (r *Resolver) pageSize(first *int, def int) (int, error) {
	n := def
	if first != nil {
		n = *first
	}
	if n < 0 || n > r.MaxPage {
		return 0, graph.FieldErrorf("first", "must be between 0 and %d, not %d", r.MaxPage, n)
	}
	return n, nil
}

// live loads a profile and follows it to the profile it was merged into.
func live(ctx context.Context, id string) (*schema.Profile, error) {
	l := loaders.For(ctx)
	p, err := l.CachedProfile(ctx, id)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, graph.Errorf(graph.KindNotFound, "no profile %q", id)
	}
	out := &schema.Profile{Profile: p}
	if p.MergedInto != "" {
		survivor, err := l.CachedProfile(ctx, p.MergedInto)
		if err != nil {
			return nil, err
		}
		if survivor == nil {
			return nil, fmt.Errorf("profile %s merged into missing %s", id, p.MergedInto)
		}
		redirected := id
		out = &schema.Profile{Profile: survivor, RedirectedFrom: &redirected}
	}
	return out, nil
}

// normalize turns a query's type and value into a key as ingestion would.
func (r *Resolver) normalize(typ, value string) (graph.Key, error) {
	k, err := r.Normalizer.Normalize(typ, value)
	if err != nil {
		return graph.Key{}, graph.FieldErrorf("value", "%s", graph.ErrorMessage(err))
	}
	return k, nil
}

// Cursors are opaque to clients: base64 of the position.

func profileCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte("p:" + id)) }

func decodeProfileCursor(c *string) (string, error) {
	if c == nil || *c == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*c)
	id, ok := strings.CutPrefix(string(raw), "p:")
	if err != nil || !ok || id == "" {
		return "", graph.FieldErrorf("after", "is not a cursor of this connection")
	}
	return id, nil
}

func eventCursor(e *graph.Event) string {
	return base64.RawURLEncoding.EncodeToString([]byte("e:" + strconv.FormatInt(e.Timestamp.UnixNano(), 10) + ":" + e.ID))
}

func decodeEventCursor(c *string) (*graph.EventCursor, error) {
	if c == nil || *c == "" {
		return nil, nil
	}
	bad := graph.FieldErrorf("after", "is not a cursor of this connection")
	raw, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil {
		return nil, bad
	}
	parts := strings.SplitN(string(raw), ":", 3)
	if len(parts) != 3 || parts[0] != "e" || parts[2] == "" {
		return nil, bad
	}
	ns, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return nil, bad
	}
	return &graph.EventCursor{Timestamp: time.Unix(0, ns).UTC(), ID: parts[2]}, nil
}

func ptr[T any](v T) *T { return &v }
