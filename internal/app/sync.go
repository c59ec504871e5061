package app

import (
	"context"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/inventory"
)

// SyncProgress reports a running sync after each page of a connection.
type SyncProgress struct {
	Connection string `json:"connection"`
	// Incremental is set when the sync reads only what changed since the
	// last one; Seen then counts the changes Graph reported.
	Incremental bool `json:"incremental"`
	// Seen is how many applications were listed so far, Changed how many
	// of them were new or different from what the store held.
	Seen    int           `json:"seen"`
	Changed int           `json:"changed"`
	Elapsed time.Duration `json:"elapsed"`
}

// SyncResult is what a sync left in the inventory.
type SyncResult struct {
	// Applications is how many applications the organization's inventory
	// holds after the sync.
	Applications int `json:"applications"`
}

// Sync reads every inventory connection of the organization (purposes
// rotation and read) into the store, one after the other. A connection
// that fails does not stop the others; the failures are joined.
func (s *Service) Sync(ctx context.Context, scope Scope, progress func(SyncProgress)) (res SyncResult, err error) {
	defer func() { s.record(ctx, scope, ActionSync, ObjectInventory, err, nil) }()
	if err := s.begin(ctx, scope, ActionSync, ObjectInventory); err != nil {
		return res, err
	}
	if s.syncer == nil {
		return res, &UnavailableError{What: "inventory sync"}
	}
	var fn func(inventory.Progress)
	if progress != nil {
		fn = func(p inventory.Progress) {
			progress(SyncProgress{Connection: p.Connection, Incremental: p.Incremental, Seen: p.Seen, Changed: p.Changed, Elapsed: p.Elapsed})
		}
	}
	if err := s.syncer.SyncOrg(ctx, scope.Org, fn); err != nil {
		return res, err
	}
	n, err := s.store.CountApplications(ctx, scope.Org, "")
	if err != nil {
		return res, fmt.Errorf("count applications: %w", err)
	}
	return SyncResult{Applications: n}, nil
}
