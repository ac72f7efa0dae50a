package server

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// membersPage is how many members an export reads, and looks up, at once.
const membersPage = 1000

// ExportedMember is one line of GET /v1/segments/{key}/members.jsonl.
type ExportedMember struct {
	Profile     string              `json:"profile"`
	Identifiers map[string][]string `json:"identifiers"`
	Traits      map[string]any      `json:"traits,omitempty"`
}

// memberColumns is what a members export carries besides the profile ID:
// identifier types (nil: every type, JSONL only) and trait paths.
type memberColumns struct {
	types  []string
	traits []string
}

func parseMemberColumns(q map[string][]string, csvFormat bool) (memberColumns, error) {
	list := func(name string) []string {
		var out []string
		for _, v := range q[name] {
			for f := range strings.SplitSeq(v, ",") {
				if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
					out = append(out, f)
				}
			}
		}
		return out
	}
	c := memberColumns{types: list("identifiers"), traits: list("traits")}
	if csvFormat && len(c.types) == 0 && len(c.traits) == 0 {
		return c, graph.FieldErrorf("identifiers", "a CSV export names its columns: identifiers=email,phone and/or traits=plan,name")
	}
	if len(c.types)+len(c.traits) > 100 {
		return c, graph.FieldErrorf("identifiers", "at most 100 columns")
	}
	if csvFormat && c.types == nil {
		c.types = []string{} // nil is every type, for JSON lines
	}
	return c, nil
}

// handleSegmentMembers streams a segment's members as they were when the
// request started (segments.MembersAt), as CSV or JSON lines, with the
// identifiers and traits asked for. X-Idgraph-As-Of-Sequence names that
// point: the newest change record then, so a consumer of the change
// records (a destination, a subscription) can go on from it.
func (s *Server) handleSegmentMembers(w http.ResponseWriter, r *http.Request) {
	caller, err := s.authBearer(r, ruleOf(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	x := &membersExport{}
	err = s.streamSegmentMembers(w, r, x)
	s.auditMembersExport(withAuditCaller(r.Context(), caller), r, x, err)
	if err != nil && x.started {
		// The status is sent: cut the stream short so the client sees a
		// truncated body, never a silent success.
		panic(http.ErrAbortHandler)
	}
}

// membersExport is what a members export sent: whether its answer
// started, how many members, as of which change record.
type membersExport struct {
	started bool
	members int
	asOf    uint64
}

// auditMembersExport records a members export: the segment, the format
// and the columns asked for, the purpose, how many members were sent and
// as of which change record. It names no one (a bulk export's members are
// not its subjects: the entry would hold a million of them).
func (s *Server) auditMembersExport(ctx context.Context, r *http.Request, x *membersExport, err error) {
	q := r.URL.Query()
	target := map[string]any{"segment": r.PathValue("key"), "file": r.PathValue("file"), "members": x.members}
	for _, k := range []string{"identifiers", "traits", "purpose"} {
		if v := q[k]; len(v) > 0 {
			target[k] = strings.Join(v, ",")
		}
	}
	if x.started {
		target["asOfSequence"] = x.asOf
	}
	text, _ := json.Marshal(target)
	s.record(ctx, audit.Record{Action: "exportSegmentMembers", Target: string(text), Err: err})
}

// streamSegmentMembers writes the export (or the error that refused it).
func (s *Server) streamSegmentMembers(w http.ResponseWriter, r *http.Request, x *membersExport) error {
	if s.cfg.Segments == nil {
		err := graph.Errorf(graph.KindUnavailable, "segments are off on this server (--segments)")
		writeError(w, err)
		return err
	}
	key, file := r.PathValue("key"), r.PathValue("file")
	var csvFormat bool
	switch file {
	case "members.csv":
		csvFormat = true
	case "members.jsonl":
	default:
		err := graph.Errorf(graph.KindNotFound, "no export %q: members.csv or members.jsonl", file)
		writeError(w, err)
		return err
	}
	cols, err := parseMemberColumns(r.URL.Query(), csvFormat)
	if err != nil {
		writeError(w, err)
		return err
	}
	// ?purpose=P: only members whose consent for P is granted now; the
	// others are counted in the Idgraph-Consent-Withheld trailer.
	gate, err := s.gate("segment_members_export", r.URL.Query().Get("purpose"))
	if err != nil {
		writeError(w, err)
		return err
	}
	ctx := r.Context()
	store := s.cfg.Segments.Store()
	if _, err := store.Definition(ctx, segments.Ref{Kind: lang.KindSegment, Key: key}); err != nil {
		writeError(w, err)
		return err
	}
	var out memberWriter
	if csvFormat {
		out = newCSVMembers(w, cols)
	} else {
		out = &jsonMembers{enc: json.NewEncoder(w), cols: cols}
	}
	start := func(at uint64) {
		if x.started {
			return
		}
		x.started, x.asOf = true, at
		if csvFormat {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/x-ndjson")
		}
		w.Header().Set("X-Idgraph-As-Of-Sequence", strconv.FormatUint(at, 10))
		declareWithheld(w, gate)
		out.begin()
	}
	pipe := newMemberPipeline(ctx, membersLookAhead, out)
	var q *graph.DataQuery
	if membersPageData {
		q = cols.query()
	}
	at, err := segments.MembersDataAt(pipe.ctx, store, key, membersPage, q, func(at uint64, ids []string, data []*graph.ProfileData) error {
		start(at)
		// The gate counts what it withholds: it runs here, one page at a
		// time, and only the lookups run together.
		kept, err := gate.Filter(ctx, ids)
		if err != nil {
			return err
		}
		x.members += len(kept)
		if data != nil {
			// Read with the page (one statement on Neo4j): no lookup.
			rows := memberRows(kept, keptData(ids, data, kept), cols)
			return pipe.add(func(context.Context) ([]ExportedMember, error) { return rows, nil })
		}
		return pipe.add(func(ctx context.Context) ([]ExportedMember, error) { return s.lookUpMembers(ctx, kept, cols) })
	})
	err = cmp.Or(pipe.wait(), err)
	switch {
	case err != nil && !x.started:
		writeError(w, err)
	case err != nil:
		if ctx.Err() == nil {
			s.log.Error("segment members export", "segment", key, "err", err)
		}
	default:
		start(at)
		out.flush()
		if gate != nil {
			w.Header().Set(WithheldTrailer, gate.String())
		}
	}
	return err
}

// membersLookAhead is how many pages an export looks up at once while it
// reads the next page of the member index and writes the page before:
// each lookup is a round trip that waits on the store (on Neo4j a query
// that seeks every member's identifiers), so pages in flight together
// use the store's cores and the loopback while this one encodes. It
// bounds the memory an export holds to that many pages.
var membersLookAhead = 4

// memberPipeline runs the lookups of an export's pages concurrently and
// writes their rows in the order the pages were added, from one
// goroutine. The first error stops it: later pages are not written and
// add returns the error, and so does wait.
type memberPipeline struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	queue  chan chan memberPage // pages in order, each filled by its lookup
	done   chan struct{}        // closed when the writer has stopped
	err    error                // the first error; read after done
}

type memberPage struct {
	rows []ExportedMember
	err  error
}

func newMemberPipeline(ctx context.Context, lookAhead int, out memberWriter) *memberPipeline {
	p := &memberPipeline{queue: make(chan chan memberPage, max(lookAhead, 1)-1), done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancelCause(ctx)
	go func() {
		defer close(p.done)
		for page := range p.queue {
			r := <-page
			if p.err != nil {
				continue // failed: the lookups already started end, unwritten
			}
			if r.err == nil {
				r.err = out.write(r.rows)
			}
			if r.err != nil {
				p.err = r.err
				p.cancel(r.err)
			}
		}
	}()
	return p
}

// add starts a page's lookup; it waits while lookAhead pages are in
// flight.
func (p *memberPipeline) add(lookup func(context.Context) ([]ExportedMember, error)) error {
	if p.ctx.Err() != nil {
		return context.Cause(p.ctx)
	}
	page := make(chan memberPage, 1)
	select {
	case p.queue <- page:
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
	go func() {
		rows, err := lookup(p.ctx)
		page <- memberPage{rows, err}
	}()
	return nil
}

// wait writes what is added and returns the first error.
func (p *memberPipeline) wait() error {
	close(p.queue)
	<-p.done
	p.cancel(nil)
	return p.err
}

// membersPageData says whether an export reads its members' data with
// each page of the member index, where the store can (benchmarks compare
// it with a lookup per page).
var membersPageData = true

// query is what an export reads of each member's profile.
func (c memberColumns) query() *graph.DataQuery {
	return &graph.DataQuery{Traits: c.traits, Keys: c.types == nil || len(c.types) > 0}
}

// keptData returns the data of the IDs in kept, a subsequence of ids
// (what the consent gate let through), data[i] being ids[i]'s.
func keptData(ids []string, data []*graph.ProfileData, kept []string) []*graph.ProfileData {
	if len(kept) == len(ids) {
		return data
	}
	out := make([]*graph.ProfileData, 0, len(kept))
	for i, j := 0, 0; i < len(ids) && j < len(kept); i++ {
		if ids[i] == kept[j] {
			out = append(out, data[i])
			j++
		}
	}
	return out
}

// lookUpMembers looks up the members' identifiers and traits, only those
// the export carries, in one store call (graph.Reader.ProfilesData).
func (s *Server) lookUpMembers(ctx context.Context, ids []string, cols memberColumns) ([]ExportedMember, error) {
	ds, err := s.reader.ProfilesData(ctx, ids, *cols.query())
	if err != nil {
		return nil, err
	}
	return memberRows(ids, ds, cols), nil
}

// memberRows makes the export's rows of ids, ds[i] being the data of
// ids[i].
func memberRows(ids []string, ds []*graph.ProfileData, cols memberColumns) []ExportedMember {
	rows := make([]ExportedMember, len(ids))
	for i, id := range ids {
		rows[i] = ExportedMember{Profile: id, Identifiers: map[string][]string{}}
		// nil: merged away or erased since the point in time: its ID only.
		if d := ds[i]; d != nil {
			for _, k := range d.Keys {
				if cols.types == nil || slices.Contains(cols.types, k.Type) {
					rows[i].Identifiers[k.Type] = append(rows[i].Identifiers[k.Type], k.Value)
				}
			}
			rows[i].Traits = d.Traits
		}
	}
	return rows
}

type memberWriter interface {
	begin()
	write([]ExportedMember) error
	flush()
}

type jsonMembers struct {
	enc  *json.Encoder
	cols memberColumns
}

func (j *jsonMembers) begin() {}
func (j *jsonMembers) flush() {}
func (j *jsonMembers) write(rows []ExportedMember) error {
	for i := range rows {
		if err := j.enc.Encode(&rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// csvMembers writes a header of profile_id, the identifier types and the
// trait paths, then a row per member; several identifiers of one type
// share their cell, separated by spaces.
type csvMembers struct {
	w    *csv.Writer
	cols memberColumns
	row  []string
}

func newCSVMembers(w io.Writer, cols memberColumns) *csvMembers {
	return &csvMembers{w: csv.NewWriter(w), cols: cols}
}

func (c *csvMembers) begin() {
	c.w.Write(slices.Concat([]string{"profile_id"}, c.cols.types, c.cols.traits))
}

func (c *csvMembers) flush() { c.w.Flush() }

func (c *csvMembers) write(rows []ExportedMember) error {
	for _, m := range rows {
		c.row = append(c.row[:0], m.Profile)
		for _, t := range c.cols.types {
			c.row = append(c.row, spreadsheetSafe(strings.Join(m.Identifiers[t], " ")))
		}
		for _, p := range c.cols.traits {
			v := ""
			if x, ok := m.Traits[p]; ok && x != nil {
				if s, isString := x.(string); isString {
					v = spreadsheetSafe(s)
				} else {
					b, _ := json.Marshal(x)
					v = string(b)
				}
			}
			c.row = append(c.row, v)
		}
		if err := c.w.Write(c.row); err != nil {
			return err
		}
	}
	c.w.Flush()
	return c.w.Error()
}

// spreadsheetSafe keeps a cell from being read as a formula by a
// spreadsheet (CSV injection): one starting with = + - @ or a control
// character gets a leading apostrophe, unless it is a plain number (an
// E.164 phone, a negative amount), which no spreadsheet runs.
func spreadsheetSafe(v string) string {
	if v == "" || (!strings.ContainsRune("=+-@", rune(v[0])) && v[0] >= 0x20) || plainNumber.MatchString(v) {
		return v
	}
	return "'" + v
}

var plainNumber = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)
