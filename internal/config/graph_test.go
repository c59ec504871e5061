package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
)

func budget(m map[string]any, kv map[string]any) {
	m["graph"] = map[string]any{"budget": kv}
}

func TestGraphBudgetDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg, err := b.parse(t, base())
	require.NoError(t, err)
	bs := cfg.Graph.Budget
	require.True(t, bs.Enabled)
	require.Equal(t, pacer.Small, bs.TenantSize)
	require.Equal(t, pacer.DefaultBudgets(pacer.Small), bs.Budgets)
	require.Equal(t, pacer.Limit{Count: 3500, Window: 10 * time.Second}, bs.Budgets.ResourceUnits)
	require.Equal(t, pacer.Limit{Count: 3000, Window: 150 * time.Second}, bs.Budgets.Writes)
	require.Equal(t, pacer.Limit{Count: 18000, Window: 5 * time.Minute}, bs.Budgets.TenantWrites)
	require.Equal(t, pacer.Limit{Count: 35000, Window: 5 * time.Minute}, bs.Budgets.AppWrites)
	require.Equal(t, pacer.Limit{Count: 150000, Window: 20 * time.Second}, bs.Budgets.AppResourceUnits)
	require.Empty(t, bs.TenantSizes)
	require.Contains(t, bs.String(), "3000 writes/2m30s per app+tenant")
}

func TestGraphBudgetSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		kv    map[string]any
		env   map[string]string
		check func(t *testing.T, bs BudgetSettings)
	}{
		{
			name: "TenantSizeSetsResourceUnits",
			kv:   map[string]any{"tenant_size": "Large"},
			check: func(t *testing.T, bs BudgetSettings) {
				require.Equal(t, pacer.Large, bs.TenantSize)
				require.Equal(t, 8000, bs.Budgets.ResourceUnits.Count)
			},
		},
		{
			name: "ExplicitCounts",
			kv:   map[string]any{"resource_units": 1000, "writes": 2500, "tenant_writes": 0, "app_writes": 70000, "app_resource_units": 1},
			check: func(t *testing.T, bs BudgetSettings) {
				require.Equal(t, pacer.Limit{Count: 1000, Window: pacer.ResourceUnitWindow}, bs.Budgets.ResourceUnits)
				require.Equal(t, 2500, bs.Budgets.Writes.Count)
				require.Zero(t, bs.Budgets.TenantWrites.Count, "0 turns the bucket off")
				require.Equal(t, 70000, bs.Budgets.AppWrites.Count)
				require.Equal(t, 1, bs.Budgets.AppResourceUnits.Count)
			},
		},
		{
			name: "TenantTiers",
			kv: map[string]any{"tenant_size": "medium", "tenants": map[string]any{
				"large": []any{"8F2B1C4E-0D3A-4E5F-9A6B-7C8D9E0F1A2B"}, "small": []any{"fabrikam.onmicrosoft.com"},
			}},
			check: func(t *testing.T, bs BudgetSettings) {
				require.Equal(t, 5000, bs.Budgets.ResourceUnits.Count)
				require.Equal(t, map[string]pacer.TenantSize{
					"8f2b1c4e-0d3a-4e5f-9a6b-7c8d9e0f1a2b": pacer.Large,
					"fabrikam.onmicrosoft.com":             pacer.Small,
				}, bs.TenantSizes)
			},
		},
		{
			name: "Disabled",
			kv:   map[string]any{"enabled": false},
			check: func(t *testing.T, bs BudgetSettings) {
				require.False(t, bs.Enabled)
				require.Equal(t, "off", bs.String())
			},
		},
		{
			name: "EnvironmentOverrides",
			env: map[string]string{
				"ROTOR_GRAPH_BUDGET_WRITES": "1200", "ROTOR_GRAPH_BUDGET_TENANT_SIZE": "large",
				"ROTOR_GRAPH_BUDGET_TENANTS_MEDIUM": "t-1, t-2", "ROTOR_GRAPH_BUDGET_ENABLED": "true",
			},
			check: func(t *testing.T, bs BudgetSettings) {
				require.Equal(t, 1200, bs.Budgets.Writes.Count)
				require.Equal(t, 8000, bs.Budgets.ResourceUnits.Count)
				require.Equal(t, map[string]pacer.TenantSize{"t-1": pacer.Medium, "t-2": pacer.Medium}, bs.TenantSizes)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			for k, v := range tc.env {
				b.env[k] = v
			}
			m := base()
			if tc.kv != nil {
				budget(m, tc.kv)
			}
			cfg, err := b.parse(t, m)
			require.NoError(t, err)
			tc.check(t, cfg.Graph.Budget)
		})
	}
}

func TestGraphBudgetProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		kv   map[string]any
		want string
	}{
		{"UnknownSize", map[string]any{"tenant_size": "huge"}, `graph.budget.tenant_size: tenant size "huge": want small`},
		{"Negative", map[string]any{"writes": -1}, `graph.budget.writes (-1) must be 0`},
		{"TooLarge", map[string]any{"app_writes": 20000000}, `graph.budget.app_writes (20000000) must be at most 15000000`},
		{"NotANumber", map[string]any{"writes": "lots"}, `writes must be a whole number`},
		{"UnknownKey", map[string]any{"write": 5}, `unknown key "write" in graph.budget (line |did you mean "writes"?`},
		{"TwoSizes", map[string]any{"tenants": map[string]any{"small": []any{"t-1"}, "large": []any{"T-1"}}}, `graph.budget.tenants.large: tenant T-1 is also listed under graph.budget.tenants.small`},
		{"BadTenant", map[string]any{"tenants": map[string]any{"large": []any{"not a tenant"}}}, `graph.budget.tenants.large: "not a tenant" is not a tenant id or domain`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := base()
			budget(m, tc.kv)
			_, err := b.parse(t, m)
			require.Error(t, err)
			for _, frag := range strings.Split(tc.want, "|") {
				require.Contains(t, err.Error(), frag)
			}
		})
	}
}
