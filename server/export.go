package server

import (
	"encoding/json"
	"net/http"

	"github.com/idgraph/idgraph/graph"
)

// ExportedProfile is one line of GET /v1/export/profiles.
type ExportedProfile struct {
	ID          string         `json:"id"`
	Identifiers []graph.Key    `json:"identifiers"`
	Traits      map[string]any `json:"traits"`
}

// handleExportProfiles streams every live profile as one JSON line. With
// ?purpose=P only profiles whose consent for P is granted now are sent;
// the others are counted by reason in the Idgraph-Consent-Withheld
// trailer and idgraph_consent_withheld_total.
func (s *Server) handleExportProfiles(w http.ResponseWriter, r *http.Request) {
	if _, err := s.authBearer(r, ruleOf(r.Context())); err != nil {
		writeError(w, err)
		return
	}
	gate, err := s.gate("export_profiles", r.URL.Query().Get("purpose"))
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	enc := json.NewEncoder(w)
	after := ""
	started := false
	for {
		ps, err := s.reader.Profiles(ctx, after, 500)
		if err != nil {
			if !started {
				writeError(w, err)
				return
			}
			// Mid-stream the status is sent: cut the stream short so the
			// client sees a truncated body rather than a silent success.
			s.log.Error("export profiles", "err", err)
			panic(http.ErrAbortHandler)
		}
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			declareWithheld(w, gate)
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if len(ps) == 0 {
			if gate != nil {
				w.Header().Set(WithheldTrailer, gate.String())
			}
			return
		}
		for _, p := range ps {
			if ok, err := gate.Allow(ctx, p); err != nil {
				s.log.Error("export profiles", "err", err)
				panic(http.ErrAbortHandler)
			} else if !ok {
				continue
			}
			ids, err := graph.ProfileIdentifiers(ctx, s.reader, p)
			if err != nil {
				s.log.Error("export profiles", "err", err)
				panic(http.ErrAbortHandler)
			}
			out := ExportedProfile{ID: p.ID, Identifiers: make([]graph.Key, len(ids)), Traits: graph.NestTraits(p.Traits)}
			for i, n := range ids {
				out.Identifiers[i] = n.Key
			}
			if err := enc.Encode(out); err != nil {
				return
			}
		}
		after = ps[len(ps)-1].ID
	}
}
