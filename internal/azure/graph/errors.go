package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
)

// Graph error codes rotor reacts to.
const (
	// CodePolicyLifetime is the app management policy refusing a credential
	// lifetime.
	CodePolicyLifetime = "CredentialInvalidLifetimeAsPerAppPolicy"
	// CodeAuthorizationDenied is a write to an application the caller may
	// not manage (e.g. not an owner under Application.ReadWrite.OwnedBy).
	CodeAuthorizationDenied = "Authorization_RequestDenied"
	// CodeNotFound is Graph's code for a missing object.
	CodeNotFound = "Request_ResourceNotFound"
)

// Error is a Graph error response: status, Graph's code and message, the
// correlation ids needed for a support case, and how long to wait when
// throttled.
type Error struct {
	StatusCode int
	Code       string
	Message    string
	// RequestID is Graph's request-id (header or innerError).
	RequestID string
	// ClientRequestID is the client-request-id rotor sent.
	ClientRequestID string
	// RetryAfter is the server's requested wait (429/503), 0 if none.
	RetryAfter time.Duration
	// ThrottleScope is x-ms-throttle-scope on a 429.
	ThrottleScope string
	Details       []ErrorDetail
	// Method and Path name the call (no query string).
	Method, Path string
}

// ErrorDetail is one entry of error.details.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	Target  string `json:"target,omitempty"`
}

// Error includes status, code, message and request id; never a body field
// that could hold a secret (Graph never echoes secretText in errors).
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("graph: ")
	if e.Method != "" {
		fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	}
	fmt.Fprintf(&b, "%d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request-id %s)", e.RequestID)
	}
	return b.String()
}

// RetryAfterHint is the server's requested wait (Retry-After), 0 if none:
// what a caller retrying the call by itself should wait.
func (e *Error) RetryAfterHint() time.Duration { return e.RetryAfter }

type errorBody struct {
	Error struct {
		Code       string        `json:"code"`
		Message    string        `json:"message"`
		Details    []ErrorDetail `json:"details"`
		InnerError struct {
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// newError builds an *Error from a failed response (consuming its body).
func newError(resp *http.Response) *Error {
	e := &Error{
		StatusCode:      resp.StatusCode,
		RequestID:       resp.Header.Get("request-id"),
		ClientRequestID: resp.Header.Get(HeaderClientRequestID),
		RetryAfter:      retryAfter(resp.Header),
		ThrottleScope:   resp.Header.Get("x-ms-throttle-scope"),
	}
	if resp.Request != nil {
		e.Method = resp.Request.Method
		e.Path = resp.Request.URL.Path
		if e.ClientRequestID == "" {
			e.ClientRequestID = resp.Request.Header.Get(HeaderClientRequestID)
		}
	}
	body, _ := runtime.Payload(resp)
	fillFromBody(e, body)
	if e.Code == "" && e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// fillFromBody parses Graph's error JSON into e (ignoring bodies that are
// not JSON).
func fillFromBody(e *Error, body []byte) {
	var eb errorBody
	if len(body) == 0 || json.Unmarshal(body, &eb) != nil {
		return
	}
	e.Code = eb.Error.Code
	e.Message = eb.Error.Message
	e.Details = eb.Error.Details
	if e.RequestID == "" {
		e.RequestID = eb.Error.InnerError.RequestID
	}
	if e.ClientRequestID == "" {
		e.ClientRequestID = eb.Error.InnerError.ClientRequestID
	}
}

// retryAfter reads retry-after-ms, x-ms-retry-after-ms and Retry-After
// (seconds or HTTP date), in that order of preference (as azcore does).
func retryAfter(h http.Header) time.Duration {
	get := func(k string) string { return strings.TrimSpace(h.Get(k)) }
	for _, k := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v := get(k); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
				return time.Duration(ms * float64(time.Millisecond))
			}
		}
	}
	v := get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

func asError(err error) (*Error, bool) {
	var ge *Error
	ok := errors.As(err, &ge)
	return ge, ok
}

// IsNotFound reports a 404 from Graph.
func IsNotFound(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusNotFound
}

// IsForbidden reports a 403: the identity lacks the permission or, under
// Application.ReadWrite.OwnedBy, does not own the application.
func IsForbidden(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusForbidden
}

// IsThrottled reports a 429 that outlasted the retry policy, or a request
// the pacer held back for Graph's budget until its context ended (nothing
// was sent; retrying later is the cure for both).
func IsThrottled(err error) bool {
	if pacer.IsWaitError(err) {
		return true
	}
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusTooManyRequests
}

// IsPolicyViolation reports that an app management policy refused the
// credential (CredentialInvalidLifetimeAsPerAppPolicy and its siblings,
// which all end in "AsPerAppPolicy"): retrying will not help, a shorter
// lifetime or a different credential type will.
func IsPolicyViolation(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	return e.Code == CodePolicyLifetime ||
		(strings.HasPrefix(e.Code, "Credential") && strings.HasSuffix(e.Code, "AsPerAppPolicy"))
}
