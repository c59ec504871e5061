package pacer

import "strings"

// Scope is the bucket a 429's x-ms-throttle-scope names.
type Scope int

// The scopes Graph's identity and access limits answer with, in the form
// <Scope>/<Limit>/<ApplicationId>/<TenantId>: e.g.
// "Tenant_Application/ReadWrite/{app}/{tenant}".
const (
	// ScopeUnknown is an absent or unrecognised header.
	ScopeUnknown Scope = iota
	// ScopeResourceUnits is Tenant_Application/ReadWrite (or Read): the
	// pair's resource units.
	ScopeResourceUnits
	// ScopeWrites is Tenant_Application/Write: the pair's writes.
	ScopeWrites
	// ScopeTenantWrites is Tenant/…: every application's writes to the
	// tenant (Graph has no tenant-wide resource unit limit).
	ScopeTenantWrites
	// ScopeAppResourceUnits is Application/ReadWrite (or Read).
	ScopeAppResourceUnits
	// ScopeAppWrites is Application/Write.
	ScopeAppWrites
)

// ParseScope reads x-ms-throttle-scope. Only its first two parts decide
// the bucket: the ids after them are the caller's own, and their order has
// been seen both ways.
func ParseScope(h string) Scope {
	parts := strings.SplitN(strings.TrimSpace(h), "/", 3)
	if len(parts) < 2 {
		return ScopeUnknown
	}
	scope, limit := strings.ToLower(strings.TrimSpace(parts[0])), strings.ToLower(strings.TrimSpace(parts[1]))
	write := limit == "write"
	if !write && limit != "readwrite" && limit != "read" {
		return ScopeUnknown
	}
	switch scope {
	case "tenant_application":
		if write {
			return ScopeWrites
		}
		return ScopeResourceUnits
	case "tenant":
		return ScopeTenantWrites
	case "application":
		if write {
			return ScopeAppWrites
		}
		return ScopeAppResourceUnits
	}
	return ScopeUnknown
}
