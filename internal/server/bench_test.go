package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
)

// The simulator's Graph throttling model (internal/sim/faults.go, unexported
// there): per app+tenant, a bucket of 3,500 resource units refilled over
// 10 s and a bucket of 3,000 writes refilled over 150 s. Every rotor call
// uses rotor's own identity, so all rotations of a tenant share one pair of
// buckets. Both start full.
const (
	simRUCapacity    = 3500.0
	simRUPerSecond   = simRUCapacity / 10
	simWriteCapacity = 3000.0
	simWritePerSec   = simWriteCapacity / 150
	benchLatency     = 20 * time.Millisecond
	benchApps        = 1000
)

// BenchmarkRotate1000 rotates every application of a 1,000-app tenant
// through the real engine, store (SQLite), Graph client, Key Vault sink and
// verifier, against the simulator with 20 ms of latency on every request
// and Graph throttling on. Retirement is scheduled (a River job insert, as
// in production) but not run: the overlap is 7 days.
//
// The rotations are driven by a pool of goroutines as large as the
// per-tenant concurrency, which is what River's rotate workers amount to
// when the queue is full. The timer covers the rotations only: simulator
// start, configuration, and the inventory sync are set-up.
//
//	go test -run '^$' -bench BenchmarkRotate1000 -benchtime=1x -count=5 ./internal/server/
func BenchmarkRotate1000(b *testing.B) {
	for _, conc := range []int{4, 16} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) { benchRotate(b, conc) })
	}
}

func benchRotate(b *testing.B, conc int) {
	var (
		wall     time.Duration
		delta    sim.Stats
		reqs     = newRequestCounter()
		phases   = newPhaseClock()
		peakHeap uint64
		peakSys  uint64
	)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		env := setupRotateBench(b, conc, reqs, phases)
		apps := env.apps
		before := env.sim.Stats()
		phases.reset()
		sampler := startMemSampler(25 * time.Millisecond)
		runtime.GC()

		reqs.on.Store(true)
		b.StartTimer()
		start := time.Now()
		failed := rotateAll(b.Context(), env.srv, apps, conc, phases)
		elapsed := time.Since(start)
		b.StopTimer()
		reqs.on.Store(false)

		h, s := sampler.stop()
		peakHeap, peakSys = max(peakHeap, h), max(peakSys, s)
		wall += elapsed
		after := env.sim.Stats()
		delta = addStats(delta, subStats(after, before))
		env.close()
		if failed > 0 {
			b.Fatalf("%d of %d rotations failed", failed, len(apps))
		}
		b.StartTimer()
	}

	n := float64(b.N)
	rots := float64(benchApps) * n
	perRot := func(v int64) float64 { return float64(v) / rots }
	rate := rots / wall.Seconds()

	// What one rotation sends, measured.
	writesPerRot := perRot(delta.GraphWrites)
	readsPerRot := perRot(delta.GraphReads)
	// Resource units: a write costs 1, a GET 1 (a list 2, or 1 with
	// $select); rotations send no lists, so RU ≈ reads + writes.
	ruPerRot := writesPerRot + readsPerRot
	// Throttling: the sustained ceiling is what the refill rates allow
	// forever; the floor for this wave also credits the full buckets.
	sustained := math.Inf(1)
	if writesPerRot > 0 {
		sustained = min(sustained, simWritePerSec/writesPerRot)
	}
	if ruPerRot > 0 {
		sustained = min(sustained, simRUPerSecond/ruPerRot)
	}
	throttleFloor := max(0,
		(benchApps*writesPerRot-simWriteCapacity)/simWritePerSec,
		(benchApps*ruPerRot-simRUCapacity)/simRUPerSecond)
	// Latency: every request the simulator answered costs 20 ms and the
	// requests of one rotation are sequential, so a rotation takes at least
	// round trips × 20 ms and conc rotations run at once.
	rttPerRot := reqs.perRotation(rots)
	latencyFloor := float64(benchApps) * rttPerRot * benchLatency.Seconds() / float64(conc)
	floor := max(latencyFloor, throttleFloor)

	b.ReportMetric(rate, "rotations/s")
	b.ReportMetric(perRot(delta.GraphRequests), "graph-req/rot")
	b.ReportMetric(writesPerRot, "graph-writes/rot")
	b.ReportMetric(readsPerRot, "graph-reads/rot")
	b.ReportMetric(float64(delta.Throttled)/n, "throttled/op")
	b.ReportMetric(perRot(delta.Vault), "vault-req/rot")
	b.ReportMetric(perRot(delta.TokenRequests), "token-req/rot")
	b.ReportMetric(rttPerRot, "round-trips/rot")
	b.ReportMetric(sustained, "throttle-ceiling-rot/s")
	b.ReportMetric(rate/sustained, "x-throttle-ceiling")
	b.ReportMetric(latencyFloor, "latency-floor-s")
	b.ReportMetric(floor/(wall.Seconds()/n), "floor/actual")
	b.ReportMetric(float64(peakHeap)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(peakSys)/1e6, "peak-sys-MB")
	b.ReportMetric(float64(maxRSS())/1e6, "maxrss-MB")
	// Memory in MB of 10^6 bytes, as benchstat reads the unit. The
	// simulator shares the process, so all three include it; maxrss is the
	// process's peak so far, earlier sub-benchmarks included.
	for _, p := range phases.means() {
		b.ReportMetric(p.ms, "ms/rot-"+p.name)
	}
	b.Logf("conc=%d: %d rotations in %s (%.1f/s); requests per rotation:\n%s", conc, int(rots), wall.Round(time.Millisecond), rate, reqs.breakdown(rots))
}

type rotateEnv struct {
	sim   *sim.Server
	srv   *Server
	apps  []domain.Application
	close func()
}

// setupRotateBench starts a simulator, writes a configuration for it,
// opens rotor on it, syncs the inventory, and returns the applications the
// policy selects: BenchmarkRotate1000's scene (benchApps applications,
// benchLatency on every request, throttling on, a secret policy).
func setupRotateBench(b *testing.B, conc int, reqs *requestCounter, phases *phaseClock) *rotateEnv {
	b.Helper()
	return setupRotateScene(b, rotateScene{apps: benchApps, conc: conc, faults: sim.FaultConfig{Latency: benchLatency, Throttle: true}}, reqs, phases)
}

// rotateScene is what a rotation benchmark's scene is made of: how many
// applications in one tenant, the policy's concurrency and credential
// kind ("" is secret), and the simulator's faults.
type rotateScene struct {
	apps, conc int
	kind       string
	faults     sim.FaultConfig
}

// setupRotateScene is setupRotateBench for any scene.
func setupRotateScene(b *testing.B, sc rotateScene, reqs *requestCounter, phases *phaseClock) *rotateEnv {
	b.Helper()
	ctx, cancel := context.WithCancel(b.Context())
	dir := b.TempDir()
	// One simulator per iteration: env.close stops it at once (Close is
	// idempotent, so simtest's cleanup at the end is harmless).
	simSrv := simtest.Start(b, simtest.Options{
		StateDir: filepath.Join(dir, "sim"),
		Seed:     fmt.Sprintf("apps=%d,tenants=1,expiring=1h,replication=0s", sc.apps),
		Logger:   slog.New(reqs),
		Faults:   sc.faults,
	}).Server
	info := simSrv.Info()

	cfg, err := config.SimulatorYAML(info, config.SimulatorConfig{
		SimFile: filepath.Join(filepath.Dir(info.CAFile), simfile.FileName), DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(tn simfile.Tenant) string { return "{env: SECRET_" + tn.Name + "}" },
		Rotation: config.SimulatorRotation{VerifyTimeout: "1m", ConcurrencyPerTenant: sc.conc},
		Policies: []config.SimulatorPolicy{{Name: "all", Kind: sc.kind, Lifetime: "30d", RenewBefore: "10d", Overlap: "7d"}},
	})
	require.NoError(b, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(b, os.WriteFile(cfgPath, cfg, 0o600))
	secrets := map[string]string{}
	for _, tn := range info.Tenants {
		secrets["SECRET_"+tn.Name] = tn.Rotation.ClientSecret
	}
	srv, err := Open(ctx, cfgPath, Options{
		Logger: slog.New(slog.DiscardHandler),
		Getenv: func(k string) string { return secrets[k] },
		Hooks:  rotation.Hooks{AfterJournal: phases.observe},
	})
	require.NoError(b, err)
	// Serve opens the job system before any rotation runs; do the same, so
	// that the first retirements scheduled concurrently do not each try
	// to open it.
	require.NoError(b, srv.openJobs(ctx, 0))
	require.NoError(b, srv.Sync(ctx, nil))

	all, err := srv.Store().ListApplications(ctx, store.ListApplicationsParams{Org: srv.Config().Organization, ManageableOnly: true})
	require.NoError(b, err)
	var apps []domain.Application
	for _, a := range all {
		if p := srv.PolicyFor(a); p != nil && p.Enabled {
			apps = append(apps, a)
		}
	}
	require.Len(b, apps, sc.apps, "the policy must select every seeded application")
	return &rotateEnv{sim: simSrv, srv: srv, apps: apps, close: func() {
		_ = srv.Close()
		cancel()
		_ = simSrv.Close()
	}}
}

// rotateAll rotates every application from conc goroutines and returns how
// many runs did not reach retiring.
func rotateAll(ctx context.Context, srv *Server, apps []domain.Application, conc int, phases *phaseClock) int {
	org := srv.Config().Organization
	work := make(chan domain.Application)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for app := range work {
				pol := srv.PolicyFor(app)
				start := time.Now()
				run, err := srv.Engine().Rotate(ctx, org, app, *pol, domain.TriggerManual)
				if err != nil || run.State != domain.RunRetiring {
					failed.Add(1)
					continue
				}
				phases.finish(run.ID, start)
			}
		})
	}
	for _, a := range apps {
		work <- a
	}
	close(work)
	wg.Wait()
	return int(failed.Load())
}

// phaseClock timestamps every journal step of every run, to show where a
// rotation's time goes.
type phaseClock struct {
	mu   sync.Mutex
	runs map[string]map[string]time.Time
	sums map[string]time.Duration
	n    int
}

func newPhaseClock() *phaseClock { return &phaseClock{} }

func (p *phaseClock) reset() {
	p.mu.Lock()
	p.runs = map[string]map[string]time.Time{}
	p.mu.Unlock()
}

func (p *phaseClock) observe(run domain.Run, st domain.Step) {
	step := st.String()
	now := time.Now()
	p.mu.Lock()
	if p.runs[run.ID] == nil {
		p.runs[run.ID] = map[string]time.Time{}
	}
	p.runs[run.ID][step] = now
	p.mu.Unlock()
}

// Phases, in order, by the journal step that ends them. "plan" starts when
// Rotate is called; "schedule" ends when it returns.
var benchPhases = []struct{ name, end string }{
	{"plan", string(domain.StepPlanned)},    // uuid + CreateRun
	{"create", string(domain.StepCreated)},  // tenant slot + fence + addPassword + journal
	{"sink", string(domain.StepPropagated)}, // 2 journal events + fence + Key Vault + journal
	{"verify", string(domain.StepVerified)}, // journal + token request(s) + journal
	{"schedule", ""},                        // journal retiring + River insert
}

func (p *phaseClock) finish(runID string, start time.Time) {
	end := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sums == nil {
		p.sums = map[string]time.Duration{}
	}
	steps := p.runs[runID]
	prev := start
	for _, ph := range benchPhases {
		t := end
		if ph.end != "" {
			t = steps[ph.end]
		}
		p.sums[ph.name] += t.Sub(prev)
		prev = t
	}
	p.sums["total"] += end.Sub(start)
	p.n++
	delete(p.runs, runID)
}

type phaseMean struct {
	name string
	ms   float64
}

func (p *phaseClock) means() []phaseMean {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []phaseMean
	for _, ph := range append(benchPhases, struct{ name, end string }{"total", ""}) {
		out = append(out, phaseMean{ph.name, float64(p.sums[ph.name]) / float64(time.Millisecond) / float64(max(p.n, 1))})
	}
	return out
}

// requestCounter is a slog.Handler for the simulator's per-request debug
// log: it counts every request the simulator answered (each of which paid
// the injected latency, except on the managed identity listener), by
// listener, method, path shape and status.
type requestCounter struct {
	on     atomic.Bool // count only while the rotations run
	mu     sync.Mutex
	counts map[string]int64
}

func newRequestCounter() *requestCounter { return &requestCounter{counts: map[string]int64{}} }

var (
	uuidRE   = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	secretRE = regexp.MustCompile(`^/secrets/[^/]+`)
)

func (c *requestCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *requestCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *requestCounter) WithGroup(string) slog.Handler            { return c }

func (c *requestCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "sim request" || !c.on.Load() {
		return nil
	}
	var listener, method, path string
	var status int64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "listener":
			listener = a.Value.String()
		case "method":
			method = a.Value.String()
		case "path":
			path = a.Value.String()
		case "status":
			status = a.Value.Int64()
		}
		return true
	})
	if strings.HasPrefix(path, "/_sim/") || listener == "msi" {
		return nil
	}
	path = uuidRE.ReplaceAllString(path, "{id}")
	path = secretRE.ReplaceAllString(path, "/secrets/{name}")
	key := fmt.Sprintf("%-5s %-4s %-55s %d", listener, method, path, status)
	c.mu.Lock()
	c.counts[key]++
	c.mu.Unlock()
	return nil
}

func (c *requestCounter) perRotation(rots float64) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var total int64
	for _, v := range c.counts {
		total += v
	}
	return float64(total) / rots
}

func (c *requestCounter) breakdown(rots float64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "  %s  %8d  %.3f/rot\n", k, c.counts[k], float64(c.counts[k])/rots)
	}
	return sb.String()
}

// memSampler records the peak HeapInuse and Sys while it runs. The
// simulator runs in the same process, so its memory is included.
type memSampler struct {
	stopc      chan struct{}
	done       chan struct{}
	heap, sys_ uint64
}

func startMemSampler(every time.Duration) *memSampler {
	m := &memSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			m.heap, m.sys_ = max(m.heap, ms.HeapInuse), max(m.sys_, ms.Sys)
			select {
			case <-t.C:
			case <-m.stopc:
				return
			}
		}
	}()
	return m
}

func (m *memSampler) stop() (heap, sys uint64) {
	close(m.stopc)
	<-m.done
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return max(m.heap, ms.HeapInuse), max(m.sys_, ms.Sys)
}

// maxRSS is the process's peak resident set so far (Linux reports KiB).
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}

func subStats(a, b sim.Stats) sim.Stats {
	return sim.Stats{
		TokenRequests: a.TokenRequests - b.TokenRequests, TokensIssued: a.TokensIssued - b.TokensIssued,
		ManagedIdentityTokens: a.ManagedIdentityTokens - b.ManagedIdentityTokens,
		GraphRequests:         a.GraphRequests - b.GraphRequests, GraphReads: a.GraphReads - b.GraphReads,
		GraphWrites: a.GraphWrites - b.GraphWrites, Throttled: a.Throttled - b.Throttled, Vault: a.Vault - b.Vault,
		InjectedErrors: a.InjectedErrors - b.InjectedErrors, DroppedConnections: a.DroppedConnections - b.DroppedConnections,
	}
}

func addStats(a, b sim.Stats) sim.Stats {
	return sim.Stats{
		TokenRequests: a.TokenRequests + b.TokenRequests, TokensIssued: a.TokensIssued + b.TokensIssued,
		ManagedIdentityTokens: a.ManagedIdentityTokens + b.ManagedIdentityTokens,
		GraphRequests:         a.GraphRequests + b.GraphRequests, GraphReads: a.GraphReads + b.GraphReads,
		GraphWrites: a.GraphWrites + b.GraphWrites, Throttled: a.Throttled + b.Throttled, Vault: a.Vault + b.Vault,
		InjectedErrors: a.InjectedErrors + b.InjectedErrors, DroppedConnections: a.DroppedConnections + b.DroppedConnections,
	}
}
