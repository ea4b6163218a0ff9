// Package hint gives errors the fix that goes with them. The place that
// knows the cause builds the error once, with its hint; commands and
// `check` print it and never reword it. It also marks errors that no
// retry can heal, so that retry loops stop at once.
package hint

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a cause and what to do about it.
type Error struct {
	Err  error
	Hint string
	// Permanent errors do not heal by retrying (RBAC denied, a bad file).
	Permanent bool
}

func (e *Error) Error() string {
	if e.Hint == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ".\n" + e.Hint
}

func (e *Error) Unwrap() error { return e.Err }

// With adds a hint to err; a nil err stays nil.
func With(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Hint: fmt.Sprintf(format, args...)}
}

// Permanent adds a hint to err and marks it as one no retry heals.
func Permanent(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Hint: fmt.Sprintf(format, args...), Permanent: true}
}

// Errorf builds a new error with a hint.
func Errorf(hint string, format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...), Hint: hint}
}

// Of returns the hint of the first hinted error in err's chain, or "".
func Of(err error) string {
	var h *Error
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}

// IsPermanent reports whether any error in err's chain was marked
// permanent.
func IsPermanent(err error) bool {
	for _, e := range chain(err) {
		if h, ok := e.(*Error); ok && h.Permanent {
			return true
		}
	}
	return false
}

// chain flattens err's tree (errors.Join and %w with several errors
// included) in depth-first order.
func chain(err error) []error {
	if err == nil {
		return nil
	}
	out := []error{err}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, chain(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, chain(e)...)
		}
	}
	return out
}

// OneLine is s on one line, runs of white space made one space, cut to
// 200 bytes: an error's text in a table cell or a plan's line.
func OneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
