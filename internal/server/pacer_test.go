package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
)

// TestConnectionsOfOneIdentityShareAPacer: Graph meters an identity per
// tenant, so two connections of the same client id and tenant (two
// organizations, or a rotation and a read connection) must draw on one
// budget, and another identity or tenant on its own.
func TestConnectionsOfOneIdentityShareAPacer(t *testing.T) {
	t.Parallel()
	reg := pacer.NewRegistry(pacer.Options{Clock: clock.NewFake(time.Now()), Budgets: pacer.DefaultBudgets(pacer.Small)})
	spec := func(org, name, tenant, client string) ConnSpec {
		return ConnSpec{Org: domain.OrgID(org), Purpose: "rotation", Conn: azure.Connection{
			Name: name, TenantID: tenant, Cloud: azure.Public,
			Identity: azure.Identity{Method: azure.ClientSecret, ClientID: client, ClientSecret: secret.New("not-used")},
		}}
	}
	const tenant, client = "8f2b1c4e-0d3a-4e5f-9a6b-7c8d9e0f1a2b", "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
	a, err := build(spec("one", "contoso", tenant, client), reg)
	require.NoError(t, err)
	b, err := build(spec("two", "contoso-read", tenant, client), reg)
	require.NoError(t, err)
	other, err := build(spec("one", "fabrikam", "fabrikam.onmicrosoft.com", client), reg)
	require.NoError(t, err)
	require.NotNil(t, a.graph.Pacer())
	require.Same(t, a.graph.Pacer(), b.graph.Pacer())
	require.NotSame(t, a.graph.Pacer(), other.graph.Pacer())

	none, err := build(spec("one", "contoso", tenant, client), nil)
	require.NoError(t, err)
	require.Nil(t, none.graph.Pacer(), "no registry, no pacing")
}

func TestPacerKey(t *testing.T) {
	t.Parallel()
	conn := func(id azure.Identity) azure.Connection { return azure.Connection{TenantID: "t", Identity: id} }
	cases := map[string]struct {
		id   azure.Identity
		want string
	}{
		"client secret":     {azure.Identity{Method: azure.ClientSecret, ClientID: "c"}, "c"},
		"user-assigned":     {azure.Identity{Method: azure.ManagedIdentity, ManagedIdentityClientID: "mi"}, "mi"},
		"system-assigned":   {azure.Identity{Method: azure.ManagedIdentity}, "system-assigned managed identity"},
		"workload from env": {azure.Identity{Method: azure.WorkloadIdentity}, "AZURE_CLIENT_ID"},
	}
	for name, tc := range cases {
		require.Equal(t, pacer.Key{TenantID: "t", ClientID: tc.want}, pacerKey(conn(tc.id)), name)
	}
}
