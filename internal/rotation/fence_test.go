package rotation

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

// Regression (review of issue 6): fenced() computes its deadline from the store clock (FenceRun's
// expiry) but context deadlines are wall-clock. With the fake clock every
// test in this package uses (t0 = 2026-03-01), every fenced side effect
// (addPassword, each sink write, removePassword) already runs under an
// expired context; the fakes ignore ctx, so nothing notices. With a clock
// ahead of wall time (the demo's offset clock after an Advance) the bound
// disappears instead.
func TestFenceBoundIsASpanNotAStoreClockDeadline(t *testing.T) {
	b := setup(t)
	e := b.engine(t)
	require.NoError(t, e.lease.Acquire(b.ctx))
	run := &domain.Run{Org: b.org, TenantID: tenant, AppObjectID: b.app.ObjectID, Holder: e.lease.Holder(), Kind: domain.KindSecret, Trigger: domain.TriggerManual}
	require.NoError(t, b.store.CreateRun(b.ctx, run))
	var ctxErr error
	require.NoError(t, e.fenced(b.ctx, run, func(ctx context.Context) error {
		ctxErr = ctx.Err()
		return nil
	}))
	require.NoError(t, ctxErr, "the fenced side effect starts with an already-expired context")
}

// A side effect longer than the lease's TTL (a Kubernetes rollout, an
// Automation job) runs to its end while this process holds the run: the
// fence is renewed as it runs. Once another process takes the run over,
// its context ends and the error says the lease was lost.
func TestFenceOutlivesTheLeaseOnlyWhileTheRunIsHeld(t *testing.T) {
	b := setup(t)
	mk := func() *Engine {
		e := b.engine(t)
		e.lease = NewLease(b.store, b.clock, e.log, 300*time.Millisecond, "fence-test")
		require.NoError(t, e.lease.Acquire(b.ctx))
		return e
	}
	e := mk()
	run := &domain.Run{Org: b.org, ID: "run-long", TenantID: tenant, AppObjectID: b.app.ObjectID, Holder: e.lease.Holder(), State: domain.RunPlanned, Kind: domain.KindSecret, Trigger: domain.TriggerManual}
	require.NoError(t, b.store.CreateRun(b.ctx, run))
	require.NoError(t, e.fenced(b.ctx, run, func(ctx context.Context) error {
		return sleep(ctx, time.Second) // more than three TTLs
	}), "a long side effect of a held run is not cut short")

	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- e.fenced(b.ctx, run, func(ctx context.Context) error {
			close(started)
			return sleep(ctx, 10*time.Second)
		})
	}()
	<-started
	b.die(e)
	other := mk()
	_, err := other.Recover(b.ctx, b.org)
	require.NoError(t, err)
	select {
	case err := <-errc:
		require.ErrorIs(t, err, store.ErrLeaseLost, "the side effect ends once the run is another process's")
	case <-time.After(5 * time.Second):
		t.Fatal("the side effect went on after the run was taken over")
	}
}
