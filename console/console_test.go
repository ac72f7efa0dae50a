package console

import (
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"

	"github.com/idgraph/idgraph/schema"
)

// Every console action is one operation of the public API, valid against
// its schema.
func TestConsoleOperations(t *testing.T) {
	s := schema.NewExecutableSchema(schema.Config{}).Schema()
	want := []string{"search", "lookup", "profile", "review", "approve", "reject", "approveMany", "rejectMany", "split", "link", "undoMerge", "undoSplit", "graph", "edge", "history", "audit",
		"segments", "segment", "profileSegments", "explain",
		"validate", "preview", "createSegment", "updateSegment",
		"computedTrait", "previewTrait", "createComputedTrait", "updateComputedTrait", "setTraitEnabled", "explainTrait"}
	for _, action := range want {
		op, ok := Operations[action]
		if !ok {
			t.Errorf("no operation for %s", action)
			continue
		}
		doc, errs := gqlparser.LoadQuery(s, op.Query)
		if len(errs) > 0 {
			t.Errorf("%s: %v", action, errs)
			continue
		}
		if len(doc.Operations) != 1 || doc.Operations[0].Name != op.Name {
			t.Errorf("%s: want one operation named %s", action, op.Name)
		}
	}
	if len(Operations) != len(want) {
		t.Errorf("%d operations, the test lists %d", len(Operations), len(want))
	}
}

// Every asset a template references is embedded.
func TestAssetsEmbedded(t *testing.T) {
	ref := regexp.MustCompile(`/console/assets/([A-Za-z0-9._/-]+)`)
	names, _ := fs.Glob(templates, "templates/*.html")
	found := 0
	for _, n := range names {
		b, _ := fs.ReadFile(templates, n)
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			found++
			if _, err := fs.Stat(assets, "assets/"+m[1]); err != nil {
				t.Errorf("%s references %s, which is not embedded", n, m[0])
			}
		}
	}
	if found == 0 {
		t.Fatal("no asset references found: the pattern is stale")
	}
	if _, err := New(Config{}); err != nil {
		t.Errorf("templates: %v", err)
	}
}

func TestSafeNextAndBars(t *testing.T) {
	for in, want := range map[string]string{
		"/console/review": "/console/review", "https://evil.example/": "/console/search",
		"//evil.example/console/": "/console/search", "/console/\\evil": "/console/search", "": "/console/search",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
	for _, c := range []struct {
		w, scale float64
		want     string
	}{{0, 10, "w0"}, {5, 10, "w50"}, {-10, 10, "w100"}, {30, 10, "w100"}, {1, 0, "w0"}} {
		if got := barClass(c.w, c.scale); got != c.want {
			t.Errorf("barClass(%v, %v) = %s, want %s", c.w, c.scale, got, c.want)
		}
	}
	if identifierType("(415) 555-0134") != "phone" || identifierType("ann@corp.io") != "email" || identifierType("anon-7") != "" {
		t.Error("identifierType")
	}
	if !strings.HasPrefix(randomToken(), "") || len(randomToken()) != 64 {
		t.Error("randomToken")
	}
}

// The waterfall's total is the prior plus every bar, and its probability
// comes from that total.
func TestWaterfall(t *testing.T) {
	wf := newWaterfall([]byte(`{"prior_weight":-10,"fields":[{"field":"name","a":"jon","b":"john","level":"close","weight":4.5,"tf":1.5},
		{"field":"dob","a":"1980","b":"1981","level":"else","weight":-2}],"weight":-6,"probability":0.015,"model_version":"fs-x"}`))
	if wf == nil || len(wf.Rows) != 2 || wf.TF != 1.5 || wf.Weight != -6 || wf.Model != "fs-x" {
		t.Fatalf("waterfall = %+v", wf)
	}
	if p := 1 / (1 + math.Exp2(6)); math.Abs(wf.Probability-p) > 1e-12 || wf.Scale != 10 {
		t.Errorf("probability %v scale %v", wf.Probability, wf.Scale)
	}
	if newWaterfall(nil) != nil || newWaterfall([]byte(`{"fields":[]}`)) != nil {
		t.Error("no explanation should draw no waterfall")
	}
}

func TestDrawAndAggregate(t *testing.T) {
	var nodes []gNode
	var edges []gEdge
	for i := range 30 {
		nodes = append(nodes, gNode{Type: "anonymous_id", Value: fmt.Sprint(i)})
		e := gEdge{ID: fmt.Sprint("e", i), Kind: "EXACT", Status: []string{"ACCEPTED", "PENDING", "REJECTED"}[i%3], Score: 1}
		e.A.Type, e.A.Value = "user_id", "u"
		e.B.Type, e.B.Value = "anonymous_id", fmt.Sprint(i)
		edges = append(edges, e)
	}
	nodes = append(nodes, gNode{Type: "user_id", Value: "u", Hub: true})
	d, agg := draw(nodes, edges)
	if agg || len(d.Nodes) != 31 || len(d.Edges) != 30 {
		t.Fatalf("draw: aggregated %v, %d nodes, %d edges", agg, len(d.Nodes), len(d.Edges))
	}
	byID := map[string]drawnNode{}
	for _, n := range d.Nodes {
		byID[n.ID] = n
	}
	if c := byID["user_id:u"]; c.X != 0 || c.Y != 0 || c.Size <= byID["anonymous_id:1"].Size {
		t.Errorf("the hub should be at the centre and larger: %+v", c)
	}
	sizes := map[float64]bool{}
	for _, e := range d.Edges {
		sizes[e.Size] = true
	}
	if len(sizes) != 3 {
		t.Errorf("statuses must differ in thickness, not only colour: %v", sizes)
	}
	for i := range aggregateAbove {
		nodes = append(nodes, gNode{Type: "device_id", Value: fmt.Sprint(i)})
	}
	d, agg = draw(nodes, edges)
	if !agg || len(d.Nodes) != 3 {
		t.Errorf("above %d identifiers: aggregated %v, %d nodes", aggregateAbove, agg, len(d.Nodes))
	}
}

func TestMarkBridges(t *testing.T) {
	edge := func(a, b, status string) gEdge {
		e := gEdge{ID: a + b, Status: status}
		e.A.Type, e.A.Value, e.B.Type, e.B.Value = "x", a, "x", b
		return e
	}
	// a - b - c, and a triangle c d e; a pending edge a - e does not count.
	edges := []gEdge{edge("a", "b", "ACCEPTED"), edge("b", "c", "ACCEPTED"), edge("c", "d", "ACCEPTED"),
		edge("d", "e", "ACCEPTED"), edge("c", "e", "ACCEPTED"), edge("a", "e", "PENDING")}
	if n := markBridges(edges); n != 2 {
		t.Errorf("%d bridges, want 2", n)
	}
	for _, e := range edges {
		if want := e.ID == "ab" || e.ID == "bc"; e.Bridge != want {
			t.Errorf("edge %s: bridge %v, want %v", e.ID, e.Bridge, want)
		}
	}
}
