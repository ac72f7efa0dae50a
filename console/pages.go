package console

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Operation is one GraphQL operation of the API that the console runs.
type Operation struct {
	Name  string
	Query string
}

// versionsFragment is what a segment's or computed trait's page shows of
// each of its versions (the "versions" template).
const versionsFragment = `fragment ConsoleVersions on DefinitionVersionConnection {
	edges { node { version definition change author at current status { state progress code message } } }
	pageInfo { hasNextPage endCursor } }`

// Operations lists every console action and the one API operation it runs
// (TestConsoleOperations validates each against the schema).
var Operations = map[string]Operation{
	"search": {"ConsoleSearch", `query ConsoleSearch($q: String!) {
		search(query: $q, first: 20) { field value exact profile { id name email phone updatedAt } } }`},
	"lookup": {"ConsoleLookup", `query ConsoleLookup($type: String!, $value: String!) {
		identifier(type: $type, value: $value) { type value profile { id } } }`},
	"profile": {"ConsoleProfile", `query ConsoleProfile($id: ID!, $after: String, $types: [String!], $since: Time, $until: Time) {
		profile(id: $id) {
			id redirectedFrom name email phone createdAt updatedAt mergedIds
			identifiers { type value firstSeen lastSeen sources hub edges { id kind status score } }
			traitSources { path value source time }
			events(first: 20, after: $after, types: $types, since: $since, until: $until) { edges { node { id type name source timestamp messageId } } pageInfo { hasNextPage endCursor } }
			history { id at messageId source survivor absorbed edge { type value } }
			audit(first: 20) { id at actor action note }
		} }`},
	"review": {"ConsoleReview", `query ConsoleReview($after: String, $filter: ReviewFilter) {
		reviewQueue(first: 20, after: $after, filter: $filter) {
			edges { node { id reason score impact joined
				edge { kind model explanation a { type value } b { type value } evidence { sources count } }
				left { id name email phone identifiers { type value } }
				right { id name email phone identifiers { type value } } } }
			pageInfo { hasNextPage endCursor } } }`},
	"approve": {"ConsoleApprove", `mutation ConsoleApprove($id: ID!, $note: String) {
		approveMatch(id: $id, note: $note) { audit { id merge } profiles { id } } }`},
	"approveMany": {"ConsoleApproveMany", `mutation ConsoleApproveMany($ids: [ID!]!, $note: String) {
		approveMatches(ids: $ids, note: $note) { id error code } }`},
	"rejectMany": {"ConsoleRejectMany", `mutation ConsoleRejectMany($ids: [ID!]!, $note: String) {
		rejectMatches(ids: $ids, note: $note) { id error code } }`},
	"reject": {"ConsoleReject", `mutation ConsoleReject($id: ID!, $note: String) {
		rejectMatch(id: $id, note: $note) { audit { id } } }`},
	"split": {"ConsoleSplit", `mutation ConsoleSplit($profile: ID!, $ids: [IdentifierInput!]!, $note: String, $dry: Boolean) {
		split(profileId: $profile, identifiers: $ids, note: $note, dryRun: $dry) { audit { id after } profiles { id } } }`},
	"link": {"ConsoleLink", `mutation ConsoleLink($a: IdentifierInput!, $b: IdentifierInput!, $note: String, $dry: Boolean) {
		link(a: $a, b: $b, note: $note, dryRun: $dry) { audit { id after } profiles { id } } }`},
	"undoMerge": {"ConsoleUndoMerge", `mutation ConsoleUndoMerge($id: ID!, $note: String, $dry: Boolean) {
		undoMerge(mergeEventId: $id, note: $note, dryRun: $dry) { audit { id after } profiles { id } } }`},
	"undoSplit": {"ConsoleUndoSplit", `mutation ConsoleUndoSplit($id: ID!, $note: String, $dry: Boolean) {
		undoSplit(auditId: $id, note: $note, dryRun: $dry) { audit { id after } profiles { id } } }`},
	"graph": {"ConsoleGraph", `query ConsoleGraph($id: ID!) {
		profile(id: $id) { id name graph {
			nodes { type value hub sources }
			edges { id kind status reason score a { type value } b { type value } evidence { count } } } } }`},
	"edge": {"ConsoleEdge", `query ConsoleEdge($type: String!, $value: String!) {
		identifier(type: $type, value: $value) { edges {
			id kind status reason score model explanation a { type value } b { type value }
			evidence { sources count firstSeen lastSeen } decision { actor at action note } } } }`},
	"history": {"ConsoleHistory", `query ConsoleHistory($id: ID!) {
		profile(id: $id) { id name audit(first: 100) { id at actor action note cause merge before after explanation edge { type value } } } }`},
	"audit": {"ConsoleAudit", `query ConsoleAudit($after: String, $profile: ID, $action: String, $actor: String) {
		auditLog(first: 50, after: $after, filter: {profileId: $profile, action: $action, actor: $actor}) {
			edges { node { id at actor action note cause profiles merge } }
			pageInfo { hasNextPage endCursor } } }`},
	"segments": {"ConsoleSegments", `query ConsoleSegments($after: String) {
		segments(first: 50, after: $after) { edges { node { key version size status { state progress code message } sizeHistory(points: 60) { at size } } }
			pageInfo { hasNextPage endCursor } }
		computedTraits(first: 50) { edges { node { key version definition status { state progress code message } } } } }`},
	"segment": {"ConsoleSegment", `query ConsoleSegment($key: String!, $after: String, $versionsAfter: String) {
		segment(key: $key) { key definition version size status { state progress code message } sizeHistory(points: 200) { at size }
			members(first: 50, after: $after) { edges { node { id name email } } pageInfo { hasNextPage endCursor } }
			versions(first: 20, after: $versionsAfter) { ...ConsoleVersions } } }
		` + versionsFragment},
	"profileSegments": {"ConsoleProfileSegments", `query ConsoleProfileSegments($id: ID!) {
		profile(id: $id) { id name segments computedTraits { key value type } }
		segments(first: 100) { edges { node { key } } }
		computedTraits(first: 100) { edges { node { key } } } }`},
	"explain": {"ConsoleExplain", `query ConsoleExplain($id: ID!, $key: String!) {
		explainMembership(profileId: $id, segment: $key) { profileId member storedMember nextDeadline at
			segment { key version definition }
			nodes { index parent text line column value deadline eventCount skipped events { name messageId timestamp } } } }`},
	"validate": {"ConsoleValidate", `query ConsoleValidate($def: String!, $key: String, $kind: DefinitionKind!) {
		validateDefinition(definition: $def, kind: $kind, key: $key) { valid type errors { code line column message hint } } }`},
	"preview": {"ConsolePreview", `query ConsolePreview($def: String!) {
		previewSegment(definition: $def, sample: 10) { count profiles sample { id name email } } }`},
	"createSegment": {"ConsoleCreateSegment", `mutation ConsoleCreateSegment($key: String!, $def: String!) {
		createSegment(key: $key, definition: $def) { key version } }`},
	"updateSegment": {"ConsoleUpdateSegment", `mutation ConsoleUpdateSegment($key: String!, $def: String!, $version: Int!) {
		updateSegment(key: $key, definition: $def, expectedVersion: $version) { key version } }`},
	"computedTrait": {"ConsoleComputedTrait", `query ConsoleComputedTrait($key: String!, $versionsAfter: String) {
		computedTrait(key: $key) { key definition version status { state progress code message }
			versions(first: 20, after: $versionsAfter) { ...ConsoleVersions } } }
		` + versionsFragment},
	"previewTrait": {"ConsolePreviewTrait", `query ConsolePreviewTrait($def: String!) {
		previewComputedTrait(definition: $def, sample: 10) { type profiles withValue values { profile { id name email } value } } }`},
	"createComputedTrait": {"ConsoleCreateComputedTrait", `mutation ConsoleCreateComputedTrait($key: String!, $def: String!) {
		createComputedTrait(key: $key, definition: $def) { key version } }`},
	"updateComputedTrait": {"ConsoleUpdateComputedTrait", `mutation ConsoleUpdateComputedTrait($key: String!, $def: String!, $version: Int!) {
		updateComputedTrait(key: $key, definition: $def, expectedVersion: $version) { key version } }`},
	"setTraitEnabled": {"ConsoleSetTraitEnabled", `mutation ConsoleSetTraitEnabled($key: String!, $enabled: Boolean!, $version: Int) {
		setComputedTraitEnabled(key: $key, enabled: $enabled, expectedVersion: $version) { key version status { state } } }`},
	"explainTrait": {"ConsoleExplainTrait", `query ConsoleExplainTrait($id: ID!, $key: String!) {
		explainComputedTrait(profileId: $id, key: $key) { profileId value storedValue type nextDeadline at
			computedTrait { key version definition }
			nodes { index parent text line column value deadline eventCount skipped events { name messageId timestamp } } } }`},
}

var funcs = template.FuncMap{
	"when": func(s string) string {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"pct":   func(p float64) string { return fmt.Sprintf("%.1f%%", p*100) },
	"bits":  func(w float64) string { return fmt.Sprintf("%+.2f", w) },
	"bar":   barClass,
	"lower": strings.ToLower,
	"path":  url.PathEscape,
	"query": url.QueryEscape,
	"sides": sides,
	"list":  func(xs ...string) []string { return xs },
	"chart": sizeChart,
}

type side struct {
	Label, ID, Name string
	Size            int
	Identifiers     []struct{ Type, Value string }
}

// sides lays a review item's two profiles out side by side.
func sides(it reviewItem) []side {
	return []side{
		{Label: "Left", ID: it.Left.ID, Name: it.Left.Name, Size: it.LeftSize, Identifiers: it.Left.Identifiers},
		{Label: "Right", ID: it.Right.ID, Name: it.Right.Name, Size: it.RightSize, Identifiers: it.Right.Identifiers},
	}
}

// barClass is a waterfall bar's width class (the CSP allows no inline
// styles): 0–100% of the largest weight, in steps of 5.
func barClass(w, scale float64) string {
	if scale <= 0 {
		return "w0"
	}
	return fmt.Sprintf("w%d", int(math.Round(math.Min(math.Abs(w)/scale, 1)*20))*5)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

type searchHit struct {
	Field, Value string
	Exact        bool
	Profile      struct {
		ID, Name, Email, Phone, UpdatedAt string
	}
}

// search: an identifier typed whole opens its profile (phone numbers and
// emails normalised as lookup does, and the page says so); otherwise the
// ranked prefix search over emails, phones, names and IDs.
func (c *Console) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := pageData{Title: "Search"}
	if q == "" {
		c.render(w, r, http.StatusOK, "search", nil, d)
		return
	}
	if strings.HasPrefix(q, "p_") && !strings.ContainsAny(q, " @") {
		http.Redirect(w, r, "/console/profiles/"+url.PathEscape(q), http.StatusSeeOther)
		return
	}
	typ, value := identifierType(q), q
	if t, v, ok := strings.Cut(q, ":"); ok && typedIdentifier.MatchString(t) && v != "" {
		typ, value = t, v // user_id:u-42
	}
	support := sessionOf(r) != nil && sessionOf(r).role == RoleSupport
	if typ != "" {
		var out struct {
			Identifier *struct {
				Type, Value string
				Profile     struct{ ID string }
			}
		}
		err := c.query(r, Operations["lookup"], map[string]any{"type": typ, "value": value}, &out)
		if err == nil && out.Identifier != nil {
			to := "/console/profiles/" + url.PathEscape(out.Identifier.Profile.ID)
			if out.Identifier.Value != value && !support {
				to = noticeURL(to, "normalised")
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
	}
	if support {
		// No prefix search over personal data for support, so no
		// enumeration; and a miss says nothing about near matches.
		d.Data = map[string]any{"Query": q, "ExactOnly": true, "Tried": typ != ""}
		c.render(w, r, http.StatusOK, "search", nil, d)
		return
	}
	var out struct{ Search []searchHit }
	if err := c.query(r, Operations["search"], map[string]any{"q": q}, &out); err != nil {
		c.fail(w, r, "Search", err)
		return
	}
	exact := 0
	for _, h := range out.Search {
		if h.Exact {
			exact++
		}
	}
	if exact == 1 && out.Search[0].Exact {
		http.Redirect(w, r, "/console/profiles/"+url.PathEscape(out.Search[0].Profile.ID), http.StatusSeeOther)
		return
	}
	d.Data = map[string]any{"Query": q, "Hits": out.Search}
	c.render(w, r, http.StatusOK, "search", nil, d)
}

// typedIdentifier is the type part of a query typed as type:value.
var typedIdentifier = regexp.MustCompile(`^[a-z][a-z0-9_]{1,31}$`)

// identifierType guesses whether a query is a whole email or phone number.
func identifierType(q string) string {
	if strings.Count(q, "@") == 1 && !strings.ContainsAny(q, " ") {
		return "email"
	}
	digits := 0
	for _, r := range q {
		switch {
		case unicode.IsDigit(r):
			digits++
		case strings.ContainsRune("+-.() ", r):
		default:
			return ""
		}
	}
	if digits >= 7 {
		return "phone"
	}
	return ""
}

func (c *Console) profile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	vars := map[string]any{"id": id}
	q := r.URL.Query()
	if a := q.Get("after"); a != "" {
		vars["after"] = a
	}
	// Timeline filters: an event type, and dates (whole days, UTC).
	if t := q.Get("type"); t != "" {
		vars["types"] = []string{t}
	}
	for field, name := range map[string]string{"since": "since", "until": "until"} {
		if v := q.Get(name); v != "" {
			day, err := time.Parse("2006-01-02", v)
			if err != nil {
				c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Profile", Error: name + ": give a date as YYYY-MM-DD"})
				return
			}
			if name == "until" {
				day = day.Add(24*time.Hour - time.Nanosecond)
			}
			vars[field] = day.Format(time.RFC3339Nano)
		}
	}
	var out struct{ Profile map[string]any }
	if err := c.query(r, Operations["profile"], vars, &out); err != nil {
		c.fail(w, r, "Profile", err)
		return
	}
	if out.Profile == nil {
		c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no profile " + id + "."})
		return
	}
	// A merged ID: say when and why it was merged.
	var banner map[string]any
	if from, _ := out.Profile["redirectedFrom"].(string); from != "" {
		hist, _ := out.Profile["history"].([]any)
		for _, h := range hist {
			if m, _ := h.(map[string]any); m["absorbed"] == from {
				banner = m
			}
		}
	}
	lastSeen, counts := summarize(out.Profile)
	annotateJoins(out.Profile)
	timeline := interleave(out.Profile, q.Get("after"), q.Get("type") != "" || q.Get("since") != "" || q.Get("until") != "")
	c.render(w, r, http.StatusOK, "profile", nil, pageData{Title: "Profile " + out.Profile["id"].(string),
		Data: map[string]any{"P": out.Profile, "Merged": banner, "Timeline": timeline, "LastSeen": lastSeen, "Counts": counts, "Filter": map[string]string{
			"type": q.Get("type"), "since": q.Get("since"), "until": q.Get("until")}}})
}

// reviewItemEdge is an edge as the review and edge pages show it.
type reviewItemEdge struct {
	Kind, Model string
	Explanation json.RawMessage
	A, B        struct{ Type, Value string }
	Evidence    struct {
		Sources             []string
		Count               int
		FirstSeen, LastSeen string
	}
}

// timelineRow is one row of the profile's timeline: an event, or an
// identity event (merge, split, approval, rejection, link, undo) shown
// among them.
type timelineRow struct {
	At, Type, Name, Source, Message string
	Identity                        bool
}

// interleave puts the identity events that fall within this page of the
// timeline (newest first) among its events. Filtered timelines show events
// only.
func interleave(p map[string]any, after string, filtered bool) []timelineRow {
	var rows []timelineRow
	evs, _ := p["events"].(map[string]any)
	edges, _ := evs["edges"].([]any)
	for _, e := range edges {
		n, _ := e.(map[string]any)["node"].(map[string]any)
		rows = append(rows, timelineRow{At: str(n["timestamp"]), Type: str(n["type"]), Name: str(n["name"]), Source: str(n["source"]), Message: str(n["messageId"])})
	}
	if filtered {
		return rows
	}
	// This page covers (oldest shown, upper]; the upper bound is the
	// cursor's time, or the future on the first page.
	upper := time.Unix(1<<40, 0)
	if raw, err := base64.RawURLEncoding.DecodeString(after); err == nil {
		if parts := strings.SplitN(string(raw), ":", 3); len(parts) == 3 {
			if ns, err := strconv.ParseInt(parts[1], 10, 64); err == nil {
				upper = time.Unix(0, ns)
			}
		}
	}
	lower := time.Time{}
	if info, _ := evs["pageInfo"].(map[string]any); info["hasNextPage"] == true && len(rows) > 0 {
		lower, _ = time.Parse(time.RFC3339Nano, rows[len(rows)-1].At)
	}
	in := func(at string) bool {
		t, err := time.Parse(time.RFC3339Nano, at)
		return err == nil && !t.Before(lower) && t.Before(upper)
	}
	hist, _ := p["history"].([]any)
	for _, h := range hist {
		m, _ := h.(map[string]any)
		if in(str(m["at"])) {
			rows = append(rows, timelineRow{At: str(m["at"]), Type: "merge", Name: str(m["absorbed"]) + " merged into " + str(m["survivor"]),
				Source: str(m["source"]), Message: str(m["messageId"]), Identity: true})
		}
	}
	audit, _ := p["audit"].([]any)
	for _, a := range audit {
		m, _ := a.(map[string]any)
		if str(m["action"]) != "merge" && in(str(m["at"])) {
			rows = append(rows, timelineRow{At: str(m["at"]), Type: str(m["action"]), Name: str(m["note"]), Source: str(m["actor"]), Identity: true})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].At > rows[j].At })
	return rows
}

func str(v any) string { s, _ := v.(string); return s }

// summarize gives the profile's last sighting (its identifiers' newest
// lastSeen) and its identifier counts by type ("2 email, 1 user_id").
func summarize(p map[string]any) (string, string) {
	var last time.Time
	count := map[string]int{}
	ids, _ := p["identifiers"].([]any)
	for _, raw := range ids {
		n, _ := raw.(map[string]any)
		if t, err := time.Parse(time.RFC3339Nano, str(n["lastSeen"])); err == nil && t.After(last) {
			last = t
		}
		count[str(n["type"])]++
	}
	var parts []string
	for t, c := range count {
		parts = append(parts, fmt.Sprintf("%d %s", c, t))
	}
	slices.Sort(parts)
	if last.IsZero() {
		return "", strings.Join(parts, ", ")
	}
	return last.Format(time.RFC3339Nano), strings.Join(parts, ", ")
}

// annotateJoins says, for each identifier, how it joined the profile: the
// kinds of its accepted edges (a steward's link, a probabilistic match with
// its score, or being seen together), linking the strongest to its
// explanation.
func annotateJoins(p map[string]any) {
	ids, _ := p["identifiers"].([]any)
	for _, raw := range ids {
		n, _ := raw.(map[string]any)
		edges, _ := n["edges"].([]any)
		exact, best := 0, map[string]any(nil)
		rank := map[string]int{"MANUAL": 3, "PROBABILISTIC": 2, "EXACT": 1}
		for _, re := range edges {
			e, _ := re.(map[string]any)
			if e["status"] != "ACCEPTED" {
				continue
			}
			if e["kind"] == "EXACT" {
				exact++
			}
			if best == nil || rank[e["kind"].(string)] > rank[best["kind"].(string)] {
				best = e
			}
		}
		switch {
		case best == nil:
			n["joined"] = "first seen here"
		case best["kind"] == "MANUAL":
			n["joined"] = "steward link"
		case best["kind"] == "PROBABILISTIC":
			n["joined"] = fmt.Sprintf("probabilistic match, %.1f%%", best["score"].(float64)*100)
		default:
			n["joined"] = fmt.Sprintf("seen together (%d)", exact)
		}
		if best != nil {
			n["joinedHref"] = "/console/edges/" + url.PathEscape(best["id"].(string))
		}
		delete(n, "edges")
	}
}

type reviewItem struct {
	ID, Reason  string
	Score       float64
	Impact      int
	Joined      bool
	Edge        reviewItemEdge
	Left, Right struct {
		ID, Name, Email, Phone string
		Identifiers            []struct{ Type, Value string }
	}
	Waterfall           *waterfall
	LeftSize, RightSize int
}

// sideIdentifiers is how many of each side's identifiers a review item lists.
const sideIdentifiers = 8

// waterfall is an explanation as the page draws it: the prior, one bar per
// comparison, the term-frequency total, and the total weight and
// probability computed from the bars (one code path, so they agree).
type waterfall struct {
	Prior       float64
	Rows        []waterfallRow
	TF          float64
	Weight      float64
	Probability float64
	Scale       float64
	Model       string
	Held        string
}

type waterfallRow struct {
	Field, A, B, Level string
	Weight, TF         float64
}

func newWaterfall(raw json.RawMessage) *waterfall {
	var e struct {
		PriorWeight float64 `json:"prior_weight"`
		Fields      []struct {
			Field, A, B, Level string
			Weight, TF         float64
		} `json:"fields"`
		Held         string `json:"held"`
		ModelVersion string `json:"model_version"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &e) != nil || len(e.Fields) == 0 {
		return nil
	}
	wf := &waterfall{Prior: e.PriorWeight, Weight: e.PriorWeight, Scale: math.Abs(e.PriorWeight), Model: e.ModelVersion, Held: e.Held}
	for _, f := range e.Fields {
		wf.Rows = append(wf.Rows, waterfallRow{Field: f.Field, A: f.A, B: f.B, Level: f.Level, Weight: f.Weight, TF: f.TF})
		wf.TF += f.TF
		wf.Weight += f.Weight + f.TF
		wf.Scale = math.Max(wf.Scale, math.Abs(f.Weight))
	}
	wf.Scale = math.Max(wf.Scale, math.Abs(wf.TF))
	wf.Probability = 1 / (1 + math.Exp2(-wf.Weight))
	return wf
}

func (c *Console) review(w http.ResponseWriter, r *http.Request) {
	vars := map[string]any{}
	if a := r.URL.Query().Get("after"); a != "" {
		vars["after"] = a
	}
	// Filters: reason, source, identifier type, score range.
	q := r.URL.Query()
	filter := map[string]any{}
	for _, f := range []string{"reason", "source", "type"} {
		if v := q.Get(f); v != "" {
			filter[f] = v
		}
	}
	for _, f := range []string{"minScore", "maxScore"} {
		if v := q.Get(f); v != "" {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 || x > 1 {
				c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Review queue", Error: f + ": give a score between 0 and 1"})
				return
			}
			filter[f] = x
		}
	}
	if len(filter) > 0 {
		vars["filter"] = filter
	}
	var out struct {
		ReviewQueue struct {
			Edges    []struct{ Node reviewItem }
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
	}
	if err := c.query(r, Operations["review"], vars, &out); err != nil {
		c.fail(w, r, "Review queue", err)
		return
	}
	items := make([]reviewItem, len(out.ReviewQueue.Edges))
	for i, e := range out.ReviewQueue.Edges {
		items[i] = e.Node
		items[i].Waterfall = newWaterfall(e.Node.Edge.Explanation)
		// Both sides' sizes are shown; their first identifiers are listed.
		items[i].LeftSize, items[i].RightSize = len(e.Node.Left.Identifiers), len(e.Node.Right.Identifiers)
		items[i].Left.Identifiers = e.Node.Left.Identifiers[:min(sideIdentifiers, len(e.Node.Left.Identifiers))]
		items[i].Right.Identifiers = e.Node.Right.Identifiers[:min(sideIdentifiers, len(e.Node.Right.Identifiers))]
	}
	c.render(w, r, http.StatusOK, "review", nil, pageData{Title: "Review queue", Data: map[string]any{
		"Items": items, "Next": out.ReviewQueue.PageInfo.EndCursor, "More": out.ReviewQueue.PageInfo.HasNextPage,
		"Reason": q.Get("reason"), "Source": q.Get("source"), "Type": q.Get("type"), "MinScore": q.Get("minScore"), "MaxScore": q.Get("maxScore"),
		"NextURL": nextReviewURL(out.ReviewQueue.PageInfo.EndCursor, q), "Undo": c.lastApproval(r)}})
}

// decide approves or rejects one item; an item decided meanwhile by
// someone else is reported, never merged twice (the API's CONFLICT).
func (c *Console) decide(w http.ResponseWriter, r *http.Request) {
	op, ok := map[string]string{"approve": "approve", "reject": "reject"}[r.PostFormValue("decision")]
	if !ok {
		c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Review queue", Error: "decision must be approve or reject"})
		return
	}
	vars := map[string]any{"id": r.PostFormValue("id"), "note": r.PostFormValue("note")}
	var out struct {
		ApproveMatch struct{ Audit struct{ Merge string } }
	}
	err := c.query(r, Operations[op], vars, &out)
	notice := map[string]string{"approve": "approved", "reject": "rejected"}[op]
	var ge *gqlError
	switch {
	case err == nil:
	case errors.As(err, &ge) && ge.Code == "CONFLICT":
		notice = "conflict"
	default:
		c.fail(w, r, "Review queue", err)
		return
	}
	// The review page offers to undo this approval: the merge it made is
	// kept in the session, never taken from the URL, and the offer goes
	// through the undo's preview like every other action.
	if m := out.ApproveMatch.Audit.Merge; m != "" {
		s := sessionOf(r)
		c.mu.Lock()
		s.undo = m
		c.mu.Unlock()
	}
	http.Redirect(w, r, noticeURL("/console/review", notice), http.StatusSeeOther)
}

// decideMany approves or rejects the ticked items, each on its own; the
// notice says how many were done and why the others were not.
func (c *Console) decideMany(w http.ResponseWriter, r *http.Request) {
	op, ok := map[string]string{"approve": "approveMany", "reject": "rejectMany"}[r.PostFormValue("decision")]
	ids := r.PostForm["ids"]
	if !ok || len(ids) == 0 {
		c.render(w, r, http.StatusBadRequest, "error", nil, pageData{Title: "Review queue", Error: "Tick the items to decide, then Approve or Reject."})
		return
	}
	var out map[string][]struct{ ID, Error, Code string }
	if err := c.query(r, Operations[op], map[string]any{"ids": ids, "note": r.PostFormValue("note")}, &out); err != nil {
		c.fail(w, r, "Review queue", err)
		return
	}
	done, conflict, other := 0, 0, 0
	for _, res := range out[map[string]string{"approveMany": "approveMatches", "rejectMany": "rejectMatches"}[op]] {
		switch {
		case res.Error == "":
			done++
		case res.Code == "CONFLICT" || res.Code == "NOT_FOUND":
			conflict++
		default:
			other++
		}
	}
	code := map[string]string{"approveMany": "approved-many", "rejectMany": "rejected-many"}[op]
	http.Redirect(w, r, noticeURL("/console/review", code, done, len(ids), conflict, other), http.StatusSeeOther)
}

// maxExport bounds one audit export.
const maxExport = 100_000

// nextReviewURL is the review queue's next page, keeping the filters.
func nextReviewURL(after string, q url.Values) template.URL {
	keep := url.Values{"after": {after}}
	for _, f := range []string{"reason", "source", "type", "minScore", "maxScore"} {
		if v := q.Get(f); v != "" {
			keep.Set(f, v)
		}
	}
	return template.URL("/console/review?" + keep.Encode()) // built from encoded values only
}

type auditEntry struct {
	ID, At, Actor, Action, Note, Cause, Merge string
	Profiles                                  []string
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request) {
	vars := map[string]any{}
	if a := r.URL.Query().Get("after"); a != "" {
		vars["after"] = a
	}
	for _, f := range []string{"profile", "action", "actor"} {
		if v := r.URL.Query().Get(f); v != "" {
			vars[f] = v
		}
	}
	var out struct {
		AuditLog struct {
			Edges    []struct{ Node auditEntry }
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
	}
	// A page shows 50 entries; an export pages through the whole log (one
	// API operation per page), up to maxExport entries.
	format := r.URL.Query().Get("format")
	var entries []auditEntry
	for {
		if err := c.query(r, Operations["audit"], vars, &out); err != nil {
			c.fail(w, r, "Audit", err)
			return
		}
		for _, e := range out.AuditLog.Edges {
			entries = append(entries, e.Node)
		}
		if format == "" || !out.AuditLog.PageInfo.HasNextPage || len(entries) >= maxExport {
			break
		}
		vars["after"] = out.AuditLog.PageInfo.EndCursor
	}
	switch format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="audit.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"id", "at", "actor", "action", "note", "cause", "profiles", "merge"})
		for _, e := range entries {
			_ = cw.Write(csvCells(e.ID, e.At, e.Actor, e.Action, e.Note, e.Cause, strings.Join(e.Profiles, " "), e.Merge))
		}
		cw.Flush()
		return
	case "jsonl":
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="audit.jsonl"`)
		enc := json.NewEncoder(w)
		for _, e := range entries {
			_ = enc.Encode(e)
		}
		return
	}
	c.render(w, r, http.StatusOK, "audit", nil, pageData{Title: "Audit", Data: map[string]any{
		"Entries": entries, "Next": out.AuditLog.PageInfo.EndCursor, "More": out.AuditLog.PageInfo.HasNextPage,
		"Profile": r.URL.Query().Get("profile"), "Action": r.URL.Query().Get("action"), "Actor": r.URL.Query().Get("actor")}})
}

// csvCells neutralises cells a spreadsheet would run as a formula (OWASP's
// CSV injection advice): a value starting with = + - @, a tab, a carriage
// return or any other control character gets a leading single quote, so
// a note or message ID such as =HYPERLINK(…) opens as text. The quote is
// visible in the export: the JSON Lines export keeps values as they are.
func csvCells(values ...string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = v
		if r, _ := utf8.DecodeRuneInString(v); v != "" && (strings.ContainsRune("=+-@\t\r\uFF1D\uFF0B\uFF0D\uFF20", r) || unicode.IsControl(r)) {
			out[i] = "'" + v
		}
	}
	return out
}
