package rotation

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// TestInventoryFollowsTheRun: the inventory shows the new secret as soon
// as the run is verified and loses the retired ones as soon as they are
// removed, without waiting for the next sync.
func TestInventoryFollowsTheRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: []domain.Application{b.app}})
	require.NoError(t, err)
	e := b.engine(t)
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)

	keys := func() map[string]bool {
		app, err := b.store.GetApplication(b.ctx, b.org, b.app.ObjectID)
		require.NoError(t, err)
		require.True(t, app.SyncedAt.Equal(t0), "a run's refresh is not a sync")
		out := map[string]bool{}
		for _, c := range app.Credentials {
			out[c.KeyID] = true
		}
		return out
	}
	require.Equal(t, map[string]bool{"old-rotor": true, "foreign": true, run.NewKeyID: true}, keys())

	b.clock.Advance(b.policy.Overlap)
	require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	require.Equal(t, map[string]bool{"foreign": true, run.NewKeyID: true}, keys(), "the older rotor secret is gone, the foreign one stays")
}
