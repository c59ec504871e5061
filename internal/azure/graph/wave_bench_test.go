package graph_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/azure/graph/pacer"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// The rotation wave: every app gets a new secret (addPassword) and loses
// one (removePassword), 2 writes each, through one identity in one small
// tenant — so the wave is bound by Graph's write bucket of 3,000 per
// 150 s per app+tenant (20 a second after the first 3,000).
const (
	waveApps        = 5000
	waveWritesEach  = 2
	waveScale       = 25                   // simulated seconds per wall second
	waveLatency     = 4 * time.Millisecond // on the wall clock: 100 ms simulated
	waveBucket      = pacer.DefaultWrites
	waveWritePerSec = float64(pacer.DefaultWrites) / 150
)

// BenchmarkRotationWave5000 runs a 5,000-application rotation wave
// (addPassword + removePassword per app, from 16 and from 64 workers — the
// default and the maximum of concurrency_per_tenant) against the simulator
// with Graph's real identity-and-access budgets (3,500 resource units per
// 10 s, 3,000 writes per 150 s; throttling on, scale 1), with the pacer off
// (every request sent at once; 429s retried by azcore after Retry-After)
// and on, side by side.
//
// Time is scaled: the simulator and the pacer share a clock that runs 25×
// faster than the wall clock, so 350 simulated seconds take 14 s. The
// injected latency (4 ms on the wall clock) is 100 ms simulated. azcore's
// retry policy sleeps on the wall clock, so a per-try policy divides the
// Retry-After it sees by the same 25 (after the pacer has read the real
// one); both sub-benchmarks get it. Results are reported in simulated
// seconds (sim-s) against the floor the write budget allows:
//
//	floor = (writes − 3,000 burst) ÷ 20 per s = (10,000 − 3,000) ÷ 20 = 350 s
//
// (10,000 ÷ 20 = 500 s if the bucket started empty; x-floor uses 350).
//
//	go test -run '^$' -bench BenchmarkRotationWave5000 -benchtime=1x -count=2 ./internal/azure/graph/
func BenchmarkRotationWave5000(b *testing.B) {
	for _, workers := range []int{16, 64} {
		for _, paced := range []bool{false, true} {
			name := fmt.Sprintf("workers=%d/pacer=off", workers)
			if paced {
				name = fmt.Sprintf("workers=%d/pacer=on", workers)
			}
			b.Run(name, func(b *testing.B) { benchWave(b, workers, paced) })
		}
	}
}

func benchWave(b *testing.B, workers int, paced bool) {
	var simTotal time.Duration
	var throttled, gaveUp, writes int64
	var peakHeap uint64
	for range b.N {
		b.StopTimer()
		w := setupWave(b, paced)
		before := w.env.srv.Stats()
		mem := startHeapSampler(25 * time.Millisecond)
		simStart := w.clk.Now()
		b.StartTimer()

		res := w.run(b.Context(), workers)

		b.StopTimer()
		simTotal += w.clk.Now().Sub(simStart)
		peakHeap = max(peakHeap, mem.stop())
		require.NoError(b, res.err)
		st := w.env.srv.Stats()
		throttled += st.Throttled - before.Throttled
		writes += st.GraphWrites - before.GraphWrites - (st.Throttled - before.Throttled)
		gaveUp += res.gaveUp
		b.StartTimer()
	}
	n := float64(b.N)
	floor := float64(waveApps*waveWritesEach-waveBucket) / waveWritePerSec
	simS := simTotal.Seconds() / n
	b.ReportMetric(simS, "sim-s")
	b.ReportMetric(floor, "floor-s")
	b.ReportMetric(simS/floor, "x-floor")
	b.ReportMetric(float64(writes)/n, "writes/op")
	b.ReportMetric(float64(throttled)/n, "429s/op")
	b.ReportMetric(100*float64(throttled)/float64(writes), "429-%")
	b.ReportMetric(float64(gaveUp)/n, "gave-up/op")
	b.ReportMetric(float64(peakHeap)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(maxRSS())/1e6, "maxrss-MB")
}

type wave struct {
	env    *simEnv
	clk    *scaledClock
	client *graph.Client
	apps   []graph.Application
	end    time.Time
}

func setupWave(b *testing.B, paced bool) *wave {
	b.Helper()
	clk := newScaledClock(waveScale)
	e := setupSim(b, "tenant1", func(o *simtest.Options) {
		o.Seed = fmt.Sprintf("apps=%d,tenants=1,expiring=24h,replication=0s", waveApps)
		o.Clock = clk
	})
	// Listed before throttling is on: the buckets start full.
	apps := e.ownedApps(b)
	require.GreaterOrEqual(b, len(apps), waveApps)
	require.NoError(b, e.srv.SetFaults(sim.FaultConfig{Throttle: true, ThrottleScale: 1, Latency: waveLatency}))

	cred, err := azure.NewCredential(e.connection(e.tenant.Rotation.ClientID, secret.New(e.tenant.Rotation.ClientSecret)), e.ep)
	require.NoError(b, err)
	opts := []graph.Option{graph.WithPerRetryPolicy(scaledRetryAfter{waveScale})}
	if paced {
		reg := pacer.NewRegistry(pacer.Options{Clock: clk, Budgets: pacer.DefaultBudgets(pacer.Small)})
		opts = append(opts, graph.WithPacer(reg.For(pacer.Key{TenantID: e.tenant.ID, ClientID: e.tenant.Rotation.ClientID})))
	}
	c, err := graph.New(cred, e.ep, opts...)
	require.NoError(b, err)
	// The token is fetched before the clock starts.
	_, err = c.GetApplication(b.Context(), apps[0].ID, []string{"id"})
	require.NoError(b, err)
	return &wave{env: e, clk: clk, client: c, apps: apps[:waveApps], end: clk.Now().Add(30 * 24 * time.Hour)}
}

type waveResult struct {
	err    error
	gaveUp int64
}

// run rotates every app from workers goroutines. A write azcore gave
// up on (still 429 after its retries) is sent again, as the engine's
// retry of a failed run would; gaveUp counts those.
func (w *wave) run(ctx context.Context, workers int) waveResult {
	jobs := make(chan graph.Application)
	errs := make(chan error, workers)
	var gaveUp atomic.Int64
	again := func(f func() error) error {
		for range 100 {
			err := f()
			if err == nil || !graph.IsThrottled(err) {
				return err
			}
			gaveUp.Add(1)
		}
		return fmt.Errorf("still throttled after 100 sends")
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range jobs {
				var np *graph.PasswordCredential
				err := again(func() (err error) {
					np, err = w.client.AddPassword(ctx, a.ID, graph.AddPasswordRequest{DisplayName: "rotor:wave", EndDateTime: w.end})
					return err
				})
				if err == nil {
					err = again(func() error { return w.client.RemovePassword(ctx, a.ID, np.KeyID) })
				}
				if err != nil {
					errs <- fmt.Errorf("app %s: %w", a.ID, err)
					return
				}
			}
		}()
	}
	for _, a := range w.apps {
		jobs <- a
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return waveResult{err: <-errs, gaveUp: gaveUp.Load()}
}

// scaledClock is simulated time running factor times faster than the
// wall clock: the simulator's buckets and the pacer both use it.
type scaledClock struct {
	factor float64
	origin time.Time // simulated time at start
	start  time.Time // wall time at start
	mu     sync.Mutex
	offset time.Duration
}

func newScaledClock(factor float64) *scaledClock {
	return &scaledClock{factor: factor, origin: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), start: time.Now()}
}

func (c *scaledClock) Now() time.Time {
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	return c.origin.Add(time.Duration(float64(time.Since(c.start))*c.factor) + off)
}

// Sleep waits d of simulated time.
func (c *scaledClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(time.Duration(float64(d) / c.factor))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Advance jumps simulated time forward (simtest.Clock).
func (c *scaledClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// scaledRetryAfter makes azcore, which sleeps on the wall clock, wait a
// 429's Retry-After in simulated time: it sets retry-after-ms (which azcore
// prefers) to Retry-After ÷ factor. It runs after the pacer has seen the
// response as Graph sent it.
type scaledRetryAfter struct{ factor float64 }

func (s scaledRetryAfter) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		return resp, err
	}
	if ra, perr := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); perr == nil && ra > 0 {
		resp.Header.Set("retry-after-ms", strconv.FormatFloat(ra*1000/s.factor, 'f', 3, 64))
	}
	return resp, nil
}

// heapSampler records the peak HeapInuse while it runs (the simulator is
// in the same process, so its heap is included).
type heapSampler struct {
	stopc chan struct{}
	done  chan struct{}
	peak  uint64
}

func startHeapSampler(every time.Duration) *heapSampler {
	h := &heapSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			h.peak = max(h.peak, ms.HeapInuse)
			select {
			case <-t.C:
			case <-h.stopc:
				return
			}
		}
	}()
	return h
}

func (h *heapSampler) stop() uint64 {
	close(h.stopc)
	<-h.done
	return h.peak
}

// maxRSS is the process's peak resident set so far (Linux reports KiB).
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}
