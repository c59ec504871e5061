package app

import (
	"fmt"
	"slices"
)

// Role is what a principal may do in one organization. Roles are ordered:
// each may do everything the one below it may.
type Role string

// Roles.
const (
	// RoleViewer reads the inventory, runs, policies and connections.
	RoleViewer Role = "viewer"
	// RoleOperator also syncs, rotates, retires, moves targets, changes
	// applications' settings, tests their sinks and lists the Key Vaults
	// its connections see.
	RoleOperator Role = "operator"
	// RoleAdmin also manages API keys and the organization's settings,
	// and always sees every application (OrgSettings.OwnedAppsOnly does
	// not restrict it).
	RoleAdmin Role = "admin"
)

// Roles lists the roles from least to most powerful.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles, r) {
		return "", &InvalidError{Field: "role", Message: fmt.Sprintf("%q is not a role (use viewer, operator or admin)", s)}
	}
	return r, nil
}

// rank orders roles; 0 is no role.
func (r Role) rank() int { return slices.Index(Roles, r) + 1 }

// AtLeast reports whether r is other or more powerful.
func (r Role) AtLeast(other Role) bool { return r.rank() > 0 && r.rank() >= other.rank() }

// Max returns the more powerful of r and other.
func (r Role) Max(other Role) Role {
	if other.rank() > r.rank() {
		return other
	}
	return r
}

// Permits reports whether the role may do action: the one table that
// maps roles to actions.
func (r Role) Permits(action Action) bool {
	switch action {
	case ActionRead:
		return r.AtLeast(RoleViewer)
	case ActionSync, ActionRotate, ActionRetire, ActionMoveTarget, ActionListVaults, ActionUpdateSettings, ActionTestSinks, ActionDiscoverSinks:
		return r.AtLeast(RoleOperator)
	case ActionManageAPIKeys, ActionUpdateOrgSettings:
		return r.AtLeast(RoleAdmin)
	}
	return false
}
