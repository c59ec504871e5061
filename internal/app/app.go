// Package app is rotor's application layer: the organization-scoped use
// cases (sync, list, explain, plan, rotate, retire, runs, policies,
// connections, the audit trail) that the CLI uses now and the REST API and web UI will use,
// each behind one authorization check and, when it changes something, one
// audit event.
//
// Business rules that used to live in commands (look every reference up
// before rotating anything, refuse an application no policy selects or
// rotor may not change, what "status" a listing shows) live here, once, so
// that every interface says and does the same. The package depends only on
// small interfaces it declares itself; internal/server, the composition
// root, provides them.
package app

import (
	"cmp"
	"context"
	"log/slog"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store"
)

// Store is what the use cases read from the store. Every method takes the
// organization: the scope's org is passed on every call, so nothing crosses
// organizations.
type Store interface {
	GetApplication(ctx context.Context, org domain.OrgID, ref string) (*domain.Application, error)
	ListApplications(ctx context.Context, p store.ListApplicationsParams) ([]domain.Application, error)
	CountApplications(ctx context.Context, org domain.OrgID, connection string) (int, error)
	CountOwnedApplications(ctx context.Context, org domain.OrgID, connection string) (int, error)
	CountCredentialsByExpiry(ctx context.Context, p store.CountCredentialsByExpiryParams) ([]int, error)
	GetRun(ctx context.Context, org domain.OrgID, id string) (*domain.Run, error)
	ListRuns(ctx context.Context, p store.ListRunsParams) ([]domain.Run, error)
	PinnedTargets(ctx context.Context, p store.PinnedTargetsParams) ([]store.PinnedTarget, error)
	SinkDeliveries(ctx context.Context, p store.SinkDeliveriesParams) (map[string]store.SinkDelivery, error)
	ListAudit(ctx context.Context, p store.ListAuditParams) ([]audit.Record, error)
	AuditHead(ctx context.Context, org domain.OrgID) (audit.Head, error)
	ListOrgs(ctx context.Context) ([]store.Org, error)
	GetApplicationSettings(ctx context.Context, org domain.OrgID, objectID string) (*store.ApplicationSettings, error)
	PutApplicationSettings(ctx context.Context, s store.ApplicationSettings) error
	GetOrgSettings(ctx context.Context, org domain.OrgID) (*store.OrgSettings, error)
	PutOrgSettings(ctx context.Context, s store.OrgSettings) error
}

var _ Store = store.Store(nil)

// Engine is the part of the rotation engine the use cases drive.
type Engine interface {
	Decisions(ctx context.Context, org domain.OrgID, apps []domain.Application, policies rotation.PolicySource) ([]domain.Decision, error)
	Due(ctx context.Context, org domain.OrgID, policies rotation.PolicySource) ([]rotation.DueApp, error)
	EachDueAfter(ctx context.Context, org domain.OrgID, policies rotation.PolicySource, after rotation.DueCursor, fn func([]rotation.DueApp) error) error
	Rotate(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy, trigger domain.Trigger, opts ...rotation.RotateOption) (*domain.Run, error)
	Retire(ctx context.Context, org domain.OrgID, runID string, policy domain.Policy) error
	Targets(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy) ([]rotation.TargetView, error)
	MoveTarget(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy, index int) (rotation.TargetView, error)
	CheckSinks(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy) ([]rotation.SinkCheck, error)
	Drifts(ctx context.Context, org domain.OrgID, app domain.Application, policy domain.Policy) ([]rotation.TargetDrift, error)
	DiscoverSink(ctx context.Context, typ string, q sink.DiscoverQuery) ([]sink.Choice, []string, error)
}

var _ Engine = (*rotation.Engine)(nil)

// Syncer reads every inventory connection of an organization into the
// store, reporting progress after each page.
type Syncer interface {
	SyncOrg(ctx context.Context, org domain.OrgID, progress func(inventory.Progress)) error
}

// PolicySource loads an organization's policies. They are loaded once per
// use case, so one call decides with one consistent set even when policies
// live in the store and change meanwhile.
type PolicySource interface {
	OrgPolicies(ctx context.Context, org domain.OrgID) (Policies, error)
}

// Policies is one organization's policies at one moment: the list, and
// the rule that picks the one governing an application.
type Policies interface {
	// PolicyFor is the policy governing an application with the
	// application's own settings applied (Policy.Overrides).
	rotation.PolicySource
	// GoverningPolicy is that policy as configured, without them.
	GoverningPolicy(app domain.Application) *domain.Policy
	List() []domain.Policy
}

// ConnectionSource lists an organization's connections as the interfaces
// may show them: never with a secret.
type ConnectionSource interface {
	OrgConnections(ctx context.Context, org domain.OrgID) ([]Connection, error)
	// TestConnection signs the connection in now.
	TestConnection(ctx context.Context, org domain.OrgID, name string) (SignIn, error)
}

// Enqueuer hands a rotation to the job system, for a running server to
// carry out ("rotate later", the API's rotate button).
type Enqueuer interface {
	EnqueueRotation(ctx context.Context, org domain.OrgID, app domain.Application) error
}

// Deps are what a Service is built from. Store, Engine and Policies are
// required; a nil Authorizer allows only system actors (AllowSystem), a nil
// Auditor logs (LogAuditor).
type Deps struct {
	Store       Store
	Engine      Engine
	Syncer      Syncer
	Policies    PolicySource
	Connections ConnectionSource
	Jobs        Enqueuer
	Clock       clock.Clock
	Logger      *slog.Logger
	Authorizer  Authorizer
	Auditor     Auditor
	// APIKeys keeps API keys; nil: the API key use cases are unavailable.
	APIKeys APIKeyStore
	// Vaults finds the Key Vaults a connection's identity sees (the vault
	// picker); nil: unavailable.
	Vaults VaultFinder
	// BreakGlass says whether an organization has a break-glass admin;
	// nil: OrgSettings cannot tell.
	BreakGlass BreakGlassSource
}

// Service runs the use cases. It is safe for concurrent use.
type Service struct {
	store    Store
	engine   Engine
	syncer   Syncer
	policies PolicySource
	conns    ConnectionSource
	jobs     Enqueuer
	clock    clock.Clock
	log      *slog.Logger
	authz    Authorizer
	audit    Auditor
	apiKeys  APIKeyStore
	relay    relay
	// vaultFinder and vaultCache serve the vault picker (vaults.go).
	vaultFinder VaultFinder
	vaultCache  vaultCache
	// breakGlass is Deps.BreakGlass.
	breakGlass BreakGlassSource
}

// New builds a Service. A missing Store, Engine or Policies is a wiring
// mistake and panics.
func New(d Deps) *Service {
	if d.Store == nil || d.Engine == nil || d.Policies == nil {
		panic("app.New: Store, Engine and Policies are required")
	}
	s := &Service{
		store: d.Store, engine: d.Engine, syncer: d.Syncer, policies: d.Policies,
		conns: d.Connections, jobs: d.Jobs, clock: d.Clock,
		log: cmp.Or(d.Logger, slog.Default()), authz: d.Authorizer, audit: d.Auditor, apiKeys: d.APIKeys,
		vaultFinder: d.Vaults,
		breakGlass:  d.BreakGlass,
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.authz == nil {
		s.authz = AllowSystem{}
	}
	if s.audit == nil {
		s.audit = LogAuditor{Logger: s.log}
	}
	return s
}
