package lang

import (
	"fmt"

	"github.com/idgraph/idgraph/graph"
)

// Code is an error's stable identifier: clients (the console's editor, the
// CLI) match on it, so codes are never renamed.
type Code string

const (
	CodeSyntax              Code = "SYNTAX"                // the text does not follow the grammar
	CodeUnknownFunction     Code = "UNKNOWN_FUNCTION"      // no such function or method
	CodeArity               Code = "ARITY"                 // wrong number of arguments
	CodeType                Code = "TYPE"                  // an operand or the whole definition has the wrong type
	CodePropOutsideWhere    Code = "PROP_OUTSIDE_WHERE"    // prop() outside .where(...) or a reducer
	CodeParentOutsideNested Code = "PARENT_OUTSIDE_NESTED" // parent or after_parent outside a nested chain
	CodeBadWindow           Code = "BAD_WINDOW"            // zero, negative or longer-than-retention window
	CodeBadRange            Code = "BAD_RANGE"             // reversed range or out-of-range count
	CodeBadTimestamp        Code = "BAD_TIMESTAMP"         // a timestamp literal that is no valid instant
	CodeBadRegex            Code = "BAD_REGEX"             // invalid or oversized regular expression
	CodeBadPath             Code = "BAD_PATH"              // an empty trait or property path segment
	CodeLimit               Code = "LIMIT"                 // a configured limit is exceeded
	CodeCycle               Code = "CYCLE"                 // in_segment / computed references loop back
	CodeUnknownReference    Code = "UNKNOWN_REFERENCE"     // in_segment or computed names no definition
)

// Pos is a position in the source: 1-based line and column, the column
// counted in characters (not bytes), so that non-Latin text points right.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"column"`
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// Error is every error the language reports: parse, check and limit errors
// alike. It never carries internals, so its text is safe to show.
type Error struct {
	Code   Code
	Line   int
	Column int
	Msg    string
	Hint   string // how to fix it, or ""
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%d:%d: %s: %s", e.Line, e.Column, e.Code, e.Msg)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap lets graph.ErrorKind classify a language error as invalid input
// (HTTP 400, GraphQL BAD_USER_INPUT) with the field "definition".
func (e *Error) Unwrap() error {
	return &graph.Error{Kind: graph.KindInvalid, Field: "definition", Msg: e.Error()}
}

func errAt(p Pos, code Code, hint, format string, args ...any) *Error {
	return &Error{Code: code, Line: p.Line, Column: p.Col, Msg: fmt.Sprintf(format, args...), Hint: hint}
}
