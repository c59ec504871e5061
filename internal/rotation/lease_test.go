package rotation

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// TestLiveRunIsNotRecovered: a second process recovering on the same store
// (a second `rotor serve`, or `serve` beside `rotor rotate`) leaves a run
// whose holder is alive alone, however long it has been running.
func TestLiveRunIsNotRecovered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reached, release := make(chan struct{}), make(chan struct{})
	b.hooks.AfterJournal = func(_ domain.Run, st domain.Step) {
		if st.Kind == domain.StepReplicating {
			close(reached)
			<-release
		}
	}
	a := b.engine(t)
	b.hooks = Hooks{}
	other := b.engine(t)
	done := make(chan error, 1)
	go func() {
		_, err := a.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
		done <- err
	}()
	<-reached
	b.clock.Advance(a.lease.TTL() / 2)
	abandoned, err := other.Recover(b.ctx, b.org)
	require.NoError(t, err)
	require.Empty(t, abandoned, "the run's process is alive: nobody else touches it")
	_, err = other.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerManual)
	require.ErrorIs(t, err, ErrBusy, "nor starts a second run for the application")
	close(release)
	require.NoError(t, <-done)
	b.clock.Advance(b.policy.Overlap)
	runs, err := b.store.ListRuns(b.ctx, store.ListRunsParams{Org: b.org, States: []domain.RunState{domain.RunRetiring}})
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.NoError(t, other.Retire(b.ctx, b.org, runs[0].ID, b.policy), "any live process may retire a run")
	b.assertConverged(t)
}

// TestTakenOverRunStopsItsOldHolder: a process that loses its lease (frozen
// past the TTL) while another takes its run over touches nothing more of
// that run when it wakes: it writes no sink with its now-removed secret,
// so no consumer ever receives a credential the new holder retired.
func TestTakenOverRunStopsItsOldHolder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: "main", SyncStarted: t0, Applications: []domain.Application{b.app}})
	require.NoError(t, err)
	reached, release := make(chan struct{}), make(chan struct{})
	b.hooks.AfterJournal = func(_ domain.Run, st domain.Step) {
		if st.Kind == domain.StepReplicating {
			close(reached)
			<-release
		}
	}
	frozen := b.engine(t)
	b.hooks = Hooks{}
	done := make(chan error, 1)
	go func() {
		_, err := frozen.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
		done <- err
	}()
	<-reached
	b.die(frozen) // frozen: its heartbeat stops and the lease expires

	successor := b.engine(t)
	successor.policies = onePolicy{&b.policy}
	abandoned, err := successor.Recover(b.ctx, b.org)
	require.NoError(t, err)
	require.Len(t, abandoned, 1)
	full, err := b.store.GetRun(b.ctx, b.org, abandoned[0].ID)
	require.NoError(t, err)
	var kinds []domain.StepKind
	for _, ev := range full.Events {
		kinds = append(kinds, ev.Step.Kind)
	}
	require.Contains(t, kinds, domain.StepTakenOver, "the journal says who took it over")
	require.Len(t, b.dir.removed, 1, "no sink had it, so the successor removed its secret at once")

	close(release) // the frozen process wakes up
	err = <-done
	var re *RunError
	require.True(t, errors.As(err, &re), "%v", err)
	require.True(t, re.LeaseLost, "it learns it lost the run")
	for _, s := range []string{"kv", "ado"} {
		_, keyID := b.vault.get(s, b.app.ObjectID)
		require.Empty(t, keyID, "sink %s never received the removed secret", s)
	}
	got, err := b.store.GetRun(b.ctx, b.org, abandoned[0].ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunAbandoned, got.State, "the old holder did not overwrite the successor's verdict")
	require.Contains(t, b.logs.String(), "another rotor process has taken the run over")

	// The successor's fresh run converges.
	run, err := successor.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerRecovery, Replacing(abandoned[0].ID))
	require.NoError(t, err)
	b.clock.Advance(b.policy.Overlap)
	require.NoError(t, successor.Retire(b.ctx, b.org, run.ID, b.policy))
	b.assertConverged(t)
	b.assertNoSecretAtRest(t)
}

// TestUnfinishedRetirementGivesTheRunBack: a retirement stopped by a
// transient error leaves the run retiring and held by nobody, so another
// live process's retire job finishes it.
func TestUnfinishedRetirementGivesTheRunBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.engine(t)
	run, err := first.Rotate(b.ctx, b.org, b.app, b.policy, domain.TriggerDue)
	require.NoError(t, err)
	b.clock.Advance(b.policy.Overlap)
	b.dir.mu.Lock()
	b.dir.removeErrFor["old-rotor"] = errors.New("503 Service Unavailable")
	b.dir.mu.Unlock()
	err = first.Retire(b.ctx, b.org, run.ID, b.policy)
	require.Error(t, err)
	got, err := b.store.GetRun(b.ctx, b.org, run.ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, got.State)
	require.Empty(t, got.Holder, "the unfinished retirement gave the run back")

	b.dir.mu.Lock()
	delete(b.dir.removeErrFor, "old-rotor")
	b.dir.mu.Unlock()
	second := b.engine(t)
	require.NoError(t, second.Retire(b.ctx, b.org, run.ID, b.policy), "another live process finishes it")
	b.assertConverged(t)
}

// TestLeaseCountsTheLiveProcesses: each process's lease tells it how many
// rotor processes share the database (the Graph pacer's share), at once
// when acquired and after each renewal, so a process that dies or stops
// cleanly gives its share back.
func TestLeaseCountsTheLiveProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seen := func() (func(int), func() int) {
		var mu sync.Mutex
		last := 0
		return func(n int) { mu.Lock(); last = n; mu.Unlock() }, func() int { mu.Lock(); defer mu.Unlock(); return last }
	}
	setA, gotA := seen()
	setB, gotB := seen()
	// The heartbeat ticks on the wall clock (every TTL/3); the fake clock
	// stands still, so no lease expires unless released.
	a := NewLease(b.store, b.clock, nil, 300*time.Millisecond, "a")
	a.OnLiveLeases(setA)
	require.NoError(t, a.Acquire(b.ctx))
	require.Eventually(t, func() bool { return gotA() == 1 }, 5*time.Second, 10*time.Millisecond)

	lb := NewLease(b.store, b.clock, nil, 300*time.Millisecond, "b")
	lb.OnLiveLeases(setB)
	require.NoError(t, lb.Acquire(b.ctx))
	require.Eventually(t, func() bool { return gotB() == 2 }, 5*time.Second, 10*time.Millisecond)

	// a learns of b at its next heartbeat.
	require.Eventually(t, func() bool { return gotA() == 2 }, 5*time.Second, 10*time.Millisecond)

	// b stops: a is alone again after its next heartbeat.
	require.NoError(t, lb.Close(b.ctx))
	require.Eventually(t, func() bool { return gotA() == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, a.Close(b.ctx))
}
