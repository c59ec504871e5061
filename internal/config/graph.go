package config

import (
	"fmt"
	"strings"

	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
)

// GraphSettings tune how rotor uses Microsoft Graph.
type GraphSettings struct {
	Budget BudgetSettings
}

// BudgetSettings are Graph's throttling budgets rotor's pacer keeps to
// (internal/azure/graph/pacer): every Graph request waits on rotor's side
// until the budgets allow it, instead of being sent to be refused with a
// 429.
type BudgetSettings struct {
	// Enabled turns the pacer on (the default).
	Enabled bool
	// Budgets are the limits; ResourceUnits applies to tenants not in
	// TenantSizes.
	Budgets pacer.Budgets
	// TenantSizes are the tenants whose size tier is not TenantSize, by
	// tenant id.
	TenantSizes map[string]pacer.TenantSize
	// TenantSize is the tier of every other tenant.
	TenantSize pacer.TenantSize
}

// MaxBudget bounds every budget count: a hundred times Graph's largest
// limit is a typo (an extra zero or three), not a tenant.
const MaxBudget = 100 * pacer.DefaultAppResourceUnits

func (b *builder) graph(raw rawGraph) {
	s := scope{}
	rb := raw.Budget
	bs := &b.cfg.Graph.Budget
	bs.Enabled = rb.Enabled == nil || *rb.Enabled
	size, err := pacer.ParseTenantSize(rb.TenantSize)
	if err != nil {
		b.bad(s, "graph.budget.tenant_size", 0, "graph.budget.tenant_size: %v", err)
		size = pacer.Small
	}
	bs.TenantSize = size
	bs.Budgets = pacer.DefaultBudgets(size)
	count := func(k string, v *int, l *pacer.Limit) {
		if v == nil {
			return
		}
		switch {
		case *v < 0:
			b.bad(s, k, 0, "%s (%d) must be 0 (no limit of rotor's own) or more", k, *v)
		case *v > MaxBudget:
			b.bad(s, k, 0, "%s (%d) must be at most %d: Graph's largest limit is %d", k, *v, MaxBudget, pacer.DefaultAppResourceUnits)
		default:
			l.Count = *v
		}
	}
	count("graph.budget.resource_units", rb.ResourceUnits, &bs.Budgets.ResourceUnits)
	count("graph.budget.writes", rb.Writes, &bs.Budgets.Writes)
	count("graph.budget.tenant_writes", rb.TenantWrites, &bs.Budgets.TenantWrites)
	count("graph.budget.app_writes", rb.AppWrites, &bs.Budgets.AppWrites)
	count("graph.budget.app_resource_units", rb.AppResourceUnits, &bs.Budgets.AppResourceUnits)

	bs.TenantSizes = map[string]pacer.TenantSize{}
	tiers := []struct {
		size pacer.TenantSize
		ids  []string
	}{{pacer.Small, rb.Tenants.Small}, {pacer.Medium, rb.Tenants.Medium}, {pacer.Large, rb.Tenants.Large}}
	for _, tier := range tiers {
		k := "graph.budget.tenants." + string(tier.size)
		for _, id := range tier.ids {
			id = strings.TrimSpace(id)
			if !tenantPattern.MatchString(id) {
				b.bad(s, k, 0, "%s: %q is not a tenant id or domain", k, id)
				continue
			}
			key := strings.ToLower(id)
			if was, dup := bs.TenantSizes[key]; dup {
				b.bad(s, k, 0, "%s: tenant %s is also listed under graph.budget.tenants.%s; a tenant has one size", k, id, was)
				continue
			}
			bs.TenantSizes[key] = tier.size
		}
	}
}

// String says what the pacer keeps to, for the startup log.
func (bs BudgetSettings) String() string {
	if !bs.Enabled {
		return "off"
	}
	b := bs.Budgets
	return fmt.Sprintf("%d resource units/%s and %d writes/%s per app+tenant (tenant size %s, %d tenants sized apart), %d writes/%s per tenant, %d writes/%s and %d resource units/%s per app",
		b.ResourceUnits.Count, b.ResourceUnits.Window, b.Writes.Count, b.Writes.Window, bs.TenantSize, len(bs.TenantSizes),
		b.TenantWrites.Count, b.TenantWrites.Window, b.AppWrites.Count, b.AppWrites.Window, b.AppResourceUnits.Count, b.AppResourceUnits.Window)
}
