package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/resolver"
	"github.com/idgraph/idgraph/schema"
)

// requestID returns the request's id: the client's X-Request-Id when it
// is a plain token of at most 64 characters (so a proxy's id joins the
// audit entry to its logs), else a random one.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	ok := len(id) > 0 && len(id) <= 64 && !strings.ContainsFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')
	})
	if ok {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// withAuditRequest records the request's id and remote address for audit
// entries, and answers the id in X-Request-Id.
func withAuditRequest(w http.ResponseWriter, r *http.Request) context.Context {
	id := requestID(r)
	w.Header().Set("X-Request-Id", id)
	return audit.WithRequest(r.Context(), audit.Request{RequestID: id, Remote: clientOf(r)})
}

// withAuditCaller adds the authenticated key's id and role.
func withAuditCaller(ctx context.Context, c resolver.Caller) context.Context {
	req := audit.RequestOf(ctx)
	req.Role = string(c.Role)
	_, req.KeyID, _ = strings.Cut(c.Actor, ":")
	return audit.WithRequest(ctx, req)
}

// record appends an audit entry; a failure to record is logged (the
// action itself has happened or failed already) and counted.
func (s *Server) record(ctx context.Context, r audit.Record) {
	if s.cfg.Audit == nil {
		return
	}
	if c := resolver.CallerOf(ctx); c.Role != "" {
		ctx = withAuditCaller(ctx, c)
	}
	if _, err := s.cfg.Audit.Append(ctx, r); err != nil {
		s.metrics.auditFailures.Inc()
		s.log.Error("audit", "action", r.Action, "err", err)
	}
}

// secretArgs are mutation arguments kept out of audit targets: free text
// (a steward's note) and definitions may quote anyone's personal data and
// cannot be redacted by subject, so a definition is recorded by its
// SHA-256 and a note not at all.
var secretArgs = map[string]bool{"note": true, "definition": true}

// auditMutation records one GraphQL mutation: its name, its arguments as
// the target (identifiers in them are its subjects), and its outcome.
func (s *Server) auditMutation(ctx context.Context, def *ast.FieldDefinition, args map[string]any, err error) {
	if s.cfg.Audit == nil {
		return
	}
	target, subjects := s.auditTarget(def, args)
	text, _ := json.Marshal(target) // map keys sorted: the same action reads the same
	slices.Sort(subjects)
	s.record(ctx, audit.Record{Action: def.Name, Target: string(text), Subjects: slices.Compact(subjects), Err: err})
}

// auditTarget is what a mutation's entry keeps of its arguments, and the
// people they name. An argument the schema marks @subject names the
// person the action is about: the entry keeps its keyed hash only, since
// an erasure's own entry is written after its redaction. Which arguments
// those are is the schema's to say (schema/subject.graphqls), not their
// names'.
func (s *Server) auditTarget(def *ast.FieldDefinition, args map[string]any) (map[string]any, []string) {
	target := map[string]any{}
	var subjects []string
	for k, v := range args {
		switch {
		case isSubjectArg(def, k):
			var subj []string
			target[k], subj = s.hashedSubject(v)
			subjects = append(subjects, subj...)
		case k == "definition":
			if d, ok := v.(string); ok {
				sum := sha256.Sum256([]byte(d))
				target["definitionSha256"] = hex.EncodeToString(sum[:])
			}
		case !secretArgs[k]:
			target[k] = v
			subjects = append(subjects, s.subjectsIn(v)...)
		}
	}
	return target, subjects
}

// isSubjectArg reports whether the field's argument is marked @subject.
func isSubjectArg(def *ast.FieldDefinition, name string) bool {
	a := def.Arguments.ForName(name)
	return a != nil && a.Directives.ForName("subject") != nil
}

// hashedSubject is what an entry keeps of a @subject argument's value:
// "hmac:" and the keyed hash of the identifier it names ("type:value" or
// an identifier input), with that identifier as the entry's subject; an
// edge ID (reversible: it encodes its two identifiers) becomes the pair of
// their hashes. A value naming no identifier (erase's profile ID, null) is
// kept as given.
func (s *Server) hashedSubject(v any) (any, []string) {
	var subj string
	switch x := v.(type) {
	case string:
		if pair, err := graph.ParseEdgeID(x); err == nil {
			return s.hashedSubject([]any{pair[0].String(), pair[1].String()})
		}
		typ, val, isKey := strings.Cut(x, ":")
		if !isKey {
			return v, nil
		}
		subj = s.subjectOf(strings.TrimSpace(typ), strings.TrimSpace(val))
	case map[string]any:
		typ, _ := x["type"].(string)
		val, _ := x["value"].(string)
		subj = s.subjectOf(typ, val)
	case []any:
		out := make([]any, len(x))
		var subjects []string
		for i, e := range x {
			var subj []string
			out[i], subj = s.hashedSubject(e)
			subjects = append(subjects, subj...)
		}
		return out, subjects
	default:
		return v, nil
	}
	return "hmac:" + s.cfg.Audit.SubjectHash(subj), []string{subj}
}

// subjectsIn finds the people an argument names: identifier inputs
// ({type, value}) and edge IDs, as normalised "type:value".
func (s *Server) subjectsIn(v any) []string {
	switch x := v.(type) {
	case map[string]any:
		t, _ := x["type"].(string)
		val, _ := x["value"].(string)
		if t != "" && val != "" {
			return []string{s.subjectOf(t, val)}
		}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, s.subjectsIn(e)...)
		}
		return out
	case string:
		if pair, err := graph.ParseEdgeID(x); err == nil {
			return []string{pair[0].String(), pair[1].String()}
		}
	}
	return nil
}

// subjectOf normalises an identifier as ingestion does ("type:value"),
// the form erasure hashes.
func (s *Server) subjectOf(typ, value string) string {
	if k, err := s.norm.Normalize(typ, value); err == nil {
		return k.String()
	}
	return graph.Key{Type: typ, Value: value}.String()
}

// auditRootField records a mutation refused by its policy.
func (s *Server) auditRefusedMutation(ctx context.Context, err error) {
	if fc := graphql.GetFieldContext(ctx); fc == nil || fc.Object != "Mutation" {
		return
	}
	rf := graphql.GetRootFieldContext(ctx)
	s.auditMutation(ctx, rf.Field.Definition, rf.Field.ArgumentMap(graphql.GetOperationContext(ctx).Variables), err)
}

// auditFields records every mutation that ran, every read of one person
// (personRead), and every answer showing a page of people (shownProfiles),
// with its resolver's error.
func (s *Server) auditFields(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if !fc.IsResolver {
		return next(ctx)
	}
	res, err := next(ctx)
	args := func() map[string]any { return fc.Field.ArgumentMap(graphql.GetOperationContext(ctx).Variables) }
	if fc.Object == "Mutation" {
		s.auditMutation(ctx, fc.Field.Definition, args(), err)
	} else if fc.Object == "Query" && personRead(fc.Field.Name, args()) {
		s.auditRead(ctx, fc.Field.Name, args(), res, err)
	} else if shown, ok := shownProfiles(res); ok {
		action := fc.Field.Name
		if fc.Object != "Query" {
			action = fc.Object + "." + action // Segment.members
		}
		s.auditListRead(ctx, action, args(), shown, err)
	}
	return res, err
}

// personReads are the root fields that read one person's data: each read
// is an audit entry naming the person, so that an access export shows who
// read them (docs/security.md, Audit). auditLog reads one person only
// when filtered by a profile.
var personReads = map[string]bool{
	"profile": true, "lookup": true, "identifier": true, "consent": true,
	"explainMembership": true, "explainComputedTrait": true, "auditLog": true,
}

// shownProfiles are the profiles an answer shows when it is a page of
// people (profiles, search, a segment's members or preview sample).
func shownProfiles(res any) ([]*graph.Profile, bool) {
	var page []*schema.Profile
	switch x := res.(type) {
	case *schema.ProfileConnection:
		if x == nil {
			return nil, true
		}
		for _, e := range x.Edges {
			page = append(page, e.Node)
		}
	case []*schema.SearchHit:
		for _, h := range x {
			page = append(page, h.Profile)
		}
	case *schema.SegmentPreview:
		if x == nil {
			return nil, true
		}
		page = x.Sample
	default:
		return nil, false
	}
	shown := []*graph.Profile{}
	for _, p := range page {
		if p != nil && p.Profile != nil && !slices.ContainsFunc(shown, func(q *graph.Profile) bool { return q.ID == p.ID }) {
			shown = append(shown, p.Profile)
		}
	}
	return shown, true
}

// personRead reports whether a root field's call reads one person.
func personRead(field string, args map[string]any) bool {
	if field == "auditLog" {
		f, _ := args["filter"].(map[string]any)
		id, _ := f["profileId"].(string)
		return id != ""
	}
	return personReads[field]
}

// auditRead records a read of one person: the profile ID asked for, the
// identifier looked up (as its keyed hash, like a mutation's subject, so
// that a support agent's lookup keeps no email readable in the chain),
// the segment or trait explained, and the profile found; its subjects are
// the identifier and every identifier of the profile found, so erasure
// redacts the entry.
func (s *Server) auditRead(ctx context.Context, field string, args map[string]any, res any, err error) {
	if s.cfg.Audit == nil {
		return
	}
	target := map[string]any{}
	var subjects []string
	hashed := func(typ, val string) {
		subj := s.subjectOf(typ, val)
		target["subject"] = "hmac:" + s.cfg.Audit.SubjectHash(subj)
		subjects = append(subjects, subj)
	}
	for _, k := range []string{"id", "profileId", "segment", "key"} {
		if v, ok := args[k].(string); ok {
			target[k] = v
		}
	}
	if f, ok := args["filter"].(map[string]any); ok {
		target["profileId"] = f["profileId"]
	}
	if typ, ok := args["type"].(string); ok {
		val, _ := args["value"].(string)
		hashed(typ, val)
	}
	if in, ok := args["subject"].(map[string]any); ok {
		typ, _ := in["type"].(string)
		val, _ := in["value"].(string)
		hashed(typ, val)
	}
	if p := s.profileRead(ctx, target, res); p != nil {
		target["profile"] = p.ID
		ids, ierr := graph.ProfileIdentifiers(ctx, s.reader, p)
		if ierr != nil {
			s.log.Error("audit: the identifiers of a profile read", "profile", p.ID, "err", ierr)
		}
		for _, n := range ids {
			subjects = append(subjects, n.Key.String())
		}
	}
	text, _ := json.Marshal(target)
	slices.Sort(subjects)
	s.record(ctx, audit.Record{Action: field, Target: string(text), Subjects: slices.Compact(subjects), Err: err})
}

// auditListRead records an answer showing a page of people: the profile
// IDs shown, the arguments (a filter, a purpose), and a search text as its
// keyed hash (it may be an email); its subjects are every identifier of
// every profile shown, so each person's access export finds the entry and
// erasure redacts it. A page showing nobody is recorded too: a search
// that found no one is still a read of the text searched for.
func (s *Server) auditListRead(ctx context.Context, action string, args map[string]any, shown []*graph.Profile, err error) {
	if s.cfg.Audit == nil {
		return
	}
	target := map[string]any{}
	for k, v := range args {
		if k == "query" {
			q, _ := v.(string)
			v = "hmac:" + s.cfg.Audit.SubjectHash("search:"+strings.ToLower(strings.TrimSpace(q)))
		}
		if v != nil && !secretArgs[k] {
			target[k] = v
		}
	}
	ids := make([]string, len(shown))
	for i, p := range shown {
		ids[i] = p.ID
	}
	target["profiles"] = ids
	var subjects []string
	if len(shown) > 0 {
		idents, ierr := s.reader.IdentifiersOf(ctx, shown)
		if ierr != nil {
			s.log.Error("audit: the identifiers of a page of profiles read", "action", action, "err", ierr)
		}
		for _, of := range idents {
			for _, n := range of {
				subjects = append(subjects, n.Key.String())
			}
		}
	}
	text, _ := json.Marshal(target)
	slices.Sort(subjects)
	s.record(ctx, audit.Record{Action: action, Target: string(text), Subjects: slices.Compact(subjects), Err: err})
}

// profileRead is the profile a read showed: the one it answered, or the
// one its answer or its target names (followed to the profile it was
// merged into); nil when none.
func (s *Server) profileRead(ctx context.Context, target map[string]any, res any) *graph.Profile {
	var id string
	switch x := res.(type) {
	case *schema.Profile:
		if x != nil && x.Profile != nil {
			return x.Profile
		}
	case *graph.Identifier:
		if x != nil {
			id = x.Profile
		}
	case schema.ProfileRead:
		id = x.ReadProfileID()
	}
	if id == "" {
		id, _ = target["profileId"].(string)
	}
	for hops := 0; id != "" && hops < 8; hops++ {
		p, err := s.reader.Profile(ctx, id)
		if err != nil || p == nil {
			return nil
		}
		if p.MergedInto == "" {
			return p
		}
		id = p.MergedInto
	}
	return nil
}
