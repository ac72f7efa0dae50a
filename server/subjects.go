package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/graph"
)

// DefaultExportsPerMinute bounds subject exports per key (a burst of that
// many, refilled evenly over a minute).
const DefaultExportsPerMinute = 5

// SubjectLine is one line of GET /v1/export/subject: its kind says what
// Data holds.
//
//	subject       the request: the subject asked for and the profile found
//	profile       the live profile, and each profile merged into it
//	identifier    every identifier of the person
//	event         every event seen with any of them, newest first
//	merge         the merge events the profiles took part in
//	steward       steward decisions and automatic merges (graph audit entries)
//	consent       every consent choice recorded on their identifiers
//	access        audit chain entries naming the person (who exported,
//	              linked, split or otherwise acted on them)
//	end           the counts by kind: a stream without it was cut short
type SubjectLine struct {
	Kind string `json:"kind"`
	Data any    `json:"data"`
}

// exportSubject is a subject export under way.
type exportSubject struct {
	s       *Server
	enc     *json.Encoder
	w       http.ResponseWriter
	started bool
	counts  map[string]int
}

func (x *exportSubject) line(kind string, data any) error {
	if !x.started {
		x.w.Header().Set("Content-Type", "application/x-ndjson")
		x.started = true
	}
	x.counts[kind]++
	return x.enc.Encode(SubjectLine{Kind: kind, Data: data})
}

// parseSubject reads "type:value" (normalised as ingestion does) or
// "profile:<id>".
func (s *Server) parseSubject(raw string) (key graph.Key, profile string, err error) {
	typ, value, ok := strings.Cut(raw, ":")
	switch {
	case !ok || typ == "" || value == "":
		return graph.Key{}, "", graph.FieldErrorf("subject", "must be type:value (email:ann@corp.io) or profile:<id>")
	case typ == "profile":
		return graph.Key{}, value, nil
	}
	k, err := s.norm.Normalize(typ, value)
	if err != nil {
		return graph.Key{}, "", graph.FieldErrorf("subject", "%s", graph.ErrorMessage(err))
	}
	return k, "", nil
}

// handleExportSubject streams everything stored about one person as JSON
// lines (an access request): admin keys only, limited per key, audited.
func (s *Server) handleExportSubject(w http.ResponseWriter, r *http.Request) {
	subject := r.URL.Query().Get("subject")
	caller, err := s.authBearer(r, ruleOf(r.Context()))
	if err != nil {
		// A good key of another role is recorded: someone tried to read a
		// person's data. A bad key is not (anyone can send one).
		if k, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && graph.ErrorKind(err) == graph.KindForbidden {
			if p, aerr := s.keyring.Authenticate(r.Context(), k); aerr == nil {
				s.record(withAuditCaller(r.Context(), callerOf(p)), audit.Record{Action: "exportSubject", Target: subject, Err: err})
			}
		}
		writeError(w, err)
		return
	}
	ctx := withAuditCaller(r.Context(), caller)
	_, keyID, _ := strings.Cut(caller.Actor, ":")
	if wait := s.exports.wait(keyID); wait > 0 {
		w.Header().Set("Retry-After", retryAfter(wait))
		err := graph.Errorf(graph.KindRateLimited, "too many subject exports with this key: retry in %ss", retryAfter(wait))
		s.record(ctx, audit.Record{Action: "exportSubject", Target: subject, Err: err})
		writeError(w, err)
		return
	}
	s.exports.charge(keyID)
	x := &exportSubject{s: s, enc: json.NewEncoder(w), w: w, counts: map[string]int{}}
	subjects, err := x.run(ctx, subject)
	outcome := audit.Record{Action: "exportSubject", Target: subject, Subjects: subjects, Err: err}
	if err != nil && x.started {
		outcome.Outcome = "aborted"
	}
	s.record(ctx, outcome)
	switch {
	case err != nil && !x.started:
		writeError(w, err)
	case err != nil:
		// Mid-stream the status is sent: cut the stream short (no end
		// line) so the client sees a truncated export, never a silent one.
		s.log.Error("export subject", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// run writes the export and returns the subjects (every identifier of the
// person) the audit entry names.
func (x *exportSubject) run(ctx context.Context, raw string) ([]string, error) {
	s := x.s
	k, profileID, err := s.parseSubject(raw)
	if err != nil {
		return nil, err
	}
	subjects := []string{raw}
	if profileID == "" {
		subjects[0] = k.String()
		n, err := s.reader.Identifier(ctx, k)
		if graph.ErrorKind(err) == graph.KindNotFound || err == nil && n.Profile == "" {
			return subjects, graph.Errorf(graph.KindNotFound, "no one has that identifier")
		}
		if err != nil {
			return subjects, err
		}
		profileID = n.Profile
	}
	p, err := s.reader.Profile(ctx, profileID)
	if err != nil {
		return subjects, err
	}
	if p.MergedInto != "" {
		if p, err = s.reader.Profile(ctx, p.MergedInto); err != nil {
			return subjects, err
		}
	}
	ids, err := graph.ProfileIdentifiers(ctx, s.reader, p)
	if err != nil {
		return subjects, err
	}
	for _, n := range ids {
		if !slices.Contains(subjects, n.Key.String()) {
			subjects = append(subjects, n.Key.String())
		}
	}
	if err := x.line("subject", map[string]any{"subject": subjects[0], "profile": p.ID, "at": time.Now().UTC()}); err != nil {
		return subjects, err
	}
	profiles := append([]string{p.ID}, p.Absorbed...)
	absorbed, err := s.reader.GetProfiles(ctx, p.Absorbed)
	if err != nil {
		return subjects, err
	}
	for _, q := range append([]*graph.Profile{p}, absorbed...) {
		if q != nil {
			if err := x.line("profile", q); err != nil {
				return subjects, err
			}
		}
	}
	keys := make([]graph.Key, len(ids))
	for i, n := range ids {
		keys[i] = n.Key
		if err := x.line("identifier", n); err != nil {
			return subjects, err
		}
	}
	if err := x.events(ctx, keys); err != nil {
		return subjects, err
	}
	if err := x.history(ctx, profiles); err != nil {
		return subjects, err
	}
	if s.consent != nil {
		recs, err := s.consent.Records(ctx, p)
		if err != nil {
			return subjects, err
		}
		for i := range recs {
			if err := x.line("consent", &recs[i]); err != nil {
				return subjects, err
			}
		}
	}
	if s.cfg.Audit != nil {
		seen := map[uint64]bool{}
		var access []*audit.Entry
		for _, sub := range subjects {
			es, err := s.cfg.Audit.EntriesFor(ctx, sub)
			if err != nil {
				return subjects, err
			}
			for _, e := range es {
				if !seen[e.Seq] {
					seen[e.Seq] = true
					access = append(access, e)
				}
			}
		}
		slices.SortFunc(access, func(a, b *audit.Entry) int { return int(a.Seq) - int(b.Seq) })
		for _, e := range access {
			if err := x.line("access", e); err != nil {
				return subjects, err
			}
		}
	}
	return subjects, x.line("end", x.counts)
}

// events pages through the person's timeline, newest first.
func (x *exportSubject) events(ctx context.Context, keys []graph.Key) error {
	var after *graph.EventCursor
	for {
		evs, err := graph.Timeline(ctx, x.s.reader, keys, after, 1000)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := x.line("event", e); err != nil {
				return err
			}
		}
		if len(evs) < 1000 {
			return nil
		}
		last := evs[len(evs)-1]
		after = &graph.EventCursor{Timestamp: last.Timestamp, ID: last.ID}
	}
}

// history writes the merges and steward decisions of the profiles, each
// once.
func (x *exportSubject) history(ctx context.Context, profiles []string) error {
	merges, entries := map[string]bool{}, map[string]bool{}
	for _, id := range profiles {
		ms, err := x.s.reader.Merges(ctx, id)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if !merges[m.ID] {
				merges[m.ID] = true
				if err := x.line("merge", m); err != nil {
					return err
				}
			}
		}
		before := ""
		for {
			es, err := x.s.reader.AuditLog(ctx, graph.AuditQuery{Profile: id, Before: before, Limit: 500})
			if err != nil {
				return err
			}
			for _, e := range es {
				if !entries[e.ID] {
					entries[e.ID] = true
					if err := x.line("steward", e); err != nil {
						return err
					}
				}
			}
			if len(es) < 500 {
				break
			}
			before = es[len(es)-1].ID
		}
	}
	return nil
}
