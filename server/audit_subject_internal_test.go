package server

import (
	"encoding/json"
	"slices"
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
			act(person: String @subject, who: IdentifierInput @subject, many: [IdentifierInput!] @subject, profile: String @subject,
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
	if w := []string{"email:ann@corp.io", "phone:+14155550100", "user_id:u-7", "user_id:u-9"}; !slices.Equal(subjects, w) {
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
	if want := []string{"Mutation.erase(subject)", "Mutation.recordConsent(subject)"}; !slices.Equal(marked, want) {
		t.Errorf("arguments marked @subject: %v, want %v", marked, want)
	}
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
