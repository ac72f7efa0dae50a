package auth

import "strings"

// Policy says who may use a route or a GraphQL field. The zero Policy lets
// no one in: a route or field nobody gave a policy is denied.
type Policy struct {
	// Public lets anyone in, with or without a key (health checks, CORS
	// preflights, the console's sign-in page).
	Public bool
	// Roles may use it.
	Roles []Role
}

// Allow returns the policy that lets the roles in.
func Allow(roles ...Role) Policy { return Policy{Roles: roles} }

// Public is the policy of what needs no key.
var Public = Policy{Public: true}

// Allows reports whether a key of the role may use what the policy guards.
func (p Policy) Allows(r Role) bool {
	if p.Public {
		return true
	}
	for _, a := range p.Roles {
		if a == r {
			return true
		}
	}
	return false
}

// String names the roles for refusals: "a steward or admin key".
func (p Policy) String() string {
	switch {
	case p.Public:
		return "no key"
	case len(p.Roles) == 0:
		return "no key at all (denied to every role)"
	}
	names := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		names[i] = string(r)
	}
	s := names[len(names)-1]
	if len(names) > 1 {
		s = strings.Join(names[:len(names)-1], ", ") + " or " + s
	}
	article := "a"
	if strings.ContainsRune("aeiou", rune(s[0])) {
		article = "an"
	}
	return article + " " + s + " key"
}
