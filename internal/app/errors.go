package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/store"
)

// The errors below classify what went wrong, so the CLI chooses its
// message and the API its status code with errors.As, never by reading
// the text. Each carries its HTTP status (HTTPStatus).

// NotFoundError is a reference that names nothing in the organization:
// an application or a run (or an organization that does not exist). It
// wraps store.ErrNotFound.
type NotFoundError struct {
	// Kind is "application", "run" or "organization".
	Kind string
	Ref  string
	Err  error
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("no %s %q", e.Kind, e.Ref) }

// Unwrap returns the store's error.
func (e *NotFoundError) Unwrap() error { return e.Err }

// HTTPStatus is 404.
func (e *NotFoundError) HTTPStatus() int { return http.StatusNotFound }

// AmbiguousError is an application reference that names several
// applications (two tenants with the same display name); ObjectIDs are the
// candidates, any of which names one.
type AmbiguousError struct {
	Ref string
	// Field is what the reference matched: "object id", "app id" or
	// "display name".
	Field     string
	ObjectIDs []string
	Err       error
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("ambiguous: %d applications have %s %q (object ids %s); use an object id",
		len(e.ObjectIDs), e.Field, e.Ref, strings.Join(e.ObjectIDs, ", "))
}

// Unwrap returns the store's error.
func (e *AmbiguousError) Unwrap() error { return e.Err }

// HTTPStatus is 409: the reference is valid but does not choose.
func (e *AmbiguousError) HTTPStatus() int { return http.StatusConflict }

// NoPolicyError is an application no policy selects, asked to rotate.
type NoPolicyError struct {
	App ApplicationRef
}

func (e *NoPolicyError) Error() string { return fmt.Sprintf("no policy selects %s", e.App.Name) }

// HTTPStatus is 422.
func (e *NoPolicyError) HTTPStatus() int { return http.StatusUnprocessableEntity }

// NotManageableError is an application its policy's connection may not
// change (rotor's identity is not an owner, or that connection does not
// see it), asked to rotate.
type NotManageableError struct {
	App        ApplicationRef
	Policy     string
	Connection string
}

func (e *NotManageableError) Error() string {
	return fmt.Sprintf("%s cannot be changed through connection %q (policy %q)", e.App.Name, e.Connection, e.Policy)
}

// HTTPStatus is 422.
func (e *NotManageableError) HTTPStatus() int { return http.StatusUnprocessableEntity }

// InvalidError is an argument the use case cannot take (an unknown run
// state, a negative limit).
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// HTTPStatus is 400.
func (e *InvalidError) HTTPStatus() int { return http.StatusBadRequest }

// UnavailableError is a use case this rotor was assembled without (no job
// system to enqueue on, no syncer).
type UnavailableError struct{ What string }

func (e *UnavailableError) Error() string { return e.What + " is not available in this rotor" }

// HTTPStatus is 501.
func (e *UnavailableError) HTTPStatus() int { return http.StatusNotImplemented }

// ErrorClass is the kind of failure an audit event records: a fixed
// vocabulary, never an error's text (which might, through a bug anywhere
// below, carry something that must not be kept).
type ErrorClass string

// Error classes.
const (
	ClassDenied        ErrorClass = "denied"
	ClassNotFound      ErrorClass = "not_found"
	ClassAmbiguous     ErrorClass = "ambiguous"
	ClassNoPolicy      ErrorClass = "no_policy"
	ClassNotManageable ErrorClass = "not_manageable"
	ClassInvalid       ErrorClass = "invalid"
	ClassUnavailable   ErrorClass = "unavailable"
	ClassBusy          ErrorClass = "busy"
	ClassTooEarly      ErrorClass = "too_early"
	ClassRunFailed     ErrorClass = "run_failed"
	ClassCanceled      ErrorClass = "canceled"
	ClassInternal      ErrorClass = "internal"
	// ClassAzure is Azure refusing or failing a call made as a
	// connection's identity (*AzureError).
	ClassAzure ErrorClass = "azure"
)

// Classify names the class of err; "" for nil.
func Classify(err error) ErrorClass {
	var (
		denied   *DeniedError
		notFound *NotFoundError
		ambig    *AmbiguousError
		noPol    *NoPolicyError
		notMgd   *NotManageableError
		invalid  *InvalidError
		unavail  *UnavailableError
		early    *rotation.ErrTooEarly
		runErr   *rotation.RunError
		azureErr *AzureError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &denied):
		return ClassDenied
	case errors.As(err, &notFound):
		return ClassNotFound
	case errors.As(err, &ambig):
		return ClassAmbiguous
	case errors.As(err, &noPol):
		return ClassNoPolicy
	case errors.As(err, &notMgd):
		return ClassNotManageable
	case errors.As(err, &invalid):
		return ClassInvalid
	case errors.As(err, &unavail):
		return ClassUnavailable
	case errors.Is(err, rotation.ErrBusy):
		return ClassBusy
	case errors.As(err, &early):
		return ClassTooEarly
	case errors.As(err, &runErr):
		return ClassRunFailed
	case errors.As(err, &azureErr):
		return ClassAzure
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ClassCanceled
	}
	return ClassInternal
}

// HTTPStatus maps err to a status code: its own when it carries one, 409
// for a busy application, 500 otherwise.
func HTTPStatus(err error) int {
	var hs interface{ HTTPStatus() int }
	switch {
	case errors.As(err, &hs):
		return hs.HTTPStatus()
	case errors.Is(err, rotation.ErrBusy):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// lookupError turns a store lookup failure into the app's typed errors.
func lookupError(kind, ref string, err error) error {
	var amb *store.AmbiguousError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &NotFoundError{Kind: kind, Ref: ref, Err: err}
	case errors.As(err, &amb):
		return &AmbiguousError{Ref: amb.Ref, Field: amb.Field, ObjectIDs: amb.ObjectIDs, Err: err}
	}
	return fmt.Errorf("look up %s %q: %w", kind, ref, err)
}
