package console

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
)

// The definition editor, for segments and computed traits alike: a
// definition in a text area, checked as it is typed (console.js asks
// /console/segments/validate, which runs the API's validateDefinition
// with the editor's kind), previewed before saving (previewSegment: the
// exact count and a sample; previewComputedTrait: the values of a sample
// of profiles), saved by a steward (create, or update from the version the
// editor was opened on, so that two editors cannot overwrite each other).
// Worked examples start a new one.

type example struct{ Key, Name, Source string }

// defKind is what differs between editing a segment and a computed trait:
// names, paths and the API operations.
type defKind struct {
	Name  string // "segment"
	Title string // "Segment"
	Path  string // where its pages are: /console/segments
	GQL   string // the API's DefinitionKind
	Trait bool
	// Operations keys: read one, create, update, preview.
	get, create, update, preview string
	Examples                     []example
}

// segmentExamples are the worked examples of docs/segments.md.
var segmentExamples = []example{
	{"recency", "Recency: bought in the last 30 days", `events("Order Completed").within(30d).exists()`},
	{"frequency", "Frequency: three orders of 50 or more in 90 days", `events("Order Completed").within(90d).where(number(prop("revenue")) >= 50).count() >= 3`},
	{"monetary", "Monetary value: spent 500 or more in 90 days", `events("Order Completed").within(90d).sum(prop("revenue")) >= 500`},
	{"abandoned_cart", "Abandoned cart: added a product an hour to 7 days ago, not bought since", "events(\"Product Added\").between(1h, 7d).where(\n  not events(\"Order Completed\").after_parent().where(prop(\"sku\") = parent.prop(\"sku\")).exists()\n).exists()"},
	{"lapsed", "Lapsed customers: bought before, not in the last 90 days", `events("Order Completed").exists() and not events("Order Completed").within(90d).exists()`},
	{"profile_data", "Profile data: a city and an email domain", `lower(trait("email")) ends_with "@corp.io" and trait("address.city") in ["Paris", "Lyon"]`},
}

// traitExamples are the computed traits of docs/segments.md: one value
// per profile.
var traitExamples = []example{
	{"monetary", "Monetary value: revenue in the last 90 days", `events("Order Completed").within(90d).sum(prop("revenue"))`},
	{"frequency", "Frequency: orders in the last 90 days", `events("Order Completed").within(90d).count()`},
	{"favourite", "Favourite category of the last ten orders", `events("Order Completed").latest(10).mode(prop("category"))`},
	{"recency", "Days since the last order", `days_since(events("Order Completed").last_at())`},
	{"last_order", "When the last order was", `events("Order Completed").last_at()`},
	{"contact", "Profile data: known (has an email) or anonymous", `if(has_id("email"), "known", "anonymous")`},
}

var (
	segmentKind = &defKind{Name: "segment", Title: "Segment", Path: "/console/segments", GQL: "SEGMENT",
		get: "segment", create: "createSegment", update: "updateSegment", preview: "preview", Examples: segmentExamples}
	traitKind = &defKind{Name: "computed trait", Title: "Computed trait", Path: "/console/traits", GQL: "COMPUTED_TRAIT", Trait: true,
		get: "computedTrait", create: "createComputedTrait", update: "updateComputedTrait", preview: "previewTrait", Examples: traitExamples}
)

// editorData is what the editor page shows.
type editorData struct {
	Kind       *defKind
	Key        string
	Definition string
	Version    int            // 0: a new definition
	Check      map[string]any // validateDefinition's answer, after a preview
	Preview    map[string]any // previewSegment's or previewComputedTrait's answer
}

func (c *Console) editor(w http.ResponseWriter, r *http.Request)      { c.edit(w, r, segmentKind) }
func (c *Console) traitEditor(w http.ResponseWriter, r *http.Request) { c.edit(w, r, traitKind) }
func (c *Console) saveSegment(w http.ResponseWriter, r *http.Request) { c.save(w, r, segmentKind) }
func (c *Console) saveTrait(w http.ResponseWriter, r *http.Request)   { c.save(w, r, traitKind) }

func (c *Console) edit(w http.ResponseWriter, r *http.Request, k *defKind) {
	d := editorData{Kind: k, Key: r.PathValue("key")}
	if d.Key != "" {
		def, ok := c.definition(w, r, k, d.Key)
		if !ok {
			return
		}
		d.Definition = str(def["definition"])
		if v, ok := def["version"].(float64); ok {
			d.Version = int(v)
		}
	}
	for _, ex := range k.Examples {
		if ex.Key == r.URL.Query().Get("example") {
			d.Definition = ex.Source
		}
	}
	c.render(w, r, http.StatusOK, "editor", nil, pageData{Title: k.Title + " editor", Data: d})
}

// definition reads a saved segment or computed trait, or answers the
// request itself (an error page, 404 when there is none) and reports false.
// A versionsAfter in the URL pages through its older versions.
func (c *Console) definition(w http.ResponseWriter, r *http.Request, k *defKind, key string) (map[string]any, bool) {
	var out map[string]map[string]any
	vars := map[string]any{"key": key}
	if a := r.URL.Query().Get("versionsAfter"); a != "" {
		vars["versionsAfter"] = a
	}
	if err := c.query(r, Operations[k.get], vars, &out); err != nil {
		c.fail(w, r, k.Title, err)
		return nil, false
	}
	for _, def := range out {
		if def != nil {
			return def, true
		}
	}
	c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no " + k.Name + " " + key + "."})
	return nil, false
}

// save previews the form's definition (action=preview) or saves it.
func (c *Console) save(w http.ResponseWriter, r *http.Request, k *defKind) {
	d := editorData{Kind: k, Key: r.PostFormValue("key"), Definition: r.PostFormValue("definition")}
	title := k.Title + " editor"
	var err error
	if d.Version, err = formVersion(r); err != nil {
		c.render(w, r, http.StatusBadRequest, "editor", nil, pageData{Title: title, Error: err.Error(), Data: d})
		return
	}
	if r.PostFormValue("action") == "preview" {
		var check struct{ ValidateDefinition map[string]any }
		if err := c.query(r, Operations["validate"], map[string]any{"def": d.Definition, "key": optionalKey(d.Key), "kind": k.GQL}, &check); err != nil {
			c.fail(w, r, title, err)
			return
		}
		d.Check = check.ValidateDefinition
		if d.Check["valid"] == true {
			var p map[string]map[string]any
			if err := c.query(r, Operations[k.preview], map[string]any{"def": d.Definition}, &p); err != nil {
				c.fail(w, r, title, err)
				return
			}
			for _, v := range p {
				d.Preview = v
			}
			if k.Trait && d.Preview != nil {
				d.Preview["values"] = sampleValues(d.Preview["values"])
			}
		}
		c.render(w, r, http.StatusOK, "editor", nil, pageData{Title: title, Data: d})
		return
	}
	var out map[string]struct {
		Key     string
		Version int
	}
	if d.Version == 0 {
		err = c.query(r, Operations[k.create], map[string]any{"key": d.Key, "def": d.Definition}, &out)
	} else {
		err = c.query(r, Operations[k.update], map[string]any{"key": d.Key, "def": d.Definition, "version": d.Version}, &out)
	}
	if err != nil {
		// The editor again, with the API's refusal (an invalid definition
		// at its line and column, a stale version, a read key).
		c.refuse(w, r, title, err, d)
		return
	}
	for _, s := range out {
		http.Redirect(w, r, noticeURL(k.Path+"/"+url.PathEscape(s.Key), "saved", s.Version), http.StatusSeeOther)
	}
}

// refuse renders the editor again with the API's refusal and the status
// its code means; an error that is not the API's is an error page.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, title string, err error, d editorData) {
	var ge *gqlError
	if !errors.As(err, &ge) {
		c.fail(w, r, title, err)
		return
	}
	code := map[string]int{"FORBIDDEN": http.StatusForbidden, "CONFLICT": http.StatusConflict, "NOT_FOUND": http.StatusNotFound}[ge.Code]
	c.render(w, r, cmp.Or(code, http.StatusBadRequest), "editor", nil, pageData{Title: title, Error: ge.Message, Data: d})
}

// formVersion is the form's version: the one the editor was opened on (0,
// or none, for a new definition).
func formVersion(r *http.Request) (int, error) {
	s := r.PostFormValue("version")
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, errors.New("version: must be the whole number of the version the editor was opened on, not " + strconv.Quote(s))
	}
	return v, nil
}

// sampleValues shows previewComputedTrait's values as JSON text (the
// template has no other way to tell a string from a number).
func sampleValues(v any) []map[string]any {
	var out []map[string]any
	for _, s := range list(v) {
		m := mapOf(s)
		row := map[string]any{"profile": m["profile"], "missing": m["value"] == nil}
		b, _ := json.Marshal(m["value"])
		row["value"] = string(b)
		out = append(out, row)
	}
	return out
}

func optionalKey(k string) any {
	if k == "" {
		return nil
	}
	return k
}

// validate answers the editor's script: validateDefinition's answer as
// JSON, for the kind the editor edits (kind=COMPUTED_TRAIT, or a segment).
func (c *Console) validate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := cmp.Or(q.Get("kind"), segmentKind.GQL)
	w.Header().Set("Content-Type", "application/json")
	if kind != segmentKind.GQL && kind != traitKind.GQL {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"error": "kind: must be SEGMENT or COMPUTED_TRAIT, not " + strconv.Quote(kind)})
		return
	}
	var out struct{ ValidateDefinition map[string]any }
	if err := c.query(r, Operations["validate"], map[string]any{"def": q.Get("definition"), "key": optionalKey(q.Get("key")), "kind": kind}, &out); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(out.ValidateDefinition)
}
