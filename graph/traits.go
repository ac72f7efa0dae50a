package graph

import "strings"

// FlattenTraits turns nested trait objects into dotted paths, so that
// "newest value wins" applies to address.city and address.street apart.
func FlattenTraits(traits map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", traits)
	return out
}

// NestTraits is FlattenTraits' inverse, for output.
func NestTraits(flat map[string]Trait) map[string]any {
	out := map[string]any{}
	for path, t := range flat {
		m := out
		parts := strings.Split(path, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = t.Value
	}
	return out
}
