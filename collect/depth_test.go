package collect_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
)

// readDepth reads data through a DepthReader in pieces of at most chunk
// bytes, so that strings, escapes and brackets straddle the pieces.
func readDepth(data []byte, chunk int) ([]byte, error) {
	return io.ReadAll(collect.NewDepthReader(&chunked{data, chunk}))
}

type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// jsonDepth is the reference: the deepest nesting encoding/json's
// tokenizer sees in valid JSON.
func jsonDepth(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

func TestDepthReader(t *testing.T) {
	nest := func(n int) string { return strings.Repeat(`{"a":[`, n/2) + strings.Repeat(`]}`, n/2) }
	for _, tc := range []struct {
		name, data string
		ok         bool
	}{
		{"at the limit", nest(collect.MaxDepth), true},
		{"past the limit", nest(collect.MaxDepth + 2), false},
		{"unclosed", strings.Repeat("[", 20000), false},
		{"brackets in a string", `{"a":"` + strings.Repeat(`[\"{`, 1000) + `"}`, true},
		{"brackets in a key", `{"` + strings.Repeat(`[{`, 100) + `":1}`, true},
		{"escaped backslash ends the string", `["\\"` + strings.Repeat(",[", collect.MaxDepth) + `]`, false},
		{"unicode escape of a quote", `["\u0022` + strings.Repeat("[", 100) + `"]`, true},
		{"empty", ``, true},
	} {
		for _, chunk := range []int{1, 2, 3, 7, 4096} {
			got, err := readDepth([]byte(tc.data), chunk)
			if (err == nil) != tc.ok {
				t.Errorf("%s, pieces of %d: err = %v, want ok %v", tc.name, chunk, err, tc.ok)
			}
			if err != nil && (graph.ErrorKind(err) != graph.KindInvalid || graph.ErrorMessage(err) != "JSON is nested more than 64 levels deep") {
				t.Errorf("%s: error %q does not name the limit", tc.name, graph.ErrorMessage(err))
			}
			if err == nil && string(got) != tc.data {
				t.Errorf("%s, pieces of %d: read %q, want the input unchanged", tc.name, chunk, got)
			}
			if (collect.CheckDepth([]byte(tc.data), "") == nil) != tc.ok {
				t.Errorf("%s: CheckDepth disagrees", tc.name)
			}
		}
	}
}

// The reader stops at the piece that passes the limit: nothing after it is
// read, and later reads keep failing.
func TestDepthReaderStopsAtTheLimit(t *testing.T) {
	body := strings.Repeat("[", 1<<20)
	src := &chunked{[]byte(body), 1}
	dr := collect.NewDepthReader(src)
	_, err := io.ReadAll(dr)
	if err == nil || !dr.TooDeep() {
		t.Fatalf("err = %v, want refused", err)
	}
	if n := len(body) - len(src.data); n != collect.MaxDepth+1 {
		t.Errorf("read %d bytes of %d, want %d (up to the first bracket past the limit)", n, len(body), collect.MaxDepth+1)
	}
	if n, err2 := dr.Read(make([]byte, 10)); n != 0 || err2 == nil {
		t.Errorf("read after refusal: %d, %v", n, err2)
	}
}

// depthByBytes is the reference scan, byte by byte (the one before the
// IndexByte skip over strings): the fuzz target holds the two to the same
// answers and BenchmarkDepth compares their speed.
func depthByBytes(data []byte) bool {
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
			if depth++; depth > collect.MaxDepth {
				return false
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return true
}

// FuzzDepth: on valid JSON, the scan agrees with encoding/json's tokenizer
// about the depth, whichever pieces the input arrives in; on any input, the
// streaming scan agrees with the one over the whole body.
func FuzzDepth(f *testing.F) {
	for _, s := range []string{`{"a":"[[\"{"}`, `["\\",[[]]]`, `[[[[` + `"]]]]"` + `]]]]`, `{"k\u005b":[{}]}`, strings.Repeat("[", 70) + strings.Repeat("]", 70)} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole := collect.CheckDepth(data, "") == nil
		if whole != depthByBytes(data) {
			t.Fatalf("CheckDepth says ok %v, the byte-by-byte scan %v", whole, !whole)
		}
		_, err := readDepth(data, int(chunk)+1)
		if (err == nil) != whole {
			t.Fatalf("pieces of %d: ok %v, whole body: ok %v", int(chunk)+1, err == nil, whole)
		}
		if json.Valid(data) {
			if d := jsonDepth(data); whole != (d <= collect.MaxDepth) {
				t.Fatalf("depth %d by the tokenizer, scan says ok %v", d, whole)
			}
		}
	})
}

// sdkBatch is a /v1/batch body of n messages like analytics.js sends.
func sdkBatch(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"batch":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"track","event":"Viewed \"Product\" [%d]","messageId":"m-%d","anonymousId":"anon-%d","userId":"user-%d",`+
			`"properties":{"sku":"SKU-%d","tags":["a","b{c}"],"price":12.5},"context":{"ip":"10.0.0.1","userAgent":"Mozilla/5.0 (X11; Linux x86_64)",`+
			`"page":{"path":"/p/%d","url":"https://shop.example/p/%d?q=1"},"library":{"name":"analytics.js","version":"next-1.70.0"}},`+
			`"timestamp":"2026-01-01T10:00:00.000Z"}`, i, i, i, i, i, i, i)
	}
	b.WriteString(`],"sentAt":"2026-01-01T10:00:01.000Z"}`)
	return b.Bytes()
}

// BenchmarkDepth compares reading a body and then scanning it (the path
// before streaming) with scanning it as it is read, and the scan alone
// with the byte-by-byte one it replaced.
func BenchmarkDepth(b *testing.B) {
	for _, n := range []int{1, 500} {
		body := sdkBatch(n)
		b.Run(fmt.Sprintf("read-then-check/%dB", len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				data, _ := io.ReadAll(bytes.NewReader(body))
				if err := collect.CheckDepth(data, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("streaming/%dB", len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := io.ReadAll(collect.NewDepthReader(bytes.NewReader(body))); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("scan-byte-by-byte/%dB", len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if !depthByBytes(body) {
					b.Fatal("too deep")
				}
			}
		})
		b.Run(fmt.Sprintf("scan-only/%dB", len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := collect.CheckDepth(body, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
