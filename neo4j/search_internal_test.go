package neo4j

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/idgraph/idgraph/graph"
)

// A name word is indexed at most maxWordBytes long, cut at a character
// boundary, whatever the name's length: Neo4j refuses longer index keys.
func TestNameWordsClipped(t *testing.T) {
	for _, name := range []string{strings.Repeat("é𝄞中", 1000), strings.Repeat("a", 9000), "Ann " + strings.Repeat("b", 2000), "Ann Lee"} {
		p := &graph.Profile{ID: "p", Traits: map[string]graph.Trait{"name": {Value: name}}}
		words := nameWords(p)
		if len(words) == 0 {
			t.Errorf("name of %d bytes: no words indexed", len(name))
		}
		for _, w := range words {
			if len(w.word) > maxWordBytes || !utf8.ValidString(w.word) || w.value != name {
				t.Errorf("name of %d bytes: word of %d bytes (valid UTF-8 %v), value of %d", len(name), len(w.word), utf8.ValidString(w.word), len(w.value))
			}
		}
	}
}
