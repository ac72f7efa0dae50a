package console

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/idgraph/idgraph/graph"
)

// tableRows is how many edges one page of the table twin lists.
const tableRows = 250

// aggregateAbove is the identifier count above which the graph page draws
// one node per identifier type instead of one per identifier.
const aggregateAbove = 1000

type gNode struct {
	Type, Value string
	Hub         bool
	Sources     []string
}

// group is a node's group in the aggregated view: its type and the source
// that first sent it.
func (n gNode) group() string {
	if len(n.Sources) == 0 {
		return n.Type
	}
	return n.Type + " · " + n.Sources[0]
}

type gEdge struct {
	ID       string
	A, B     struct{ Type, Value string }
	Kind     string
	Status   string
	Reason   string
	Score    float64
	Evidence struct{ Count int }
	// Bridge: removing this accepted edge would split the profile.
	Bridge bool
}

// markBridges finds the accepted edges whose removal would disconnect the
// profile (Tarjan's bridges, iterative), so the page can mark them: the
// places where one wrong edge holds two groups together.
func markBridges(edges []gEdge) int {
	adj := map[string][]int{}
	for i, e := range edges {
		if e.Status != "ACCEPTED" {
			continue
		}
		a, b := keyID(e.A.Type, e.A.Value), keyID(e.B.Type, e.B.Value)
		adj[a] = append(adj[a], i)
		adj[b] = append(adj[b], i)
	}
	other := func(i int, k string) string {
		if a := keyID(edges[i].A.Type, edges[i].A.Value); a != k {
			return a
		}
		return keyID(edges[i].B.Type, edges[i].B.Value)
	}
	disc, low := map[string]int{}, map[string]int{}
	type frame struct {
		node   string
		via, i int
	}
	clock, bridges := 0, 0
	nodes := make([]string, 0, len(adj))
	for k := range adj {
		nodes = append(nodes, k)
	}
	slices.Sort(nodes)
	for _, root := range nodes {
		if _, seen := disc[root]; seen {
			continue
		}
		clock++
		disc[root], low[root] = clock, clock
		stack := []frame{{root, -1, 0}}
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.i < len(adj[f.node]) {
				e := adj[f.node][f.i]
				f.i++
				if e == f.via {
					continue
				}
				x := other(e, f.node)
				if _, seen := disc[x]; seen {
					low[f.node] = min(low[f.node], disc[x])
					continue
				}
				clock++
				disc[x], low[x] = clock, clock
				stack = append(stack, frame{x, e, 0})
				continue
			}
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				parent := stack[len(stack)-1].node
				low[parent] = min(low[parent], low[f.node])
				if low[f.node] > disc[parent] {
					edges[f.via].Bridge = true
					bridges++
				}
			}
		}
	}
	return bridges
}

// drawn is the island's input: laid-out nodes and edges.
type drawn struct {
	Nodes []drawnNode `json:"nodes"`
	Edges []drawnEdge `json:"edges"`
}

type drawnNode struct {
	ID    string  `json:"id"`
	Label string  `json:"label"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Size  float64 `json:"size"`
	Color string  `json:"color"`
}

type drawnEdge struct {
	ID    string  `json:"id"`
	A     string  `json:"a"`
	B     string  `json:"b"`
	Size  float64 `json:"size"`
	Color string  `json:"color"`
	Score float64 `json:"score"`
	Href  string  `json:"href"`
	Label string  `json:"label"`
}

// Colours by type and status; status is also drawn as thickness and named
// in the table twin, never shown by colour alone.
var typeColors = []string{"#0550ae", "#8250df", "#1a7f37", "#bc4c00", "#bf3989", "#0a3069", "#4d2d00", "#57606a"}

var statusStyle = map[string]struct {
	size  float64
	color string
}{"ACCEPTED": {3, "#1a7f37"}, "PENDING": {1.5, "#9a6700"}, "REJECTED": {0.5, "#cf222e"}}

func keyID(t, v string) string { return t + ":" + v }

// layout places nodes on rings by their distance from the best-connected
// identifier, ordered by type within a ring: O(nodes + edges) on the
// server, so the browser only draws.
func layout(nodes []gNode, edges []gEdge) map[string][2]float64 {
	adj := map[string][]string{}
	degree := map[string]int{}
	for _, e := range edges {
		a, b := keyID(e.A.Type, e.A.Value), keyID(e.B.Type, e.B.Value)
		adj[a] = append(adj[a], b)
		adj[b] = append(adj[b], a)
		degree[a]++
		degree[b]++
	}
	ids := make([]string, len(nodes))
	types := map[string]string{}
	for i, n := range nodes {
		ids[i] = keyID(n.Type, n.Value)
		types[ids[i]] = n.Type
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(degree[b], degree[a]), cmp.Compare(a, b))
	})
	depth := map[string]int{}
	var rings [][]string
	for _, start := range ids { // every component, largest hub first
		if _, seen := depth[start]; seen {
			continue
		}
		base := len(rings)
		queue := []string{start}
		depth[start] = base
		for len(queue) > 0 {
			k := queue[0]
			queue = queue[1:]
			for len(rings) <= depth[k] {
				rings = append(rings, nil)
			}
			rings[depth[k]] = append(rings[depth[k]], k)
			for _, x := range adj[k] {
				if _, seen := depth[x]; !seen {
					depth[x] = depth[k] + 1
					queue = append(queue, x)
				}
			}
		}
	}
	// Each ring is an annulus filled along Vogel's sunflower spiral, so a
	// level of hundreds of identifiers spreads out instead of piling up on
	// one circle; within it, identifiers of one type sit together.
	pos := map[string][2]float64{}
	golden := math.Pi * (3 - math.Sqrt(5))
	inner := 0.0
	for _, ring := range rings {
		sort.SliceStable(ring, func(i, j int) bool { return types[ring[i]] < types[ring[j]] })
		width := math.Max(1, math.Sqrt(float64(len(ring))))
		for i, k := range ring {
			if len(ring) == 1 && inner == 0 {
				pos[k] = [2]float64{0, 0}
				continue
			}
			radius := inner + 10 + width*math.Sqrt((float64(i)+0.5)/float64(len(ring)))*5
			angle := float64(i) * golden
			pos[k] = [2]float64{radius * math.Cos(angle), radius * math.Sin(angle)}
		}
		inner += 10 + width*5
	}
	return pos
}

// draw turns the API's graph into the island's input, aggregated by type
// above aggregateAbove identifiers.
func draw(nodes []gNode, edges []gEdge) (drawn, bool) {
	color := map[string]string{}
	colorOf := func(t string) string {
		if c, ok := color[t]; ok {
			return c
		}
		color[t] = typeColors[len(color)%len(typeColors)]
		return color[t]
	}
	var d drawn
	if len(nodes) > aggregateAbove {
		count := map[string]int{}
		groupOf := map[string]string{}
		for _, n := range nodes {
			count[n.group()]++
			groupOf[keyID(n.Type, n.Value)] = n.group()
		}
		var types []string
		for t := range count {
			types = append(types, t)
		}
		slices.Sort(types)
		for i, t := range types {
			angle := 2 * math.Pi * float64(i) / float64(len(types))
			d.Nodes = append(d.Nodes, drawnNode{ID: t, Label: fmt.Sprintf("%s (%d)", t, count[t]), X: 10 * math.Cos(angle), Y: 10 * math.Sin(angle),
				Size: 4 + math.Log2(float64(count[t])+1)*2, Color: colorOf(strings.SplitN(t, " · ", 2)[0])})
		}
		pairs := map[[2]string]int{}
		for _, e := range edges {
			p := [2]string{groupOf[keyID(e.A.Type, e.A.Value)], groupOf[keyID(e.B.Type, e.B.Value)]}
			if p[1] < p[0] {
				p[0], p[1] = p[1], p[0]
			}
			if p[0] != p[1] && e.Status == "ACCEPTED" {
				pairs[p]++
			}
		}
		for p, n := range pairs {
			d.Edges = append(d.Edges, drawnEdge{ID: p[0] + "~" + p[1], A: p[0], B: p[1], Size: 1 + math.Log2(float64(n)), Color: "#57606a",
				Score: 1, Label: fmt.Sprintf("%d accepted edges", n)})
		}
		slices.SortFunc(d.Edges, func(a, b drawnEdge) int { return cmp.Compare(a.ID, b.ID) })
		return d, true
	}
	pos := layout(nodes, edges)
	for _, n := range nodes {
		k := keyID(n.Type, n.Value)
		size := 4.0
		if n.Hub {
			size = 8
		}
		d.Nodes = append(d.Nodes, drawnNode{ID: k, Label: k, X: pos[k][0], Y: pos[k][1], Size: size, Color: colorOf(n.Type)})
	}
	thin := 1.0
	if len(edges) > 200 { // many edges: thinner, keeping the statuses' ratios
		thin = 0.4
	}
	for _, e := range edges {
		s := statusStyle[e.Status]
		if e.Bridge {
			s.size, s.color = s.size*1.5, "#8250df"
		}
		d.Edges = append(d.Edges, drawnEdge{ID: e.ID, A: keyID(e.A.Type, e.A.Value), B: keyID(e.B.Type, e.B.Value),
			Size: s.size * thin, Color: s.color, Score: e.Score, Href: "/console/edges/" + url.PathEscape(e.ID),
			Label: fmt.Sprintf("%s %s %.2f", e.Kind, e.Status, e.Score)})
	}
	return d, false
}

// graphPage shows the identity graph: a summary, the island, and its
// table twin (always present).
func (c *Console) graphPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var out struct {
		Profile *struct {
			ID, Name string
			Graph    struct {
				Nodes []gNode
				Edges []gEdge
			}
		}
	}
	if err := c.query(r, Operations["graph"], map[string]any{"id": id}, &out); err != nil {
		c.fail(w, r, "Graph", err)
		return
	}
	if out.Profile == nil {
		c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no profile " + id + "."})
		return
	}
	g := out.Profile.Graph
	bridgeCount := markBridges(g.Edges)
	d, aggregated := draw(g.Nodes, g.Edges)
	data, err := json.Marshal(d)
	if err != nil {
		c.fail(w, r, "Graph", err)
		return
	}
	status := map[string]int{}
	for _, e := range g.Edges {
		status[e.Status]++
	}
	hubs := 0
	for _, n := range g.Nodes {
		if n.Hub {
			hubs++
		}
	}
	// The table twin: the drawn edges, a page at a time (the aggregated
	// view's table is its type pairs).
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 0)
	rows := g.Edges
	lo, hi := min(page*tableRows, len(rows)), min((page+1)*tableRows, len(rows))
	var next string
	if hi < len(rows) {
		next = strconv.Itoa(page + 1)
	}
	c.render(w, r, http.StatusOK, "graph", nil, pageData{Title: "Graph of " + out.Profile.ID, Data: map[string]any{
		"P": out.Profile, "Nodes": g.Nodes, "Edges": rows[lo:hi], "EdgeCount": len(rows), "From": lo + 1, "To": hi, "NextPage": next,
		"JSON": template.JS(data), "Aggregated": aggregated, "Pairs": d.Edges, "Status": status, "Hubs": hubs, "Bridges": bridgeCount}})
}

// edgePage explains one edge: its evidence and, for a scored edge, the
// waterfall of the explanation stored with it.
func (c *Console) edgePage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pair, err := graph.ParseEdgeID(id)
	a := [2]string{pair[0].Type, pair[0].Value}
	if err != nil {
		c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no edge " + id + "."})
		return
	}
	var out struct {
		Identifier *struct {
			Edges []struct {
				reviewItemEdge
				ID, Status, Reason string
				Score              float64
				Decision           *struct{ Actor, At, Action, Note string }
			}
		}
	}
	if err := c.query(r, Operations["edge"], map[string]any{"type": a[0], "value": a[1]}, &out); err != nil {
		c.fail(w, r, "Edge", err)
		return
	}
	if out.Identifier != nil {
		for _, e := range out.Identifier.Edges {
			if e.ID == id {
				c.render(w, r, http.StatusOK, "edge", nil, pageData{Title: "Edge", Data: map[string]any{
					"E": e, "Waterfall": newWaterfall(e.Explanation)}})
				return
			}
		}
	}
	c.render(w, r, http.StatusNotFound, "error", nil, pageData{Title: "Not found", Error: "There is no edge " + id + "."})
}
