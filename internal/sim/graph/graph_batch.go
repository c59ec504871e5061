package graph

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
)

// This file serves POST /$batch. Each item is dispatched through the same
// Graph handler as a standalone request (into a recorder), so an item
// behaves exactly as it would alone: same permissions, same errors, and the
// same throttling bucket — a throttled item comes back as its own 429 with
// its own Retry-After while its siblings succeed.

// maxBatchRequests is Graph's JSON batching limit.
const maxBatchRequests = 20

// codeBatch is the code Graph's batching layer (not the directory) uses.
const codeBatch = "BadRequest"

type batchRequest struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers"`
	Body      json.RawMessage   `json:"body"`
	DependsOn []string          `json:"dependsOn"`
}

type batchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// batch validates the whole batch first (a malformed batch is refused as a
// whole, as Graph does), then runs the items in an order that honours
// dependsOn. An item whose dependency failed is not run: it gets 424.
func (g *graphCall) batch() {
	var in struct {
		Requests []batchRequest `json:"requests"`
	}
	if !g.decode(&in, false) {
		return
	}
	reqs := in.Requests
	if len(reqs) == 0 {
		g.fail(http.StatusBadRequest, codeBatch, "Invalid batch payload format: 'requests' must hold at least one request.")
		return
	}
	if len(reqs) > maxBatchRequests {
		g.fail(http.StatusBadRequest, codeBatch, fmt.Sprintf("Number of batch request steps exceeds the maximum of %d.", maxBatchRequests))
		return
	}
	byID := make(map[string]int, len(reqs))
	for i, rq := range reqs {
		if rq.ID == "" {
			g.fail(http.StatusBadRequest, codeBatch, fmt.Sprintf("Batch request %d has no id.", i))
			return
		}
		if _, dup := byID[rq.ID]; dup {
			g.fail(http.StatusBadRequest, codeBatch, fmt.Sprintf("Batch request id '%s' is used more than once; ids must be unique.", rq.ID))
			return
		}
		byID[rq.ID] = i
	}
	order, err := batchOrder(reqs, byID)
	if err != nil {
		g.fail(http.StatusBadRequest, codeBatch, err.Error())
		return
	}
	results := make([]*batchResponse, len(reqs))
	for _, i := range order {
		rq := reqs[i]
		failedDep := ""
		for _, d := range rq.DependsOn {
			if st := results[byID[d]].Status; st < 200 || st > 299 {
				failedDep = d
				break
			}
		}
		if failedDep != "" {
			results[i] = g.batchItemError(rq.ID, http.StatusFailedDependency, "FailedDependency",
				fmt.Sprintf("The request depends on request '%s', which failed.", failedDep))
			continue
		}
		results[i] = g.runBatchItem(rq)
	}
	g.ok(http.StatusOK, map[string]any{"responses": results})
}

// batchOrder returns the items' indexes in an order where every item comes
// after those it depends on (request order otherwise), refusing unknown ids
// and cycles.
func batchOrder(reqs []batchRequest, byID map[string]int) ([]int, error) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(reqs))
	order := make([]int, 0, len(reqs))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			return &inputError{fmt.Sprintf("Batch request '%s' is part of a dependsOn cycle.", reqs[i].ID)}
		}
		state[i] = visiting
		for _, d := range reqs[i].DependsOn {
			j, ok := byID[d]
			if !ok {
				return &inputError{fmt.Sprintf("Batch request '%s' depends on '%s', which is not in the batch.", reqs[i].ID, d)}
			}
			if err := visit(j); err != nil {
				return err
			}
		}
		state[i] = done
		order = append(order, i)
		return nil
	}
	for i := range reqs {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// batchItemError renders an item-level error in Graph's error shape.
func (g *graphCall) batchItemError(id string, status int, code, msg string) *batchResponse {
	rec := httptest.NewRecorder()
	rec.Header().Set("request-id", g.w.Header().Get("request-id"))
	rec.Header().Set("client-request-id", g.w.Header().Get("client-request-id"))
	writeGraphError(rec, g.s.Clock().Now().UTC().Format("2006-01-02T15:04:05"), status, code, msg)
	return recorded(id, rec)
}

// batchMethods are the methods a batch item may use.
var batchMethods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPatch: true, http.MethodPut: true, http.MethodDelete: true,
}

// runBatchItem dispatches one item through serveGraph with the batch's own
// Authorization, host and TLS state (so nextLinks and auth match).
func (g *graphCall) runBatchItem(rq batchRequest) *batchResponse {
	method := strings.ToUpper(rq.Method)
	if !batchMethods[method] {
		return g.batchItemError(rq.ID, http.StatusBadRequest, codeBatch, fmt.Sprintf("Invalid method '%s' in batch request.", rq.Method))
	}
	rel := rq.URL
	if rel == "" || strings.Contains(rel, "://") {
		return g.batchItemError(rq.ID, http.StatusBadRequest, codeBatch, "A batch request's url must be relative, e.g. '/applications'.")
	}
	rel = strings.TrimPrefix(rel, "/")
	rel = strings.TrimPrefix(rel, "v1.0/")
	contentType := ""
	for k, v := range rq.Headers {
		if strings.EqualFold(k, "Content-Type") {
			contentType = v
		}
	}
	var body []byte
	hasBody := len(bytes.TrimSpace(rq.Body)) > 0 && string(bytes.TrimSpace(rq.Body)) != "null"
	if hasBody {
		if contentType == "" {
			return g.batchItemError(rq.ID, http.StatusBadRequest, codeBatch, "A batch request with a body must specify its Content-Type header.")
		}
		body = []byte(rq.Body)
		var s string
		if !strings.Contains(strings.ToLower(contentType), "json") && json.Unmarshal(rq.Body, &s) == nil {
			// Non-JSON bodies travel as base64 strings.
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				body = b
			} else {
				body = []byte(s)
			}
		}
	}
	req, err := http.NewRequestWithContext(g.r.Context(), method, graphBasePath+"/"+rel, bytes.NewReader(body))
	if err != nil {
		return g.batchItemError(rq.ID, http.StatusBadRequest, codeBatch, "Invalid url in batch request.")
	}
	for k, v := range rq.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", g.r.Header.Get("Authorization"))
	req.Host, req.TLS, req.RemoteAddr = g.r.Host, g.r.TLS, g.r.RemoteAddr
	rec := httptest.NewRecorder()
	g.s.serveGraph(rec, req, true)
	return recorded(rq.ID, rec)
}

// recorded turns a recorded response into a batch response item. A JSON
// body is embedded as JSON; anything else (e.g. /$count's number) as a
// JSON string.
func recorded(id string, rec *httptest.ResponseRecorder) *batchResponse {
	res := rec.Result()
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body) // a recorder's body cannot fail to read
	out := &batchResponse{ID: id, Status: res.StatusCode, Headers: map[string]string{}}
	for k, v := range res.Header {
		if len(v) > 0 {
			out.Headers[k] = v[0]
		}
	}
	if len(b) > 0 {
		if strings.Contains(res.Header.Get("Content-Type"), "json") && json.Valid(b) {
			out.Body = b
		} else {
			s, _ := json.Marshal(string(b))
			out.Body = s
		}
	}
	return out
}
