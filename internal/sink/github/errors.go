package github

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	gh "github.com/google/go-github/v84/github"
)

// APIError is a refusal from GitHub, reduced to what rotor needs: the
// operation, the status, GitHub's message and, for rate limits, how long
// GitHub asked to wait. It keeps nothing of the request (no body, no
// headers), so it can never carry a token or a sealed value.
type APIError struct {
	Op      string
	Status  int
	Message string
	// RateLimited is true for GitHub's primary and secondary rate limits
	// (403 or 429); RetryAfter is GitHub's Retry-After, or the time to
	// the primary limit's reset, when it said.
	RateLimited bool
	RetryAfter  time.Duration
}

// Error says what was refused and, where a person can fix it, how.
func (e *APIError) Error() string {
	msg := fmt.Sprintf("github: %s: %d %s", e.Op, e.Status, e.Message)
	switch {
	case e.RateLimited && e.RetryAfter > 0:
		return msg + fmt.Sprintf(" (rate limited; GitHub asks to retry after %s)", e.RetryAfter.Round(time.Second))
	case e.RateLimited:
		return msg + " (rate limited; retry later)"
	case e.Status == http.StatusUnauthorized:
		return msg + " (GitHub refused the token: it is wrong, expired or revoked)"
	case e.Status == http.StatusForbidden:
		return msg + " (the token may not use Actions secrets here: a classic PAT needs the repo scope, admin:org for organization secrets; a fine-grained token needs Secrets read and write)"
	case e.Status == http.StatusNotFound:
		return msg + " (it does not exist, or the token cannot see it: GitHub answers 404 for a private repository the token has no access to)"
	}
	return msg
}

// Permanent is true unless a retry can help: rate limits, 5xx, 409.
func (e *APIError) Permanent() bool {
	if e.RateLimited || e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusConflict {
		return false
	}
	return e.Status >= 400
}

// TransportError is a request that got no answer (refused connection,
// timeout, TLS). It is retryable.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string   { return fmt.Sprintf("github: %s: %v", e.Op, e.Err) }
func (e *TransportError) Unwrap() error   { return e.Err }
func (e *TransportError) Permanent() bool { return false }

// ForeignError says the target secret exists and rotor has no record of
// writing it. GitHub secrets carry no marker, so rotor's record is the only
// proof of ownership. Permanent: a person decides (adopt: true).
type ForeignError struct{ Target string }

func (e *ForeignError) Error() string {
	return fmt.Sprintf("%s exists and rotor never delivered to it, so it belongs to someone else; "+
		"set adopt: true on the sink to take it over, or choose another name", e.Target)
}

// Permanent is always true.
func (e *ForeignError) Permanent() bool { return true }

// classify turns a go-github error into an APIError or a TransportError.
// The go-github error is not wrapped: its Response points at the request.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var (
		abuse *gh.AbuseRateLimitError
		rate  *gh.RateLimitError
		resp  *gh.ErrorResponse
	)
	switch {
	case errors.As(err, &abuse):
		return &APIError{Op: op, Status: status(abuse.Response), Message: abuse.Message, RateLimited: true, RetryAfter: abuse.GetRetryAfter()}
	case errors.As(err, &rate):
		var wait time.Duration
		if !rate.Rate.Reset.IsZero() {
			wait = time.Until(rate.Rate.Reset.Time)
		}
		return &APIError{Op: op, Status: status(rate.Response), Message: rate.Message, RateLimited: true, RetryAfter: max(wait, 0)}
	case errors.As(err, &resp):
		e := &APIError{Op: op, Status: status(resp.Response), Message: resp.Message}
		if e.Status == http.StatusTooManyRequests {
			e.RateLimited = true
		}
		return e
	}
	// No answer: refused, timed out (context deadline included), TLS.
	return &TransportError{Op: op, Err: err}
}

func status(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

// isNotFound reports whether err is GitHub's 404.
func isNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}
