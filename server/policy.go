package server

import (
	"context"
	"net/http"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/resolver"
)

// The role matrix (docs/security.md). Every route and every GraphQL root
// field has an entry; one without is denied to everyone, and
// TestEveryRouteHasAPolicy / TestEveryRootFieldHasAPolicy fail.
var (
	// ingest: the write key is public (it ships in web pages), so it may
	// only send data.
	ingest = auth.Allow(auth.RoleWrite, auth.RoleAdmin)
	// readers look people up: support agents too.
	readers = auth.Allow(auth.RoleRead, auth.RoleSupport, auth.RoleSteward, auth.RoleAdmin)
	// bulk reads many people at once (every profile, the review queue's
	// pairs, a prefix search over personal data): not for support agents,
	// who find one customer at a time by an exact identifier.
	bulk = auth.Allow(auth.RoleRead, auth.RoleSteward, auth.RoleAdmin)
	// stewards change how profiles are joined, and what segments are.
	stewards = auth.Allow(auth.RoleSteward, auth.RoleAdmin)
	// admins manage keys.
	admins = auth.Allow(auth.RoleAdmin)
	// minters hand personalisation tokens to visitors: the mint key may
	// do nothing else.
	minters = auth.Allow(auth.RoleMint, auth.RoleAdmin)
	// graphqlCallers reach /graphql: every reader, and personalisation
	// tokens, whose only root field is Query.me.
	graphqlCallers = auth.Allow(auth.RoleRead, auth.RoleSupport, auth.RoleSteward, auth.RoleAdmin, auth.RolePersonalisation)
	// visitors are personalisation tokens, reading their own visitor.
	visitors = auth.Allow(auth.RolePersonalisation)
)

// routePolicies is the policy of every route pattern Handler registers.
var routePolicies = func() map[string]auth.Policy {
	p := map[string]auth.Policy{
		"POST /v1/import":                 ingest,
		"POST /v1/match":                  stewards,
		"GET /v1/export/profiles":         bulk,
		"GET /v1/segments/{key}/{file}":   bulk,
		"GET /v1/export/subject":          admins,         // an access request: everything about one person
		"GET /graphql":                    graphqlCallers, // GraphiQL's page itself is static: it asks for a key
		"POST /graphql":                   graphqlCallers, // and each root field has its own (graphqlPolicies)
		"POST /v1/personalisation/tokens": minters,
		// The assertion, signed by the customer's backend, is the credential.
		"POST /v1/personalisation/exchange":    auth.Public,
		"OPTIONS /v1/personalisation/exchange": auth.Public,
		"OPTIONS /graphql":                     auth.Public,
		"/console/":                            auth.Public, // the console signs in with a key itself (consoleRole)
		"GET /healthz":                         auth.Public,
		"GET /readyz":                          auth.Public,
		"GET /metrics":                         auth.Public, // counts only; keep the port private
		"/":                                    auth.Public, // the 404 for everything else
		"POST /v1/m":                           auth.Public, // analytics-next's own metrics, dropped unread
		"OPTIONS /v1/m":                        auth.Public,
		"POST /v1/batch":                       ingest,
		"POST /v1/b":                           ingest,
		"POST /beacon/v1/batch":                ingest,
		"OPTIONS /v1/batch":                    auth.Public, // CORS preflights carry no credentials
		"OPTIONS /v1/b":                        auth.Public,
		"OPTIONS /beacon/v1/batch":             auth.Public,
	}
	for typ := range collect.Types {
		for _, path := range []string{"/v1/" + typ, "/v1/" + typ[:1]} {
			p["POST "+path] = ingest
			p["OPTIONS "+path] = auth.Public
		}
	}
	return p
}()

// graphqlPolicies is the policy of every root field, by "Type.field". A
// root __typename runs nothing (gqlgen answers it inline): it has none.
var graphqlPolicies = map[string]auth.Policy{
	"Query.profile":                           readers,
	"Query.consent":                           readers, // a profile's consent: what a reader needs before using its data
	"Mutation.recordConsent":                  stewards,
	"Mutation.setDestinationPurpose":          admins, // as every destination mutation (docs/activation.md)
	"Mutation.setDestinationIdentifierPolicy": admins, // as every destination mutation
	"Mutation.connectTrait":                   admins, // as connectSegment
	"Mutation.disconnectTrait":                admins,
	"Mutation.setDestinationBatchSize":        admins,
	"Query.lookup":                            readers,
	"Query.identifier":                        readers,
	"Query.profiles":                          bulk,
	"Query.search":                            bulk, // support: refusalHints
	"Query.matching":                          readers,
	"Query.segment":                           readers,
	"Query.segments":                          readers,
	"Query.computedTrait":                     readers,
	"Query.computedTraits":                    readers,
	"Query.validateDefinition":                readers,
	"Query.previewSegment":                    stewards, // a full scan: for those who write definitions
	"Query.previewComputedTrait":              stewards, // as previewSegment: for those who write definitions
	"Query.explainMembership":                 readers,
	"Query.explainComputedTrait":              readers,
	"Query.reviewQueue":                       bulk,
	"Query.auditLog":                          readers,
	"Query.auditEntry":                        readers,
	"Query.matchPreview":                      stewards,
	"Query.apiKeys":                           admins,
	"Query.destinations":                      admins,
	"Query.deliveryJobs":                      admins, // as every destination field (docs/activation.md)
	"Query.deliveries":                        admins,
	"Mutation.resync":                         admins,
	"Query.erasureReceipt":                    admins,
	"Query.retention":                         admins,
	"Query.__schema":                          admins, // every reading key in dev mode (devPolicies)
	"Query.__type":                            admins,
	"Query.me":                                visitors, // a token's own visitor: no key has one
	"Mutation.approveMatch":                   stewards,
	"Mutation.rejectMatch":                    stewards,
	"Mutation.approveMatches":                 stewards,
	"Mutation.rejectMatches":                  stewards,
	"Mutation.link":                           stewards,
	"Mutation.linkProfiles":                   stewards,
	"Mutation.split":                          stewards,
	"Mutation.undoMerge":                      stewards,
	"Mutation.undoSplit":                      stewards,
	"Mutation.createSegment":                  stewards,
	"Mutation.updateSegment":                  stewards,
	"Mutation.setSegmentEnabled":              stewards,
	"Mutation.deleteSegment":                  stewards,
	"Mutation.createComputedTrait":            stewards,
	"Mutation.updateComputedTrait":            stewards,
	"Mutation.setComputedTraitEnabled":        stewards,
	"Mutation.deleteComputedTrait":            stewards,
	"Mutation.createApiKey":                   admins,
	"Mutation.rotateApiKey":                   admins,
	"Mutation.revokeApiKey":                   admins,
	"Mutation.createDestination":              admins,
	"Mutation.rotateDestinationSecret":        admins,
	"Mutation.createSegmentForwarder":         admins,
	"Mutation.redeliver":                      admins,
	"Mutation.replayDeliveries":               admins,
	"Mutation.connectSegment":                 admins,
	"Mutation.disconnectSegment":              admins,
	"Mutation.setDestinationEnabled":          admins,
	"Mutation.testDestination":                admins,
	"Mutation.erase":                          admins,
	"Mutation.sweepRetention":                 admins, // deletes every expired event and profile at once
	"Subscription.profileChanged":             readers,
	"Subscription.segmentMembershipChanged":   bulk, // every member's changes: a bulk read
	"Subscription.computedTraitChanged":       bulk, // every profile's values: a bulk read
	// Suppression lists (docs/activation.md): hashes only, but who is
	// listed, and where, is the admin's business.
	"Query.suppressionEntries":       admins,
	"Query.suppressionCounts":        admins,
	"Mutation.addSuppressions":       admins,
	"Mutation.removeSuppressions":    admins,
	"Mutation.setDestinationChannel": admins,
}

type policyKey struct{}

// withPolicy records the route's policy for the handler's authorize call.
func withPolicy(ctx context.Context, pattern string) context.Context {
	return context.WithValue(ctx, policyKey{}, routeRule{pattern: pattern, policy: routePolicies[pattern]})
}

type routeRule struct {
	pattern string
	policy  auth.Policy
}

// ruleOf returns the rule route recorded for the request (the zero rule,
// which denies every role, when there is none).
func ruleOf(ctx context.Context) routeRule {
	rule, _ := ctx.Value(policyKey{}).(routeRule)
	return rule
}

// authorize authenticates the key and checks its role against the rule:
// 401 for a missing or bad key, 403 for a good key of the wrong role, with
// a message naming the roles that may.
func (s *Server) authorize(ctx context.Context, key string, rule routeRule) (resolver.Caller, error) {
	p, err := s.authenticate(ctx, key)
	if err != nil {
		return resolver.Caller{}, err
	}
	if !rule.policy.Allows(p.Role) {
		return resolver.Caller{}, graph.Errorf(graph.KindForbidden, "%s needs %s; this is a %s key", rule.what(), rule.policy, p.Role)
	}
	return callerOf(p), nil
}

func (r routeRule) what() string {
	if r.pattern == "" {
		return "this request"
	}
	return r.pattern
}

// devPolicies replace graphqlPolicies' entries in dev mode: introspection
// for every reading key (GraphiQL's documentation pane needs it).
var devPolicies = map[string]auth.Policy{"Query.__schema": readers, "Query.__type": readers}

// nestedPolicies guard nested fields that list many people: the root
// field's policy lets support in, these keep support to one customer.
var nestedPolicies = map[string]auth.Policy{
	"Segment.members": bulk,
}

// checkNestedField enforces nestedPolicies.
func (s *Server) checkNestedField(ctx context.Context, object, field string) error {
	pol, ok := nestedPolicies[object+"."+field]
	if c := resolver.CallerOf(ctx); ok && !pol.Allows(c.Role) {
		return graph.Errorf(graph.KindForbidden, "%s.%s needs %s; this is a %s key", object, field, pol, c.Role)
	}
	return nil
}

// refusalHints say why a role is refused a field, and what to use instead.
var refusalHints = map[string]map[auth.Role]string{
	"Query.search": {auth.RoleSupport: ": its query argument is a prefix search over personal data, which could enumerate " +
		"customers; a support key finds a customer by an exact identifier with lookup(type, value), identifier(type, value) or profile(id)"},
}

// checkRootField enforces graphqlPolicies: a field without an entry is
// denied to everyone.
func (s *Server) checkRootField(ctx context.Context, object, field string) error {
	pol, ok := graphqlPolicies[object+"."+field]
	if p, dev := devPolicies[object+"."+field]; dev && s.cfg.Dev {
		pol = p
	}
	if !ok {
		return graph.Errorf(graph.KindForbidden, "%s.%s has no access policy, so no key may use it", object, field)
	}
	c := resolver.CallerOf(ctx)
	if !pol.Allows(c.Role) {
		return graph.Errorf(graph.KindForbidden, "%s.%s needs %s; this is a %s key%s", object, field, pol, c.Role, refusalHints[object+"."+field][c.Role])
	}
	return nil
}

// denyUnpoliced answers every request to a route registered without a
// policy: default deny (and TestEveryRouteHasAPolicy fails).
func denyUnpoliced(pattern string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, graph.Errorf(graph.KindForbidden, "%s has no access policy, so no key may use it", pattern))
	}
}

// callerOf is the resolvers' view of a principal. Audit entries name a key
// by its public id; a legacy key, which has none, by a peppered HMAC of it
// (auth.LegacyID): an unsalted fingerprint (what older versions recorded)
// let anyone recover a short key from the audit log by brute force.
func callerOf(p auth.Principal) resolver.Caller {
	return resolver.Caller{Role: p.Role, Steward: p.Role == auth.RoleSteward || p.Role == auth.RoleAdmin,
		Actor: string(p.Role) + "-key:" + p.ID}
}
