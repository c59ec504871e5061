package graph_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// The simulator's buckets at ThrottleScale 0.01: 35 resource units per
// 10 s and 30 writes per 150 s (one every 5 s) for the rotation identity.
const paceScale = 0.01

var scaledBudgets = func() pacer.Budgets {
	b := pacer.DefaultBudgets(pacer.Small)
	b.ResourceUnits = pacer.Limit{Count: 35, Window: pacer.ResourceUnitWindow}
	b.Writes = pacer.Limit{Count: 30, Window: pacer.WriteWindow}
	return b
}()

// pacedEnv is a simulator on a fake clock that moves to the next sleeper's
// deadline whenever something sleeps on it (the pacer), a pacer registry
// on the same clock, and the simulator's app ids.
type pacedEnv struct {
	*simEnv
	clk  *clock.Fake
	reg  *pacer.Registry
	apps []graph.Application
}

func setupPaced(t *testing.T, apps int) *pacedEnv {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	e := setupSim(t, "tenant1", func(o *simtest.Options) {
		o.Seed = fmt.Sprintf("apps=%d,tenants=1,expiring=24h,replication=0s", apps)
		o.Clock = clk
	})
	pe := &pacedEnv{simEnv: e, clk: clk, reg: pacer.NewRegistry(pacer.Options{Clock: clk, Budgets: scaledBudgets})}
	// Listed before throttling is on, so the buckets start full.
	pe.apps = e.ownedApps(t)
	require.NoError(t, e.srv.SetFaults(sim.FaultConfig{Throttle: true, ThrottleScale: paceScale}))
	autoAdvance(t, clk)
	return pe
}

// autoAdvance moves clk to the earliest sleeper's deadline each time
// someone sleeps on it, until the test ends: simulated time passes only
// when rotor waits, so a test of minutes of budget runs in milliseconds.
// Moving time forward while other requests are in flight only refills
// Graph's buckets sooner; it can never make a paced request early.
func autoAdvance(t *testing.T, clk *clock.Fake) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for clk.WaitSleepers(ctx, 1) == nil {
			clk.AdvanceToNext()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// paced is a Graph client of the rotation identity with the registry's
// pacer and extra per-try policies.
func (e *pacedEnv) paced(t *testing.T, extra ...policy.Policy) *graph.Client {
	t.Helper()
	cred, err := azure.NewCredential(e.connection(e.tenant.Rotation.ClientID, secret.New(e.tenant.Rotation.ClientSecret)), e.ep)
	require.NoError(t, err)
	opts := []graph.Option{graph.WithPacer(e.reg.For(pacer.Key{TenantID: e.tenant.ID, ClientID: e.tenant.Rotation.ClientID}))}
	for _, p := range extra {
		opts = append(opts, graph.WithPerRetryPolicy(p))
	}
	c, err := graph.New(cred, e.ep, opts...)
	require.NoError(t, err)
	return c
}

// quickRetry makes azcore retry a 429 after 1 ms of wall time: the
// simulator's Retry-After is in simulated seconds, which the pacer (on the
// simulated clock) has already seen and waits out.
type quickRetry struct{}

func (quickRetry) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		resp.Header.Set("retry-after-ms", "1")
	}
	return resp, err
}

// addPasswords runs addPassword on every app from workers goroutines and
// returns the first error.
func addPasswords(ctx context.Context, c *graph.Client, apps []graph.Application, workers int, end time.Time) error {
	jobs := make(chan graph.Application)
	errs := make(chan error, len(apps))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range jobs {
				_, err := c.AddPassword(ctx, a.ID, graph.AddPasswordRequest{DisplayName: "rotor:pace", EndDateTime: end})
				if err != nil {
					errs <- fmt.Errorf("addPassword %s: %w", a.ID, err)
				}
			}
		}()
	}
	for _, a := range apps {
		jobs <- a
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs
}

func TestSimPacedWritesBeyondTheWindowMeetNo429(t *testing.T) {
	t.Parallel()
	const n = 75 // two and a half windows' writes
	e := setupPaced(t, n)
	require.GreaterOrEqual(t, len(e.apps), n)
	c := e.paced(t)
	before, start := e.srv.Stats(), e.clk.Now()

	require.NoError(t, addPasswords(t.Context(), c, e.apps[:n], 8, start.Add(30*24*time.Hour)))

	st := e.srv.Stats()
	t.Logf("%d writes, %d 429s, %s simulated", n, st.Throttled-before.Throttled, e.clk.Now().Sub(start))
	require.Zero(t, st.Throttled-before.Throttled, "the simulator refused none of the paced writes")
	require.Equal(t, int64(n), st.GraphWrites-before.GraphWrites)
	// The bucket held 30; the other 45 came at its refill rate of one
	// per 5 s, so simulated time passed as the budget demanded.
	require.GreaterOrEqual(t, e.clk.Now().Sub(start), time.Duration(n-30)*5*time.Second)
}

func TestSimPacedBatchIsChargedPerItem(t *testing.T) {
	t.Parallel()
	e := setupPaced(t, 40)
	c := e.paced(t)
	before := e.srv.Stats()
	end := e.clk.Now().Add(30 * 24 * time.Hour)
	// Two batches of 20 addPassword: the second needs 20 of the 10 writes
	// left, so it waits for them instead of coming back with 10 item 429s.
	for round := range 2 {
		reqs := make([]graph.BatchRequest, 20)
		for i := range reqs {
			a := e.apps[round*20+i]
			reqs[i] = graph.BatchRequest{ID: fmt.Sprint(i), Method: "POST", URL: "/applications/" + a.ID + "/addPassword",
				Body: map[string]any{"passwordCredential": map[string]any{"displayName": "rotor:batch", "endDateTime": end}}}
		}
		res, err := c.Batch(t.Context(), reqs)
		require.NoError(t, err)
		for _, r := range res {
			require.NoError(t, r.Err(), "item %s", r.ID)
		}
	}
	require.Zero(t, e.srv.Stats().Throttled-before.Throttled)
}

// stripRetryAfter is a transport that removes Retry-After from 429s, as
// some identity 429s come.
type stripRetryAfter struct{ next http.RoundTripper }

func (s stripRetryAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		resp.Header.Del("Retry-After")
	}
	return resp, err
}

func TestSim429PausesEveryCallerOfTheIdentity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		retryAfter bool
	}{{"with Retry-After", true}, {"without Retry-After", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const callers = 6
			e := setupPaced(t, 30+callers)
			if !tc.retryAfter {
				ep := e.ep
				ep.HTTPClient = &http.Client{Transport: stripRetryAfter{next: e.ep.HTTPClient.Transport}}
				e.ep = ep
			}
			// Someone else with the same identity (another rotor, a script)
			// spends the whole write bucket behind the pacer's back.
			end := e.clk.Now().Add(30 * 24 * time.Hour)
			for _, a := range e.apps[:30] {
				_, err := e.client.AddPassword(t.Context(), a.ID, graph.AddPasswordRequest{DisplayName: "other", EndDateTime: end})
				require.NoError(t, err)
			}
			before := e.srv.Stats()

			// Two paced clients of the identity share one pacer; their
			// writers run at once. The first 429s pause the write bucket
			// for all of them, so the rest wait instead of each being
			// refused in turn.
			c1, c2 := e.paced(t, quickRetry{}), e.paced(t, quickRetry{})
			require.Same(t, c1.Pacer(), c2.Pacer())
			apps := e.apps[30 : 30+callers]
			errs := make(chan error, 2)
			go func() { errs <- addPasswords(t.Context(), c1, apps[:callers/2], callers/2, end) }()
			go func() { errs <- addPasswords(t.Context(), c2, apps[callers/2:], callers/2, end) }()
			require.NoError(t, <-errs)
			require.NoError(t, <-errs)

			throttled := e.srv.Stats().Throttled - before.Throttled
			t.Logf("%d writes, %d 429s, %s simulated", callers, throttled, e.clk.Now().Sub(end.Add(-30*24*time.Hour)))
			require.Positive(t, throttled, "the pacer could not know the bucket was spent")
			require.LessOrEqual(t, throttled, int64(callers), "after the first 429s nobody was sent to be refused again")
		})
	}
}

// TestSimPacedWaitBeyondDeadlineIsThrottled: a write the budget allows only
// after the caller's deadline fails at once as throttled, without being
// sent, and azcore does not retry it.
func TestSimPacedWaitBeyondDeadlineIsThrottled(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	app := e.ownedApps(t)[0]
	// The wall clock, which the deadline check needs; one write an hour.
	reg := pacer.NewRegistry(pacer.Options{Budgets: pacer.Budgets{Writes: pacer.Limit{Count: 1, Window: time.Hour}}})
	cred, err := azure.NewCredential(e.connection(e.tenant.Rotation.ClientID, secret.New(e.tenant.Rotation.ClientSecret)), e.ep)
	require.NoError(t, err)
	c, err := graph.New(cred, e.ep, graph.WithPacer(reg.For(pacer.Key{TenantID: e.tenant.ID, ClientID: e.tenant.Rotation.ClientID})))
	require.NoError(t, err)
	end := time.Now().Add(24 * time.Hour)
	np, err := c.AddPassword(t.Context(), app.ID, graph.AddPasswordRequest{DisplayName: "rotor:first", EndDateTime: end})
	require.NoError(t, err)

	before := e.srv.Stats()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err = c.RemovePassword(ctx, app.ID, np.KeyID)
	require.Error(t, err)
	require.True(t, graph.IsThrottled(err), "%v", err)
	require.True(t, pacer.IsWaitError(err))
	require.ErrorIs(t, err, pacer.ErrBeyondDeadline)
	require.Less(t, time.Since(start), 10*time.Second, "it did not wait for the deadline")
	require.Equal(t, before.GraphWrites, e.srv.Stats().GraphWrites, "nothing was sent")
}
