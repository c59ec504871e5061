package pacer

import (
	"fmt"
	"strings"
	"time"
)

// TenantSize is the size tier Graph sorts a tenant into for its resource
// unit limit per app+tenant: the limit grows with the number of users.
type TenantSize string

// Graph's tenant size tiers (identity and access service limits).
const (
	// Small is a tenant with under 50 users: 3,500 resource units / 10 s.
	Small TenantSize = "small"
	// Medium is a tenant with 50–500 users: 5,000 resource units / 10 s.
	Medium TenantSize = "medium"
	// Large is a tenant with over 500 users: 8,000 resource units / 10 s.
	Large TenantSize = "large"
)

// ParseTenantSize reads a tier as configured ("" is Small, the smallest
// and so the safe guess when the tenant's size is unknown).
func ParseTenantSize(s string) (TenantSize, error) {
	switch TenantSize(strings.ToLower(strings.TrimSpace(s))) {
	case "", Small:
		return Small, nil
	case Medium:
		return Medium, nil
	case Large:
		return Large, nil
	}
	return "", fmt.Errorf("tenant size %q: want small (under 50 users), medium (50–500) or large (over 500)", s)
}

// ResourceUnits is the tier's resource unit limit per app+tenant per
// ResourceUnitWindow.
func (s TenantSize) ResourceUnits() int {
	switch s {
	case Medium:
		return 5000
	case Large:
		return 8000
	}
	return 3500
}

// Graph's documented windows and limits (identity and access service
// limits; AZURE-API.md §2 and §9).
const (
	ResourceUnitWindow    = 10 * time.Second
	WriteWindow           = 150 * time.Second
	TenantWriteWindow     = 5 * time.Minute
	AppWriteWindow        = 5 * time.Minute
	AppResourceUnitWindow = 20 * time.Second

	DefaultWrites           = 3000
	DefaultTenantWrites     = 18000
	DefaultAppWrites        = 35000
	DefaultAppResourceUnits = 150000
)

// Limit is one token bucket: Count tokens refilled evenly over Window,
// starting full. A zero Count turns the bucket off.
type Limit struct {
	Count  int
	Window time.Duration
}

func (l Limit) on() bool { return l.Count > 0 && l.Window > 0 }

// rate is the refill in tokens per second.
func (l Limit) rate() float64 { return float64(l.Count) / l.Window.Seconds() }

// Budgets are the limits a pacer keeps to. Graph counts the first two per
// calling application in one tenant, TenantWrites over every application
// writing to a tenant and the App limits over every tenant one application
// writes to, so a Registry shares those buckets between its pacers.
type Budgets struct {
	// ResourceUnits per app+tenant (3,500 / 5,000 / 8,000 per 10 s by
	// tenant size).
	ResourceUnits Limit
	// Writes per app+tenant (3,000 per 150 s).
	Writes Limit
	// TenantWrites per tenant, all applications (18,000 per 5 min).
	TenantWrites Limit
	// AppWrites per application, all tenants (35,000 per 5 min).
	AppWrites Limit
	// AppResourceUnits per application, all tenants (150,000 per 20 s).
	AppResourceUnits Limit
}

// DefaultBudgets are Graph's documented limits for a tenant of size s.
//
// AppWrites follows AZURE-API.md §2 (35,000 per 5 minutes). Microsoft's
// current throttling page says 70,000; the lower figure is kept because a
// pacer that is too careful costs a little time and one that is too
// generous costs 429s, and the per app+tenant write bucket (3,000 per
// 150 s, i.e. 6,000 per 5 minutes) binds long before either unless one
// identity writes to more than five tenants at once.
func DefaultBudgets(s TenantSize) Budgets {
	return Budgets{
		ResourceUnits:    Limit{s.ResourceUnits(), ResourceUnitWindow},
		Writes:           Limit{DefaultWrites, WriteWindow},
		TenantWrites:     Limit{DefaultTenantWrites, TenantWriteWindow},
		AppWrites:        Limit{DefaultAppWrites, AppWriteWindow},
		AppResourceUnits: Limit{DefaultAppResourceUnits, AppResourceUnitWindow},
	}
}
