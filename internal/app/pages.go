package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/codec"
)

// Page sizes of the paged listings: what the API, the UI and a remote
// CLI read one request at a time.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

func pageSize(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, &InvalidError{Field: "limit", Message: fmt.Sprintf("must be between 1 and %d", MaxPageSize)}
	}
	return n, nil
}

// ApplicationSort is the order of an application listing.
type ApplicationSort string

// Application sorts.
const (
	// SortByName is display name, then object id (the default).
	SortByName ApplicationSort = "name"
	// SortByExpiry is the earliest credential end first, expired ones
	// included (the most urgent first), then name; applications without
	// credentials last.
	SortByExpiry ApplicationSort = "expiry"
)

// ApplicationPageRequest asks for one page of an application listing.
type ApplicationPageRequest struct {
	// Sort is the order (SortByName when empty).
	Sort ApplicationSort
	// Cursor continues after the previous page (its Next); empty: the
	// first page.
	Cursor string
	// Limit is the page size (0: DefaultPageSize; at most MaxPageSize).
	Limit int
}

// ApplicationPage is one page of applications and the cursor of the next
// ("" after the last page).
type ApplicationPage struct {
	Rows []ApplicationRow `json:"items"`
	Next string           `json:"next_cursor,omitempty"`
}

// appCursor is the position after a page of applications: the sort key of
// its last row. It is opaque to callers (base64url of JSON), and names
// its sort so that it cannot continue a listing in another order.
type appCursor struct {
	Sort     ApplicationSort `json:"s"`
	Name     string          `json:"n"`
	ObjectID string          `json:"o"`
	// MinEnd is the row's earliest credential end (SortByExpiry only;
	// zero: it has none).
	MinEnd time.Time `json:"e,omitzero"`
}

// ListApplicationsPage lists one page of the organization's applications
// in the order asked for, each with the decision the planner would make
// now. Pages are keyset-paged on the sort key, so walking them neither
// skips nor repeats an application that exists throughout, whatever
// changes meanwhile.
func (s *Service) ListApplicationsPage(ctx context.Context, scope Scope, f ApplicationFilter, req ApplicationPageRequest) (*ApplicationPage, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectApplications); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	p, err := f.params(scope, now)
	if err != nil {
		return nil, err
	}
	if req.Sort == "" {
		req.Sort = SortByName
	}
	switch req.Sort {
	case SortByName:
	case SortByExpiry:
		p.Order = store.OrderByExpiry
	default:
		return nil, &InvalidError{Field: "sort", Message: fmt.Sprintf("%q is not name or expiry", req.Sort)}
	}
	limit, err := pageSize(req.Limit)
	if err != nil {
		return nil, err
	}
	if req.Cursor != "" {
		var c appCursor
		if err := decodeCursor(req.Cursor, &c); err != nil || c.Sort != req.Sort || c.ObjectID == "" {
			return nil, &InvalidError{Field: "cursor", Message: "is not a cursor of this listing (pass next_cursor back unchanged, with the same sort)"}
		}
		p.AfterName, p.AfterObjectID, p.AfterMinEnd = c.Name, c.ObjectID, c.MinEnd
	}
	// One more than the page: whether another page follows is known now,
	// so the last page says so instead of an empty page after it.
	p.Limit = limit + 1
	apps, err := s.store.ListApplications(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	page := &ApplicationPage{Rows: make([]ApplicationRow, 0, min(len(apps), limit))}
	if len(apps) > limit {
		apps = apps[:limit]
		last := apps[limit-1]
		c := appCursor{Sort: req.Sort, Name: last.DisplayName, ObjectID: last.ObjectID}
		if req.Sort == SortByExpiry {
			c.MinEnd = codec.MinEnd(last.Credentials)
		}
		page.Next = encodeCursor(c)
	}
	if len(apps) == 0 {
		return page, nil
	}
	pols, err := s.policies.OrgPolicies(ctx, scope.Org)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	decs, err := s.engine.Decisions(ctx, scope.Org, apps, pols)
	if err != nil {
		return nil, fmt.Errorf("decide: %w", err)
	}
	for i := range apps {
		page.Rows = append(page.Rows, rowOf(&apps[i], decs[i], pols.PolicyFor(apps[i]), now))
	}
	return page, nil
}

// RunPageRequest asks for one page of a run listing.
type RunPageRequest struct {
	// Cursor continues after the previous page (its Next); empty: the
	// first page.
	Cursor string
	// Limit is the page size (0: DefaultPageSize; at most MaxPageSize).
	Limit int
}

// RunPage is one page of runs, newest first, and the cursor of the next
// ("" after the last page).
type RunPage struct {
	Rows []RunRow `json:"items"`
	Next string   `json:"next_cursor,omitempty"`
}

type runCursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"i"`
}

// ListRunsPage lists one page of the organization's rotation runs, newest
// first, keyset-paged on (created, id). f.Limit is ignored: the page size
// is req.Limit.
func (s *Service) ListRunsPage(ctx context.Context, scope Scope, f RunFilter, req RunPageRequest) (*RunPage, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectRuns); err != nil {
		return nil, err
	}
	limit, err := pageSize(req.Limit)
	if err != nil {
		return nil, err
	}
	p, err := s.runParams(ctx, scope, f)
	if err != nil {
		return nil, err
	}
	if req.Cursor != "" {
		var c runCursor
		if err := decodeCursor(req.Cursor, &c); err != nil || c.ID == "" || c.CreatedAt.IsZero() {
			return nil, &InvalidError{Field: "cursor", Message: "is not a cursor of this listing (pass next_cursor back unchanged)"}
		}
		p.BeforeCreatedAt, p.BeforeID = c.CreatedAt, c.ID
	}
	p.Limit = limit + 1
	list, err := s.store.ListRuns(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	page := &RunPage{}
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		page.Next = encodeCursor(runCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	page.Rows = runRows(list)
	return page, nil
}

func encodeCursor(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("app: cursor: %v", err)) // plain structs always marshal
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxCursor bounds a presented cursor: a name is at most a few hundred
// bytes, and a cursor is decoded before anything else is checked.
const maxCursor = 2048

func decodeCursor(s string, v any) error {
	if len(s) > maxCursor {
		return fmt.Errorf("cursor too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
