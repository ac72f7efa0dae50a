package server

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idgraph/idgraph/graph"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzipBomb is members gzip members of 1 MB of zeros each, one after the
// other (a valid multi-member stream): about 1 KB on the wire per MB inflated.
func gzipBomb(t testing.TB, members int) []byte {
	member := gzipped(t, make([]byte, 1<<20))
	return bytes.Repeat(member, members)
}

// countingReader counts the bytes read from the wire.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadBodyEncodings(t *testing.T) {
	msg := []byte(`{"userId":"u","event":"x"}`)
	atLimit := bytes.Repeat([]byte("a"), MaxMessageBytes)
	random := make([]byte, MaxMessageBytes+1024)
	_, _ = rand.Read(random)
	z := gzipped(t, msg)
	// Nested past the limit at byte 65, then 4 MB that does not compress:
	// the refusal must come after the first piece, on the wire too.
	deep := append(bytes.Repeat([]byte("["), 100), '"')
	for len(deep) < MaxImportBytes-1 {
		deep = fmt.Appendf(deep, "%x", random[:1024])
	}
	deep = append(deep, '"')
	brackets := []byte(`{"userId":"u","event":"` + strings.Repeat(`[{\"`, 2000) + `"}`)
	badSum := bytes.Clone(z)
	badSum[len(badSum)-8] ^= 0xff // the CRC-32 in the trailer
	cases := []struct {
		name, encoding string
		body           []byte
		limit          int64
		want           []byte     // the decoded body, when it is accepted
		kind           graph.Kind // else the error's kind
		msg            string
		maxWire        int // if set, the most wire bytes reading may consume
	}{
		{name: "nested too deep", body: deep, limit: MaxImportBytes, kind: graph.KindInvalid, msg: "JSON is nested more than 64 levels deep", maxWire: 4 << 10},
		{name: "nested too deep, gzip", encoding: "gzip", body: gzipped(t, deep), limit: MaxImportBytes,
			kind: graph.KindInvalid, msg: "JSON is nested more than 64 levels deep", maxWire: 16 << 10},
		{name: "brackets and escaped quotes in a string", body: brackets, limit: MaxMessageBytes, want: brackets},
		{name: "brackets and escaped quotes in a string, gzip", encoding: "gzip", body: gzipped(t, brackets), limit: MaxMessageBytes, want: brackets},
		{name: "plain", body: msg, limit: MaxMessageBytes, want: msg},
		{name: "identity", encoding: "identity", body: msg, limit: MaxMessageBytes, want: msg},
		{name: "gzip", encoding: "gzip", body: z, limit: MaxMessageBytes, want: msg},
		{name: "x-gzip, spaced, upper case", encoding: " X-GZIP ", body: z, limit: MaxMessageBytes, want: msg},
		{name: "plain at the limit", body: atLimit, limit: MaxMessageBytes, want: atLimit},
		{name: "gzip inflating to the limit", encoding: "gzip", body: gzipped(t, atLimit), limit: MaxMessageBytes, want: atLimit},
		{name: "gzip inflating past the limit", encoding: "gzip", body: gzipped(t, append(atLimit, 'a')), limit: MaxMessageBytes,
			kind: graph.KindTooLarge, msg: "larger than 32 KB"},
		{name: "gzip bomb, message", encoding: "gzip", body: gzipBomb(t, 30), limit: MaxMessageBytes,
			kind: graph.KindTooLarge, msg: "larger than 32 KB", maxWire: 16 << 10},
		{name: "gzip bomb, batch (400 MB inflated)", encoding: "gzip", body: gzipBomb(t, 400), limit: MaxBatchBytes,
			kind: graph.KindTooLarge, msg: "larger than 500 KB", maxWire: 16 << 10},
		{name: "compressed body larger than the limit", encoding: "gzip", body: gzipped(t, random), limit: MaxMessageBytes,
			kind: graph.KindTooLarge, msg: "larger than 32 KB"},
		{name: "gzip header on plain JSON", encoding: "gzip", body: msg, limit: MaxMessageBytes, kind: graph.KindInvalid, msg: "body is not gzip"},
		{name: "empty gzip body", encoding: "gzip", limit: MaxMessageBytes, kind: graph.KindInvalid, msg: "body is not gzip"},
		{name: "truncated gzip", encoding: "gzip", body: z[:len(z)-6], limit: MaxMessageBytes, kind: graph.KindInvalid, msg: "not valid gzip"},
		{name: "gzip with a bad checksum", encoding: "gzip", body: badSum, limit: MaxMessageBytes, kind: graph.KindInvalid, msg: "not valid gzip: gzip: invalid checksum"},
		{name: "invalid UTF-8 inside gzip", encoding: "gzip", body: gzipped(t, []byte("{\"userId\":\"\xff\"}")), limit: MaxMessageBytes,
			kind: graph.KindInvalid, msg: "not valid UTF-8"},
		{name: "brotli", encoding: "br", body: msg, limit: MaxMessageBytes, kind: kindUnsupportedMedia, msg: `Content-Encoding "br" is not supported: send gzip or no encoding`},
		{name: "deflate", encoding: "deflate", body: msg, limit: MaxMessageBytes, kind: kindUnsupportedMedia, msg: `"deflate" is not supported`},
		{name: "two encodings", encoding: "gzip, gzip", body: msg, limit: MaxMessageBytes, kind: kindUnsupportedMedia, msg: `"gzip, gzip" is not supported`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wire := &countingReader{r: bytes.NewReader(c.body)}
			r := httptest.NewRequest("POST", "/v1/t", wire)
			if c.encoding != "" {
				r.Header.Set("Content-Encoding", c.encoding)
			}
			w := httptest.NewRecorder()
			got, err := readBody(w, r, c.limit)
			switch {
			case c.want != nil && (err != nil || !bytes.Equal(got, c.want)):
				t.Errorf("got %d bytes, %v; want %d bytes", len(got), err, len(c.want))
			case c.want == nil && (graph.ErrorKind(err) != c.kind || !strings.Contains(graph.ErrorMessage(err), c.msg)):
				t.Errorf("got %v (%s), want %s containing %q", err, graph.ErrorKind(err), c.kind, c.msg)
			}
			if c.maxWire > 0 && wire.n > c.maxWire {
				t.Errorf("read %d of %d wire bytes before refusing; a bomb must be refused early", wire.n, len(c.body))
			}
			// A body refused before its end is not drained: the connection closes.
			if unread := c.kind == graph.KindTooLarge || strings.Contains(c.msg, "nested"); unread != (w.Header().Get("Connection") == "close") {
				t.Errorf("Connection: %q after %v", w.Header().Get("Connection"), err)
			}
		})
	}
}

// BenchmarkReadBody: what reading a batch costs plain and gzipped, and what
// refusing a gzip bomb costs (docs/benchmarks.md).
func BenchmarkReadBody(b *testing.B) {
	var batch bytes.Buffer
	batch.WriteString(`{"batch":[`)
	for i := 0; batch.Len() < 400<<10; i++ {
		fmt.Fprintf(&batch, `{"type":"track","anonymousId":"anon-%d","event":"Product Viewed","messageId":"m-%d","properties":{"sku":"SKU-%d","price":%d.99}},`, i%977, i, i%131, i%50)
	}
	batch.WriteString(`{"type":"page","anonymousId":"a"}]}`)
	cases := []struct {
		name, encoding string
		body           []byte
		kind           graph.Kind
	}{
		{"400 KB batch, plain", "", batch.Bytes(), ""},
		{"400 KB batch, gzip", "gzip", gzipped(b, batch.Bytes()), ""},
		{"gzip bomb, 400 KB inflating to 400 MB", "gzip", gzipBomb(b, 400), graph.KindTooLarge},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/v1/b", bytes.NewReader(c.body))
				if c.encoding != "" {
					r.Header.Set("Content-Encoding", c.encoding)
				}
				_, err := readBody(httptest.NewRecorder(), r, MaxBatchBytes)
				if c.kind == "" && err != nil || c.kind != "" && graph.ErrorKind(err) != c.kind {
					b.Fatal(err)
				}
			}
		})
	}
}
