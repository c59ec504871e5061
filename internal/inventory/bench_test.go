package inventory_test

import (
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/inventory"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/store/postgres"
	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// BenchmarkInventorySync100k measures, side by side against one simulated
// 100,000-application tenant with 20 ms of latency on every request (the
// issue's set-up; the rotation identity owns every bulk application):
//
//   - List: a plain listing through rotor's Graph client ($top=999 and the
//     inventory's $select), the yardstick;
//   - FullSync: the first sync of a connection into an empty SQLite store
//     (delta link, listing, ownership, FinishSync);
//   - FullSyncPostgres: the same into PostgreSQL (ROTOR_TEST_DATABASE_URL);
//   - UnchangedSync: a sync after it with nothing changed, between two
//     readings of the ownership (one delta round; the store writes one
//     row);
//   - UnchangedSyncReadingOwnership: the same when the ownership is read
//     in full (once per ownership_interval): 101 pages more;
//   - UnchangedSyncOwned1000: that against a tenant where the rotation
//     identity owns 1,000 of the 100,000 applications.
//
// Each reports requests/op and the peak heap while it ran (the simulator
// shares the process), and the parent logs the ratios to List.
func BenchmarkInventorySync100k(b *testing.B) {
	s := simtest.Start(b, simtest.Options{
		Seed:   "apps=100000,tenants=1,expiring=24h",
		Faults: sim.FaultConfig{Latency: 20 * time.Millisecond},
	})
	e := &simEnv{sim: s, ten: &s.Info.Tenants[0]}
	e.signIn(b)
	ctx := b.Context()
	sel := []string{"id", "appId", "displayName", "signInAudience", "createdDateTime", "passwordCredentials", "keyCredentials"}
	perOp := map[string]float64{}

	b.Run("List", func(b *testing.B) {
		mem := startMemSampler()
		var apps, requests int64
		for b.Loop() {
			p := e.client.ListApplications(graph.ListOptions{Top: inventory.PageSize, Select: sel})
			for _, err := range p.All(ctx) {
				require.NoError(b, err)
				apps++
			}
			requests += p.Requests()
		}
		mem.report(b)
		b.ReportMetric(float64(apps)/float64(b.N), "apps/op")
		b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
		perOp["List"] = b.Elapsed().Seconds() / float64(b.N)
	})

	openStore := func(b *testing.B, opts inventory.Options) (*sqlite.Store, *inventory.Syncer, *clock.Fake) {
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "rotor.db"))
		require.NoError(b, err)
		require.NoError(b, st.EnsureOrg(ctx, org, "Acme"))
		c := clock.NewFake(t0)
		return st, inventory.NewSyncer(st, c, opts), c
	}

	// fullSync times first syncs into stores open makes, each new.
	fullSync := func(b *testing.B, name string, open func(b *testing.B) (inventory.Store, func() error)) {
		mem := startMemSampler()
		var requests int64
		for b.Loop() {
			b.StopTimer()
			st, closeStore := open(b)
			syncer := inventory.NewSyncer(st, clock.NewFake(t0), inventory.Options{})
			before := e.client.Requests()
			b.StartTimer()
			res, err := syncer.Sync(ctx, org, conn, e.dir, nil)
			b.StopTimer()
			require.NoError(b, err)
			require.Equal(b, inventory.FullFirst, res.FullReason)
			require.Equal(b, 100_001, res.Seen)
			requests += e.client.Requests() - before
			require.NoError(b, closeStore())
			b.StartTimer()
		}
		mem.report(b)
		b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
		perOp[name] = b.Elapsed().Seconds() / float64(b.N)
	}
	b.Run("FullSync", func(b *testing.B) {
		fullSync(b, "FullSync", func(b *testing.B) (inventory.Store, func() error) {
			st, _, _ := openStore(b, inventory.Options{})
			return st, st.Close
		})
	})
	// The same first sync into PostgreSQL (when ROTOR_TEST_DATABASE_URL
	// names a cluster; skipped otherwise, loudly).
	b.Run("FullSyncPostgres", func(b *testing.B) {
		fullSync(b, "FullSyncPostgres", func(b *testing.B) (inventory.Store, func() error) {
			db := pgtest.New(b)
			st, err := postgres.Open(ctx, db.AppURL, postgres.WithPassword(db.AppPassword), postgres.WithMigrations(db.OwnerURL, db.OwnerPassword))
			require.NoError(b, err)
			require.NoError(b, st.EnsureOrg(ctx, org, "Acme"))
			return st, st.Close
		})
	})

	unchanged := func(b *testing.B, e *simEnv, manageable int, opts inventory.Options) {
		st, syncer, c := openStore(b, opts)
		defer st.Close()
		_, err := syncer.Sync(ctx, org, conn, e.dir, nil)
		require.NoError(b, err)
		mem := startMemSampler()
		var requests, rows int64
		for b.Loop() {
			c.Advance(15 * time.Minute)
			before := e.client.Requests()
			w0, err := st.RowsWritten(ctx)
			require.NoError(b, err)
			res, err := syncer.Sync(ctx, org, conn, e.dir, nil)
			require.NoError(b, err)
			require.Equal(b, inventory.Result{Incremental: true, Manageable: manageable}, sansAt(res))
			w1, err := st.RowsWritten(ctx)
			require.NoError(b, err)
			requests += e.client.Requests() - before
			rows += w1 - w0
		}
		mem.report(b)
		b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
		b.ReportMetric(float64(rows)/float64(b.N), "rows-written/op")
	}
	b.Run("UnchangedSync", func(b *testing.B) {
		unchanged(b, e, 100_000, inventory.Options{})
		perOp["UnchangedSync"] = b.Elapsed().Seconds() / float64(b.N)
	})
	// The same with the ownership read in full (as once per
	// ownership_interval, an hour by default): 101 pages of ids.
	b.Run("UnchangedSyncReadingOwnership", func(b *testing.B) {
		unchanged(b, e, 100_000, inventory.Options{OwnershipInterval: -1})
		perOp["UnchangedSyncReadingOwnership"] = b.Elapsed().Seconds() / float64(b.N)
	})
	// The same tenant where the rotation identity owns 1,000 of the
	// applications (it still reads all of them with Application.Read.All):
	// ownership is two pages instead of 101.
	b.Run("UnchangedSyncOwned1000", func(b *testing.B) {
		s := simtest.Start(b, simtest.Options{
			Seed:   "apps=100000,tenants=1,expiring=24h,owned=1000",
			Faults: sim.FaultConfig{Latency: 20 * time.Millisecond},
		})
		e := &simEnv{sim: s, ten: &s.Info.Tenants[0]}
		e.signIn(b)
		unchanged(b, e, 1000, inventory.Options{OwnershipInterval: -1})
		perOp["UnchangedSyncOwned1000"] = b.Elapsed().Seconds() / float64(b.N)
	})

	if l := perOp["List"]; l > 0 {
		b.Logf("last samples: FullSync/List = %.2f, FullSyncPostgres/List = %.2f (goal ≤ 1.2), UnchangedSync/List = %.3f (goal ≤ 0.1), "+
			"UnchangedSyncReadingOwnership/List = %.3f, UnchangedSyncOwned1000/List = %.3f",
			perOp["FullSync"]/l, perOp["FullSyncPostgres"]/l, perOp["UnchangedSync"]/l, perOp["UnchangedSyncReadingOwnership"]/l, perOp["UnchangedSyncOwned1000"]/l)
	}
}

// memSampler records the peak HeapInuse and Sys while a sub-benchmark
// runs, every 25 ms; the simulator runs in the same process, so its
// memory is included.
type memSampler struct {
	stopc, done chan struct{}
	heap, sys   uint64
}

func startMemSampler() *memSampler {
	runtime.GC()
	m := &memSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			m.heap, m.sys = max(m.heap, ms.HeapInuse), max(m.sys, ms.Sys)
			select {
			case <-t.C:
			case <-m.stopc:
				return
			}
		}
	}()
	return m
}

// report stops the sampler and reports peak-heap-MB, peak-sys-MB and the
// process's max RSS so far (maxrss-MB, earlier sub-benchmarks included).
func (m *memSampler) report(b *testing.B) {
	close(m.stopc)
	<-m.done
	b.ReportMetric(float64(m.heap)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(m.sys)/1e6, "peak-sys-MB")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)*1024/1e6, "maxrss-MB")
	}
}
