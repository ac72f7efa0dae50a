package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"unicode"
)

// TestLogsEscapeControlCharacters: values carrying a newline (a forged
// entry), ANSI escapes (a repainted terminal), C1 controls, line
// separators and bidirectional overrides reach serve's log only escaped:
// every entry is one line of printable characters.
func TestLogsEscapeControlCharacters(t *testing.T) {
	hostile := []string{
		"ann\n{\"level\":\"ERROR\",\"msg\":\"forged\"}",
		"\x1b[31mred\x1b[0m\r",
		"nul\x00bell\x07tab\tdel\x7f",
		"csi\u009b31m c1\u0085",
		"ls\u2028ps\u2029",
		"bidi\u202egnp.exe",
	}
	var buf bytes.Buffer
	log := newLogger(&buf)
	for _, h := range hostile {
		log.Error("ingest", "userId", h, "err", errors.New("store: "+h), slog.Group("context", slog.String("ip", h)))
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(hostile) {
		t.Fatalf("%d log lines for %d entries:\n%s", len(lines), len(hostile), buf.String())
	}
	for i, line := range lines {
		for _, r := range line {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && unicode.IsControl(r)) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
				t.Errorf("entry %d holds a raw %U: %q", i, r, line)
				break
			}
		}
	}
	if !strings.Contains(lines[1], `\u001b[31mred`) || !strings.Contains(lines[3], `csi\\u009b31m`) {
		t.Errorf("escapes not readable: %s / %s", lines[1], lines[3])
	}
}
