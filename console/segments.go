package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// The segments pages: the list, one segment with its members, one
// computed trait (disabled and enabled here by a steward), a profile's
// segments and computed traits, why a profile is or is not in a segment
// and why a computed trait has its value (docs/segments.md). Editing is
// editor.go's.

func (c *Console) segments(w http.ResponseWriter, r *http.Request) {
	vars := map[string]any{}
	if a := r.URL.Query().Get("after"); a != "" {
		vars["after"] = a
	}
	var out map[string]any
	if err := c.query(r, Operations["segments"], vars, &out); err != nil {
		c.fail(w, r, "Segments", err)
		return
	}
	c.render(w, r, http.StatusOK, "segments", nil, pageData{Title: "Segments", Data: out})
}

func (c *Console) segment(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	vars := map[string]any{"key": key}
	for _, v := range []string{"after", "versionsAfter"} {
		if a := r.URL.Query().Get(v); a != "" {
			vars[v] = a
		}
	}
	var out struct{ Segment map[string]any }
	if err := c.query(r, Operations["segment"], vars, &out); err != nil {
		c.fail(w, r, "Segment", err)
		return
	}
	if out.Segment == nil {
		c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no segment " + key + "."})
		return
	}
	c.render(w, r, http.StatusOK, "segment", nil, pageData{Title: "Segment " + key, Data: out.Segment})
}

func (c *Console) profileSegments(w http.ResponseWriter, r *http.Request) {
	var out map[string]any
	if err := c.query(r, Operations["profileSegments"], map[string]any{"id": r.PathValue("id")}, &out); err != nil {
		c.fail(w, r, "Segments of a profile", err)
		return
	}
	if out["profile"] == nil {
		c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no profile " + r.PathValue("id") + "."})
		return
	}
	// Every segment, member or not, links to why.
	member := map[string]bool{}
	p, _ := out["profile"].(map[string]any)
	for _, k := range list(p["segments"]) {
		member[str(k)] = true
	}
	var rows []map[string]any
	for _, e := range list(mapOf(out["segments"])["edges"]) {
		key := str(mapOf(mapOf(e)["node"])["key"])
		rows = append(rows, map[string]any{"Key": key, "Member": member[key]})
	}
	// Every computed trait, with a value or not, links to why.
	values := map[string]map[string]any{}
	for _, t := range list(p["computedTraits"]) {
		values[str(mapOf(t)["key"])] = mapOf(t)
	}
	var traits []map[string]any
	for _, e := range list(mapOf(out["computedTraits"])["edges"]) {
		key := str(mapOf(mapOf(e)["node"])["key"])
		row := map[string]any{"Key": key}
		if t := values[key]; t != nil {
			v, _ := json.Marshal(t["value"])
			row["Type"], row["Value"] = t["type"], string(v)
		}
		traits = append(traits, row)
	}
	c.render(w, r, http.StatusOK, "profilesegments", nil, pageData{Title: "Segments of a profile",
		Data: map[string]any{"Profile": p, "Segments": rows, "Traits": traits}})
}

// explainNode is one node of an explanation, with its children, for the
// template's nested lists.
type explainNode struct {
	Text, Value, Deadline string
	EventCount            int
	Events                []string
	Children              []*explainNode
}

func (c *Console) explain(w http.ResponseWriter, r *http.Request) {
	var out struct{ ExplainMembership map[string]any }
	if err := c.query(r, Operations["explain"], map[string]any{"id": r.PathValue("id"), "key": r.PathValue("key")}, &out); err != nil {
		c.fail(w, r, "Why", err)
		return
	}
	x := out.ExplainMembership
	c.render(w, r, http.StatusOK, "explain", nil, pageData{Title: "Why", Data: map[string]any{"X": x, "Root": explainTree(x["nodes"])}})
}

// explainTree nests an explanation's nodes (depth-first, each naming its
// parent) for the template; it returns the root.
func explainTree(raws any) *explainNode {
	var nodes []*explainNode
	var root *explainNode
	for _, raw := range list(raws) {
		m := mapOf(raw)
		v, _ := json.Marshal(m["value"])
		n := &explainNode{Text: str(m["text"]), Value: string(v), Deadline: str(m["deadline"])}
		if f, ok := m["eventCount"].(float64); ok {
			n.EventCount = int(f)
		}
		for _, e := range list(m["events"]) {
			n.Events = append(n.Events, str(mapOf(e)["messageId"]))
		}
		nodes = append(nodes, n)
		if parent, ok := m["parent"].(float64); ok && int(parent) < len(nodes)-1 {
			nodes[int(parent)].Children = append(nodes[int(parent)].Children, n)
		} else if root == nil {
			root = n
		}
	}
	return root
}

// explainTrait: why a profile's computed trait has its value
// (explainComputedTrait), as explain is for a segment.
func (c *Console) explainTrait(w http.ResponseWriter, r *http.Request) {
	var out struct{ ExplainComputedTrait map[string]any }
	if err := c.query(r, Operations["explainTrait"], map[string]any{"id": r.PathValue("id"), "key": r.PathValue("key")}, &out); err != nil {
		c.fail(w, r, "Why", err)
		return
	}
	x := out.ExplainComputedTrait
	value, _ := json.Marshal(x["value"])
	stored, _ := json.Marshal(x["storedValue"])
	c.render(w, r, http.StatusOK, "explaintrait", nil, pageData{Title: "Why", Data: map[string]any{"X": x, "Root": explainTree(x["nodes"]),
		"Value": string(value), "Missing": x["value"] == nil, "Lags": string(value) != string(stored)}})
}

// trait is a computed trait's page: its status, version and definition,
// with Edit, and Disable or Enable for a steward.
func (c *Console) trait(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	def, ok := c.definition(w, r, traitKind, key)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "trait", nil, pageData{Title: "Computed trait " + key, Data: def})
}

// setTraitEnabled disables a computed trait (no longer evaluated, its
// values dropped) or enables it again (backfilled), from the version the
// page showed: setComputedTraitEnabled.
func (c *Console) setTraitEnabled(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	enabled, err := strconv.ParseBool(r.PostFormValue("enabled"))
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Computed trait " + key,
			Error: "enabled: must be true or false, not " + strconv.Quote(r.PostFormValue("enabled"))})
		return
	}
	version, err := formVersion(r)
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Computed trait " + key, Error: err.Error()})
		return
	}
	var out struct {
		SetComputedTraitEnabled struct {
			Key     string
			Version int
		}
	}
	vars := map[string]any{"key": key, "enabled": enabled, "version": optionalVersion(version)}
	if err := c.query(r, Operations["setTraitEnabled"], vars, &out); err != nil {
		c.fail(w, r, "Computed trait "+key, err)
		return
	}
	notice := "disabled"
	if enabled {
		notice = "enabled"
	}
	t := out.SetComputedTraitEnabled
	http.Redirect(w, r, noticeURL(traitKind.Path+"/"+url.PathEscape(t.Key), notice, t.Version), http.StatusSeeOther)
}

func optionalVersion(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

func mapOf(v any) map[string]any { m, _ := v.(map[string]any); return m }
