// Package graph is rotor's typed Microsoft Graph v1.0 client for app
// registrations: list and read applications, add and remove password and key
// credentials, owners, service principals, federated credentials and $batch.
//
// It is deliberately small and built on azcore's pipeline instead of
// msgraph-sdk-go: rotor needs a dozen calls, wants its own types (with
// secret.Value for secretText, so a new secret can never be logged or
// marshalled by accident), and gets retries that honour Retry-After, bearer
// token caching and per-try timeouts from azcore for free. Every request
// carries a fresh client-request-id so support cases and the audit log can
// name the exact call.
package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/google/uuid"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
)

const (
	moduleName    = "rotor/graph"
	moduleVersion = "v0.1.0"
	// HeaderClientRequestID is Graph's correlation header.
	HeaderClientRequestID = "client-request-id"
)

// Client calls Microsoft Graph v1.0 for one identity in one tenant. It is
// safe for concurrent use.
type Client struct {
	base     string   // ep.GraphURL, no trailing slash
	baseURL  *url.URL // parsed base, to check next links stay on Graph
	pl       runtime.Pipeline
	requests atomic.Int64

	// bounds of Batch's per-item 429 retries; zero means the defaults.
	batchItemRetries  int
	batchItemMaxDelay time.Duration

	// pacer, when set, holds each request until Graph's budget allows it
	// (pacing.go).
	pacer *pacer.Pacer
}

// New returns a Graph client that authenticates with cred for ep.GraphScope
// on the transport and retry options of azure.ClientOptions(ep).
func New(cred azcore.TokenCredential, ep azure.Endpoints, opts ...Option) (*Client, error) {
	if cred == nil {
		return nil, errors.New("graph: credential is nil")
	}
	base := strings.TrimSuffix(ep.GraphURL, "/")
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("graph: endpoint %q is not an absolute https URL", ep.GraphURL)
	}
	if ep.GraphScope == "" {
		return nil, errors.New("graph: endpoints have no Graph scope")
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	c := &Client{base: base, baseURL: u, pacer: o.pacer}
	perCall := []policy.Policy{clientRequestIDPolicy{}}
	perRetry := append(slices.Clone(o.perRetry),
		runtime.NewBearerTokenPolicy(cred, []string{ep.GraphScope}, nil),
		countingPolicy{c: c},
	)
	if c.pacer != nil {
		perCall = append(perCall, paceCallPolicy{c: c})
		perRetry = append(perRetry, paceTryPolicy{c: c})
	}
	co := azure.ClientOptions(ep)
	c.pl = runtime.NewPipeline(moduleName, moduleVersion, runtime.PipelineOptions{
		PerCall:        perCall,
		PerRetry:       perRetry,
		AllowedHeaders: []string{HeaderClientRequestID, "request-id", "x-ms-throttle-scope", "Retry-After", "ConsistencyLevel"},
	}, &co)
	return c, nil
}

// Requests is the number of HTTP attempts (retries included) this client has
// sent; benchmarks use it to check paging efficiency.
func (c *Client) Requests() int64 { return c.requests.Load() }

// clientRequestIDPolicy sets client-request-id once per call, so that all
// retries of one call share it (Graph support correlates them).
type clientRequestIDPolicy struct{}

func (clientRequestIDPolicy) Do(req *policy.Request) (*http.Response, error) {
	if req.Raw().Header.Get(HeaderClientRequestID) == "" {
		req.Raw().Header.Set(HeaderClientRequestID, uuid.NewString())
	}
	return req.Next()
}

type counterKey struct{}

// countingPolicy counts attempts for the client and, when the context
// carries one, for a pager.
type countingPolicy struct{ c *Client }

func (p countingPolicy) Do(req *policy.Request) (*http.Response, error) {
	p.c.requests.Add(1)
	if n, ok := req.Raw().Context().Value(counterKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
	return req.Next()
}

// call describes one Graph request.
type call struct {
	method  string
	url     string // absolute
	body    any    // marshalled as JSON when non-nil
	headers map[string]string
	ok      []int // accepted statuses
	// cost, when set, is what the pacer charges instead of the price of
	// method and URL ($batch prices its items).
	cost *pacer.Cost
}

// path returns the absolute URL of a Graph path ("/applications/…").
func (c *Client) path(p string) string { return c.base + p }

// do sends the call and returns the response (body downloaded) or an *Error.
func (c *Client) do(ctx context.Context, cl call) (*http.Response, error) {
	req, err := runtime.NewRequest(ctx, cl.method, cl.url)
	if err != nil {
		return nil, fmt.Errorf("graph: build %s request: %w", cl.method, err)
	}
	req.Raw().Header.Set("Accept", "application/json")
	if cl.cost != nil {
		req.SetOperationValue(requestCost{cost: *cl.cost})
	}
	for k, v := range cl.headers {
		req.Raw().Header.Set(k, v)
	}
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return nil, fmt.Errorf("graph: encode %s body: %w", cl.method, err)
		}
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(b)), "application/json"); err != nil {
			return nil, err
		}
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("graph: %s %s: %w", cl.method, redactQuery(cl.url), err)
	}
	if !runtime.HasStatusCode(resp, cl.ok...) {
		return nil, newError(resp)
	}
	return resp, nil
}

// doJSON sends the call and decodes a JSON response into out (if non-nil).
func (c *Client) doJSON(ctx context.Context, cl call, out any) error {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	if out == nil {
		runtime.Drain(resp)
		return nil
	}
	body, err := runtime.Payload(resp)
	if err != nil {
		return fmt.Errorf("graph: read %s response: %w", cl.method, err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("graph: decode %s %s response: %w", cl.method, redactQuery(cl.url), err)
	}
	return nil
}

// redactQuery drops the query, which may be long (skiptokens) and is never
// needed to understand an error.
func redactQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// queryEscape escapes an OData query value the way Graph's own SDKs do:
// spaces as %20 (not '+'), commas and quotes kept readable.
func queryEscape(v string) string {
	s := url.QueryEscape(v)
	s = strings.ReplaceAll(s, "+", "%20")
	s = strings.ReplaceAll(s, "%2C", ",")
	s = strings.ReplaceAll(s, "%27", "'")
	return s
}

// segment escapes one path segment (an object id).
func segment(s string) string { return url.PathEscape(s) }

// odataString quotes s as an OData string literal inside a path or filter.
func odataString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
