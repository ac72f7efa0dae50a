package segment

import "github.com/idgraph/idgraph/graph"

// MaxDepth bounds how deeply JSON may nest (objects and arrays). Decoding
// nested values into `any` costs time quadratic in the depth, so a small
// body nested thousands deep could pin a core; real Segment payloads nest
// a handful of levels.
const MaxDepth = 64

// CheckDepth refuses data nested deeper than MaxDepth, with one pass over
// the bytes and no allocation, before any decoder sees it. field names the
// value in the error ("" for a whole body). It does not validate the JSON:
// the decoder does that.
func CheckDepth(data []byte, field string) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > MaxDepth {
				if field == "" {
					return graph.Errorf(graph.KindInvalid, "JSON is nested more than %d levels deep", MaxDepth)
				}
				return graph.FieldErrorf(field, "is nested more than %d levels deep", MaxDepth)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}
