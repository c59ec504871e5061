// Package inventory keeps rotor's picture of each tenant current: it lists
// every application of a connection with its credentials, marks the ones
// rotor's rotation identity owns (manageable), writes them to the store a
// page at a time, and removes what the tenant no longer has.
//
// It knows Graph only through the small Directory interface below; the
// Graph adapter lives in graph.go.
package inventory

import (
	"context"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Directory is a tenant's application directory as the inventory reads it.
type Directory interface {
	// ListApplications calls fn with successive pages (up to 999
	// applications each) of every application in the tenant. Credentials
	// and TenantID are filled in; Owners and Manageable are not. It stops
	// at the first error fn returns.
	ListApplications(ctx context.Context, fn func(page []domain.Application) error) error
	// OwnedApplicationIDs returns the object ids of the applications
	// rotor's rotation identity owns (its service principal's
	// ownedObjects): the ones Application.ReadWrite.OwnedBy lets it change.
	OwnedApplicationIDs(ctx context.Context) (map[string]bool, error)
}

// ReadOnly wraps the Directory of a connection whose purpose is only to
// read (Application.Read.All): it sees applications but may change none, so
// its sync records every application as not changeable by it, and it never
// asks Graph what its identity owns.
func ReadOnly(d Directory) Directory { return readOnly{d} }

type readOnly struct{ Directory }

func (readOnly) OwnedApplicationIDs(context.Context) (map[string]bool, error) { return nil, nil }

// Store is the part of store.Store a sync writes to.
type Store interface {
	SyncApplications(ctx context.Context, p store.SyncApplicationsParams) (changed int, err error)
	FinishSync(ctx context.Context, p store.FinishSyncParams) (removed int, err error)
}

var _ Store = store.Store(nil)

// Progress reports a running sync after each page.
type Progress struct {
	Connection string
	// Seen is how many applications were listed so far, Changed how many
	// of them were new or different from what the store held.
	Seen, Changed int
	Elapsed       time.Duration
}

// Result is what a finished sync did.
type Result struct {
	Seen    int
	Changed int
	// Removed is how many applications the store held that the tenant no
	// longer has.
	Removed int
	// Manageable is how many of the seen applications rotor can rotate.
	Manageable int
}

// Syncer copies directories into the store.
type Syncer struct {
	store Store
	clock clock.Clock
}

// NewSyncer returns a Syncer writing to st; c stamps each sync.
func NewSyncer(st Store, c clock.Clock) *Syncer {
	return &Syncer{store: st, clock: c}
}

// Sync copies one connection's directory into the store, page by page (one
// transaction per page, so 100k applications never sit in one transaction
// or in memory at once), then deletes the applications the listing did not
// see. The deletion happens only after a complete listing: a sync that
// fails or is cancelled part-way keeps everything it did not see, since
// "not seen" then means nothing. An empty listing removes nothing either:
// every tenant holds at least rotor's own app registration, so an empty
// answer is a fault, not a fact worth deleting an inventory for.
//
// Owners are not fetched per application (one Graph call each is too
// expensive for large tenants); the store records which connections see
// the application and which may change it (domain.Access), so a read
// connection beside the rotation one never undoes the other's view.
//
// progress, if not nil, is called after each page.
func (s *Syncer) Sync(ctx context.Context, org domain.OrgID, connection string, dir Directory, progress func(Progress)) (Result, error) {
	var res Result
	started := s.clock.Now()
	owned, err := dir.OwnedApplicationIDs(ctx)
	if err != nil {
		return res, fmt.Errorf("inventory %s: list the applications rotor owns: %w", connection, err)
	}
	err = dir.ListApplications(ctx, func(page []domain.Application) error {
		manageable := 0
		for i := range page {
			a := &page[i]
			a.Org, a.Access = org, nil
			a.Manageable = owned[a.ObjectID]
			// Owners are not listed per application (a Graph call each):
			// which connections may change it is each connection's view
			// (Access), recorded by the store.
			a.Owners = nil
			if a.Manageable {
				manageable++
			}
		}
		changed, err := s.store.SyncApplications(ctx, store.SyncApplicationsParams{
			Org: org, Connection: connection, SyncStarted: started, Applications: page,
		})
		if err != nil {
			return err
		}
		res.Seen += len(page)
		res.Changed += changed
		res.Manageable += manageable
		if progress != nil {
			progress(Progress{Connection: connection, Seen: res.Seen, Changed: res.Changed, Elapsed: s.clock.Now().Sub(started)})
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return res, fmt.Errorf("inventory %s: after %d applications: %w", connection, res.Seen, err)
	}
	if res.Seen == 0 {
		return res, nil
	}
	res.Removed, err = s.store.FinishSync(ctx, store.FinishSyncParams{Org: org, Connection: connection, SyncStarted: started})
	if err != nil {
		return res, fmt.Errorf("inventory %s: remove applications no longer in the tenant: %w", connection, err)
	}
	return res, nil
}
