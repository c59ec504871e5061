package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// ListOptions are the OData query options of a list call.
type ListOptions struct {
	// Select limits the properties returned ($select); fewer properties cost
	// Graph fewer resource units, so inventory should always select.
	Select []string
	// Filter is an OData $filter, e.g. "appId eq '…'".
	Filter string
	// Top is the page size ($top), at most 999 for applications; 0 leaves
	// Graph's default (100).
	Top int
	// Count adds $count=true and ConsistencyLevel: eventual, which Graph
	// requires for advanced queries (endsWith, $search, not, …).
	Count bool
}

func (o ListOptions) query() string {
	var q []string
	if len(o.Select) > 0 {
		q = append(q, "$select="+queryEscape(strings.Join(o.Select, ",")))
	}
	if o.Filter != "" {
		q = append(q, "$filter="+queryEscape(o.Filter))
	}
	if o.Top > 0 {
		q = append(q, "$top="+strconv.Itoa(o.Top))
	}
	if o.Count {
		q = append(q, "$count=true")
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + strings.Join(q, "&")
}

func (o ListOptions) headers() map[string]string {
	if o.Count {
		return map[string]string{"ConsistencyLevel": "eventual"}
	}
	return nil
}

// Pager walks a Graph collection page by page, following @odata.nextLink
// unchanged (Graph's skiptokens are opaque). It is not safe for concurrent
// use; its counters are.
type Pager[T any] struct {
	c       *Client
	next    string // absolute URL of the next page; "" when done
	headers map[string]string
	err     error // set when the pager cannot start (bad options)

	pages    atomic.Int64
	requests atomic.Int64
}

func newPager[T any](c *Client, first string, headers map[string]string) *Pager[T] {
	return &Pager[T]{c: c, next: first, headers: headers}
}

// More reports whether another page may be fetched.
func (p *Pager[T]) More() bool { return p.next != "" || p.err != nil }

// PageCount is the number of pages fetched so far.
func (p *Pager[T]) PageCount() int { return int(p.pages.Load()) }

// Requests is the number of HTTP attempts made so far, retries included.
func (p *Pager[T]) Requests() int64 { return p.requests.Load() }

type page[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"@odata.nextLink"`
}

// NextPage fetches the next page. After an error the pager stays on the
// same page, so calling NextPage again retries it.
func (p *Pager[T]) NextPage(ctx context.Context) ([]T, error) {
	if p.err != nil {
		err := p.err
		p.err = nil
		return nil, err
	}
	if p.next == "" {
		return nil, fmt.Errorf("graph: no more pages")
	}
	ctx = context.WithValue(ctx, counterKey{}, &p.requests)
	resp, err := p.c.do(ctx, call{method: "GET", url: p.next, headers: p.headers, ok: []int{200}})
	if err != nil {
		return nil, err
	}
	body, err := runtime.Payload(resp)
	if err != nil {
		return nil, fmt.Errorf("graph: read page: %w", err)
	}
	var pg page[T]
	if err := json.Unmarshal(body, &pg); err != nil {
		return nil, fmt.Errorf("graph: decode page of %s: %w", redactQuery(p.next), err)
	}
	p.pages.Add(1)
	if pg.NextLink != "" {
		if err := p.c.checkNextLink(pg.NextLink); err != nil {
			p.next = ""
			return pg.Value, err
		}
	}
	p.next = pg.NextLink
	return pg.Value, nil
}

// All yields every remaining item, stopping at the first error (which it
// yields with a zero T).
func (p *Pager[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for p.More() {
			items, err := p.NextPage(ctx)
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
		}
	}
}

// Collect fetches every remaining item into a slice.
func (p *Pager[T]) Collect(ctx context.Context) ([]T, error) {
	var out []T
	for it, err := range p.All(ctx) {
		if err != nil {
			return out, err
		}
		out = append(out, it)
	}
	return out, nil
}

// checkNextLink refuses a next link that leaves Graph's scheme and host: the
// bearer token for Graph must never be sent anywhere else.
func (c *Client) checkNextLink(link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("graph: bad @odata.nextLink: %w", err)
	}
	if u.Scheme != c.baseURL.Scheme || u.Host != c.baseURL.Host {
		return fmt.Errorf("graph: @odata.nextLink points to %s://%s, not %s://%s; refusing to follow",
			u.Scheme, u.Host, c.baseURL.Scheme, c.baseURL.Host)
	}
	return nil
}
