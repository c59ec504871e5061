package rotation

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Regression (review of issue 6): after the retiring transition the run is released (holder ”),
// so the StepRetireScheduleFailed journal line, written fenced with this
// process's holder, always fails with ErrLeaseLost and is dropped. Also
// the inventory refresh writes the new credential's hint after r.value was
// zeroed, so it is always empty.
func TestRetireScheduleFailureIsJournaledAndHintKept(t *testing.T) {
	b := setup(t)
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: []domain.Application{b.app}})
	require.NoError(t, err)
	e := b.engine(t)
	e.SetScheduleRetire(func(context.Context, domain.OrgID, string, time.Time) error { return errors.New("river down") })
	run, err := e.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
	require.NoError(t, err)
	full, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	var kinds []domain.StepKind
	for _, ev := range full.Events {
		kinds = append(kinds, ev.Step.Kind)
	}
	app, err := b.store.GetApplication(b.ctx, b.org, b.app.ObjectID)
	require.NoError(t, err)
	found := false
	for _, c := range app.Credentials {
		if c.KeyID == run.NewKeyID {
			found = true
			require.Len(t, c.Hint, 3, "the inventory keeps Entra's hint of the new secret")
		}
	}
	require.True(t, found)
	require.Contains(t, kinds, domain.StepRetireScheduleFailed, "the journal should say retirement scheduling failed")
}
