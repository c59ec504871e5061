package rotation

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// backup copies the bundle's store as `rotor backup` does (VACUUM INTO,
// online) and returns the file.
func (b *bundle) backup(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "backup.db")
	require.NoError(t, sqlite.BackupInto(b.ctx, b.store.Path(), file))
	return file
}

// restore makes the backup the bundle's store, as putting the file in
// place of the database and starting rotor again does. Entra (b.dir) and
// the sinks (b.vault) stay as the world left them.
func (b *bundle) restore(t *testing.T, file string) {
	t.Helper()
	st, err := sqlite.Open(b.ctx, file, sqlite.WithClock(b.clock))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	b.store = st
}

// syncFromEntra writes what Entra holds for the application into the
// inventory, as an inventory sync does.
func (b *bundle) syncFromEntra(t *testing.T) {
	t.Helper()
	app := b.app
	app.Credentials = b.dir.creds(b.app.ObjectID)
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: b.clock.Now(), Applications: []domain.Application{app}})
	require.NoError(t, err)
}

// TestRecoverAfterRestore: the store is backed up while a rotation stands
// at a step, the rotation goes on to the end (its secret in every sink,
// the older rotor secret retired), and the backup is restored. The
// restored journal holds the run in flight under a dead process's lease;
// the world is ahead of it. Recovery must neither remove the secret every
// sink holds (the older one is gone: consumers would be left with none)
// nor replace the run with a fresh rotation: it resumes the run, whose
// retirement ends it done, and nothing is due afterwards.
func TestRecoverAfterRestore(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"planned", "created", "replicating", "sink:0:writing", "sink:0:written", "sink:1:written", "propagated", "verifying", "verified", "retiring"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.syncFromEntra(t)
			var file string
			b.hooks.AfterJournal = func(_ domain.Run, st domain.Step) {
				if file == "" && st.String() == step {
					file = b.backup(t)
				}
			}
			e := b.engine(t)
			e.policies = onePolicy{&b.policy}
			run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
			require.NoError(t, err)
			b.clock.Advance(b.policy.Overlap)
			require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
			require.NotEmpty(t, file, "backed up at %s", step)
			b.assertConverged(t) // the world, before the restore
			removed := len(b.dir.removed)
			adds := b.dir.addCount

			b.die(e)
			b.restore(t, file)
			b.hooks = Hooks{}
			e = b.engine(t)
			e.policies = onePolicy{&b.policy}
			abandoned, err := e.Recover(b.ctx, b.org)
			require.NoError(t, err)
			require.Empty(t, abandoned, "no fresh run replaces a run that delivered everything")
			got, err := b.store.GetRun(b.ctx, b.org, run.ID)
			require.NoError(t, err)
			require.Equal(t, domain.RunRetiring, got.State)
			require.Equal(t, run.NewKeyID, got.NewKeyID)
			require.Contains(t, b.retires, run.ID, "its retirement is scheduled")
			require.Len(t, b.dir.removed, removed, "recovery removed nothing")
			b.syncFromEntra(t)
			due, err := e.Due(b.ctx, b.org, onePolicy{&b.policy})
			require.NoError(t, err)
			require.Empty(t, due, "nothing is due")

			b.clock.Advance(b.policy.Overlap)
			require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
			got, err = b.store.GetRun(b.ctx, b.org, run.ID)
			require.NoError(t, err)
			require.Equal(t, domain.RunDone, got.State)
			require.Equal(t, adds, b.dir.addCount, "no secret was created after the restore")
			b.assertConverged(t)
			b.assertNoSecretAtRest(t)
		})
	}
}

// TestRestoredJournalMissingALaterRun: the backup predates a whole
// rotation, whose retirement removed the secret the restored journal
// calls the application's current one. Entra's newer rotor secret, of a
// run the journal does not know, explains it: the planner does not take
// it for a secret removed outside rotor (which rotates at once), and a
// retirement the backup left pending ends done rather than failed.
func TestRestoredJournalMissingALaterRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		at   string // the first run's step the backup is taken at; "" after it is done
	}{
		{"backed up after the first run", ""},
		{"backed up while the first run was retiring", "retiring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.syncFromEntra(t)
			var file string
			b.hooks.AfterJournal = func(_ domain.Run, st domain.Step) {
				if tc.at != "" && file == "" && st.String() == tc.at {
					file = b.backup(t)
				}
			}
			e := b.engine(t)
			e.policies = onePolicy{&b.policy}
			first, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
			require.NoError(t, err)
			b.clock.Advance(b.policy.Overlap)
			require.NoError(t, e.Retire(b.ctx, b.org, first.ID, b.policy))
			if file == "" {
				file = b.backup(t)
			}
			b.hooks = Hooks{}
			second, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
			require.NoError(t, err)
			b.clock.Advance(b.policy.Overlap)
			require.NoError(t, e.Retire(b.ctx, b.org, second.ID, b.policy))
			b.assertConverged(t)
			adds := b.dir.addCount

			b.die(e)
			b.restore(t, file)
			e = b.engine(t)
			e.policies = onePolicy{&b.policy}
			_, err = e.Recover(b.ctx, b.org)
			require.NoError(t, err)
			b.syncFromEntra(t)
			if tc.at != "" {
				require.NoError(t, e.Retire(b.ctx, b.org, first.ID, b.policy))
				got, err := b.store.GetRun(b.ctx, b.org, first.ID)
				require.NoError(t, err)
				require.Equal(t, domain.RunDone, got.State, got.Error)
				require.Contains(t, got.Events[len(got.Events)-1].Message, "a run this database's journal does not know")
			}
			d, err := e.Decide(b.ctx, b.org, b.app, &b.policy)
			require.NoError(t, err)
			require.False(t, d.Due, d.Message)
			require.Equal(t, "NotYetDue", d.Reason, d.Message)
			due, err := e.Due(b.ctx, b.org, onePolicy{&b.policy})
			require.NoError(t, err)
			require.Empty(t, due)
			require.Equal(t, adds, b.dir.addCount, "no secret was created after the restore")
			b.assertConverged(t)
		})
	}
}

// TestHandleAsksEntraBeforeRotating: restored from a backup taken before
// a rotation, the inventory says the application is due (its secret then
// was near its end), and the planner may act on it before the first sync
// has corrected it. The rotate job asks Entra first: its credentials make
// the application not due, so nothing is created, and the inventory
// learns what Entra holds.
func TestHandleAsksEntraBeforeRotating(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.syncFromEntra(t)
	e := b.engine(t)
	e.policies = onePolicy{&b.policy}
	pols := onePolicy{&b.policy}
	d, err := e.Decide(b.ctx, b.org, b.app, &b.policy)
	require.NoError(t, err)
	require.True(t, d.Due, "old-rotor ends within renew_before: %s", d.Message)
	file := b.backup(t)
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	b.clock.Advance(b.policy.Overlap)
	require.NoError(t, e.Retire(b.ctx, b.org, run.ID, b.policy))
	adds := b.dir.addCount

	b.die(e)
	b.restore(t, file)
	e = b.engine(t)
	e.policies = pols
	due, err := e.Due(b.ctx, b.org, pols)
	require.NoError(t, err)
	require.Len(t, due, 1, "the restored inventory, not yet synced, says due")
	out, _, err := e.Handle(b.ctx, Request{Org: b.org, TenantID: tenant, AppObjectID: b.app.ObjectID, Trigger: due[0].Decision.Trigger, RequestedAt: b.clock.Now()}, pols)
	require.NoError(t, err)
	require.Equal(t, OutcomeNotDue, out)
	require.Equal(t, adds, b.dir.addCount, "nothing was created")
	app, err := b.store.GetApplication(b.ctx, b.org, b.app.ObjectID)
	require.NoError(t, err)
	require.True(t, sameCredentials(b.dir.creds(b.app.ObjectID), app.Credentials), "the inventory holds what Entra does")
	due, err = e.Due(b.ctx, b.org, pols)
	require.NoError(t, err)
	require.Empty(t, due)
	b.assertConverged(t)
}

// TestHandleTrustsAnInventoryJustReadFromEntra: an application a sync of
// this engine's life read from Entra moments ago is rotated without
// asking Entra again before its run exists (under throttling that read
// held a slot for seconds while the application whose secret ends first
// waited); one synced longer ago, or before the engine started (a
// restored database), is asked about first (TestHandleAsksEntraBeforeRotating).
func TestHandleTrustsAnInventoryJustReadFromEntra(t *testing.T) {
	t.Parallel()
	reads := func(t *testing.T, sinceSync time.Duration) int {
		b := setup(t)
		e := b.engine(t)
		pols := onePolicy{&b.policy}
		e.policies = pols
		b.clock.Advance(time.Second)
		b.syncFromEntra(t)
		b.clock.Advance(sinceSync)
		due, err := e.Due(b.ctx, b.org, pols)
		require.NoError(t, err)
		require.Len(t, due, 1)
		before := b.dir.credReads
		out, _, err := e.Handle(b.ctx, Request{Org: b.org, TenantID: tenant, AppObjectID: b.app.ObjectID, Trigger: due[0].Decision.Trigger, RequestedAt: b.clock.Now()}, pols)
		require.NoError(t, err)
		require.Equal(t, OutcomeRotated, out)
		return b.dir.credReads - before
	}
	fresh, stale := reads(t, 10*time.Second), reads(t, 2*justSynced)
	require.Equal(t, stale-1, fresh, "one read of Entra fewer when the inventory read it %s ago", 10*time.Second)
}
