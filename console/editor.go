package console

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
)

// The segment editor: a definition in a text area, checked as it is typed
// (console.js asks /console/segments/validate, which runs the API's
// validateDefinition), previewed before saving (previewSegment: the exact
// count and a sample), saved by a steward (createSegment, or
// updateSegment from the version the editor was opened on, so that two
// editors cannot overwrite each other). Worked examples start a new one.

// segmentExamples are the worked examples of docs/segments.md.
var segmentExamples = []struct{ Key, Name, Source string }{
	{"recency", "Recency: bought in the last 30 days", `events("Order Completed").within(30d).exists()`},
	{"frequency", "Frequency: three orders of 50 or more in 90 days", `events("Order Completed").within(90d).where(number(prop("revenue")) >= 50).count() >= 3`},
	{"monetary", "Monetary value: spent 500 or more in 90 days", `events("Order Completed").within(90d).sum(prop("revenue")) >= 500`},
	{"abandoned_cart", "Abandoned cart: added a product an hour to 7 days ago, not bought since", "events(\"Product Added\").between(1h, 7d).where(\n  not events(\"Order Completed\").after_parent().where(prop(\"sku\") = parent.prop(\"sku\")).exists()\n).exists()"},
	{"lapsed", "Lapsed customers: bought before, not in the last 90 days", `events("Order Completed").exists() and not events("Order Completed").within(90d).exists()`},
	{"profile_data", "Profile data: a city and an email domain", `lower(trait("email")) ends_with "@corp.io" and trait("address.city") in ["Paris", "Lyon"]`},
}

// editorData is what the editor page shows.
type editorData struct {
	Key        string
	Definition string
	Version    int // 0: a new segment
	Examples   any
	Check      map[string]any // validateDefinition's answer, after a preview
	Preview    map[string]any // previewSegment's answer
}

func (c *Console) editor(w http.ResponseWriter, r *http.Request) {
	d := editorData{Key: r.PathValue("key"), Examples: segmentExamples}
	if d.Key != "" {
		var out struct{ Segment map[string]any }
		if err := c.query(r, Operations["segment"], map[string]any{"key": d.Key}, &out); err != nil {
			c.fail(w, r, "Edit segment", err)
			return
		}
		if out.Segment == nil {
			c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no segment " + d.Key + "."})
			return
		}
		d.Definition = str(out.Segment["definition"])
		if v, ok := out.Segment["version"].(float64); ok {
			d.Version = int(v)
		}
	}
	for _, ex := range segmentExamples {
		if ex.Key == r.URL.Query().Get("example") {
			d.Definition = ex.Source
		}
	}
	c.render(w, r, http.StatusOK, "editor", nil, pageData{Title: "Segment editor", Data: d})
}

// saveSegment previews the form's definition (action=preview) or saves it.
func (c *Console) saveSegment(w http.ResponseWriter, r *http.Request) {
	d := editorData{Key: r.PostFormValue("key"), Definition: r.PostFormValue("definition"), Examples: segmentExamples}
	d.Version, _ = strconv.Atoi(r.PostFormValue("version"))
	if r.PostFormValue("action") == "preview" {
		var check struct{ ValidateDefinition map[string]any }
		if err := c.query(r, Operations["validate"], map[string]any{"def": d.Definition, "key": optionalKey(d.Key)}, &check); err != nil {
			c.fail(w, r, "Segment editor", err)
			return
		}
		d.Check = check.ValidateDefinition
		if d.Check["valid"] == true {
			var p struct{ PreviewSegment map[string]any }
			if err := c.query(r, Operations["preview"], map[string]any{"def": d.Definition}, &p); err != nil {
				c.fail(w, r, "Segment editor", err)
				return
			}
			d.Preview = p.PreviewSegment
		}
		c.render(w, r, http.StatusOK, "editor", nil, pageData{Title: "Segment editor", Data: d})
		return
	}
	var err error
	var out map[string]struct {
		Key     string
		Version int
	}
	if d.Version == 0 {
		err = c.query(r, Operations["createSegment"], map[string]any{"key": d.Key, "def": d.Definition}, &out)
	} else {
		err = c.query(r, Operations["updateSegment"], map[string]any{"key": d.Key, "def": d.Definition, "version": d.Version}, &out)
	}
	if err != nil {
		// The editor again, with the API's refusal (an invalid definition
		// at its line and column, a stale version, a read key).
		var ge *gqlError
		if !errors.As(err, &ge) {
			c.fail(w, r, "Segment editor", err)
			return
		}
		code := map[string]int{"FORBIDDEN": http.StatusForbidden, "CONFLICT": http.StatusConflict, "NOT_FOUND": http.StatusNotFound}[ge.Code]
		c.render(w, r, cmp.Or(code, http.StatusBadRequest), "editor", nil, pageData{Title: "Segment editor", Error: ge.Message, Data: d})
		return
	}
	for _, s := range out {
		http.Redirect(w, r, noticeURL("/console/segments/"+url.PathEscape(s.Key), "saved", s.Version), http.StatusSeeOther)
	}
}

func optionalKey(k string) any {
	if k == "" {
		return nil
	}
	return k
}

// validate answers the editor's script: validateDefinition's answer as
// JSON.
func (c *Console) validate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var out struct{ ValidateDefinition map[string]any }
	if err := c.query(r, Operations["validate"], map[string]any{"def": q.Get("definition"), "key": optionalKey(q.Get("key"))}, &out); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out.ValidateDefinition)
}
