package match

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// Settings under which the no-set-up path keeps its state in the store,
// so that a restart keeps the trained model on either backend.
const (
	SettingAutoModel     = "match.auto_model"
	SettingRecordIDTypes = "match.record_id_types"
)

// Trainer runs matching with no set-up step. When records of an imported
// source carry columns the model in use was not trained for, Ensure
// detects the columns from the stored records, trains a model
// (TrainAuto), stores it and gives it to the stitcher. It also keeps the
// imported record-ID types, whose per-type limit is the record-ID limit.
type Trainer struct {
	Store    graph.Store
	Stitcher *graph.Stitcher
	Log      *slog.Logger
	// Hold keeps the household guard on.
	Hold bool
	// Base is the model matching starts with: the built-in Segment model
	// or a file from `idgraph train`. Explicit says the operator named a
	// file (serve --model FILE): it then wins over a stored automatic
	// model at start.
	Base     *Model
	Explicit bool
	// Ignore names sources whose traits are not imported records (the
	// collection API's identify calls, which the base model covers).
	Ignore []string
	// MaxRecords bounds the records a training reads (default
	// MaxAutoRecords).
	MaxRecords int

	mu   sync.Mutex // one training at a time
	auto atomic.Pointer[AutoModel]
}

// Decision is what the server decided for matching: shown by GraphQL
// (`matching`) and `idgraph match`.
type Decision struct {
	// Model is the version of the model in use.
	Model string `json:"model"`
	// Origin is "built-in", "file" or "trained" (with no set-up step).
	Origin    string     `json:"origin"`
	TrainedAt *time.Time `json:"trainedAt,omitempty"`
	// Records is how many records the model was trained on (trained only).
	Records  int              `json:"records"`
	Fields   []Field          `json:"fields"`
	Blocking []string         `json:"blocking"`
	Sources  []SourceDecision `json:"sources"`
	// RecordIDTypes are the imported record-ID types and their limit.
	RecordIDTypes []string `json:"recordIdTypes"`
	RecordIDLimit int      `json:"recordIdLimit"`
	// Trained says this request trained the model.
	Trained bool `json:"trained"`
	// Uncovered names sources the model was not trained for (a dry run
	// does not train).
	Uncovered []string `json:"uncovered,omitempty"`
}

// Start loads the stored model and record-ID types and hands the model
// in use to the stitcher.
func (t *Trainer) Start(ctx context.Context) error {
	if v, ok, err := t.Store.Setting(ctx, SettingRecordIDTypes); err != nil {
		return fmt.Errorf("matching: %w", err)
	} else if ok {
		var types []string
		if err := json.Unmarshal([]byte(v), &types); err != nil {
			return fmt.Errorf("matching: stored record-ID types: %w", err)
		}
		t.Stitcher.AddRecordIDTypes(types...)
	}
	v, ok, err := t.Store.Setting(ctx, SettingAutoModel)
	if err != nil {
		return fmt.Errorf("matching: %w", err)
	}
	if ok {
		a, err := decodeAuto(v)
		if err != nil {
			return err
		}
		if t.Explicit {
			t.Log.Info("matching: a model trained with no set-up step is stored; --model wins", "stored", a.Model.Version, "model", t.Base.Version)
		} else {
			t.activate(a)
			t.Log.Info("matching: stored model loaded", "model", a.Model.Version, "trained_at", a.TrainedAt, "records", a.Records)
			return nil
		}
	}
	t.Stitcher.SetMatcher(NewGraphMatcher(t.Base, t.Hold))
	return nil
}

func decodeAuto(v string) (*AutoModel, error) {
	var a AutoModel
	if err := json.Unmarshal([]byte(v), &a); err != nil || a.Model == nil {
		return nil, fmt.Errorf("matching: stored model: corrupt (%v)", err)
	}
	// DecodeModel checks the version against the parameters.
	b, _ := json.Marshal(a.Model)
	m, err := DecodeModel(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("matching: stored model: %w", err)
	}
	a.Model = m
	return &a, nil
}

func (t *Trainer) activate(a *AutoModel) {
	t.auto.Store(a)
	t.Stitcher.SetMatcher(NewGraphMatcher(a.Model, t.Hold).WithRename(a.Rename()).WithFrequencies(a.Frequencies))
}

// save stores the automatic model and puts it in use.
func (t *Trainer) save(ctx context.Context, a *AutoModel) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("matching: %w", err)
	}
	if err := t.Store.PutSetting(ctx, SettingAutoModel, string(b)); err != nil {
		return fmt.Errorf("matching: store model: %w", err)
	}
	t.activate(a)
	return nil
}

// AddRecordIDTypes marks the identifier types of an import as record IDs
// and stores them when one is new.
func (t *Trainer) AddRecordIDTypes(ctx context.Context, types []string) error {
	if !t.Stitcher.AddRecordIDTypes(types...) {
		return nil
	}
	// Another process may have added types meanwhile: keep theirs.
	if v, ok, err := t.Store.Setting(ctx, SettingRecordIDTypes); err == nil && ok {
		var stored []string
		if json.Unmarshal([]byte(v), &stored) == nil {
			t.Stitcher.AddRecordIDTypes(stored...)
		}
	}
	b, _ := json.Marshal(t.Stitcher.RecordIDTypes())
	if err := t.Store.PutSetting(ctx, SettingRecordIDTypes, string(b)); err != nil {
		return fmt.Errorf("matching: record-ID types: %w", err)
	}
	return nil
}

// Decision describes the model in use.
func (t *Trainer) Decision() *Decision {
	d := &Decision{RecordIDTypes: t.Stitcher.RecordIDTypes(), RecordIDLimit: t.Stitcher.Config.RecordIDLimit}
	m := t.Base
	d.Origin = "built-in"
	if t.Explicit {
		d.Origin = "file"
	}
	if a := t.auto.Load(); a != nil {
		m, d.Origin, d.Records, d.Sources = a.Model, "trained", a.Records, a.Sources
		at := a.TrainedAt
		d.TrainedAt = &at
	}
	d.Model, d.Fields, d.Blocking = m.Version, m.Config.Fields, m.BlockingRules()
	if d.RecordIDTypes == nil {
		d.RecordIDTypes = []string{}
	}
	if d.Sources == nil {
		d.Sources = []SourceDecision{}
	}
	return d
}

// Ensure trains a model when an imported source has columns the model in
// use was not trained for, or always with force. With dryRun it only
// reports the sources that would be trained for. A source with nothing to
// match people on gives a graph.KindInvalid error naming its columns.
func (t *Trainer) Ensure(ctx context.Context, force, dryRun bool) (*Decision, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := time.Now()
	sources, err := t.records(ctx)
	if err != nil {
		return nil, err
	}
	var uncovered []string
	for _, src := range slices.Sorted(maps.Keys(sources)) {
		if !t.covers(src, Columns(sources[src])) {
			uncovered = append(uncovered, src)
		}
	}
	if dryRun || len(sources) == 0 || len(uncovered) == 0 && !force {
		d := t.Decision()
		d.Uncovered = uncovered
		return d, nil
	}
	a, err := TrainAuto(sources, time.Now())
	var unusable *UnusableError
	if errors.As(err, &unusable) {
		return nil, graph.Errorf(graph.KindInvalid, "%s", unusable.Error())
	}
	if err != nil {
		return nil, fmt.Errorf("matching: train: %w", err)
	}
	if err := t.save(ctx, a); err != nil {
		return nil, err
	}
	fields := make([]string, len(a.Model.Config.Fields))
	for i, f := range a.Model.Config.Fields {
		fields[i] = f.Name
	}
	t.Log.Info("matching: trained a model with no set-up step", "model", a.Model.Version, "sources", uncovered,
		"forced", force, "records", a.Records, "fields", fields, "rules", len(a.Model.Config.Blocking), "took", time.Since(start).Round(time.Millisecond))
	d := t.Decision()
	d.Trained = true
	return d, nil
}

// covers reports whether the model in use compares the source's columns:
// the automatic model was trained for them, or (no automatic model yet)
// every column is a field of the base model.
func (t *Trainer) covers(src string, cols []string) bool {
	if a := t.auto.Load(); a != nil {
		return a.Covers(src, cols)
	}
	for _, c := range cols {
		if !slices.ContainsFunc(t.Base.Config.Fields, func(f Field) bool { return f.Name == c }) && c != "name" {
			return false
		}
	}
	return true
}

// recordsPerProfile bounds the events read per profile when gathering
// training records: a profile with more records than that is a blob the
// record-ID limit keeps from forming.
const recordsPerProfile = 100

// records returns the stored records of each imported source (trait
// path → value), up to MaxRecords.
func (t *Trainer) records(ctx context.Context) (map[string][]map[string]string, error) {
	limit := t.MaxRecords
	if limit <= 0 {
		limit = MaxAutoRecords
	}
	recs, _, err := t.storedRecords(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := map[string][]map[string]string{}
	for _, r := range recs {
		out[r.source] = append(out[r.source], r.fields)
	}
	return out, nil
}

// storedRecord is one imported record as stored: its source, the
// identifier that names it (a record-ID type when it has one) and its
// traits by path.
type storedRecord struct {
	source string
	key    graph.Key
	fields map[string]string
}

// storedRecords reads up to limit imported records through the live
// profiles' timelines: the records as imported, not the profiles they
// merged into, so a model trained after a run still sees every duplicate.
// more says records were left unread.
func (t *Trainer) storedRecords(ctx context.Context, limit int) (recs []storedRecord, more bool, err error) {
	seen := map[string]bool{}
	recordIDs := t.Stitcher.RecordIDTypes()
	for after := ""; ; {
		ps, err := t.Store.Profiles(ctx, after, 500)
		if err != nil {
			return nil, false, fmt.Errorf("matching: read records: %w", err)
		}
		if len(ps) == 0 {
			return recs, false, nil
		}
		after = ps[len(ps)-1].ID
		ids, err := t.Store.IdentifiersOf(ctx, ps)
		if err != nil {
			return nil, false, fmt.Errorf("matching: read records: %w", err)
		}
		qs := make([]graph.TimelineQuery, len(ps))
		for i, list := range ids {
			for _, id := range list {
				qs[i].Keys = append(qs[i].Keys, id.Key)
			}
			qs[i].Limit = recordsPerProfile
		}
		evs, err := t.Store.Timelines(ctx, qs)
		if err != nil {
			return nil, false, fmt.Errorf("matching: read records: %w", err)
		}
		for _, list := range evs {
			for _, ev := range list {
				if ev.Type != "record" || slices.Contains(t.Ignore, ev.Source) || seen[ev.MessageID] || len(ev.Traits) == 0 || len(ev.Identifiers) == 0 {
					continue
				}
				seen[ev.MessageID] = true
				rec := recordTraits(ev.Traits)
				if len(rec) == 0 {
					continue
				}
				if len(recs) == limit {
					return recs, true, nil
				}
				key := ev.Identifiers[0]
				if i := slices.IndexFunc(ev.Identifiers, func(k graph.Key) bool { return slices.Contains(recordIDs, k.Type) }); i >= 0 {
					key = ev.Identifiers[i]
				}
				recs = append(recs, storedRecord{source: ev.Source, key: key, fields: rec})
			}
		}
		if len(ps) < 500 {
			return recs, false, nil
		}
	}
}

// recordTraits flattens a record's traits to the strings and numbers it
// holds by path; nil when they are not an object.
func recordTraits(raw json.RawMessage) map[string]string {
	var traits map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&traits); err != nil {
		return nil // not an object: no columns to learn from
	}
	rec := map[string]string{}
	for path, v := range graph.FlattenTraits(traits) {
		switch v := v.(type) {
		case string:
			if v != "" {
				rec[path] = v
			}
		case json.Number:
			rec[path] = v.String()
		}
	}
	return rec
}
