package core

import (
	"fmt"
	"slices"
	"strings"
)

// This file is the simulated Resource Manager's view of the world:
// subscriptions, where the vaults live (subscription, resource group,
// region, tags) and who holds a role where. The model is only as rich as
// the listings need: a role assignment is a principal, a role's name and
// a scope (a resource id or one of its ancestors), and any role on a scope
// lets the principal read everything under it, as every built-in role
// (Reader and up) does for the read actions ARM lists with.

// Subscription is an Azure subscription of a tenant.
type Subscription struct {
	// ID is the subscription id (a GUID).
	ID          string
	DisplayName string
	TenantID    string
	// State is Enabled, Disabled, Warned, PastDue or Deleted.
	State string
}

// ResourceID is "/subscriptions/{id}".
func (s *Subscription) ResourceID() string { return "/subscriptions/" + s.ID }

// RoleAssignment grants Role to the principal with object id PrincipalID
// on Scope: "/subscriptions/{id}", a resource group's id or a resource's.
type RoleAssignment struct {
	PrincipalID string
	Role        string
	Scope       string
}

// The built-in role the seed assigns.
const RoleReader = "Reader"

// VaultResourceID is the vault's ARM id, empty when the vault was made
// without a subscription (a test's bare vault).
func (v *Vault) VaultResourceID() string {
	if v.SubscriptionID == "" {
		return ""
	}
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.KeyVault/vaults/%s", v.SubscriptionID, v.ResourceGroup, v.Name)
}

// SubscriptionLocked finds a subscription by id (case-insensitive, as
// ARM's ids are) in any tenant. Callers hold the world's lock.
func (w *World) SubscriptionLocked(id string) (*Tenant, *Subscription) {
	for _, tid := range w.order {
		t := w.tenants[tid]
		for _, s := range t.Subscriptions {
			if strings.EqualFold(s.ID, id) {
				return t, s
			}
		}
	}
	return nil, nil
}

// AssignRole grants role on scope to the principal (idempotent).
// Callers hold the world's write lock.
func (t *Tenant) AssignRole(principalID, role, scope string) {
	a := RoleAssignment{PrincipalID: principalID, Role: role, Scope: scope}
	if !slices.Contains(t.RoleAssignments, a) {
		t.RoleAssignments = append(t.RoleAssignments, a)
	}
}

// RemoveRoles removes every role assignment of the principal on scope.
// Callers hold the world's write lock.
func (t *Tenant) RemoveRoles(principalID, scope string) {
	t.RoleAssignments = slices.DeleteFunc(t.RoleAssignments, func(a RoleAssignment) bool {
		return a.PrincipalID == principalID && strings.EqualFold(a.Scope, scope)
	})
}

// CanRead reports whether the principal holds a role on resourceID or on
// one of its ancestors (its resource group, its subscription).
func (t *Tenant) CanRead(principalID, resourceID string) bool {
	for _, a := range t.RoleAssignments {
		if a.PrincipalID == principalID && scopeCovers(a.Scope, resourceID) {
			return true
		}
	}
	return false
}

// HasRoleIn reports whether the principal holds any role in the
// subscription: on it, or on anything inside it. That is what makes ARM
// list a subscription to a caller, and let it list the subscription's
// resources (filtered to those it may read).
func (t *Tenant) HasRoleIn(principalID, subscriptionID string) bool {
	sub := "/subscriptions/" + subscriptionID
	for _, a := range t.RoleAssignments {
		if a.PrincipalID == principalID && scopeCovers(sub, a.Scope) {
			return true
		}
	}
	return false
}

// scopeCovers reports whether scope is id or an ancestor of it, segment by
// segment and ignoring case.
func scopeCovers(scope, id string) bool {
	scope, id = strings.TrimSuffix(strings.ToLower(scope), "/"), strings.TrimSuffix(strings.ToLower(id), "/")
	return scope != "" && (id == scope || strings.HasPrefix(id, scope+"/"))
}

// readersOf lists the object ids of the principals that may read
// resourceID, in assignment order, each once.
func (t *Tenant) readersOf(resourceID string) []string {
	var out []string
	for _, a := range t.RoleAssignments {
		if scopeCovers(a.Scope, resourceID) && !slices.Contains(out, a.PrincipalID) {
			out = append(out, a.PrincipalID)
		}
	}
	return out
}
