package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"
)

// newLogger is serve's logger: JSON lines, one per entry. JSON escapes the
// C0 control characters (a newline in a value cannot start a forged entry,
// an ESC cannot colour a terminal); safeAttr escapes what JSON leaves raw:
// DEL, the C1 controls (U+009B is a terminal's CSI) and other format or
// line-separating characters (U+2028, bidirectional overrides).
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: safeAttr}))
}

func safeAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value.Any().(type) {
	case string:
		if i := strings.IndexFunc(v, unsafeRune); i >= 0 {
			a.Value = slog.StringValue(escapeUnsafe(v))
		}
	case error:
		if s := v.Error(); strings.IndexFunc(s, unsafeRune) >= 0 {
			a.Value = slog.StringValue(escapeUnsafe(s))
		}
	}
	return a
}

// unsafeRune: a control or format character (JSON escapes those below
// U+0020 itself, so they are left to it).
func unsafeRune(r rune) bool {
	return r >= 0x7f && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029')
}

func escapeUnsafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}
