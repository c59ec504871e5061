package rotation

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// slowListStore lets a test run code between Recover's ListRuns and its
// ClaimRun: exactly the window in which a process whose lease lapsed (but
// which nobody claimed yet) can legitimately renew and carry on.
type slowListStore struct {
	store.Store
	afterOrphanList func()
}

func (s *slowListStore) ListRuns(ctx context.Context, p store.ListRunsParams) ([]domain.Run, error) {
	runs, err := s.Store.ListRuns(ctx, p)
	if p.Orphaned && s.afterOrphanList != nil {
		f := s.afterOrphanList
		s.afterOrphanList = nil
		f()
	}
	return runs, err
}

// Regression (review of issue 6): Recover acts on a stale snapshot. ClaimRun does not check the
// run's state, a released (retiring) run has lease_holder ” and is
// claimable, and removeUnheld runs before the state CAS. A run that was
// 'planned' when listed and 'retiring' when claimed gets its verified,
// delivered secret removed from Entra.
func TestRecoverActsOnTheRunAsClaimedNotAsListed(t *testing.T) {
	b := setup(t)
	reached, release := make(chan struct{}), make(chan struct{})
	b.hooks.AfterJournal = func(_ domain.Run, st domain.Step) {
		if st.Kind == domain.StepPlanned {
			close(reached)
			<-release
		}
	}
	a := b.engine(t)
	b.hooks = Hooks{}
	done := make(chan *domain.Run, 1)
	go func() {
		run, err := a.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
		require.NoError(t, err)
		done <- run
	}()
	<-reached
	// A pauses (GC, slow disk, DB hiccup) past its lease; nobody claims yet.
	b.die(a)

	slow := &slowListStore{Store: b.store}
	sinks := b.engine(t).sinks
	other := New(Config{Store: slow, Conns: b.dir, Sinks: sinks, Clock: b.clock, Logger: a.log,
		IsPending: a.isPending, IsPermanent: a.isPermanent})
	var finished *domain.Run
	slow.afterOrphanList = func() {
		close(release) // A wakes: its FenceRun renews (holder column still A) and it finishes
		finished = <-done
	}
	_, err := other.Recover(b.ctx, b.org)
	require.NoError(t, err)

	require.Equal(t, domain.RunRetiring, finished.State)
	got, err := b.store.GetRun(b.ctx, b.org, finished.ID)
	require.NoError(t, err)
	t.Logf("run state %s, holder %q", got.State, got.Holder)
	for _, ev := range got.Events {
		t.Logf("  %s %s %s", ev.State, ev.Step, ev.Message)
	}
	present := false
	for _, c := range b.dir.creds(b.app.ObjectID) {
		if c.KeyID == finished.NewKeyID {
			present = true
		}
	}
	require.True(t, present, "the verified secret every sink holds was removed by a recovery that acted on a stale list: removed %v", b.dir.removed)
	require.Empty(t, got.Holder, "a retiring run is left held by the recoverer")
}
