package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
)

func TestFakeSleepWakesOnAdvance(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	done := make(chan error, 1)
	go func() { done <- f.Sleep(t.Context(), time.Minute) }()
	require.NoError(t, f.WaitSleepers(t.Context(), 1))
	f.Advance(59 * time.Second)
	require.Equal(t, 1, f.Sleepers())
	f.Advance(time.Second)
	require.NoError(t, <-done)
	require.Zero(t, f.Sleepers())
}

func TestFakeSleepEndsWithItsContext(t *testing.T) {
	t.Parallel()
	f := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Sleep(ctx, time.Hour) }()
	require.NoError(t, f.WaitSleepers(t.Context(), 1))
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Zero(t, f.Sleepers())
}

func TestFakeAdvanceToNext(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := clock.NewFake(start)
	require.False(t, f.AdvanceToNext())
	done := make(chan error, 2)
	go func() { done <- f.Sleep(t.Context(), 3*time.Second) }()
	go func() { done <- f.Sleep(t.Context(), time.Second) }()
	require.NoError(t, f.WaitSleepers(t.Context(), 2))
	require.True(t, f.AdvanceToNext())
	require.NoError(t, <-done)
	require.Equal(t, start.Add(time.Second), f.Now())
	require.True(t, f.AdvanceToNext())
	require.NoError(t, <-done)
	require.Equal(t, start.Add(3*time.Second), f.Now())
}

func TestSleepOnAPlainClockUsesTheWallClock(t *testing.T) {
	t.Parallel()
	require.NoError(t, clock.Sleep(t.Context(), &clock.Offset{}, time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, clock.Sleep(ctx, clock.Real{}, time.Hour), context.Canceled)
}
