// Package store defines rotor's persistence boundary: the Store interface,
// its parameter types and its errors. Implementations live in sqlite/ (and
// later postgres/); storetest/ is the conformance suite every one of them
// must pass. Only implementations speak SQL.
//
// Every method takes the organization and every query is scoped to it:
// nothing crosses organizations. No secret value is ever passed to, or
// stored by, a Store.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// ErrNotFound is returned when the row asked for does not exist in the org.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a guarded write lost a race: a run
// transition from a state the run is no longer in, or a second active run
// for the same application.
var ErrConflict = errors.New("conflict")

// Store is rotor's persistence.
type Store interface {
	// EnsureOrg creates the organization if it does not exist.
	EnsureOrg(ctx context.Context, org domain.OrgID, name string) error

	// SyncApplications writes one page of an inventory sync: each
	// application with its owners and credentials replaces what was stored
	// for it. Applications whose content did not change are not rewritten.
	// It returns how many were inserted or changed.
	SyncApplications(ctx context.Context, p SyncApplicationsParams) (changed int, err error)
	// FinishSync deletes the connection's applications that the sync
	// identified by syncStarted did not see (removed from the tenant).
	FinishSync(ctx context.Context, p FinishSyncParams) (removed int, err error)
	// GetApplication finds one application by object id, app id or exact
	// display name (in that order).
	GetApplication(ctx context.Context, org domain.OrgID, ref string) (*domain.Application, error)
	// ListApplications lists applications, ordered by display name then
	// object id, with keyset paging.
	ListApplications(ctx context.Context, p ListApplicationsParams) ([]domain.Application, error)
	// CountApplications counts the applications of an org (per connection
	// when connection is not empty).
	CountApplications(ctx context.Context, org domain.OrgID, connection string) (int, error)

	// CreateRun journals a new run in state planned. It fails with
	// ErrConflict when another active run holds the same application.
	CreateRun(ctx context.Context, run *domain.Run) error
	// TransitionRun moves a run from one state to another and appends the
	// event, atomically; ErrConflict when the run is not in From.
	TransitionRun(ctx context.Context, p TransitionRunParams) error
	// AppendRunEvent adds a journal line without changing state.
	AppendRunEvent(ctx context.Context, org domain.OrgID, runID string, ev domain.RunEvent) error
	// GetRun returns a run with its events.
	GetRun(ctx context.Context, org domain.OrgID, id string) (*domain.Run, error)
	// ListRuns lists runs newest first, without events.
	ListRuns(ctx context.Context, p ListRunsParams) ([]domain.Run, error)

	// Close releases the store.
	Close() error
}

// SyncApplicationsParams is one page of applications from a connection.
type SyncApplicationsParams struct {
	Org        domain.OrgID
	Connection string
	// SyncStarted identifies the sync run; every application written is
	// stamped seen at this time.
	SyncStarted  time.Time
	Applications []domain.Application
}

// FinishSyncParams closes a sync.
type FinishSyncParams struct {
	Org         domain.OrgID
	Connection  string
	SyncStarted time.Time
}

// ListApplicationsParams filters and pages applications.
type ListApplicationsParams struct {
	Org        domain.OrgID
	Connection string // empty: every connection
	// ExpiringBefore keeps applications with any credential ending before
	// it (zero: no filter).
	ExpiringBefore time.Time
	// ManageableOnly keeps applications rotor can change.
	ManageableOnly bool
	// NamePrefix keeps applications whose display name starts with it.
	NamePrefix string
	// AfterName and AfterObjectID continue after the last row of a page.
	AfterName     string
	AfterObjectID string
	// Limit caps the rows returned (0: no cap).
	Limit int
}

// TransitionRunParams describes one guarded state change of a run. Zero
// fields leave the run's column unchanged.
type TransitionRunParams struct {
	Org          domain.OrgID
	RunID        string
	From         []domain.RunState
	To           domain.RunState
	NewKeyID     string
	NewEnd       time.Time
	SinksStarted bool
	RetireAt     time.Time
	Error        string
	Event        domain.RunEvent
}

// ListRunsParams filters runs.
type ListRunsParams struct {
	Org domain.OrgID
	// AppObjectID keeps one application's runs.
	AppObjectID string
	// States keeps runs in these states (empty: all).
	States []domain.RunState
	Limit  int
}
