package pacer_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
)

func TestCostOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method, url string
		want              pacer.Cost
	}{
		{"list applications", "GET", "/applications", pacer.Cost{ResourceUnits: 2}},
		{"list with $select", "GET", "/applications?$select=id,appId", pacer.Cost{ResourceUnits: 1}},
		{"list selecting key material", "GET", "/applications?$select=id,keyCredentials&$top=999", pacer.Cost{ResourceUnits: 6}},
		{"small page", "GET", "/applications?$top=10", pacer.Cost{ResourceUnits: 1}},
		{"never below one", "GET", "/applications?$top=5&$select=id", pacer.Cost{ResourceUnits: 1}},
		{"$expand", "GET", "/applications?$expand=owners", pacer.Cost{ResourceUnits: 3}},
		{"one application", "GET", "/applications/0b1c?$select=id", pacer.Cost{ResourceUnits: 1}},
		{"with the version", "GET", "/v1.0/applications/0b1c", pacer.Cost{ResourceUnits: 2}},
		{"alternate key", "GET", "/applications(appId='4d2e')", pacer.Cost{ResourceUnits: 2}},
		{"owners", "GET", "/applications/0b1c/owners", pacer.Cost{ResourceUnits: 1}},
		{"service principals", "GET", "/servicePrincipals?$filter=appId%20eq%20'x'&$select=id", pacer.Cost{ResourceUnits: 1}},
		{"member of through users", "GET", "/users/u1/memberOf", pacer.Cost{ResourceUnits: 2}},
		{"addPassword", "POST", "/applications/0b1c/addPassword", pacer.Cost{ResourceUnits: 1, Writes: 1}},
		{"PATCH", "PATCH", "/applications/0b1c", pacer.Cost{ResourceUnits: 1, Writes: 1}},
		{"DELETE", "delete", "/applications/0b1c", pacer.Cost{ResourceUnits: 1, Writes: 1}},
		{"a read by POST", "POST", "/directoryObjects/getByIds", pacer.Cost{ResourceUnits: 3}},
		{"batch envelope", "POST", "/$batch", pacer.Cost{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, raw, _ := strings.Cut(tc.url, "?")
			q, err := url.ParseQuery(raw)
			require.NoError(t, err)
			require.Equal(t, tc.want, pacer.CostOf(tc.method, path, q))
		})
	}
}

func TestBatchCostCountsEveryRequest(t *testing.T) {
	t.Parallel()
	got := pacer.BatchCost([]pacer.BatchItem{
		{Method: "POST", URL: "/applications/a/addPassword"},
		{Method: "POST", URL: "/applications/b/removePassword"},
		{Method: "GET", URL: "/applications/c?$select=id"},
	})
	require.Equal(t, pacer.Cost{ResourceUnits: 3, Writes: 2}, got)
	require.True(t, pacer.BatchCost(nil).IsZero())
}

func TestParseScope(t *testing.T) {
	t.Parallel()
	cases := map[string]pacer.Scope{
		"Tenant_Application/ReadWrite/9a3d526c/0785ef7c": pacer.ScopeResourceUnits,
		"Tenant_Application/Read/9a3d526c/0785ef7c":      pacer.ScopeResourceUnits,
		"tenant_application/write/t/a":                   pacer.ScopeWrites,
		"Tenant/Write/0785ef7c":                          pacer.ScopeTenantWrites,
		"Tenant/ReadWrite/0785ef7c":                      pacer.ScopeTenantWrites,
		"Application/Write/9a3d526c":                     pacer.ScopeAppWrites,
		"Application/ReadWrite/9a3d526c":                 pacer.ScopeAppResourceUnits,
		"":                                               pacer.ScopeUnknown,
		"Tenant_Application":                             pacer.ScopeUnknown,
		"User/Write/x":                                   pacer.ScopeUnknown,
		"Tenant_Application/Delete/x":                    pacer.ScopeUnknown,
	}
	for h, want := range cases {
		require.Equal(t, want, pacer.ParseScope(h), "%q", h)
	}
}

// FuzzParseScope: x-ms-throttle-scope is outside input; any value must
// parse to one of the scopes without panicking, and CostOf must price any
// path.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"Tenant_Application/ReadWrite/a/t", "Tenant/Write/t", "/", "//", "Application/Read"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := pacer.ParseScope(s)
		require.GreaterOrEqual(t, int(sc), int(pacer.ScopeUnknown))
		require.LessOrEqual(t, int(sc), int(pacer.ScopeAppWrites))
		c := pacer.CostOf("GET", s, url.Values{"$top": {s}, "$select": {s}})
		require.GreaterOrEqual(t, c.ResourceUnits, 1)
	})
}
