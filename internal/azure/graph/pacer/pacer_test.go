package pacer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
	"github.com/rotor-dev/rotor/internal/clock"
)

var (
	t0     = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	write  = pacer.Cost{ResourceUnits: 1, Writes: 1}
	read   = pacer.Cost{ResourceUnits: 2}
	appKey = pacer.Key{TenantID: "tenant-1", ClientID: "rotor-app"}
)

type bundle struct {
	clk *clock.Fake
	reg *pacer.Registry
	p   *pacer.Pacer
}

// setup builds a registry on a fake clock with small budgets: 10 resource
// units per 10 s and 3 writes per 3 s (one a second) per pair, and the
// shared buckets large unless tweak changes them. Jitter is fixed at the
// middle, so fallback pauses are exactly 1 s, 2 s, 4 s ….
func setup(t *testing.T, tweak ...func(*pacer.Options)) bundle {
	t.Helper()
	clk := clock.NewFake(t0)
	opts := pacer.Options{
		Clock: clk,
		Budgets: pacer.Budgets{
			ResourceUnits:    pacer.Limit{Count: 10, Window: 10 * time.Second},
			Writes:           pacer.Limit{Count: 3, Window: 3 * time.Second},
			TenantWrites:     pacer.Limit{Count: 1000, Window: time.Minute},
			AppWrites:        pacer.Limit{Count: 1000, Window: time.Minute},
			AppResourceUnits: pacer.Limit{Count: 1000, Window: time.Minute},
		},
		Jitter: func() float64 { return 0.5 },
	}
	for _, f := range tweak {
		f(&opts)
	}
	reg := pacer.NewRegistry(opts)
	return bundle{clk: clk, reg: reg, p: reg.For(appKey)}
}

// waitAsync runs Wait in a goroutine and reports its result on a channel.
func waitAsync(ctx context.Context, p *pacer.Pacer, c pacer.Cost) <-chan error {
	done := make(chan error, 1)
	go func() { done <- p.Wait(ctx, c) }()
	return done
}

// requireBlocked waits until n goroutines sleep on the clock, then checks
// that done has not fired.
func requireBlocked(t *testing.T, b bundle, n int, done <-chan error) {
	t.Helper()
	require.NoError(t, b.clk.WaitSleepers(t.Context(), n))
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v while its budget was spent", err)
	default:
	}
}

func requireDone(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return once its budget refilled")
	}
}

func TestWaitsForBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	for range 3 {
		require.NoError(t, b.p.Wait(ctx, write), "the bucket starts full")
	}
	done := waitAsync(ctx, b.p, write)
	requireBlocked(t, b, 1, done)
	b.clk.Advance(900 * time.Millisecond)
	requireBlocked(t, b, 1, done)
	b.clk.Advance(200 * time.Millisecond)
	requireDone(t, done)

	// Reads do not wait for the write bucket.
	require.NoError(t, b.p.Wait(ctx, read))
}

func TestWaitersAreServedAtTheRefillRate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	for range 3 {
		require.NoError(t, b.p.Wait(ctx, write))
	}
	// Three more writes queue: they go one a second, in order.
	var dones []<-chan error
	for i := range 3 {
		dones = append(dones, waitAsync(ctx, b.p, write))
		require.NoError(t, b.clk.WaitSleepers(ctx, i+1))
	}
	for i := range 3 {
		b.clk.Advance(time.Second + time.Millisecond)
		requireDone(t, dones[i])
		for _, d := range dones[i+1:] {
			require.Empty(t, d, "a later writer went early")
		}
	}
}

func TestThrottledPausesTheBucketForEveryCaller(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		scope      string
		retryAfter time.Duration
		wantPause  time.Duration
		// readsWait: the pause covers reads (the pair's resource units).
		readsWait bool
	}{
		{"write scope with Retry-After", "Tenant_Application/Write/rotor-app/tenant-1", 10 * time.Second, 10 * time.Second, false},
		{"resource unit scope", "Tenant_Application/ReadWrite/rotor-app/tenant-1", 4 * time.Second, 4 * time.Second, true},
		{"no scope", "", 3 * time.Second, 3 * time.Second, true},
		{"no Retry-After", "Tenant_Application/Write/rotor-app/tenant-1", 0, time.Second, false},
		{"tenant scope", "Tenant/Write/tenant-1", 6 * time.Second, 6 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := t.Context()
			// Another client of the same identity and tenant shares the pacer.
			other := b.reg.For(pacer.Key{TenantID: "TENANT-1", ClientID: "rotor-app"})
			require.Same(t, b.p, other)

			got := b.p.Throttled(pacer.Throttle{Scope: tc.scope, RetryAfter: tc.retryAfter})
			require.Equal(t, tc.wantPause, got)

			w1 := waitAsync(ctx, b.p, write)
			w2 := waitAsync(ctx, other, write)
			requireBlocked(t, b, 2, w1)
			requireBlocked(t, b, 2, w2)
			waiting := []<-chan error{w1, w2}
			if tc.readsWait {
				r := waitAsync(ctx, other, read)
				requireBlocked(t, b, 3, r)
				waiting = append(waiting, r)
			} else {
				require.NoError(t, other.Wait(ctx, read), "reads are not paused by a write pause")
			}
			b.clk.Advance(tc.wantPause - time.Millisecond)
			requireBlocked(t, b, len(waiting), w1)
			b.clk.Advance(time.Millisecond)
			// The bucket refilled only during the pause, so some may wait
			// a refill more.
			finish(t, b, waiting...)
		})
	}
}

func TestFallbackPauseDoublesUntilAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	scope := "Tenant_Application/Write/x/y"
	require.Equal(t, time.Second, b.p.Throttled(pacer.Throttle{Scope: scope}))
	require.Equal(t, 2*time.Second, b.p.Throttled(pacer.Throttle{Scope: scope}))
	require.Equal(t, 4*time.Second, b.p.Throttled(pacer.Throttle{Scope: scope}))
	b.p.Accepted(write)
	require.Equal(t, time.Second, b.p.Throttled(pacer.Throttle{Scope: scope}))
	// A Retry-After is taken as given.
	require.Equal(t, 30*time.Second, b.p.Throttled(pacer.Throttle{Scope: scope, RetryAfter: 30 * time.Second}))
}

func TestThrottledDrainsTheBucket(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	require.Equal(t, 3.0, remaining(b.p, pacer.BucketWrites))
	b.p.Throttled(pacer.Throttle{Scope: "Tenant_Application/Write/a/t", RetryAfter: 2 * time.Second})
	require.Less(t, remaining(b.p, pacer.BucketWrites), 1.0)
	// After the pause the bucket holds what it refilled during it (2 s at
	// one a second), as Graph's does: two writes go, the third waits.
	b.clk.Advance(2 * time.Second)
	require.NoError(t, b.p.Wait(ctx, write))
	require.NoError(t, b.p.Wait(ctx, write))
	done := waitAsync(ctx, b.p, write)
	requireBlocked(t, b, 1, done)
	b.clk.Advance(time.Second + time.Millisecond)
	requireDone(t, done)
}

func TestCancelledWaitReturnsItsBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	for range 3 {
		require.NoError(t, b.p.Wait(ctx, write))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancelled := waitAsync(cctx, b.p, write)
	requireBlocked(t, b, 1, cancelled)
	cancel()
	err := <-cancelled
	var we *pacer.WaitError
	require.ErrorAs(t, err, &we)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, pacer.BucketWrites, we.Bucket)
	require.True(t, pacer.IsWaitError(err))

	// The cancelled request's token went back: the next writer waits one
	// refill, not two.
	done := waitAsync(ctx, b.p, write)
	requireBlocked(t, b, 1, done)
	b.clk.Advance(time.Second + time.Millisecond)
	requireDone(t, done)
}

func TestWaitBeyondDeadlineFailsAtOnce(t *testing.T) {
	t.Parallel()
	// The deadline check needs the wall clock (a context's deadline is on
	// it); a bucket of one write an hour makes the second write's wait
	// far longer than the deadline, so nothing sleeps.
	reg := pacer.NewRegistry(pacer.Options{Budgets: pacer.Budgets{Writes: pacer.Limit{Count: 1, Window: time.Hour}}})
	p := reg.For(appKey)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, p.Wait(ctx, write))
	start := time.Now()
	err := p.Wait(ctx, write)
	require.ErrorIs(t, err, pacer.ErrBeyondDeadline)
	require.Less(t, time.Since(start), 10*time.Second)
	var we *pacer.WaitError
	require.True(t, errors.As(err, &we))
	require.Greater(t, we.Wait, 59*time.Minute)
}

// TestPausedBeyondDeadlineFailsAtOnce: a bucket paused by a 429 for longer
// than the caller's deadline fails the wait at once, as a bucket short of
// tokens does, instead of holding the caller until its deadline passes.
func TestPausedBeyondDeadlineFailsAtOnce(t *testing.T) {
	t.Parallel()
	reg := pacer.NewRegistry(pacer.Options{Budgets: pacer.Budgets{Writes: pacer.Limit{Count: 10, Window: time.Minute}}})
	p := reg.For(appKey)
	p.Throttled(pacer.Throttle{Scope: "Tenant_Application/Write/rotor-app/tenant-1", RetryAfter: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err := p.Wait(ctx, write)
	require.ErrorIs(t, err, pacer.ErrBeyondDeadline)
	require.Less(t, time.Since(start), time.Second, "the wait held its caller until the deadline")
	var we *pacer.WaitError
	require.ErrorAs(t, err, &we)
	require.Equal(t, pacer.BucketWrites, we.Bucket)
	require.Greater(t, we.Wait, 59*time.Minute)
}

func TestSharedBuckets(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *pacer.Options) {
		o.Budgets.TenantWrites = pacer.Limit{Count: 2, Window: 10 * time.Second}
	})
	ctx := t.Context()
	// Two identities writing to one tenant share its tenant-wide bucket.
	other := b.reg.For(pacer.Key{TenantID: "tenant-1", ClientID: "another-app"})
	require.NotSame(t, b.p, other)
	require.NoError(t, b.p.Wait(ctx, write))
	require.NoError(t, other.Wait(ctx, write))
	done := waitAsync(ctx, b.p, write)
	requireBlocked(t, b, 1, done)
	// An identity in another tenant is not held back by it.
	require.NoError(t, b.reg.For(pacer.Key{TenantID: "tenant-2", ClientID: "rotor-app"}).Wait(ctx, write))
	b.clk.Advance(5*time.Second + time.Millisecond)
	requireDone(t, done)
}

func TestCostAboveTheLimitIsChargedAsTheLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A batch of 20 writes against a bucket of 3: charged 3, it waits for
	// the bucket to be full rather than forever.
	require.NoError(t, b.p.Wait(t.Context(), pacer.Cost{ResourceUnits: 20, Writes: 20}))
	done := waitAsync(t.Context(), b.p, pacer.Cost{ResourceUnits: 20, Writes: 20})
	requireBlocked(t, b, 1, done)
	b.clk.Advance(10*time.Second + time.Millisecond)
	requireDone(t, done)
}

func TestTenantSizeSetsResourceUnits(t *testing.T) {
	t.Parallel()
	reg := pacer.NewRegistry(pacer.Options{
		Clock:       clock.NewFake(t0),
		Budgets:     pacer.DefaultBudgets(pacer.Small),
		TenantSizes: map[string]pacer.TenantSize{"Big-Tenant": pacer.Large},
	})
	small := reg.For(pacer.Key{TenantID: "small-tenant", ClientID: "a"})
	large := reg.For(pacer.Key{TenantID: "big-tenant", ClientID: "a"})
	require.Equal(t, pacer.Limit{Count: 3500, Window: 10 * time.Second}, limit(small, pacer.BucketResourceUnits))
	require.Equal(t, pacer.Limit{Count: 8000, Window: 10 * time.Second}, limit(large, pacer.BucketResourceUnits))
	require.Len(t, reg.Pacers(), 2)
	require.Equal(t, "big-tenant", reg.Pacers()[0].Key().TenantID)
}

func TestRemaining(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.p.Wait(t.Context(), write))
	got := b.p.Remaining()
	names := make([]string, 0, len(got))
	for _, bg := range got {
		names = append(names, bg.Bucket)
		require.True(t, bg.PausedUntil.IsZero())
	}
	require.Equal(t, []string{pacer.BucketResourceUnits, pacer.BucketWrites, pacer.BucketTenantWrites, pacer.BucketAppWrites, pacer.BucketAppResourceUnits}, names)
	require.Equal(t, 9.0, remaining(b.p, pacer.BucketResourceUnits))
	require.Equal(t, 2.0, remaining(b.p, pacer.BucketWrites))
	b.clk.Advance(500 * time.Millisecond)
	require.InDelta(t, 2.5, remaining(b.p, pacer.BucketWrites), 1e-9)

	b.p.Throttled(pacer.Throttle{Scope: "Tenant_Application/Write/a/t", RetryAfter: time.Minute})
	for _, bg := range b.p.Remaining() {
		if bg.Bucket == pacer.BucketWrites {
			require.Equal(t, b.clk.Now().Add(time.Minute), bg.PausedUntil)
		}
	}
}

func TestTurnedOffBucketsAreLeftOut(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *pacer.Options) { o.Budgets = pacer.Budgets{Writes: pacer.Limit{Count: 1, Window: time.Second}} })
	require.Len(t, b.p.Remaining(), 1)
	// Reads cost nothing when no resource unit bucket is on.
	for range 100 {
		require.NoError(t, b.p.Wait(t.Context(), read))
	}
	// A 429 for a turned-off bucket pauses the pair's resource units,
	// which are off too: nothing to wait for, and nothing breaks.
	b.p.Throttled(pacer.Throttle{Scope: "Application/Write/a", RetryAfter: time.Second})
	require.NoError(t, b.p.Wait(t.Context(), read))
}

// finish moves the clock from one sleeper's deadline to the next until
// every wait in dones has returned without error.
func finish(t *testing.T, b bundle, dones ...<-chan error) {
	t.Helper()
	for _, d := range dones {
		for i := 0; ; i++ {
			require.Less(t, i, 100, "a wait never returned")
			select {
			case err := <-d:
				require.NoError(t, err)
			case <-time.After(20 * time.Millisecond):
				b.clk.AdvanceToNext()
				continue
			}
			break
		}
	}
}

func remaining(p *pacer.Pacer, bucket string) float64 {
	for _, b := range p.Remaining() {
		if b.Bucket == bucket {
			return b.Remaining
		}
	}
	return -1
}

func limit(p *pacer.Pacer, bucket string) pacer.Limit {
	for _, b := range p.Remaining() {
		if b.Bucket == bucket {
			return b.Limit
		}
	}
	return pacer.Limit{}
}

// TestFullBucketKeepsHeadroom: a full bucket holds one second of refill
// less than Graph's (at most 1 % of the limit), so the refill Graph's full
// bucket misses while the first requests travel is not spent twice.
func TestFullBucketKeepsHeadroom(t *testing.T) {
	t.Parallel()
	reg := pacer.NewRegistry(pacer.Options{Clock: clock.NewFake(t0), Budgets: pacer.DefaultBudgets(pacer.Small)})
	p := reg.For(appKey)
	require.Equal(t, 2980.0, remaining(p, pacer.BucketWrites), "3,000 less 20 (a second at 20/s)")
	require.Equal(t, 3465.0, remaining(p, pacer.BucketResourceUnits), "3,500 less 35 (1 %, less than a second at 350/s)")
	require.Equal(t, 17940.0, remaining(p, pacer.BucketTenantWrites))
	require.Equal(t, pacer.Limit{Count: 3000, Window: 150 * time.Second}, limit(p, pacer.BucketWrites))
}

// TestShareDividesTheBudget: three replicas share one Graph budget, so
// each keeps a third of it — a third of the size and a third of the
// refill — and takes the whole back when the others are gone.
func TestShareDividesTheBudget(t *testing.T) {
	b := setup(t, func(o *pacer.Options) {
		o.Budgets.Writes = pacer.Limit{Count: 30, Window: 30 * time.Second} // one a second
		o.Budgets.ResourceUnits = pacer.Limit{}
	})
	b.reg.SetShare(3)
	require.Equal(t, 3, b.reg.Share())
	writes := func(p *pacer.Pacer) pacer.Budget {
		for _, bg := range p.Remaining() {
			if bg.Bucket == pacer.BucketWrites {
				return bg
			}
		}
		t.Fatal("no writes bucket")
		return pacer.Budget{}
	}
	require.Equal(t, 10, writes(b.p).Limit.Count)
	for range 10 {
		require.NoError(t, b.p.Wait(t.Context(), pacer.Cost{Writes: 1}))
	}
	done := waitAsync(t.Context(), b.p, pacer.Cost{Writes: 1})
	requireBlocked(t, b, 1, done)
	// A third of the refill: one write every three seconds.
	b.clk.Advance(2 * time.Second)
	requireBlocked(t, b, 1, done)
	b.clk.Advance(1100 * time.Millisecond)
	requireDone(t, done)

	// A pacer made after the share was set gets its share too.
	other := b.reg.For(pacer.Key{TenantID: "tenant-2", ClientID: "rotor-app"})
	require.Equal(t, 10, writes(other).Limit.Count)

	// The other replicas are gone: the whole budget again, refilling
	// at the full rate (a full bucket only after its window).
	b.reg.SetShare(1)
	require.Equal(t, 30, writes(b.p).Limit.Count)
	b.clk.Advance(30 * time.Second)
	for range 29 {
		require.NoError(t, b.p.Wait(t.Context(), pacer.Cost{Writes: 1}))
	}
	b.reg.SetShare(0)
	require.Equal(t, 1, b.reg.Share(), "at least this process")
}
