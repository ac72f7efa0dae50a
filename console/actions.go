package console

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Steward actions from the profile page. Each POST without confirm=yes
// renders a preview of what will happen; the preview's Confirm button
// posts the same form again with confirm=yes, which runs the one API
// mutation. A read key gets the API's FORBIDDEN either way.

// mutationResult is what the action mutations answer.
type mutationResult struct {
	Audit struct {
		ID    string
		After []struct {
			ID     string
			Counts map[string]int
			Names  []string
		}
	}
	Profiles []struct{ ID string }
}

// resulting describes the profiles a dry run says the action leaves.
func (m mutationResult) resulting() []string {
	var lines []string
	for _, p := range m.Audit.After {
		total := 0
		var parts []string
		for t, n := range p.Counts {
			total += n
			parts = append(parts, fmt.Sprintf("%d %s", n, t))
		}
		slices.Sort(parts)
		line := fmt.Sprintf("Result: profile %s with %d identifiers (%s)", p.ID, total, strings.Join(parts, ", "))
		if len(p.Names) > 0 {
			line += ", named " + strings.Join(p.Names, " / ")
		}
		lines = append(lines, line+".")
	}
	return lines
}

// dryRun runs the action's mutation as a dry run and returns the profiles
// it would leave, for the preview.
func (c *Console) dryRun(r *http.Request, op string, vars map[string]any) ([]string, error) {
	vars["dry"] = true
	var out map[string]mutationResult
	if err := c.query(r, Operations[op], vars, &out); err != nil {
		return nil, err
	}
	for _, m := range out {
		return m.resulting(), nil
	}
	return nil, nil
}

func (c *Console) confirmed(r *http.Request) bool { return r.PostFormValue("confirm") == "yes" }

// preview renders the confirmation page for an action.
func (c *Console) preview(w http.ResponseWriter, r *http.Request, title, action string, lines []string) {
	hidden := map[string][]string{}
	for k, v := range r.PostForm {
		if k != "csrf" && k != "confirm" {
			hidden[k] = v
		}
	}
	c.render(w, r, http.StatusOK, "confirm", nil, pageData{Title: title, Data: map[string]any{
		"Action": action, "Lines": lines, "Hidden": hidden, "Back": r.Header.Get("Referer")}})
}

func parseKey(s string) (map[string]any, bool) {
	t, v, ok := strings.Cut(s, ":")
	if !ok || t == "" || v == "" {
		return nil, false
	}
	return map[string]any{"type": t, "value": v}, true
}

// split moves the checked identifiers to a new profile.
func (c *Console) split(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	keys := r.PostForm["key"]
	if len(keys) == 0 {
		c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Split", Error: "Tick the identifiers to move to a new profile."})
		return
	}
	var ids []map[string]any
	for _, k := range keys {
		m, ok := parseKey(k)
		if !ok {
			c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Split", Error: fmt.Sprintf("%q is not an identifier", k)})
			return
		}
		ids = append(ids, m)
	}
	vars := map[string]any{"profile": id, "ids": ids, "note": r.PostFormValue("note")}
	if !c.confirmed(r) {
		result, err := c.dryRun(r, "split", vars)
		if err != nil {
			c.fail(w, r, "Split", err)
			return
		}
		lines := []string{fmt.Sprintf("These %d identifiers, and the events seen only on them, move to a new profile:", len(keys))}
		lines = append(lines, keys...)
		lines = append(lines, "Profile "+id+" keeps its ID and everything else. The edges that held them are rejected, and the two profiles are kept apart until a steward links them.")
		c.preview(w, r, "Split profile", "/console/profiles/"+url.PathEscape(id)+"/split", append(lines, result...))
		return
	}
	var out struct{ Split mutationResult }
	if err := c.query(r, Operations["split"], vars, &out); err != nil {
		c.fail(w, r, "Split", err)
		return
	}
	newID := out.Split.Profiles[len(out.Split.Profiles)-1].ID
	http.Redirect(w, r, noticeURL("/console/profiles/"+url.PathEscape(newID), "split", len(keys)), http.StatusSeeOther)
}

// link joins one of the profile's identifiers with another identifier.
func (c *Console) link(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a, okA := parseKey(r.PostFormValue("from"))
	typ, val := strings.TrimSpace(r.PostFormValue("type")), strings.TrimSpace(r.PostFormValue("value"))
	if !okA || typ == "" || val == "" {
		c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Link", Error: "Give the identifier's type and value to link with."})
		return
	}
	b := map[string]any{"type": typ, "value": val}
	if !c.confirmed(r) {
		var found struct {
			Identifier *struct {
				Type, Value string
				Profile     struct{ ID string }
			}
		}
		if err := c.query(r, Operations["lookup"], b, &found); err != nil {
			c.fail(w, r, "Link", err)
			return
		}
		if found.Identifier == nil {
			c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Link", Error: fmt.Sprintf("There is no %s %s.", typ, val)})
			return
		}
		lines := []string{
			fmt.Sprintf("A manual edge joins %s:%s with %s:%s.", a["type"], a["value"], found.Identifier.Type, found.Identifier.Value),
			fmt.Sprintf("Profiles %s and %s merge (the older ID survives; the merge can be undone).", id, found.Identifier.Profile.ID),
		}
		if found.Identifier.Profile.ID == id {
			lines = []string{"Both identifiers are already in this profile: the link only records the steward's edge."}
		}
		result, err := c.dryRun(r, "link", map[string]any{"a": a, "b": b})
		if err != nil {
			c.fail(w, r, "Link", err)
			return
		}
		lines = append(lines, result...)
		c.preview(w, r, "Link", "/console/profiles/"+url.PathEscape(id)+"/link", lines)
		return
	}
	var out struct{ Link mutationResult }
	if err := c.query(r, Operations["link"], map[string]any{"a": a, "b": b, "note": r.PostFormValue("note")}, &out); err != nil {
		c.fail(w, r, "Link", err)
		return
	}
	http.Redirect(w, r, noticeURL("/console/profiles/"+url.PathEscape(out.Link.Profiles[0].ID), "linked"), http.StatusSeeOther)
}

// undo undoes a merge (by its merge event) or a split (by its audit entry).
func (c *Console) undo(w http.ResponseWriter, r *http.Request) {
	kind, target := r.PostFormValue("kind"), r.PostFormValue("target")
	op, ok := map[string]string{"merge": "undoMerge", "split": "undoSplit"}[kind]
	if !ok || target == "" {
		c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Undo", Error: "Nothing to undo was named."})
		return
	}
	if !c.confirmed(r) {
		lines := map[string][]string{
			"merge": {"Profile " + cmp.Or(r.PostFormValue("absorbed"), "the merge absorbed") + " comes back under its own ID with the identifiers it had, and those that joined through them since.",
				"Profile " + cmp.Or(r.PostFormValue("survivor"), "it merged into") + " keeps its ID and everything else. The two are kept apart until a steward links them."},
			"split": {"The identifiers the split moved go back, the edges it rejected get their status back, and the split's profile ID redirects to the original."},
		}[kind]
		result, err := c.dryRun(r, op, map[string]any{"id": target})
		if err != nil {
			c.fail(w, r, "Undo", err)
			return
		}
		c.preview(w, r, "Undo "+kind, "/console/undo", append(lines, result...))
		return
	}
	var out map[string]mutationResult
	if err := c.query(r, Operations[op], map[string]any{"id": target, "note": r.PostFormValue("note")}, &out); err != nil {
		c.fail(w, r, "Undo", err)
		return
	}
	res := out[op]
	if kind == "merge" {
		c.forgetApproval(r, target)
	}
	http.Redirect(w, r, noticeURL("/console/profiles/"+url.PathEscape(res.Profiles[len(res.Profiles)-1].ID), "undone"), http.StatusSeeOther)
}
