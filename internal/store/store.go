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
	"fmt"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// ErrNotFound is returned when the row asked for does not exist in the org.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a guarded write lost a race: a run
// transition from a state the run is no longer in, or a second active run
// for the same application.
var ErrConflict = errors.New("conflict")

// ErrAmbiguous is returned when a reference names several rows, for
// example two applications with the same display name. The error returned
// is an *AmbiguousError that says which rows matched.
var ErrAmbiguous = errors.New("ambiguous")

// AmbiguousError lists the applications a reference matched, so that the
// CLI and the API can tell the user which object id to use instead.
type AmbiguousError struct {
	Ref string
	// Field is what the reference matched: "object id", "app id" or
	// "display name".
	Field     string
	ObjectIDs []string
}

// Error says what was ambiguous and lists the candidates.
func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%s: %d applications have %s %q (object ids %s); use an object id",
		ErrAmbiguous, len(e.ObjectIDs), e.Field, e.Ref, strings.Join(e.ObjectIDs, ", "))
}

// Is makes errors.Is(err, ErrAmbiguous) true.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// Store is rotor's persistence.
type Store interface {
	// EnsureOrg creates the organization if it does not exist.
	EnsureOrg(ctx context.Context, org domain.OrgID, name string) error

	// SyncApplications writes one page of an inventory sync: each
	// application with its owners and credentials replaces what was stored
	// for it. Applications whose content did not change are not rewritten.
	// It returns how many were inserted or changed. Owners are stored
	// sorted; an application's Org and Connection, when set, must match
	// the params' (the params' win when they are empty). The org must exist
	// (EnsureOrg).
	SyncApplications(ctx context.Context, p SyncApplicationsParams) (changed int, err error)
	// FinishSync deletes the connection's applications that the sync
	// identified by syncStarted did not see (removed from the tenant).
	FinishSync(ctx context.Context, p FinishSyncParams) (removed int, err error)
	// GetApplication finds one application by object id, app id or exact
	// display name (in that order). ErrNotFound when nothing matches; an
	// *AmbiguousError (errors.Is ErrAmbiguous) when the first kind of
	// reference that matches names several applications.
	GetApplication(ctx context.Context, org domain.OrgID, ref string) (*domain.Application, error)
	// ListApplications lists applications, ordered by display name then
	// object id, with keyset paging. Each comes with its owners (sorted)
	// and credentials (ordered by end, then key id); both are nil when
	// there are none.
	ListApplications(ctx context.Context, p ListApplicationsParams) ([]domain.Application, error)
	// CountApplications counts the applications of an org (per connection
	// when connection is not empty).
	CountApplications(ctx context.Context, org domain.OrgID, connection string) (int, error)

	// CreateRun journals a new run in state planned, with run.Events if
	// any. It fills in an empty ID, State, CreatedAt and UpdatedAt. It
	// fails with ErrConflict when another active run holds the same
	// application (or the id is taken).
	CreateRun(ctx context.Context, run *domain.Run) error
	// TransitionRun moves a run from one state to another and appends the
	// event, atomically; ErrConflict when the run is not in From (or the
	// move would make a second active run for the application),
	// ErrNotFound when there is no such run. To must not be in From: a
	// journal line without a state change is AppendRunEvent.
	TransitionRun(ctx context.Context, p TransitionRunParams) error
	// AppendRunEvent adds a journal line without changing state (an empty
	// ev.State is the run's current state); ErrNotFound when there is no
	// such run.
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
// fields leave the run's column unchanged. The run's UpdatedAt becomes
// Event.At (the store's clock when zero), and EndedAt too when To is
// terminal; an empty Event.State is To.
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
	// Limit caps the runs returned (0: no cap).
	Limit int
}
