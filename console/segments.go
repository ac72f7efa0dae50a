package console

import (
	"encoding/json"
	"net/http"
)

// The segments pages are read-only: the list, one segment with its
// members, a profile's segments and computed traits, and why a profile is
// or is not in a segment (docs/segments.md). Editing is the API's and the
// CLI's (idgraph segments apply).

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
	if a := r.URL.Query().Get("after"); a != "" {
		vars["after"] = a
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
	var traits []map[string]any
	for _, t := range list(p["computedTraits"]) {
		v, _ := json.Marshal(mapOf(t)["value"])
		traits = append(traits, map[string]any{"Key": mapOf(t)["key"], "Type": mapOf(t)["type"], "Value": string(v)})
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
	var nodes []*explainNode
	var root *explainNode
	for _, raw := range list(x["nodes"]) {
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
	c.render(w, r, http.StatusOK, "explain", nil, pageData{Title: "Why", Data: map[string]any{"X": x, "Root": root}})
}

func list(v any) []any { l, _ := v.([]any); return l }

func mapOf(v any) map[string]any { m, _ := v.(map[string]any); return m }
