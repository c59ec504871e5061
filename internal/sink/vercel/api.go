package vercel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/sink"
)

// This file is the sink's small Vercel REST client: bearer token, team
// scoping (?teamId=), Vercel's {"error":{"code","message"}} error shape,
// and the classification of every failure (sink.Classified).

// maxResponse bounds a response body read.
const maxResponse = 4 << 20

// APIError is a request Vercel answered with an error status. Message is
// Vercel's, with any value rotor sent cut out.
type APIError struct {
	// Op says what rotor asked, e.g. "list the variables of project storefront".
	Op         string
	StatusCode int
	Code       string
	Message    string
	// InvalidToken is Vercel's flag on a token it does not know.
	InvalidToken bool
	// RetryAfter is when Vercel says to retry (429: Retry-After or
	// X-RateLimit-Reset); zero when it did not say.
	RetryAfter time.Duration
	// Hint says what to fix, for the refusals a person must act on.
	Hint string
}

// Error names the operation, the status and Vercel's code and message.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vercel: %s: HTTP %d", e.Op, e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter.Round(time.Second))
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "; %s", e.Hint)
	}
	return b.String()
}

// Permanent is true for every 4xx but 408 and 429: a refused token or
// team, a missing project, a refused request do not mend by retrying.
func (e *APIError) Permanent() bool {
	switch {
	case e.StatusCode == http.StatusTooManyRequests, e.StatusCode == http.StatusRequestTimeout:
		return false
	case e.StatusCode >= 400 && e.StatusCode < 500:
		return true
	}
	return false
}

// client speaks to one Vercel API as one token, in one scope.
type client struct {
	http    *http.Client
	secrets sink.SecretResolver
	base    string // https://api.vercel.com
	token   sink.SecretRef
	teamID  string
}

// call sends one request. body (nil for none) is marshalled as JSON; out
// (nil to discard) receives a 2xx answer. redact is a value the request
// carries, cut out of anything an error could repeat.
func (c *client) call(ctx context.Context, op, method, path string, q url.Values, body, out any, redact string) error {
	tok, err := c.secrets.Resolve(ctx, c.token)
	if err != nil {
		return fmt.Errorf("vercel: %s: the sink's token (%s): %w", op, c.token, err)
	}
	if q == nil {
		q = url.Values{}
	}
	if c.teamID != "" {
		q.Set("teamId", c.teamID)
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return sink.Permanent(fmt.Errorf("vercel: %s: encode the request: %T", op, body))
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return sink.Permanent(fmt.Errorf("vercel: %s: %w", op, err))
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error names the method and URL (no token, no value: the
		// value travels in the body).
		return sink.Transient(fmt.Errorf("vercel: %s: %w", op, err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return sink.Transient(fmt.Errorf("vercel: %s: read the answer: %w", op, err))
	}
	if resp.StatusCode >= 300 {
		return apiError(op, resp, raw, redact)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return sink.Transient(fmt.Errorf("vercel: %s: HTTP %d with an answer that is not the expected JSON", op, resp.StatusCode))
	}
	return nil
}

func apiError(op string, resp *http.Response, raw []byte, redact string) *APIError {
	var body struct {
		Error struct {
			Code         string `json:"code"`
			Message      string `json:"message"`
			InvalidToken bool   `json:"invalidToken"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &body)
	e := &APIError{Op: op, StatusCode: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message, InvalidToken: body.Error.InvalidToken}
	if redact != "" && strings.Contains(e.Message, redact) {
		e.Message = strings.ReplaceAll(e.Message, redact, "[REDACTED]")
	}
	if len(e.Message) > 500 {
		e.Message = e.Message[:500] + "…"
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = retryAfter(resp.Header, time.Now())
	}
	switch {
	case e.InvalidToken || resp.StatusCode == http.StatusUnauthorized:
		e.Hint = "Vercel does not accept the sink's token: it is wrong, expired or revoked; create a new one and update the reference"
	case resp.StatusCode == http.StatusForbidden && e.Code == "forbidden":
		e.Hint = "the token may not do this: check that it belongs to a member of the team (team_id) with access to the project, and that its scope includes the team"
	}
	return e
}

// retryAfter reads Retry-After (seconds or a date) or else Vercel's
// X-RateLimit-Reset (Unix seconds).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return t.Sub(now)
		}
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if t := time.Unix(n, 0); t.After(now) {
				return t.Sub(now)
			}
		}
	}
	return 0
}

// envVar is a project variable as Vercel lists it. The sink never asks
// for a decrypted value; Value is not even decoded.
type envVar struct {
	ID        string   `json:"id"`
	Key       string   `json:"key"`
	Type      string   `json:"type"`
	Target    []string `json:"target"`
	GitBranch string   `json:"gitBranch"`
	Comment   string   `json:"comment"`
	CreatedAt int64    `json:"createdAt"`
	UpdatedAt int64    `json:"updatedAt"`
}

// envList is GET /v10/projects/{p}/env. Vercel answers in one of three
// shapes: {envs, pagination}, {envs}, or a bare variable (when a single
// one matches a filter); decodeEnvs reads all three.
func decodeEnvs(raw json.RawMessage) ([]envVar, error) {
	var wrapped struct {
		Envs *[]envVar `json:"envs"`
	}
	if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Envs != nil {
		return *wrapped.Envs, nil
	}
	var one envVar
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	if one.ID == "" && one.Key == "" {
		return nil, nil
	}
	return []envVar{one}, nil
}

// deploymentInfo is a deployment as GET /v6/deployments lists it and GET
// /v13/deployments/{id} and POST /v13/deployments answer.
type deploymentInfo struct {
	UID        string            `json:"uid"`
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	URL        string            `json:"url"`
	State      string            `json:"state"`
	ReadyState string            `json:"readyState"`
	Target     *string           `json:"target"`
	Meta       map[string]string `json:"meta"`
	Created    int64             `json:"created"`
	CreatedAt  int64             `json:"createdAt"`
}

func (d deploymentInfo) id() string {
	if d.UID != "" {
		return d.UID
	}
	return d.ID
}

func (d deploymentInfo) state() string {
	if d.ReadyState != "" {
		return d.ReadyState
	}
	return d.State
}
