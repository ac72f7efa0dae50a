package graph

import (
	json "github.com/segmentio/encoding/json"
)

// rawTrait is a stored trait with its value left undecoded.
type rawTrait struct {
	Value json.RawMessage `json:"value"`
}

// TraitValues decodes, from the JSON of a profile's traits (a map of
// Trait), the values of the given paths only: what a DataQuery returns.
// A value decodes as it does in a whole Profile (numbers as float64).
func TraitValues(traits []byte, paths []string) (map[string]any, error) {
	if len(paths) == 0 || len(traits) == 0 {
		return nil, nil
	}
	var ts map[string]rawTrait
	if err := json.Unmarshal(traits, &ts); err != nil {
		return nil, err
	}
	var out map[string]any
	for _, path := range paths {
		t, ok := ts[path]
		if !ok {
			continue
		}
		var v any
		if err := json.Unmarshal(t.Value, &v); err != nil {
			return nil, err
		}
		if out == nil {
			out = make(map[string]any, len(paths))
		}
		out[path] = v
	}
	return out, nil
}
