package server

import (
	"net/http"

	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/match"
)

// MaxMatchPage bounds one /v1/match request.
const MaxMatchPage = 1000

// MatchRequest asks to re-score a page of profiles: those after After, in
// ID order (the bulk `idgraph match`).
type MatchRequest struct {
	After string `json:"after"`
	Limit int    `json:"limit"`
	// DryRun reports what would change without changing it, with the
	// thresholds given (default: the server's).
	DryRun bool     `json:"dryRun"`
	Accept *float64 `json:"accept"`
	Review *float64 `json:"review"`
	// Train trains a new model with no set-up step before the first page
	// (`idgraph match --train`), even when the model in use covers every
	// imported source.
	Train bool `json:"train"`
}

// MatchResponse says what the page did and where the next one starts.
type MatchResponse struct {
	Processed int    `json:"processed"`
	Matches   int    `json:"matches"`
	Merges    int    `json:"merges"`
	Next      string `json:"next"`
	Done      bool   `json:"done"`
	// Total is the number of live profiles when the run starts (answered
	// for the first page only), for a progress bar.
	Total int `json:"total,omitempty"`
	// Planned lists a dry run's merges and review items.
	Planned []graph.Planned `json:"planned,omitempty"`
	// Matching is what the server decided (first page only): the model,
	// whether this request trained it, and per imported source the
	// columns, their kinds and the fields they are compared as.
	Matching *match.Decision `json:"matching,omitempty"`
	// Bulk says the run linked the imported records in one bulk pass
	// (answered on the first page, which is then the last): how many
	// records and candidate pairs it compared, and the pairs it found.
	Bulk *match.LinkReport `json:"bulk,omitempty"`
}

// handleMatch re-scores a page of live profiles with the loaded model,
// or, on the first page when a model trained with no set-up step is in
// use, links every imported record in one bulk pass. It needs the steward
// key: a dry run shows identifiers of many people, and a
// real run merges profiles, while write keys ship inside web pages.
func (s *Server) handleMatch(w http.ResponseWriter, r *http.Request) {
	_, err := s.authBearer(r, ruleOf(r.Context()))
	var body []byte
	if err == nil {
		body, err = readBody(w, r, MaxMessageBytes)
	}
	if err == nil && s.stitcher.CurrentMatcher() == nil {
		err = graph.Errorf(graph.KindConflict, "matching is off on this server (serve --model off): there is no model to re-score with")
	}
	var req MatchRequest
	if err == nil {
		err = collect.Unmarshal(body, &req, "")
	}
	if err == nil && (req.Limit < 1 || req.Limit > MaxMatchPage) {
		err = graph.FieldErrorf("limit", "must be between 1 and %d", MaxMatchPage)
	}
	if err == nil && req.Train && req.DryRun {
		err = graph.FieldErrorf("train", "cannot be combined with dryRun: training replaces the server's model")
	}
	cfg := s.stitcher.MatchConfig
	if err == nil && req.DryRun {
		if req.Accept != nil {
			cfg.Accept = *req.Accept
		}
		if req.Review != nil {
			cfg.Review = *req.Review
		}
		if !(0 < cfg.Review && cfg.Review <= cfg.Accept && cfg.Accept <= 1) {
			err = graph.FieldErrorf("accept", "need 0 < review ≤ accept ≤ 1")
		}
	}
	var decision *match.Decision
	if err == nil && req.After == "" && s.cfg.Trainer != nil {
		// The first page trains when an imported source is not covered:
		// every later page is scored with that model.
		decision, err = s.cfg.Trainer.Ensure(r.Context(), req.Train, req.DryRun)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if req.After == "" && s.cfg.Trainer != nil {
		// With a model trained for the imported records, the whole run is
		// one bulk pass over them (as `idgraph eval`), not page by page.
		links, rep, err := s.cfg.Trainer.Links(r.Context(), cfg.Accept, cfg.Review, req.DryRun)
		if err != nil {
			writeError(w, err)
			return
		}
		if links != nil {
			resp, err := s.applyLinks(r, links, &cfg, req.DryRun)
			if err != nil {
				writeError(w, err)
				return
			}
			resp.Matching, resp.Processed, resp.Total, resp.Bulk = decision, rep.Records, rep.Records, rep
			writeJSON(w, http.StatusOK, resp)
			return
		}
	}
	ps, err := s.reader.Profiles(r.Context(), req.After, req.Limit)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := MatchResponse{Next: req.After, Done: len(ps) < req.Limit, Matching: decision}
	if req.After == "" {
		if resp.Total, err = s.reader.CountProfiles(r.Context()); err != nil {
			writeError(w, err)
			return
		}
	}
	if len(ps) > 0 {
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		var res graph.Result
		if req.DryRun {
			res, resp.Planned, err = s.stitcher.PlanRematch(r.Context(), ids, &cfg, true)
		} else {
			res, err = s.stitcher.Rematch(r.Context(), ids)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		if !req.DryRun {
			s.metrics.merges.Add(float64(res.Merges))
		}
		resp.Processed, resp.Matches, resp.Merges, resp.Next = len(ps), res.Matches, res.Merges, ids[len(ids)-1]
	}
	writeJSON(w, http.StatusOK, resp)
}

// linkChunk bounds the links one transaction records.
const linkChunk = 500

// applyLinks records a bulk run's links in transactions of linkChunk
// (a dry run plans them all in one, writing nothing).
func (s *Server) applyLinks(r *http.Request, links []graph.Link, cfg *graph.MatchConfig, dryRun bool) (MatchResponse, error) {
	resp := MatchResponse{Done: true}
	if dryRun {
		res, plan, err := s.stitcher.PlanLinks(r.Context(), links, cfg)
		resp.Matches, resp.Merges, resp.Planned = res.Matches, res.Merges, plan
		return resp, err
	}
	for len(links) > 0 {
		n := min(linkChunk, len(links))
		res, err := s.stitcher.ApplyLinks(r.Context(), links[:n])
		if err != nil {
			return resp, err
		}
		links = links[n:]
		resp.Matches += res.Matches
		resp.Merges += res.Merges
		s.metrics.merges.Add(float64(res.Merges))
	}
	// Later observations are matched incrementally: they must find the
	// profiles the pass left under the model's blocking keys.
	for after := ""; ; {
		ps, err := s.reader.Profiles(r.Context(), after, linkChunk)
		if err != nil || len(ps) == 0 {
			return resp, err
		}
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		if err := s.stitcher.FileBlocks(r.Context(), ids); err != nil {
			return resp, err
		}
		after = ids[len(ids)-1]
	}
}
