package rotation

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// TestEntraIsTheTruthForRotorCredentials: the journal may add a run's new
// secret before a sync has seen it, but once a sync that started after
// the run does not list it (someone removed it in Entra), the application
// is due at once with a named reason, and the planner rotates it.
func TestEntraIsTheTruthForRotorCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	pols := onePolicy{&b.policy}
	sync := func() {
		t.Helper()
		app := b.app
		app.Credentials = b.dir.creds(b.app.ObjectID)
		_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: b.clock.Now(), Applications: []domain.Application{app}})
		require.NoError(t, err)
	}
	sync()
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	decide := func() domain.Decision {
		t.Helper()
		app, err := b.store.GetApplication(b.ctx, b.org, b.app.ObjectID)
		require.NoError(t, err)
		ds, err := e.Decisions(b.ctx, b.org, []domain.Application{*app}, pols)
		require.NoError(t, err)
		return ds[0]
	}
	require.Equal(t, "NotYetDue", decide().Reason, "the run's secret counts before and after a sync lists it")

	// Removed in Entra behind rotor's back. Until a sync looks, the journal
	// is all rotor knows.
	require.NoError(t, b.dir.RemovePassword(b.ctx, b.app.ObjectID, run.NewKeyID))
	b.clock.Advance(1)
	sync()
	d := decide()
	require.True(t, d.Due, d.Message)
	require.Equal(t, "RotorCredentialRemoved", d.Reason)
	require.Equal(t, domain.TriggerRemoved, d.Trigger)
	require.Contains(t, d.Message, run.NewKeyID)
	require.Contains(t, d.Message, "removed outside rotor")

	due, err := e.Due(b.ctx, b.org, pols)
	require.NoError(t, err)
	require.Len(t, due, 1, "the planner rotates it")
	require.Contains(t, b.logs.String(), "a rotor credential was removed in Entra outside rotor")
	out, fresh, err := e.Handle(b.ctx, Request{Org: b.org, TenantID: tenant, AppObjectID: b.app.ObjectID, Trigger: domain.TriggerRemoved, RequestedAt: b.clock.Now()}, pols)
	require.NoError(t, err)
	require.Equal(t, OutcomeRotated, out)
	require.Equal(t, domain.TriggerRemoved, fresh.Trigger)
	sync()
	require.Equal(t, "NotYetDue", decide().Reason, "the fresh secret is the application's current one")
}

// TestFailedRunLeavesNoUnheldCredential: a run whose sink write failed
// asks every sink whether it holds the new secret. When none does (the
// first sink refused it), the secret is removed at once instead of living
// on with no consumer; when one does, it stays for the next rotation's
// retirement.
func TestFailedRunLeavesNoUnheldCredential(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		failing   string
		wantLeft  bool
		wantInMsg string
	}{
		{"nobody holds it: removed", "kv", false, "no sink holds its secret (each was asked), so it was removed"},
		{"the first sink holds it: kept", "ado", true, "memory sink kv holds it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.vault.failures = func(name string, _ int) error {
				if name == tc.failing {
					return errPolicy
				}
				return nil
			}
			e := b.engine(t)
			run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
			var re *RunError
			require.ErrorAs(t, err, &re)
			require.Contains(t, re.Message, tc.wantInMsg)
			left := false
			for _, c := range b.dir.creds(b.app.ObjectID) {
				left = left || c.RunID() == run.ID
			}
			require.Equal(t, tc.wantLeft, left)
			require.NotContains(t, b.dir.removed, "old-rotor", "older credentials are never touched by a failed run")
			b.assertNoSecretAtRest(t)
		})
	}
}
