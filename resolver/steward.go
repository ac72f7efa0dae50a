package resolver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/loaders"
	"github.com/idgraph/idgraph/schema"
)

// maxBulk bounds the IDs of one bulk decision and the identifiers of one split.
const maxBulk = 1000

// reviewPages bounds the store pages one filtered review-queue page reads.
const reviewPages = 20

// Caller is who sent a request: the key that authenticated it (its
// public id, or a fingerprint of a legacy key), its role, and whether that
// role may act as a steward.
type Caller struct {
	Actor   string
	Role    auth.Role
	Steward bool
	// Token is a personalisation token's claims (Role is then
	// auth.RolePersonalisation): `me` reads the visitor it is bound to.
	Token *auth.Token
}

type callerKey struct{}

// WithCaller records the request's caller for the resolvers.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns the request's caller (the zero Caller, with no role,
// when none was recorded).
func CallerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// steward returns the acting key's fingerprint, or forbids the action.
func steward(ctx context.Context) (string, error) {
	c, _ := ctx.Value(callerKey{}).(Caller)
	if !c.Steward {
		return "", graph.Errorf(graph.KindForbidden, "steward actions need a steward key; a read key can only look")
	}
	return c.Actor, nil
}

// admin forbids key management to every role but admin (the root field
// policy does too: this keeps the rule beside the action).
func admin(ctx context.Context) error {
	if c := CallerOf(ctx); c.Role != auth.RoleAdmin {
		return graph.Errorf(graph.KindForbidden, "managing keys needs an admin key")
	}
	return nil
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func jsonOf(v any) (schema.JSON, error) {
	b, err := json.Marshal(v)
	return schema.JSON(b), err
}

func cursor(prefix, pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + pos))
}

func decodeCursor(c *string, prefix string) (string, error) {
	if c == nil || *c == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*c)
	pos, ok := strings.CutPrefix(string(raw), prefix)
	if err != nil || !ok || pos == "" {
		return "", graph.FieldErrorf("after", "is not a cursor of this connection")
	}
	return pos, nil
}

func reviewMatches(e *graph.Edge, f *schema.ReviewFilter) bool {
	switch {
	case f == nil:
		return true
	case f.Reason != nil && e.Reason != *f.Reason,
		f.Source != nil && !slices.Contains(e.Sources, *f.Source),
		f.Type != nil && e.A.Type != *f.Type && e.B.Type != *f.Type,
		f.MinScore != nil && e.Score < *f.MinScore,
		f.MaxScore != nil && e.Score > *f.MaxScore:
		return false
	}
	return true
}

func (r *Resolver) normalizeInput(in schema.IdentifierInput, field string) (graph.Key, error) {
	k, err := r.Normalizer.Normalize(in.Type, in.Value)
	if err != nil {
		return graph.Key{}, graph.FieldErrorf(field, "%s", graph.ErrorMessage(err))
	}
	return k, nil
}

// profileOfKey is the live profile an identifier belongs to.
func (r *Resolver) profileOfKey(ctx context.Context, k graph.Key) (*schema.Profile, error) {
	n, err := r.Reader.Identifier(ctx, k)
	if err != nil {
		return nil, err
	}
	return live(ctx, n.Profile)
}

type decideFunc func(ctx context.Context, actor string, pair [2]graph.Key, note string) (*graph.AuditEntry, error)

func (r *mutationResolver) decide(ctx context.Context, id string, note *string, fn decideFunc) (*schema.StewardResult, error) {
	actor, err := steward(ctx)
	if err != nil {
		return nil, err
	}
	pair, err := graph.ParseEdgeID(id)
	if err != nil {
		return nil, err
	}
	return r.result(ctx)(fn(ctx, actor, pair, deref(note)))
}

func (r *mutationResolver) decideAll(ctx context.Context, ids []string, note *string, fn decideFunc) ([]*schema.BulkResult, error) {
	actor, err := steward(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) > maxBulk {
		return nil, graph.FieldErrorf("ids", "at most %d at once", maxBulk)
	}
	out := make([]*schema.BulkResult, len(ids))
	for i, id := range ids {
		res := &schema.BulkResult{ID: id}
		out[i] = res
		pair, err := graph.ParseEdgeID(id)
		if err == nil {
			res.Audit, err = fn(ctx, actor, pair, deref(note))
		}
		if err != nil {
			if graph.ErrorKind(err) == graph.KindInternal || graph.ErrorKind(err) == graph.KindUnavailable {
				return nil, err
			}
			res.Error, res.Code = ptr(graph.ErrorMessage(err)), ptr(ErrorCodes[graph.ErrorKind(err)])
		}
	}
	return out, nil
}

// ErrorCodes are the GraphQL error codes of the error kinds.
var ErrorCodes = map[graph.Kind]string{
	graph.KindInvalid:      "BAD_USER_INPUT",
	graph.KindUnauthorized: "UNAUTHENTICATED",
	graph.KindForbidden:    "FORBIDDEN",
	graph.KindNotFound:     "NOT_FOUND",
	graph.KindConflict:     "CONFLICT",
	graph.KindTooLarge:     "TOO_LARGE",
	graph.KindRateLimited:  "RATE_LIMITED",
	graph.KindUnavailable:  "UNAVAILABLE",
	graph.KindInternal:     "INTERNAL",
}

// result turns an action's audit entry into the mutation's answer, with
// the involved profiles as they are now (read past the request's loaders,
// which may hold them from before the action).
func (r *mutationResolver) result(ctx context.Context) func(*graph.AuditEntry, error) (*schema.StewardResult, error) {
	return func(a *graph.AuditEntry, err error) (*schema.StewardResult, error) {
		if err != nil {
			return nil, err
		}
		if graph.IsDryRun(ctx) {
			return &schema.StewardResult{DryRun: true, Audit: a, Profiles: []*schema.Profile{}}, nil
		}
		res := &schema.StewardResult{Audit: a}
		for _, s := range append(a.Before, a.After...) {
			loaders.For(ctx).Forget(s.ID)
		}
		seen := map[string]bool{}
		for _, id := range a.Profiles {
			p, err := r.liveProfile(ctx, id, "id")
			if err != nil {
				return nil, err
			}
			if !seen[p.ID] {
				seen[p.ID] = true
				res.Profiles = append(res.Profiles, &schema.Profile{Profile: p})
			}
		}
		return res, nil
	}
}

// liveProfile reads a profile by ID and follows it to the live one.
func (r *Resolver) liveProfile(ctx context.Context, id, field string) (*graph.Profile, error) {
	p, err := r.Reader.Profile(ctx, id)
	if graph.ErrorKind(err) == graph.KindNotFound {
		return nil, &graph.Error{Kind: graph.KindNotFound, Field: field, Msg: fmt.Sprintf("no profile %q", id)}
	}
	for err == nil && p.MergedInto != "" {
		p, err = r.Reader.Profile(ctx, p.MergedInto)
	}
	return p, err
}

// withDryRun marks the context for a dry run when the mutation asks for one.
func withDryRun(ctx context.Context, dryRun *bool) context.Context {
	if dryRun != nil && *dryRun {
		return graph.DryRun(ctx)
	}
	return ctx
}

func auditMatches(e *graph.AuditEntry, f *schema.AuditFilter) bool {
	return f == nil || (f.Action == nil || e.Action == *f.Action) && (f.Actor == nil || e.Actor == *f.Actor)
}
