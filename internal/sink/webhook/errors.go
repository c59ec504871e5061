package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"net/http"
	"time"
)

func hmacSHA256(key []byte) hash.Hash { return hmac.New(sha256.New, key) }

// StatusError is a receiver's answer other than 2xx. Body is the start of
// the receiver's answer, with every value rotor sent removed.
type StatusError struct {
	URL    string
	Status int
	Body   string
	// RetryAfter is the receiver's Retry-After; zero when it sent none.
	RetryAfter time.Duration
}

// Error names the receiver, the status and what it said.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("webhook sink: the receiver at %s answered HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Permanent is true for 4xx answers other than 408 Request Timeout, 425
// Too Early and 429 Too Many Requests: the receiver refused this request
// (a wrong signature, a wrong URL, a body it rejects), and the same
// request will be refused again. 5xx, 408, 425 and 429 are worth a retry,
// as is anything else unexpected (1xx, 3xx: the client follows redirects,
// so a 3xx here is a loop or a refusal to redirect a POST).
func (e *StatusError) Permanent() bool {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooEarly, e.Status == http.StatusTooManyRequests:
		return false
	case e.Status >= 400 && e.Status < 500:
		return true
	}
	return false
}

// RetryAfterHint is the receiver's requested wait, for the rotation's
// retry loop.
func (e *StatusError) RetryAfterHint() time.Duration { return e.RetryAfter }

// TimeoutError is an attempt that got no answer within the spec's timeout.
// It is retryable: the receiver may be slow, or may have processed the
// event (the retry carries the same webhook-id).
type TimeoutError struct {
	URL     string
	Timeout time.Duration
}

// Error names the receiver and the timeout.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("webhook sink: the receiver at %s did not answer within %s (timeout)", e.URL, e.Timeout)
}

// Permanent is false.
func (e *TimeoutError) Permanent() bool { return false }
