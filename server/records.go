package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
)

// MaxImportRecords bounds one /v1/import request.
const MaxImportRecords = 1000

// ImportRequest is the body of POST /v1/import: records of a CRM export or
// similar, each with its identifiers (type → value) and traits.
type ImportRequest struct {
	Source  string   `json:"source"`
	Records []Record `json:"records"`
}

// Record is one imported row.
type Record struct {
	Line        int               `json:"line"`
	Identifiers map[string]string `json:"identifiers"`
	Traits      map[string]any    `json:"traits"`
}

// ImportResponse says what became of each record.
type ImportResponse struct {
	Received   int `json:"received"`
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
	// Expired counts records linked and stored as traits whose event was
	// already past its time to live (serve --retention).
	Expired  int             `json:"expired,omitempty"`
	Rejected []RecordProblem `json:"rejected"` // records not stored
	Skipped  []RecordProblem `json:"skipped"`  // values left out of stored records
}

// RecordProblem names a line, a field and the reason.
type RecordProblem struct {
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, MaxImportBytes)
	if err == nil {
		r, err = s.authWrite(r, body)
	}
	var req ImportRequest
	if err == nil {
		err = collect.Unmarshal(body, &req, "")
	}
	if err == nil {
		err = validateImport(&req)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if t := s.cfg.Trainer; t != nil {
		// The identifier columns of an import are record IDs: one person
		// may have several records (Config.RecordIDLimit).
		if err := t.AddRecordIDTypes(r.Context(), importTypes(req.Records)); err != nil {
			s.log.Error("import", "err", err)
			writeError(w, err)
			return
		}
	}
	now := s.now()
	resp := ImportResponse{Received: len(req.Records), Rejected: []RecordProblem{}, Skipped: []RecordProblem{}}
	var obs []*graph.Observation
	for _, rec := range req.Records {
		o, skipped, problem := s.recordObservation(req.Source, rec)
		resp.Skipped = append(resp.Skipped, skipped...)
		if problem != nil {
			resp.Rejected = append(resp.Rejected, *problem)
			continue
		}
		o.Event.ReceivedAt = now
		obs = append(obs, o)
	}
	res, err := s.stitcher.Ingest(r.Context(), obs)
	if err != nil {
		s.log.Error("import", "err", err, "records", len(obs))
		writeError(w, err)
		return
	}
	s.recordIngest(res, len(resp.Skipped))
	s.wakeSegments()
	resp.Stored, resp.Duplicates, resp.Expired = res.Stored, res.Duplicates, res.Expired
	writeJSON(w, http.StatusOK, resp)
}

// importTypes lists the identifier types an import's records use.
func importTypes(recs []Record) []string {
	var types []string
	for _, rec := range recs {
		for typ := range rec.Identifiers {
			if !slices.Contains(types, typ) && graph.ValidateType(typ) == nil {
				types = append(types, typ)
			}
		}
	}
	return types
}

func validateImport(req *ImportRequest) error {
	req.Source = strings.TrimSpace(req.Source)
	if req.Source == "" {
		return graph.FieldErrorf("source", "is required")
	}
	if len(req.Records) > MaxImportRecords {
		return graph.FieldErrorf("records", "holds %d records, more than %d", len(req.Records), MaxImportRecords)
	}
	return nil
}

// recordObservation turns a record into an observation. Its message ID is a
// digest of its content, so importing a file twice stores it once.
func (s *Server) recordObservation(source string, rec Record) (*graph.Observation, []RecordProblem, *RecordProblem) {
	var skipped []RecordProblem
	o := &graph.Observation{Source: source, Traits: rec.Traits}
	types := make([]string, 0, len(rec.Identifiers))
	for typ := range rec.Identifiers {
		types = append(types, typ)
	}
	slices.Sort(types)
	for _, typ := range types {
		raw := rec.Identifiers[typ]
		if strings.TrimSpace(raw) == "" {
			continue // an empty cell is no identifier, not an error
		}
		k, err := s.norm.Normalize(typ, raw)
		if err != nil {
			skipped = append(skipped, RecordProblem{Line: rec.Line, Field: typ, Reason: graph.ErrorMessage(err)})
			continue
		}
		o.Identifiers = append(o.Identifiers, k)
	}
	if len(o.Identifiers) == 0 {
		reason := "no valid identifier"
		if len(skipped) > 0 {
			reason += ": " + skipped[0].Reason
		}
		return nil, nil, &RecordProblem{Line: rec.Line, Reason: reason}
	}
	if len(o.Identifiers) > collect.MaxMessageIdentifiers {
		return nil, skipped, &RecordProblem{Line: rec.Line, Reason: fmt.Sprintf("more than %d identifiers", collect.MaxMessageIdentifiers)}
	}
	traits, _ := json.Marshal(rec.Traits)
	digest := sha256.New()
	fmt.Fprintf(digest, "%s\x00%v\x00%s", source, o.Identifiers, traits)
	o.MessageID = "record-" + hex.EncodeToString(digest.Sum(nil)[:16])
	o.Event = graph.Event{Type: "record", Name: source, Traits: traits}
	return o, skipped, nil
}
