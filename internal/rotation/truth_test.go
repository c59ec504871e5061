package rotation

import (
	"errors"
	"testing"
	"time"

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

// TestRetirementFindingItsSecretGoneRotatesNow: a run whose secret is
// removed in Entra before its overlap ends fails its retirement — rotor
// removes nothing — and the application is due at once (its consumers
// hold a dead secret), not after the hour-long back-off of a failure a
// human must mend.
func TestRetirementFindingItsSecretGoneRotatesNow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	pols := onePolicy{&b.policy}
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	require.NoError(t, b.dir.RemovePassword(b.ctx, b.app.ObjectID, run.NewKeyID)) // behind rotor's back
	b.clock.Advance(2 * time.Hour)
	require.Error(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	stored, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, domain.FailureRemoved, stored.Failure)

	d, err := e.Decide(b.ctx, b.org, b.app, &b.policy)
	require.NoError(t, err)
	require.True(t, d.Due, d.Message)
	require.Equal(t, "RotorCredentialRemoved", d.Reason)
	require.Contains(t, d.Message, "its retirement found it gone")
	app := b.app
	app.Credentials = b.dir.creds(b.app.ObjectID)
	_, err = b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: b.clock.Now(), Applications: []domain.Application{app}})
	require.NoError(t, err)
	due, err := e.Due(b.ctx, b.org, pols)
	require.NoError(t, err)
	require.Len(t, due, 1, "no back-off: %+v", due)
	require.Equal(t, domain.TriggerRemoved, due[0].Decision.Trigger)
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

// TestTransientFailuresRetrySoonButBeforeExpiry (issue 7, item 2): a run
// that failed for a reason a retry may mend (here Entra answering 503)
// is retried after a short back-off, not an hour later; and however long
// the back-off has grown, the retry is due early enough to finish before
// the application's current secret ends. A permanent failure waits long.
func TestTransientFailuresRetrySoonButBeforeExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	e.retryTransient = 30 * time.Minute // longer than the secret has left
	pols := onePolicy{&b.policy}
	// The current (rotor) secret ends in 15 minutes: past its renewal time.
	b.app.Credentials[0].End = b.clock.Now().Add(15 * time.Minute)
	b.dir.mu.Lock()
	b.dir.apps[b.app.ObjectID][0].End = b.app.Credentials[0].End
	b.dir.mu.Unlock()
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: b.clock.Now(), Applications: []domain.Application{b.app}})
	require.NoError(t, err)
	b.dir.addErr = func(int) error { return errors.New("503 Service Unavailable") }
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	var re *RunError
	require.ErrorAs(t, err, &re)
	require.False(t, re.Permanent)
	stored, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, domain.FailureTransient, stored.Failure)

	app, err := b.store.GetApplication(b.ctx, b.org, b.app.ObjectID)
	require.NoError(t, err)
	ds, err := e.Decisions(b.ctx, b.org, []domain.Application{*app}, pols)
	require.NoError(t, err)
	d := ds[0]
	require.Equal(t, "FailureBackoff", d.Reason)
	latest := b.app.Credentials[0].End.Add(-(e.verifyTimeout + time.Minute))
	require.True(t, d.DueAt.Equal(latest), "due at %s, want %s (end − the time a rotation may take)", d.DueAt, latest)
	require.Contains(t, d.Message, "transient")
	require.Contains(t, d.Message, "before the current secret ends")

	b.clock.Advance(latest.Sub(b.clock.Now()))
	due, err := e.Due(b.ctx, b.org, pols)
	require.NoError(t, err)
	require.Len(t, due, 1, "retried in time")
}

// TestPlannerOrdersRunsByTheJournal: a manual rotation started from a host
// whose clock is a minute behind creates a run that is later (a higher
// sequence) but carries an earlier timestamp. Its retirement removes the
// earlier run's secret, as it should; the planner must then take the
// later run as the application's newest, not report the earlier run's
// secret as removed outside rotor and rotate again at once.
func TestPlannerOrdersRunsByTheJournal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine(t)
	pols := onePolicy{&b.policy}
	first, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	b.clock.Set(b.clock.Now().Add(-time.Minute)) // the other host's clock
	second, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
	require.NoError(t, err)
	require.Greater(t, second.Seq, first.Seq)
	require.True(t, second.CreatedAt.Before(first.CreatedAt))

	b.clock.Advance(2 * time.Hour)
	require.NoError(t, e.Retire(b.ctx, b.org, first.ID, b.policy))
	require.NoError(t, e.Retire(b.ctx, b.org, second.ID, b.policy))
	b.assertConverged(t)
	b.clock.Advance(time.Second)
	app := b.app
	app.Credentials = b.dir.creds(b.app.ObjectID)
	_, err = b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: b.clock.Now(), Applications: []domain.Application{app}})
	require.NoError(t, err)

	due, err := e.Due(b.ctx, b.org, pols)
	require.NoError(t, err)
	require.Empty(t, due, "the later run's secret is the application's current one")
	require.NotContains(t, b.logs.String(), "removed in Entra outside rotor")
}
