package graph

import (
	"bytes"
	"fmt"

	json "github.com/segmentio/encoding/json"
)

// TraitValues decodes, from the JSON of a profile's traits (a map of
// Trait), the values of the given paths only: what a DataQuery returns.
// A value decodes as it does in a whole Profile (numbers as float64).
// It tokenizes the object instead of decoding it into a map: a scan of a
// million profiles (a segment preview) spent most of its time building
// maps of traits it did not read.
func TraitValues(traits []byte, paths []string) (map[string]any, error) {
	if len(paths) == 0 || len(traits) == 0 || bytes.Equal(traits, []byte("null")) {
		return nil, nil
	}
	var out map[string]any
	t := json.NewTokenizer(traits)
	want := -1 // the index in paths of the trait being read
	closed := false
	for t.Next() {
		closed = t.Delim == '}' && t.Depth == 0
		if !t.IsKey {
			continue
		}
		switch t.Depth {
		case 1: // a trait's path
			want = -1
			k := t.String()
			for i, p := range paths {
				if string(k) == p {
					want = i
					break
				}
			}
		case 2: // a field of the trait (value, source, time)
			if want < 0 || string(t.String()) != "value" {
				continue
			}
			rest := traits[len(traits)-t.Remaining():]
			colon := bytes.IndexByte(rest, ':')
			if colon < 0 {
				return nil, fmt.Errorf("trait %q: no value", paths[want])
			}
			var v any
			if _, err := json.Parse(rest[colon+1:], &v, 0); err != nil {
				return nil, fmt.Errorf("trait %q: %w", paths[want], err)
			}
			if out == nil {
				out = make(map[string]any, len(paths))
			}
			out[paths[want]] = v
		}
	}
	if t.Err != nil {
		return nil, t.Err
	}
	if !closed { // the tokenizer does not check that the object ends
		return nil, fmt.Errorf("traits: truncated object")
	}
	return out, nil
}
