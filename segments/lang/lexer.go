package lang

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tNumber
	tString
	tDuration
	tTimestamp
	tPunct // ( ) [ ] , . = != < <= > >= + - * / %
)

type token struct {
	kind tokKind
	pos  Pos
	text string // identifier, punctuation, or the decoded string
	num  float64
	dur  time.Duration
	ts   time.Time
}

// value is a literal token's value.
func (t token) value() Value {
	switch t.kind {
	case tNumber:
		return numVal(t.num)
	case tDuration:
		return durVal(t.dur)
	case tTimestamp:
		return timeVal(t.ts)
	}
	return strVal(t.text)
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return strconv.Quote(t.text)
	case tNumber:
		return "number"
	case tDuration:
		return "duration"
	case tTimestamp:
		return "timestamp"
	}
	return "'" + t.text + "'"
}

var durationUnits = map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second}

// lex turns src into tokens. It stops at the first error.
func lex(src string) ([]token, *Error) {
	if !utf8.ValidString(src) {
		return nil, errAt(Pos{1, 1}, CodeSyntax, "", "the definition is not valid UTF-8")
	}
	lx := &lexer{src: src, line: 1, col: 1}
	var toks []token
	for {
		t, err := lx.next()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.kind == tEOF {
			return toks, nil
		}
	}
}

type lexer struct {
	src       string
	i         int
	line, col int
}

func (lx *lexer) pos() Pos { return Pos{lx.line, lx.col} }

func (lx *lexer) peekByte(k int) byte {
	if lx.i+k < len(lx.src) {
		return lx.src[lx.i+k]
	}
	return 0
}

// advance moves past one character, keeping line and column.
func (lx *lexer) advance() {
	r, n := utf8.DecodeRuneInString(lx.src[lx.i:])
	lx.i += n
	if r == '\n' {
		lx.line++
		lx.col = 1
	} else {
		lx.col++
	}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func (lx *lexer) next() (token, *Error) {
	// Skip blanks and comments (# to the end of the line).
	for lx.i < len(lx.src) {
		c := lx.src[lx.i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			lx.advance()
		} else if c == '#' {
			for lx.i < len(lx.src) && lx.src[lx.i] != '\n' {
				lx.advance()
			}
		} else {
			break
		}
	}
	p := lx.pos()
	if lx.i >= len(lx.src) {
		return token{kind: tEOF, pos: p}, nil
	}
	c := lx.src[lx.i]
	switch {
	case isLetter(c):
		start := lx.i
		for lx.i < len(lx.src) && (isLetter(lx.src[lx.i]) || isDigit(lx.src[lx.i])) {
			lx.advance()
		}
		return token{kind: tIdent, pos: p, text: lx.src[start:lx.i]}, nil
	case isDigit(c):
		return lx.number(p)
	case c == '"':
		return lx.str(p)
	case c == '@':
		return lx.timestamp(p)
	}
	two := ""
	if lx.i+1 < len(lx.src) {
		two = lx.src[lx.i : lx.i+2]
	}
	switch two {
	case "!=", "<=", ">=":
		lx.advance()
		lx.advance()
		return token{kind: tPunct, pos: p, text: two}, nil
	}
	if strings.IndexByte("()[],.=<>+-*/%", c) >= 0 {
		lx.advance()
		return token{kind: tPunct, pos: p, text: string(c)}, nil
	}
	r, _ := utf8.DecodeRuneInString(lx.src[lx.i:])
	hint := ""
	if c == '\'' {
		hint = `strings use double quotes: "like this"`
	} else if c == '&' || c == '|' || c == '!' {
		hint = "use and, or, not"
	}
	return token{}, errAt(p, CodeSyntax, hint, "unexpected character %q", r)
}

func (lx *lexer) number(p Pos) (token, *Error) {
	start := lx.i
	for isDigit(lx.peekByte(0)) {
		lx.advance()
	}
	whole := true
	if lx.peekByte(0) == '.' && isDigit(lx.peekByte(1)) {
		whole = false
		lx.advance()
		for isDigit(lx.peekByte(0)) {
			lx.advance()
		}
	}
	if e := lx.peekByte(0); e == 'e' || e == 'E' {
		k := 1
		if s := lx.peekByte(1); s == '+' || s == '-' {
			k = 2
		}
		if isDigit(lx.peekByte(k)) {
			whole = false
			for range k {
				lx.advance()
			}
			for isDigit(lx.peekByte(0)) {
				lx.advance()
			}
		}
	}
	text := lx.src[start:lx.i]
	if c := lx.peekByte(0); isLetter(c) || isDigit(c) {
		unit, ok := durationUnits[c]
		if !ok || !whole || isLetter(lx.peekByte(1)) || isDigit(lx.peekByte(1)) {
			return token{}, errAt(p, CodeSyntax, "durations are whole numbers with a unit d, h, m or s: 30d, 12h, 15m", "invalid number or duration")
		}
		lx.advance()
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n > math.MaxInt64/int64(unit) {
			return token{}, errAt(p, CodeBadWindow, "", "duration %s%c is too large", text, c)
		}
		return token{kind: tDuration, pos: p, dur: time.Duration(n) * unit}, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		return token{}, errAt(p, CodeSyntax, "", "number %s is out of range", text)
	}
	return token{kind: tNumber, pos: p, num: f}, nil
}

// str decodes a double-quoted string. \" \\ \n \t are escapes; any other
// backslash is kept as written, so that "a\.b" reaches the path parser
// with its escaped dot.
func (lx *lexer) str(p Pos) (token, *Error) {
	lx.advance()
	var b strings.Builder
	for {
		if lx.i >= len(lx.src) || lx.src[lx.i] == '\n' {
			return token{}, errAt(p, CodeSyntax, `close it with "`, "unterminated string")
		}
		c := lx.src[lx.i]
		if c == '"' {
			lx.advance()
			return token{kind: tString, pos: p, text: b.String()}, nil
		}
		if c == '\\' && lx.i+1 < len(lx.src) {
			switch lx.src[lx.i+1] {
			case '"', '\\':
				b.WriteByte(lx.src[lx.i+1])
				lx.advance()
				lx.advance()
				continue
			case 'n':
				b.WriteByte('\n')
				lx.advance()
				lx.advance()
				continue
			case 't':
				b.WriteByte('\t')
				lx.advance()
				lx.advance()
				continue
			}
		}
		start := lx.i
		lx.advance()
		b.WriteString(lx.src[start:lx.i])
	}
}

func (lx *lexer) timestamp(p Pos) (token, *Error) {
	lx.advance()
	start := lx.i
	for c := lx.peekByte(0); isDigit(c) || isLetter(c) || c == ':' || c == '.' || c == '+' || c == '-'; c = lx.peekByte(0) {
		lx.advance()
	}
	t, ok := parseTimestamp(lx.src[start:lx.i])
	if !ok {
		return token{}, errAt(p, CodeBadTimestamp, "write @2026-01-01 or @2026-01-01T10:00:00Z", "invalid timestamp @%s", lx.src[start:lx.i])
	}
	return token{kind: tTimestamp, pos: p, ts: t}, nil
}

// parseTimestamp reads a date (midnight UTC) or an RFC 3339 instant.
func parseTimestamp(s string) (time.Time, bool) {
	layout := time.RFC3339Nano
	if len(s) == len("2006-01-02") {
		layout = time.DateOnly
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}
