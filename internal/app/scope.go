package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/rotor-dev/rotor/internal/domain"
)

// ActorKind says what sort of principal acts.
type ActorKind string

// Actor kinds.
const (
	// ActorUser is a person signed in to the UI or the API.
	ActorUser ActorKind = "user"
	// ActorToken is an API bearer token (automation calling rotor).
	ActorToken ActorKind = "token"
	// ActorSystem is rotor itself: the local CLI, the planner.
	ActorSystem ActorKind = "system"
)

// Actor is who calls a use case: the "who" of authorization and of the
// audit trail.
type Actor struct {
	Kind ActorKind `json:"kind"`
	// ID is stable for the principal (a user's object id, a token's id,
	// "cli").
	ID string `json:"id"`
	// Name is for people reading the audit trail (a user's UPN).
	Name string `json:"name,omitempty"`
}

// String is "kind:id".
func (a Actor) String() string { return string(a.Kind) + ":" + a.ID }

// CLI is the local command line: whoever may read rotor.yaml and its
// secrets already holds every power rotor has, so it acts as the system.
var CLI = Actor{Kind: ActorSystem, ID: "cli"}

// Scope is the organization a call works in and who makes it. Every use
// case takes one; the organization is passed to every store read.
type Scope struct {
	Org   domain.OrgID `json:"org"`
	Actor Actor        `json:"actor"`
	// RequestID ties the call to an API request, for the audit trail;
	// empty for the CLI.
	RequestID string `json:"request_id,omitempty"`
	// Owned, when not nil, restricts every application read to the
	// applications the person owns in Entra (docs/adr/0030): the UI sets
	// it from a session its organization's OwnedAppsOnly restricted. An
	// application outside it is not found (404), never forbidden. Nil:
	// unrestricted (Admins, API keys, bearer tokens, the CLI).
	Owned *OwnedSet `json:"-"`
}

func (s Scope) check() error {
	if s.Org == "" {
		return errors.New("app: scope has no organization")
	}
	if s.Actor.Kind == "" || s.Actor.ID == "" {
		return errors.New("app: scope has no actor")
	}
	return nil
}

// Action is what a use case does, as the Authorizer and the audit trail
// see it. Roles map to sets of actions.
type Action string

// Actions.
const (
	// ActionRead reads the inventory, runs, policies or connections.
	ActionRead Action = "read"
	// ActionSync reads the tenants into the inventory.
	ActionSync Action = "sync"
	// ActionRotate rotates an application's credential, now or later.
	ActionRotate Action = "rotate"
	// ActionRetire removes credentials a finished run replaced.
	ActionRetire Action = "retire"
	// ActionMoveTarget moves a sink's pinned target (after a rename).
	ActionMoveTarget Action = "move-target"
	// ActionListVaults lists the Key Vaults a connection's identity sees
	// and their secrets' names (the vault picker): an operator's, who
	// chooses where secrets go.
	ActionListVaults Action = "list-vaults"
	// ActionUpdateSettings changes an application's own settings
	// (lifetime, threshold, overlap, enabled, notifications, Key Vault
	// destination), layered over its policy.
	ActionUpdateSettings Action = "update-settings"
	// ActionTestSinks asks an application's sinks whether a delivery
	// would work (read-only, but it reaches out to each target).
	ActionTestSinks Action = "test-sinks"
	// ActionDiscoverSinks lists what a sink's setting could be (the
	// pickers: service connections, repositories, projects) as a
	// connection's identity or a sink's own token: read-only, but it
	// reaches out to each service.
	ActionDiscoverSinks Action = "discover-sinks"
	// ActionManageAPIKeys lists, creates and revokes API keys.
	ActionManageAPIKeys Action = "manage-api-keys"
	// ActionUpdateOrgSettings changes the organization's own settings
	// (OwnedAppsOnly): an admin's.
	ActionUpdateOrgSettings Action = "update-org-settings"
	// ActionSignIn and ActionSignOut are a person starting and ending a
	// session in the UI (internal/web/signin records them; no role
	// permits them: they are not use cases).
	ActionSignIn  Action = "sign-in"
	ActionSignOut Action = "sign-out"
)

// Objects the actions are on, as the Authorizer and the audit trail see
// them: a collection, or one item as "application:REF" or "run:ID".
const (
	ObjectInventory    = "inventory"
	ObjectApplications = "applications"
	ObjectRuns         = "runs"
	ObjectPolicies     = "policies"
	ObjectConnections  = "connections"
	ObjectAPIKeys      = "api-keys"
	// ObjectSession is what sign-in and sign-out act on: the person's
	// session (never its id).
	ObjectSession = "session"
)

// APIKeyObject names one API key (by id) as an object.
func APIKeyObject(id string) string { return "api-key:" + id }

// ApplicationObject names one application (by the reference the caller
// gave) as an object.
func ApplicationObject(ref string) string { return "application:" + ref }

// RunObject names one run as an object.
func RunObject(id string) string { return "run:" + id }

// Authorizer decides whether scope's actor may do action on object in
// scope's organization. It is called at the start of every use case,
// before anything is read or changed; an error stops the call. Return a
// *DeniedError to say no (any other error is reported as a failure).
type Authorizer interface {
	Authorize(ctx context.Context, scope Scope, action Action, object string) error
}

// AllowSystem is the default Authorizer: rotor's own actors (the local
// CLI, the planner) may do everything, and anyone else nothing. Until
// internal/auth provides roles, a forgotten wiring then fails closed: a
// user or token reaching a use case is refused, not let through.
type AllowSystem struct{}

var _ Authorizer = AllowSystem{}

// Authorize implements Authorizer.
func (AllowSystem) Authorize(_ context.Context, scope Scope, action Action, object string) error {
	if scope.Actor.Kind == ActorSystem {
		return nil
	}
	return &DeniedError{Actor: scope.Actor, Action: action, Object: object, Reason: "no role grants it (only rotor's own actors are authorized until sign-in exists)"}
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, scope Scope, action Action, object string) error

// Authorize implements Authorizer.
func (f AuthorizerFunc) Authorize(ctx context.Context, scope Scope, action Action, object string) error {
	return f(ctx, scope, action, object)
}

// DeniedError is a call the Authorizer refused. Nothing was read or
// changed.
type DeniedError struct {
	Actor  Actor
	Action Action
	Object string
	Reason string
}

func (e *DeniedError) Error() string {
	msg := fmt.Sprintf("%s may not %s %s", e.Actor, e.Action, e.Object)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// HTTPStatus is 403.
func (e *DeniedError) HTTPStatus() int { return http.StatusForbidden }
