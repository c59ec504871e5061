package graph_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/secret"
)

// collectDelta walks a round to its delta link.
func collectDelta(t *testing.T, p *graph.DeltaPager) ([]graph.ApplicationChange, string) {
	t.Helper()
	var out []graph.ApplicationChange
	for p.More() {
		page, err := p.NextPage(t.Context())
		require.NoError(t, err)
		out = append(out, page...)
	}
	require.NotEmpty(t, p.DeltaLink())
	return out, p.DeltaLink()
}

// TestSimApplicationsDelta tracks changes made through rotor's own client
// (a new secret) and outside it (a deletion) against the simulator over
// HTTPS, and sees the link refused once seven days have passed.
func TestSimApplicationsDelta(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	ctx := t.Context()
	sel := []string{"id", "appId", "displayName", "passwordCredentials", "keyCredentials"}

	initial, _ := collectDelta(t, e.client.ApplicationsDelta(graph.DeltaOptions{Select: sel}))
	all, err := e.client.ListApplications(graph.ListOptions{Top: 999}).Collect(ctx)
	require.NoError(t, err)
	require.Len(t, initial, len(all), "the first round is every application")
	for _, c := range initial {
		require.Empty(t, c.Removed)
		require.NotNil(t, c.DisplayName)
		require.NotNil(t, c.PasswordCredentials)
	}

	changes, link := collectDelta(t, e.client.ApplicationsDelta(graph.DeltaOptions{Select: sel, Latest: true}))
	require.Empty(t, changes)

	owned := e.ownedApps(t)
	pc, err := e.client.AddPassword(ctx, owned[0].ID, graph.AddPasswordRequest{DisplayName: "rotor:delta", EndDateTime: time.Now().Add(24 * time.Hour)})
	require.NoError(t, err)
	gone := owned[1]
	e.srv.World().Update(func() { e.srv.World().TenantLocked(e.tenant.ID).RemoveApp(gone.ID) })

	changes, link2 := collectDelta(t, e.client.ApplicationsDeltaFrom(link))
	require.Len(t, changes, 2)
	byID := map[string]graph.ApplicationChange{}
	for _, c := range changes {
		byID[c.ID] = c
	}
	rekeyed := byID[owned[0].ID]
	require.Nil(t, rekeyed.DisplayName, "only what changed")
	require.NotNil(t, rekeyed.PasswordCredentials)
	var found bool
	for _, p := range *rekeyed.PasswordCredentials {
		if p.KeyID == pc.KeyID {
			found = true
			require.True(t, p.SecretText.IsZero(), "change tracking never reveals a secret")
		}
	}
	require.True(t, found)
	require.Equal(t, graph.RemovedDeleted, byID[gone.ID].Removed)

	// Seven days on, the link is refused; the client says so by type.
	e.sim.AdvanceClock(7*24*time.Hour + time.Minute)
	fresh := e.clientFor(t, e.tenant.Rotation.ClientID, secret.New(e.tenant.Rotation.ClientSecret))
	_, err = fresh.ApplicationsDeltaFrom(link2).NextPage(ctx)
	require.True(t, graph.IsDeltaExpired(err), "%v", err)
	var ge *graph.Error
	require.ErrorAs(t, err, &ge)
	require.Equal(t, graph.CodeSyncStateNotFound, ge.Code)
}
