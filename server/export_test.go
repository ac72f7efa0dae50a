package server

import "github.com/idgraph/idgraph/auth"

// RoutePolicies and GraphQLPolicies expose the role matrix to the tests.
var (
	RoutePolicies   = routePolicies
	GraphQLPolicies = graphqlPolicies
)

// Allowed reports whether the matrix lets the role use the root field.
func Allowed(field string, r auth.Role) bool { return graphqlPolicies[field].Allows(r) }

// SetMembersLookAhead sets how many pages a members export looks up at
// once (benchmarks compare); it returns a function restoring the default.
func SetMembersLookAhead(n int) (restore func()) {
	old := membersLookAhead
	membersLookAhead = n
	return func() { membersLookAhead = old }
}

// SetMembersPageData sets whether a members export reads its members'
// data with each page where the store can, or looks each page up
// (benchmarks compare); it returns a function restoring the default.
func SetMembersPageData(on bool) (restore func()) {
	old := membersPageData
	membersPageData = on
	return func() { membersPageData = old }
}
