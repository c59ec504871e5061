package graph

import (
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	pacer *pacer.Pacer
	// perRetry are extra policies put first among the per-try ones (tests).
	perRetry []policy.Policy
}

// WithPacer makes every request of the client wait for Graph's throttling
// budget in p before it is sent, and report the 429s Graph still answers
// to p, so that all clients sharing p (every client of one identity in one
// tenant: get p from one pacer.Registry) wait together. A nil p is no
// pacing.
func WithPacer(p *pacer.Pacer) Option { return func(o *options) { o.pacer = p } }

// Pacer is the client's pacer, nil when it has none.
func (c *Client) Pacer() *pacer.Pacer { return c.pacer }

// The pacer sits on both sides of azcore's retry policy. Before it
// (per call), the first try waits for budget under the caller's context,
// whose deadline is the caller's and not azcore's per-try timeout, so a
// long wait is not cut short (and then repeated) by TryTimeout. After it
// (per try, behind the bearer token), every retry waits again — Graph
// charges each try — and every answer is reported: a 429 pauses the
// bucket its x-ms-throttle-scope names for its Retry-After, before azcore
// sleeps and retries.

// requestCost is a cost a call sets for itself (a $batch, which prices
// its items), overriding the one read from method and URL.
type requestCost struct{ cost pacer.Cost }

// paceState follows one call through its tries.
type paceState struct {
	cost pacer.Cost
	// paid is set by the per-call wait and cleared by the first try, so
	// that try does not wait (and pay) twice.
	paid bool
}

// paceCallPolicy waits for the first try's budget.
type paceCallPolicy struct{ c *Client }

func (p paceCallPolicy) Do(req *policy.Request) (*http.Response, error) {
	var rc requestCost
	if !req.OperationValue(&rc) {
		rc.cost = p.c.costOf(req.Raw())
	}
	if err := p.c.pacer.Wait(req.Raw().Context(), rc.cost); err != nil {
		return nil, err
	}
	req.SetOperationValue(&paceState{cost: rc.cost, paid: true})
	return req.Next()
}

// paceTryPolicy waits for the budget of each retry and reports answers.
type paceTryPolicy struct{ c *Client }

func (p paceTryPolicy) Do(req *policy.Request) (*http.Response, error) {
	var st *paceState
	if !req.OperationValue(&st) || st == nil {
		return req.Next()
	}
	if st.paid {
		st.paid = false
	} else if err := p.c.pacer.Wait(req.Raw().Context(), st.cost); err != nil {
		return nil, err
	}
	resp, err := req.Next()
	if err != nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		p.c.pacer.Throttled(pacer.Throttle{Scope: resp.Header.Get("x-ms-throttle-scope"), RetryAfter: retryAfter(resp.Header)})
	} else {
		p.c.pacer.Accepted(st.cost)
	}
	return resp, nil
}

// costOf prices a request by its method and its URL below the client's
// base (which ends in the version).
func (c *Client) costOf(r *http.Request) pacer.Cost {
	path := r.URL.Path
	if base := c.baseURL.Path; base != "" && strings.HasPrefix(path, base) {
		path = strings.TrimPrefix(path, base)
	}
	return pacer.CostOf(r.Method, path, r.URL.Query())
}

// batchCost prices the items of one $batch round.
func batchCost(items []batchItemJSON) pacer.Cost {
	bi := make([]pacer.BatchItem, len(items))
	for i, it := range items {
		bi[i] = pacer.BatchItem{Method: it.Method, URL: it.URL}
	}
	return pacer.BatchCost(bi)
}

// reportThrottledItems tells the pacer about each batch item Graph
// throttled, so that the round resending them (and every other request of
// the pair) waits out their Retry-After in the pacer.
func (c *Client) reportThrottledItems(pending []batchItemJSON, results map[string]BatchResponse) {
	for _, it := range pending {
		r, ok := results[it.ID]
		if !ok || r.Status != http.StatusTooManyRequests {
			continue
		}
		var t pacer.Throttle
		for k, v := range r.Headers {
			switch strings.ToLower(k) {
			case "retry-after":
				t.RetryAfter = retryAfter(http.Header{"Retry-After": {v}})
			case "x-ms-throttle-scope":
				t.Scope = v
			}
		}
		c.pacer.Throttled(t)
	}
}
