package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// MaxBatchRequests is Graph's limit of requests in one $batch.
const MaxBatchRequests = 20

// Bounds of the per-item 429 retries in Batch. Graph throttles batch items
// individually, so the batch as a whole succeeds while some items come back
// 429 with their own Retry-After; azcore's retry policy never sees those.
const (
	defaultBatchItemRetries  = 5
	defaultBatchItemMaxDelay = 60 * time.Second
	batchItemBaseDelay       = time.Second
)

// BatchRequest is one request of a $batch. URL is relative to the Graph
// version root ("/applications/{id}"); Body is marshalled as JSON.
type BatchRequest struct {
	ID        string
	Method    string
	URL       string
	Headers   map[string]string
	Body      any
	DependsOn []string
}

// BatchResponse is one response of a $batch.
type BatchResponse struct {
	ID      string
	Status  int
	Headers map[string]string
	Body    json.RawMessage
}

// Err returns the item's failure as an *Error (nil for 2xx), so the same
// helpers (IsNotFound, IsThrottled, …) classify batch items.
func (r BatchResponse) Err() error {
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	e := &Error{StatusCode: r.Status}
	for k, v := range r.Headers {
		switch strings.ToLower(k) {
		case "retry-after":
			e.RetryAfter = retryAfter(http.Header{"Retry-After": {v}})
		case "request-id":
			e.RequestID = v
		case "client-request-id":
			e.ClientRequestID = v
		}
	}
	fillFromBody(e, r.Body)
	if e.Code == "" && e.Message == "" {
		e.Message = http.StatusText(r.Status)
	}
	e.Method, e.Path = "$batch item", r.ID
	return e
}

type batchItemJSON struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      any               `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

type batchResponseJSON struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// Batch sends up to 20 requests in one $batch and returns their responses in
// the order of reqs. Items throttled with 429 (and items that failed only
// because a throttled item they depend on did, 424) are resent after the
// longest Retry-After among them — or a jittered exponential backoff when
// Graph gave none — a bounded number of times; a Retry-After over a minute
// is not waited for. With a pacer the wait happens there instead: each
// throttled item pauses its bucket for every request sharing it. Other
// item failures are returned as they are; use BatchResponse.Err to
// classify them.
func (c *Client) Batch(ctx context.Context, reqs []BatchRequest) ([]BatchResponse, error) {
	items, err := c.batchItems(reqs)
	if err != nil {
		return nil, err
	}
	maxRetries, maxDelay := c.batchItemRetries, c.batchItemMaxDelay
	if maxRetries == 0 {
		maxRetries = defaultBatchItemRetries
	}
	if maxDelay == 0 {
		maxDelay = defaultBatchItemMaxDelay
	}

	results := make(map[string]BatchResponse, len(items))
	pending := items
	for attempt := 0; ; attempt++ {
		got, err := c.sendBatch(ctx, pending)
		if err != nil {
			return nil, err
		}
		for _, r := range got {
			results[r.ID] = BatchResponse(r)
		}
		retry, wait := retryableItems(pending, results)
		if len(retry) == 0 || attempt >= maxRetries {
			break
		}
		if wait <= 0 {
			wait = backoff(attempt)
		}
		if wait > maxDelay {
			break
		}
		if c.pacer != nil {
			// The pacer pauses the throttled buckets, and the resend
			// (like every other request sharing them) waits there.
			c.reportThrottledItems(pending, results)
		} else {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		pending = retry
	}

	out := make([]BatchResponse, 0, len(reqs))
	for _, r := range reqs {
		res, ok := results[r.ID]
		if !ok {
			return nil, fmt.Errorf("graph: $batch response has no answer for request %q", r.ID)
		}
		out = append(out, res)
	}
	return out, nil
}

// batchItems validates reqs and converts them to the wire shape.
func (c *Client) batchItems(reqs []BatchRequest) ([]batchItemJSON, error) {
	switch {
	case len(reqs) == 0:
		return nil, errors.New("graph: $batch needs at least one request")
	case len(reqs) > MaxBatchRequests:
		return nil, fmt.Errorf("graph: $batch holds at most %d requests, got %d", MaxBatchRequests, len(reqs))
	}
	seen := make(map[string]bool, len(reqs))
	items := make([]batchItemJSON, 0, len(reqs))
	for i, r := range reqs {
		if r.ID == "" {
			return nil, fmt.Errorf("graph: $batch request %d has no id", i)
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("graph: $batch request id %q is used twice", r.ID)
		}
		seen[r.ID] = true
		u := r.URL
		if strings.HasPrefix(u, c.base) {
			u = strings.TrimPrefix(u, c.base)
		}
		if !strings.HasPrefix(u, "/") {
			if strings.Contains(u, "://") {
				return nil, fmt.Errorf("graph: $batch request %q: URL must be relative to %s", r.ID, c.base)
			}
			u = "/" + u
		}
		method := strings.ToUpper(r.Method)
		if method == "" {
			method = http.MethodGet
		}
		h := make(map[string]string, len(r.Headers)+1)
		for k, v := range r.Headers {
			h[k] = v
		}
		if r.Body != nil && !hasHeader(h, "Content-Type") {
			h["Content-Type"] = "application/json"
		}
		if len(h) == 0 {
			h = nil
		}
		items = append(items, batchItemJSON{ID: r.ID, Method: method, URL: u, Headers: h, Body: r.Body, DependsOn: r.DependsOn})
	}
	for _, r := range reqs {
		for _, d := range r.DependsOn {
			if !seen[d] {
				return nil, fmt.Errorf("graph: $batch request %q depends on unknown request %q", r.ID, d)
			}
		}
	}
	return items, nil
}

// sendBatch posts one $batch. dependsOn entries naming items outside this
// round (they already succeeded) are dropped, as Graph refuses them.
func (c *Client) sendBatch(ctx context.Context, items []batchItemJSON) ([]batchResponseJSON, error) {
	in := make(map[string]bool, len(items))
	for _, it := range items {
		in[it.ID] = true
	}
	send := make([]batchItemJSON, len(items))
	for i, it := range items {
		var deps []string
		for _, d := range it.DependsOn {
			if in[d] {
				deps = append(deps, d)
			}
		}
		it.DependsOn = deps
		send[i] = it
	}
	var resp struct {
		Responses []batchResponseJSON `json:"responses"`
	}
	cost := batchCost(send)
	if err := c.doJSON(ctx, call{method: "POST", url: c.path("/$batch"), body: map[string]any{"requests": send}, ok: []int{200}, cost: &cost}, &resp); err != nil {
		return nil, err
	}
	return resp.Responses, nil
}

// retryableItems returns the items to resend — throttled ones, plus those
// that failed with 424 because of a throttled dependency — and the longest
// Retry-After among the throttled ones.
func retryableItems(pending []batchItemJSON, results map[string]BatchResponse) ([]batchItemJSON, time.Duration) {
	throttled := map[string]bool{}
	var wait time.Duration
	for _, it := range pending {
		r, ok := results[it.ID]
		if !ok || r.Status != http.StatusTooManyRequests {
			continue
		}
		throttled[it.ID] = true
		for k, v := range r.Headers {
			if strings.EqualFold(k, "Retry-After") {
				if d := retryAfter(http.Header{"Retry-After": {v}}); d > wait {
					wait = d
				}
			}
		}
	}
	if len(throttled) == 0 {
		return nil, 0
	}
	// A 424 whose dependency is retried is retried too (to a fixed point,
	// for chains of dependencies).
	for changed := true; changed; {
		changed = false
		for _, it := range pending {
			if throttled[it.ID] || results[it.ID].Status != http.StatusFailedDependency {
				continue
			}
			for _, d := range it.DependsOn {
				if throttled[d] {
					throttled[it.ID], changed = true, true
					break
				}
			}
		}
	}
	var retry []batchItemJSON
	for _, it := range pending {
		if throttled[it.ID] {
			retry = append(retry, it)
		}
	}
	return retry, wait
}

// backoff is 1 s, 2 s, 4 s, … with ±20 % jitter, for 429s without
// Retry-After (some identity 429s lack it).
func backoff(attempt int) time.Duration {
	d := batchItemBaseDelay << min(attempt, 6)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}
