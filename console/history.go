package console

import (
	"encoding/json"
	"net/http"
)

// historyEntry is one audit entry as the history page shows it: who, what,
// why, the profiles before and after, and the explanation kept with it.
type historyEntry struct {
	ID, At, Actor, Action, Note, Cause, Merge string
	Before, After                             []snapshot
	Explanation                               json.RawMessage
	Edge                                      []struct{ Type, Value string }
	Waterfall                                 *waterfall
}

type snapshot struct {
	ID         string
	MergedInto string
	Counts     map[string]int
	Names      []string
}

// history lists every merge, split, link, approval, rejection and undo
// that involved the profile, newest first, each with Undo where it can be
// undone (a merge, a split), through the same previews as the profile page.
func (c *Console) history(w http.ResponseWriter, r *http.Request) {
	var out struct {
		Profile *struct {
			ID, Name string
			Audit    []historyEntry
		}
	}
	if err := c.query(r, Operations["history"], map[string]any{"id": r.PathValue("id")}, &out); err != nil {
		c.fail(w, r, "History", err)
		return
	}
	if out.Profile == nil {
		c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no profile " + r.PathValue("id") + "."})
		return
	}
	for i := range out.Profile.Audit {
		out.Profile.Audit[i].Waterfall = newWaterfall(out.Profile.Audit[i].Explanation)
	}
	c.render(w, r, http.StatusOK, "history", nil, pageData{Title: "History of " + out.Profile.ID, Data: out.Profile})
}
