package rotation

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
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
	var left time.Duration
	require.NoError(t, e.fenced(b.ctx, run, func(ctx context.Context) error {
		ctxErr = ctx.Err()
		d, _ := ctx.Deadline()
		left = time.Until(d)
		return nil
	}))
	t.Logf("fenced side effect got a context with %s left", left)
	require.NoError(t, ctxErr, "the fenced side effect starts with an already-expired context")
}
