package inventory_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
)

func TestCredentials(t *testing.T) {
	t.Parallel()
	start, end := t0, t0.AddDate(0, 3, 0)
	got := inventory.Credentials(&graph.Application{
		PasswordCredentials: []graph.PasswordCredential{{KeyID: "pw", DisplayName: "rotor:run-1", Hint: "abc", StartDateTime: start, EndDateTime: end, SecretText: secret.New("never stored")}},
		KeyCredentials:      []graph.KeyCredential{{KeyID: "kc", DisplayName: "CN=app", Type: "AsymmetricX509Cert", Usage: "Verify", CustomKeyIdentifier: "q83vEjRWeJA=", Key: []byte("der"), StartDateTime: start, EndDateTime: end}},
	})
	require.Equal(t, []domain.Credential{
		{KeyID: "pw", Kind: domain.KindSecret, DisplayName: "rotor:run-1", Hint: "abc", Start: start, End: end},
		{KeyID: "kc", Kind: domain.KindCertificate, DisplayName: "CN=app", Thumbprint: "q83vEjRWeJA=", Start: start, End: end},
	}, got)
}

// simDirectory starts a simulator with seed and returns the Graph directory
// of its first tenant, signed in as the tenant's rotation identity exactly
// as the server does: only from sim.json.
func simDirectory(t *testing.T, seed string) (inventory.Directory, *graph.Client, *simfile.Tenant) {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: seed})
	simFile, info := s.File, s.Info
	require.NotEmpty(t, info.Tenants)
	ten := &info.Tenants[0]
	ep, err := azure.ResolveEndpoints(azure.Sim, simFile)
	require.NoError(t, err)
	cred, err := azure.NewCredential(azure.Connection{
		Name: conn, TenantID: ten.ID, Cloud: azure.Sim, SimFile: simFile,
		Identity: azure.Identity{Method: azure.ClientSecret, ClientID: ten.Rotation.ClientID, ClientSecret: secret.New(ten.Rotation.ClientSecret)},
	}, ep)
	require.NoError(t, err)
	client, err := graph.New(cred, ep)
	require.NoError(t, err)
	sp, err := client.GetServicePrincipalByAppID(t.Context(), ten.Rotation.ClientID)
	require.NoError(t, err)
	return inventory.NewGraphDirectory(client, ten.ID, sp.ID), client, ten
}

// TestSyncFromSimulator syncs 2,000 applications from the simulator over
// real HTTPS with Microsoft's SDK credential, in pages of 999.
func TestSyncFromSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a simulator")
	}
	t.Parallel()
	b := setup(t)
	dir, client, ten := simDirectory(t, "apps=2000,tenants=1,expiring=1h")

	var progress []inventory.Progress
	res, err := b.syncer.Sync(t.Context(), org, conn, dir, func(p inventory.Progress) { progress = append(progress, p) })
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Seen, 2000)
	require.Equal(t, res.Seen, res.Changed)
	require.Equal(t, 2000, res.Manageable, "the bulk seed makes the rotation identity own every bulk app")
	require.GreaterOrEqual(t, len(progress), 3, "2,000+ applications in pages of 999")
	require.Equal(t, res.Seen, progress[len(progress)-1].Seen)

	n, err := b.store.CountApplications(t.Context(), org, conn)
	require.NoError(t, err)
	require.Equal(t, res.Seen, n)

	got, err := b.store.GetApplication(t.Context(), org, "bulk-app-000001")
	require.NoError(t, err)
	require.True(t, got.Manageable)
	require.Equal(t, ten.ID, got.TenantID)
	require.Len(t, got.Credentials, 1)
	require.Equal(t, domain.KindSecret, got.Credentials[0].Kind)
	require.NotEmpty(t, got.Credentials[0].Hint)

	// Manageable means owned by the rotation principal, which Graph confirms.
	owners, err := client.ListOwners(t.Context(), got.ObjectID)
	require.NoError(t, err)
	ids := make([]string, 0, len(owners))
	for _, o := range owners {
		ids = append(ids, o.ID)
	}
	require.Contains(t, ids, ten.Rotation.ObjectID)

	// A second pass changes nothing and removes nothing.
	b.clock.Advance(15 * time.Minute)
	res2, err := b.syncer.Sync(t.Context(), org, conn, dir, nil)
	require.NoError(t, err)
	require.Equal(t, inventory.Result{Seen: res.Seen, Manageable: 2000}, res2)
}

// TestSyncFromSimulatorDemo: the demo tenant mixes applications rotor owns
// with ones it does not.
func TestSyncFromSimulatorDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a simulator")
	}
	t.Parallel()
	b := setup(t)
	dir, _, _ := simDirectory(t, "demo")
	res, err := b.syncer.Sync(t.Context(), org, conn, dir, nil)
	require.NoError(t, err)
	require.Positive(t, res.Manageable)
	require.Less(t, res.Manageable, res.Seen)

	manageable, err := b.store.ListApplications(t.Context(), store.ListApplicationsParams{Org: org, Connection: conn, ManageableOnly: true})
	require.NoError(t, err)
	require.Len(t, manageable, res.Manageable)
}
