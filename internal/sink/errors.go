package sink

import (
	"errors"
	"time"
)

// RetryAfterHinter is an error that says how long the target asked to be
// left alone (a 429 or 503 with Retry-After). The rotation waits that
// long (capped) before retrying the delivery, instead of its own back-off.
type RetryAfterHinter interface {
	error
	RetryAfterHint() time.Duration
}

// Classified is an error that knows whether retrying can help. Every
// sink's errors implement it (or wrap one that does); the rotation asks
// IsPermanent, which finds the outermost Classified with errors.As, so a
// sink never has to export a predicate of its own and the server never has
// to know a sink's error types.
type Classified interface {
	error
	// Permanent is true when the same request cannot succeed until a
	// person changes something: a foreign target, a denied permission, a
	// 4xx that is not throttling.
	Permanent() bool
}

// IsPermanent reports whether err, or an error it wraps, is a Classified
// error that says retrying will not help. Unclassified errors are not
// permanent: retrying an unknown failure is the safe default.
func IsPermanent(err error) bool {
	var c Classified
	return errors.As(err, &c) && c.Permanent()
}

// Permanent marks err as permanent (for a sink whose error types need no
// fields of their own). Nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, permanent: true}
}

// Transient marks err as worth retrying, overriding a permanent error it
// wraps. Nil stays nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err}
}

type classified struct {
	err       error
	permanent bool
}

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() error   { return e.err }
func (e *classified) Permanent() bool { return e.permanent }
