package collect

import (
	"bytes"
	"io"

	"github.com/idgraph/idgraph/graph"
)

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
	var s depthScan
	if !s.scan(data) {
		return depthError(field)
	}
	return nil
}

func depthError(field string) error {
	if field == "" {
		return graph.Errorf(graph.KindInvalid, "JSON is nested more than %d levels deep", MaxDepth)
	}
	return graph.FieldErrorf(field, "is nested more than %d levels deep", MaxDepth)
}

// depthScan follows JSON nesting across pieces of a document: brackets
// inside strings (escaped quotes included) do not count.
type depthScan struct {
	depth             int
	inString, escaped bool
}

// scan reads the next piece and says whether the document is still within
// MaxDepth. Once it is not, the scan's state is meaningless.
func (s *depthScan) scan(data []byte) bool {
	// Locals, not fields, in the loop: the compiler keeps them in registers.
	depth, inString, escaped := s.depth, s.inString, s.escaped
	for i := 0; i < len(data); i++ {
		if inString {
			if escaped {
				escaped = false
				continue
			}
			// Most of a body is string content: skip to its end with
			// IndexByte (vectorised) rather than byte by byte.
			j := stringStop(data[i:])
			if j < 0 {
				break
			}
			i += j
			escaped = data[i] == '\\'
			inString = escaped
			continue
		}
		switch data[i] {
		case '"':
			inString = true
		case '[', '{':
			if depth++; depth > MaxDepth {
				return false
			}
		case ']', '}':
			depth--
		}
	}
	s.depth, s.inString, s.escaped = depth, inString, escaped
	return true
}

// stringStop finds the first quote or backslash in a string's content.
func stringStop(data []byte) int {
	q := bytes.IndexByte(data, '"')
	if q < 0 {
		return bytes.IndexByte(data, '\\')
	}
	if b := bytes.IndexByte(data[:q], '\\'); b >= 0 {
		return b
	}
	return q
}

// DepthReader checks JSON's depth as it is read, so that a body nested past
// MaxDepth is refused at the piece that passes the limit, without reading
// (or buffering) the rest. Once past the limit every Read returns the
// error, which names the limit as CheckDepth's does.
type DepthReader struct {
	r    io.Reader
	scan depthScan
	err  error
}

// NewDepthReader returns a reader of r that fails past MaxDepth.
func NewDepthReader(r io.Reader) *DepthReader { return &DepthReader{r: r} }

func (d *DepthReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	if !d.scan.scan(p[:n]) {
		d.err = depthError("")
		return n, d.err
	}
	return n, err
}

// TooDeep says whether the reader has refused its input for its depth.
func (d *DepthReader) TooDeep() bool { return d.err != nil }
