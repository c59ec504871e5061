package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
)

// BenchmarkWave300Postgres is BenchmarkWave300's wave — 300 applications
// due at once under a 10 s replication delay, rotated by `serve` until
// every run is verified — on PostgreSQL, with one replica and with three
// replicas sharing the database (each its own Server: planner leadership,
// River workers, engine, pacer share). It reports the wave's wall time
// (wave-s, x-delay) and the planner's latency: from the start of serve
// until every application has a run (plan-s), so the leader's planning and
// River's distribution are visible apart from the rotations themselves.
// Needs ROTOR_TEST_DATABASE_URL (skipped otherwise, loudly).
//
//	go test -run '^$' -bench BenchmarkWave300Postgres -benchtime=1x -count=1 ./internal/server/
func BenchmarkWave300Postgres(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) { benchWavePostgres(b, replicas) })
	}
}

func benchWavePostgres(b *testing.B, replicas int) {
	pgtest.URL(b)
	var wall, plan time.Duration
	workers := map[string]bool{}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ctx, cancel := context.WithCancel(b.Context())
		db := pgtest.New(b)
		dir := b.TempDir()
		info, simFile, yaml := waveSetup(b, dir, 0, pgDatabase(db))
		var err error
		cfgPath := filepath.Join(dir, "rotor.yaml")
		require.NoError(b, os.WriteFile(cfgPath, yaml, 0o600))
		tn := info.Tenants[0]
		env := envMap{"SECRET_" + tn.Name: tn.Rotation.ClientSecret, "ROTOR_DB_PASSWORD": db.AppPassword, "ROTOR_DB_OWNER_PASSWORD": db.OwnerPassword}
		srvs := make([]*Server, replicas)
		for r := range replicas {
			srvs[r], err = Open(ctx, cfgPath, Options{Logger: slog.New(slog.DiscardHandler), Getenv: env.get, Process: fmt.Sprintf("replica-%d", r)})
			require.NoError(b, err)
		}
		srv := srvs[0]
		org := srv.Config().Organization

		b.StartTimer()
		start := time.Now()
		var served sync.WaitGroup
		for _, s := range srvs {
			served.Go(func() { _ = s.Serve(ctx, nil) })
		}
		var planned time.Duration
		for {
			time.Sleep(100 * time.Millisecond)
			runs, err := srv.Store().ListRuns(ctx, store.ListRunsParams{Org: org})
			require.NoError(b, err)
			if planned == 0 && len(runs) >= waveApps {
				planned = time.Since(start)
			}
			verified := 0
			for _, r := range runs {
				if r.State == domain.RunRetiring {
					verified++
				}
			}
			if verified >= waveApps {
				break
			}
			if time.Since(start) > 15*time.Minute {
				b.Fatalf("after 15 minutes only %d of %d rotations were verified", verified, waveApps)
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		wall += elapsed
		plan += planned

		runs, err := srv.Store().ListRuns(ctx, store.ListRunsParams{Org: org})
		require.NoError(b, err)
		require.Len(b, runs, waveApps, "one run per application: no rotation doubled")
		for _, r := range runs {
			require.Equal(b, domain.RunRetiring, r.State, r.ID)
		}
		// Which replicas' River clients ran the rotate jobs.
		rows, err := db.ConnectOwner(b).Query(ctx, `SELECT DISTINCT attempted_by[array_length(attempted_by, 1)] FROM river_job WHERE kind = 'rotate'`)
		require.NoError(b, err)
		for rows.Next() {
			var id string
			require.NoError(b, rows.Scan(&id))
			workers[fmt.Sprint(i, id)] = true
		}
		require.NoError(b, rows.Err())
		checkVaultSecretsWork(b, ctx, info, simFile, srv)
		cancel()
		served.Wait()
		for _, s := range srvs {
			require.NoError(b, s.Close())
		}
		b.StartTimer()
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "wave-s")
	b.ReportMetric(wall.Seconds()/float64(b.N)/waveDelay.Seconds(), "x-delay")
	b.ReportMetric(plan.Seconds()/float64(b.N), "plan-s")
	b.ReportMetric(float64(len(workers))/float64(b.N), "replicas-working")
}
