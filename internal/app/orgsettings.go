package app

import (
	"context"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/internal/domain"
)

// ObjectOrganization is the scope's organization itself, as the
// Authorizer sees it: reading its settings is ActionRead on it.
const ObjectOrganization = "organization"

// OrgSettings is an organization as its settings page shows it: who it
// is, and whether it has a break-glass admin. Nothing here is a secret.
type OrgSettings struct {
	ID        domain.OrgID `json:"id"`
	Name      string       `json:"name"`
	CreatedAt time.Time    `json:"created_at,omitzero"`
	// BreakGlassKnown says whether rotor could tell (a Service built
	// without a BreakGlassSource cannot); BreakGlass is the organization's
	// break-glass admin, nil when it has none.
	BreakGlassKnown bool             `json:"break_glass_known"`
	BreakGlass      *BreakGlassAdmin `json:"break_glass,omitempty"`
	// OwnedAppsOnly says members who are not Admins, signed in with
	// Entra, see only the applications they own in Entra
	// (docs/adr/0030). It applies from each person's next sign-in.
	OwnedAppsOnly bool `json:"owned_apps_only"`
}

// OrgSettingsUpdate is a change to an organization's settings: a nil
// field is left as it is.
type OrgSettingsUpdate struct {
	OwnedAppsOnly *bool `json:"owned_apps_only,omitempty"`
}

// BreakGlassAdmin is the facts of an organization's local break-glass
// admin that may be shown: never its password or the password's hash.
type BreakGlassAdmin struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// LastLoginAt is its last successful sign-in (zero: never: the
	// console's password has not been used).
	LastLoginAt time.Time `json:"last_login_at,omitzero"`
	// LockedUntil is when a lock-out after failed sign-ins ends (zero or
	// past: not locked).
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// BreakGlassSource says whether an organization has a break-glass admin
// (internal/web/breakglass keeps them; internal/server adapts the store).
// It returns nil and no error when there is none.
type BreakGlassSource interface {
	BreakGlassAdmin(ctx context.Context, org domain.OrgID) (*BreakGlassAdmin, error)
}

// OrgSettings returns the scope's organization: its id and name, and
// whether a break-glass admin exists for it.
func (s *Service) OrgSettings(ctx context.Context, scope Scope) (*OrgSettings, error) {
	if err := s.begin(ctx, scope, ActionRead, ObjectOrganization); err != nil {
		return nil, err
	}
	orgs, err := s.store.ListOrgs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list organizations: %w", err)
	}
	var out *OrgSettings
	for _, o := range orgs {
		if o.ID == scope.Org {
			out = &OrgSettings{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt}
		}
	}
	if out == nil {
		return nil, &NotFoundError{Kind: "organization", Ref: string(scope.Org)}
	}
	set, err := s.store.GetOrgSettings(ctx, scope.Org)
	if err != nil {
		return nil, lookupError("organization", string(scope.Org), err)
	}
	out.OwnedAppsOnly = set.OwnedAppsOnly
	if s.breakGlass != nil {
		bg, err := s.breakGlass.BreakGlassAdmin(ctx, scope.Org)
		if err != nil {
			return nil, fmt.Errorf("read the break-glass admin of %s: %w", scope.Org, err)
		}
		out.BreakGlassKnown, out.BreakGlass = true, bg
	}
	return out, nil
}

// UpdateOrgSettings changes the scope's organization's settings and
// returns them as they are now. Admin only; audited (the event names the
// organization; what changed is in the request, and nothing here is a
// secret). Turning OwnedAppsOnly on or off takes effect at each person's
// next sign-in: a session keeps what it was given (docs/adr/0030).
func (s *Service) UpdateOrgSettings(ctx context.Context, scope Scope, in OrgSettingsUpdate) (_ *OrgSettings, err error) {
	defer func() { s.record(ctx, scope, ActionUpdateOrgSettings, ObjectOrganization, err, nil) }()
	if err := s.begin(ctx, scope, ActionUpdateOrgSettings, ObjectOrganization); err != nil {
		return nil, err
	}
	set, err := s.store.GetOrgSettings(ctx, scope.Org)
	if err != nil {
		return nil, lookupError("organization", string(scope.Org), err)
	}
	if in.OwnedAppsOnly != nil {
		set.OwnedAppsOnly = *in.OwnedAppsOnly
	}
	if err := s.store.PutOrgSettings(ctx, *set); err != nil {
		return nil, lookupError("organization", string(scope.Org), err)
	}
	return s.OrgSettings(ctx, scope)
}
