package server

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/pebble"
	"github.com/idgraph/idgraph/schema"
)

// TestAuditTargetHashesSubjectArguments: an argument marked @subject is
// kept in a mutation's entry only as its keyed hash, whatever it is
// called, and names its person as a subject; an argument called subject
// that is not marked, and every other argument, is kept as given.
func TestAuditTargetHashesSubjectArguments(t *testing.T) {
	def := mutationField(t, `
		directive @subject on ARGUMENT_DEFINITION
		input IdentifierInput { type: String!, value: String! }
		type Query { q: Int }
		type Mutation {
			act(person: String @subject, who: IdentifierInput @subject, edge: ID @subject, many: [IdentifierInput!] @subject, profile: String @subject,
				subject: String, other: IdentifierInput, definition: String, note: String): Int
		}`, "act")
	store, err := pebble.OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log, err := audit.Open(store, []byte("audit-subject-pepper-0123456789ab"))
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Audit: log}, norm: graph.NewNormalizer("US")}
	hmac := func(subject string) string { return "hmac:" + log.SubjectHash(subject) }

	target, subjects := s.auditTarget(def, map[string]any{
		"person":     "email: Ann@Corp.io ",
		"who":        map[string]any{"type": "phone", "value": "(415) 555-0100"},
		"edge":       graph.EdgeID(graph.Pair(graph.Key{Type: "email", Value: "cy@corp.io"}, graph.Key{Type: "user_id", Value: "u-3"})),
		"many":       []any{map[string]any{"type": "user_id", "value": "u-7"}},
		"profile":    "prof_123", // a profile ID names no identifier
		"subject":    "email:bob@corp.io",
		"other":      map[string]any{"type": "user_id", "value": "u-9"},
		"definition": `trait("plan") = "pro"`,
		"note":       "call Ann on her mobile",
	})
	got, _ := json.Marshal(target)
	want, _ := json.Marshal(map[string]any{
		"person":           hmac("email:ann@corp.io"),
		"who":              hmac("phone:+14155550100"),
		"edge":             []any{hmac("email:cy@corp.io"), hmac("user_id:u-3")},
		"many":             []any{hmac("user_id:u-7")},
		"profile":          "prof_123",
		"subject":          "email:bob@corp.io",
		"other":            map[string]any{"type": "user_id", "value": "u-9"},
		"definitionSha256": "fbffd6ab160d0c082099418f117ea3a26b705d53193b2a16681ce1b7d908bb8c",
	})
	if string(got) != string(want) {
		t.Errorf("target\n got %s\nwant %s", got, want)
	}
	slices.Sort(subjects)
	if w := []string{"email:ann@corp.io", "email:cy@corp.io", "phone:+14155550100", "user_id:u-3", "user_id:u-7", "user_id:u-9"}; !slices.Equal(subjects, w) {
		t.Errorf("subjects %v, want %v", subjects, w)
	}
}

// TestSubjectArgumentsOfTheSchema: the arguments that name the person an
// action is about are the ones the schema marks @subject.
func TestSubjectArgumentsOfTheSchema(t *testing.T) {
	sch := schema.NewExecutableSchema(schema.Config{}).Schema()
	var marked []string
	for _, typ := range []*ast.Definition{sch.Query, sch.Mutation, sch.Subscription} {
		for _, f := range typ.Fields {
			for _, a := range f.Arguments {
				if isSubjectArg(f, a.Name) {
					marked = append(marked, typ.Name+"."+f.Name+"("+a.Name+")")
				}
			}
		}
	}
	slices.Sort(marked)
	want := []string{
		"Mutation.addSuppressions(entries)",
		"Mutation.approveMatch(id)", "Mutation.approveMatches(ids)",
		"Mutation.erase(subject)",
		"Mutation.link(a)", "Mutation.link(b)",
		"Mutation.recordConsent(subject)",
		"Mutation.rejectMatch(id)", "Mutation.rejectMatches(ids)",
		"Mutation.removeSuppressions(entries)",
		"Mutation.split(identifiers)",
	}
	if !slices.Equal(marked, want) {
		t.Errorf("arguments marked @subject: %v, want %v", marked, want)
	}
}

// TestIdentifierArgumentsAreMarked: every mutation argument that can carry
// an identifier or a personal value (of type IdentifierInput, an input
// object holding one, or named like one) is marked @subject, so that a new
// mutation cannot put a readable identifier in the audit chain.
func TestIdentifierArgumentsAreMarked(t *testing.T) {
	sch := schema.NewExecutableSchema(schema.Config{}).Schema()
	for _, f := range sch.Mutation.Fields {
		for _, a := range f.Arguments {
			if why := personalArg(sch, a.Name, a.Type, map[string]bool{}); why != "" && !isSubjectArg(f, a.Name) {
				t.Errorf("Mutation.%s(%s) %s but is not marked @subject (schema/subject.graphqls)", f.Name, a.Name, why)
			}
		}
	}
}

// personalArg says why an argument (or an input field) may carry a
// person's identifier, or "" when it cannot.
func personalArg(sch *ast.Schema, name string, typ *ast.Type, seen map[string]bool) string {
	lower := strings.ToLower(name)
	for _, w := range []string{"identifier", "email", "phone", "value", "subject"} {
		if strings.Contains(lower, w) {
			return "is named like an identifier"
		}
	}
	for typ.Elem != nil {
		typ = typ.Elem
	}
	if typ.NamedType == "IdentifierInput" {
		return "is an identifier"
	}
	def := sch.Types[typ.NamedType]
	if def == nil || def.Kind != ast.InputObject || seen[def.Name] {
		return ""
	}
	seen[def.Name] = true
	for _, fd := range def.Fields {
		if why := personalArg(sch, fd.Name, fd.Type, seen); why != "" {
			return "holds " + def.Name + "." + fd.Name + ", which " + why
		}
	}
	return ""
}

// mutationField parses a schema and returns one of its mutations.
func mutationField(t *testing.T, sdl, name string) *ast.FieldDefinition {
	t.Helper()
	sch, err := gqlparser.LoadSchema(&ast.Source{Name: "test.graphqls", Input: sdl})
	if err != nil {
		t.Fatal(err)
	}
	return sch.Mutation.Fields.ForName(name)
}

// TestPersonReadFieldsAreAudited: every root query field that names one
// person (by a profile ID, an identifier, or a filter by profile) is a
// person read, so a new one cannot show a person's data unaudited.
func TestPersonReadFieldsAreAudited(t *testing.T) {
	sch := schema.NewExecutableSchema(schema.Config{}).Schema()
	for _, f := range sch.Query.Fields {
		names := f.Name == "profile"
		for _, a := range f.Arguments {
			switch a.Name {
			case "profileId", "subject", "value":
				names = true
			}
			if in := sch.Types[a.Type.Name()]; in != nil && in.Kind == ast.InputObject && in.Fields.ForName("profileId") != nil {
				names = true
			}
		}
		if names && !personReads[f.Name] {
			t.Errorf("Query.%s reads one person but is not audited (personReads)", f.Name)
		}
	}
}
