package graph

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that the HTTP and GraphQL layers can map it to
// a status or code without knowing where it came from.
type Kind string

const (
	KindInvalid      Kind = "invalid"      // the caller sent something wrong: 400
	KindUnauthorized Kind = "unauthorized" // no or wrong credentials: 401
	KindForbidden    Kind = "forbidden"    // right credentials, wrong role: 403
	KindNotFound     Kind = "not_found"    // 404
	KindConflict     Kind = "conflict"     // the state changed meanwhile (decided by someone else): 409
	KindTooLarge     Kind = "too_large"    // 413
	KindRateLimited  Kind = "rate_limited" // the caller must wait (Retry-After): 429
	KindUnavailable  Kind = "unavailable"  // the store cannot be reached: 503
	KindInternal     Kind = "internal"     // a bug or an unexpected failure: 500
)

// Error is the project's error type: a kind, the operation that failed, the
// input field at fault (if any) and a message safe to show to the caller.
type Error struct {
	Kind  Kind
	Op    string
	Field string
	Msg   string
	Err   error
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Field != "" {
		s = e.Field + ": " + s
	}
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Err != nil {
		if s == "" {
			return e.Err.Error()
		}
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error of the given kind with a formatted message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// FieldErrorf builds an invalid-input Error naming the field at fault.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ErrorKind returns the kind of the first *Error in err's chain, or
// KindInternal when there is none.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// ErrorMessage returns a message fit for a client: the field and message of
// a known error, or a generic text that hides internals.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != KindInternal {
		if e.Msg == "" && e.Err != nil {
			return e.Err.Error()
		}
		if e.Field != "" {
			return e.Field + ": " + e.Msg
		}
		return e.Msg
	}
	return "internal error"
}

// ErrStoreFormat is wrapped by a backend's Open for a store whose format
// version this code cannot read.
var ErrStoreFormat = errors.New("unsupported store format")

// CheckFormatVersion refuses a store's format version (have) that this
// code (which writes version want) cannot read: a newer one, or none that
// makes sense.
func CheckFormatVersion(have, want int) error {
	switch {
	case have > want:
		return fmt.Errorf("%w: the store is format version %d, newer than this idgraph's version %d; run a newer idgraph", ErrStoreFormat, have, want)
	case have < 1:
		return fmt.Errorf("%w: invalid format version %d", ErrStoreFormat, have)
	}
	return nil
}
