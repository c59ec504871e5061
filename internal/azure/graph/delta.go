package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// This file is Graph's change tracking for applications (the delta query):
// GET /applications/delta starts a round, @odata.nextLink pages continue
// it, and the last page carries the @odata.deltaLink from which the next
// round reports only what changed.

// Codes with which Graph refuses a state token it no longer has.
const (
	// CodeSyncStateNotFound is a delta link older than Graph keeps change
	// state for (seven days for directory objects).
	CodeSyncStateNotFound = "syncStateNotFound"
	// CodeExpiredPageToken is a $skiptoken Graph cannot resume from.
	CodeExpiredPageToken = "Directory_ExpiredPageToken"
)

// ErrNotDeltaLink is returned for a link that is not a delta or next link
// of this client's Graph endpoint, for example one stored for another
// cloud: it is never followed, because the bearer token must not leave
// Graph, and a caller treats it like an expired link (start over).
var ErrNotDeltaLink = errors.New("graph: not a delta link of this Graph endpoint")

// DeltaOptions are the query options of the first request of a round of
// change tracking. Graph encodes them into every link it returns, so they
// are never sent again.
type DeltaOptions struct {
	// Select limits the properties returned and tracked.
	Select []string
	// Latest asks only for a delta link from now on ($deltatoken=latest),
	// skipping the current state: a caller about to list every
	// application itself asks for it first, so that nothing changed
	// during its listing is missed.
	Latest bool
}

// Reasons of an @removed entry.
const (
	// RemovedDeleted is an application deleted for good.
	RemovedDeleted = "deleted"
	// RemovedChanged is an application deleted but restorable from
	// Entra's deleted items for 30 days.
	RemovedChanged = "changed"
)

// ApplicationChange is one entry of a delta page: a created or updated
// application, or a removed one. Graph may send an updated application
// with only the properties that changed, so each property is a pointer:
// nil means the entry left it out (unchanged), which is not the same as
// empty.
type ApplicationChange struct {
	ID string
	// Removed is "deleted" or "changed" (see RemovedDeleted and
	// RemovedChanged) for an application that left the collection, ""
	// otherwise. Either way the application is gone from the directory's
	// live applications.
	Removed string

	AppID               *string
	DisplayName         *string
	SignInAudience      *string
	CreatedDateTime     *time.Time
	PasswordCredentials *[]PasswordCredential
	KeyCredentials      *[]KeyCredential
}

// UnmarshalJSON reads one delta entry, telling a property that is absent
// (or null) from one that is present but empty.
func (c *ApplicationChange) UnmarshalJSON(b []byte) error {
	var v struct {
		ID                  string                   `json:"id"`
		Removed             *struct{ Reason string } `json:"@removed"`
		AppID               *string                  `json:"appId"`
		DisplayName         *string                  `json:"displayName"`
		SignInAudience      *string                  `json:"signInAudience"`
		CreatedDateTime     *time.Time               `json:"createdDateTime"`
		PasswordCredentials json.RawMessage          `json:"passwordCredentials"`
		KeyCredentials      json.RawMessage          `json:"keyCredentials"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = ApplicationChange{
		ID: v.ID, AppID: v.AppID, DisplayName: v.DisplayName, SignInAudience: v.SignInAudience,
		CreatedDateTime: v.CreatedDateTime,
	}
	if v.Removed != nil {
		c.Removed = v.Removed.Reason
		if c.Removed == "" {
			// An @removed without a reason still removes.
			c.Removed = RemovedDeleted
		}
	}
	if present(v.PasswordCredentials) {
		var ps []PasswordCredential
		if err := json.Unmarshal(v.PasswordCredentials, &ps); err != nil {
			return fmt.Errorf("passwordCredentials: %w", err)
		}
		c.PasswordCredentials = &ps
	}
	if present(v.KeyCredentials) {
		var ks []KeyCredential
		if err := json.Unmarshal(v.KeyCredentials, &ks); err != nil {
			return fmt.Errorf("keyCredentials: %w", err)
		}
		c.KeyCredentials = &ks
	}
	return nil
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// DeltaPager walks one round of change tracking: pages follow
// @odata.nextLink until the page that carries @odata.deltaLink (a page
// never carries both), which DeltaLink then returns. It is not safe for
// concurrent use; its counters are.
type DeltaPager struct {
	c         *Client
	next      string
	deltaLink string
	err       error

	pages    atomic.Int64
	requests atomic.Int64
}

// ApplicationsDelta starts a round of change tracking of applications: the
// first round returns every current application (or, with Latest, none),
// and its delta link reports later changes.
func (c *Client) ApplicationsDelta(opts DeltaOptions) *DeltaPager {
	var q []string
	if len(opts.Select) > 0 {
		q = append(q, "$select="+queryEscape(strings.Join(opts.Select, ",")))
	}
	if opts.Latest {
		q = append(q, "$deltatoken=latest")
	}
	u := c.path("/applications/delta")
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	return &DeltaPager{c: c, next: u}
}

// ApplicationsDeltaFrom continues change tracking from a delta link an
// earlier round returned. A link that is not a delta link of this
// endpoint fails the first NextPage with ErrNotDeltaLink.
func (c *Client) ApplicationsDeltaFrom(deltaLink string) *DeltaPager {
	p := &DeltaPager{c: c}
	if err := c.CheckDeltaLink(deltaLink); err != nil {
		p.err = err
		return p
	}
	p.next = deltaLink
	return p
}

// CheckDeltaLink checks that link is a delta or next link of this
// client's applications delta: https, Graph's own host, the delta path,
// no user information and only OData options ($…) in its query. Graph's
// links hold an opaque state token and nothing else; a link holding
// anything more is not one rotor follows, or keeps.
func (c *Client) CheckDeltaLink(link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotDeltaLink, err)
	}
	switch {
	case u.Scheme != c.baseURL.Scheme || u.Host != c.baseURL.Host:
		return fmt.Errorf("%w: it points to %s://%s, not %s://%s", ErrNotDeltaLink, u.Scheme, u.Host, c.baseURL.Scheme, c.baseURL.Host)
	case u.User != nil:
		return fmt.Errorf("%w: it carries user information", ErrNotDeltaLink)
	case u.Path != c.baseURL.Path+"/applications/delta" && u.Path != c.baseURL.Path+"/applications/microsoft.graph.delta":
		return fmt.Errorf("%w: path %s is not the applications delta function", ErrNotDeltaLink, u.Path)
	}
	for k := range u.Query() {
		if !strings.HasPrefix(k, "$") {
			return fmt.Errorf("%w: query parameter %q is not an OData option", ErrNotDeltaLink, k)
		}
	}
	return nil
}

// More reports whether another page may be fetched.
func (p *DeltaPager) More() bool { return p.next != "" || p.err != nil }

// DeltaLink is the link of the next round, set once the last page was
// read; "" before.
func (p *DeltaPager) DeltaLink() string { return p.deltaLink }

// PageCount is the number of pages fetched so far.
func (p *DeltaPager) PageCount() int { return int(p.pages.Load()) }

// Requests is the number of HTTP attempts made so far, retries included.
func (p *DeltaPager) Requests() int64 { return p.requests.Load() }

type deltaPage struct {
	Value     []ApplicationChange `json:"value"`
	NextLink  string              `json:"@odata.nextLink"`
	DeltaLink string              `json:"@odata.deltaLink"`
}

// NextPage fetches the next page. After an error the pager stays on the
// same page, so calling NextPage again retries it. A refused state token
// is an *Error for which IsDeltaExpired is true.
func (p *DeltaPager) NextPage(ctx context.Context) ([]ApplicationChange, error) {
	if p.err != nil {
		err := p.err
		p.err = nil
		return nil, err
	}
	if p.next == "" {
		return nil, errors.New("graph: no more delta pages")
	}
	ctx = context.WithValue(ctx, counterKey{}, &p.requests)
	resp, err := p.c.do(ctx, call{method: "GET", url: p.next, ok: []int{200}})
	if err != nil {
		return nil, err
	}
	body, err := runtime.Payload(resp)
	if err != nil {
		return nil, fmt.Errorf("graph: read delta page: %w", err)
	}
	var pg deltaPage
	if err := json.Unmarshal(body, &pg); err != nil {
		return nil, fmt.Errorf("graph: decode delta page of %s: %w", redactQuery(p.next), err)
	}
	p.pages.Add(1)
	switch {
	case pg.NextLink != "" && pg.DeltaLink != "":
		p.next = ""
		return nil, errors.New("graph: a delta page carries both @odata.nextLink and @odata.deltaLink")
	case pg.NextLink == "" && pg.DeltaLink == "":
		p.next = ""
		return nil, errors.New("graph: a delta page carries neither @odata.nextLink nor @odata.deltaLink")
	}
	link := pg.NextLink + pg.DeltaLink
	if err := p.c.CheckDeltaLink(link); err != nil {
		p.next = ""
		return nil, err
	}
	if pg.DeltaLink != "" {
		p.next, p.deltaLink = "", pg.DeltaLink
	} else {
		p.next = pg.NextLink
	}
	return pg.Value, nil
}

// IsDeltaExpired reports that Graph refused a delta state token: an expired
// delta link (syncStateNotFound, seven days for directory objects), a
// required resync (410 Gone), or a $skiptoken it can no longer resume.
// The caller must start over with a full read and take a new delta link.
func IsDeltaExpired(err error) bool {
	if errors.Is(err, ErrNotDeltaLink) {
		return false
	}
	e, ok := asError(err)
	if !ok {
		return false
	}
	if e.StatusCode == http.StatusGone {
		return true
	}
	return e.StatusCode >= 400 && e.StatusCode < 500 &&
		(strings.EqualFold(e.Code, CodeSyncStateNotFound) || strings.EqualFold(e.Code, CodeExpiredPageToken))
}
