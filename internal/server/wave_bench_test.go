package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
)

const (
	waveApps  = 300
	waveDelay = 10 * time.Second
)

// BenchmarkWave300 is issue 7's "Entra's pace" goal: 300 applications due
// at once, Entra's replication delay 10 s (a new secret is refused with
// AADSTS7000215 for 10 s), rotated by `serve` itself — the planner, River's
// rotate workers, the engine, the Key Vault sink and verification — until
// every run is verified (so every vault secret gets a token; checked after
// the timer with Microsoft's SDKs: the consumer identity reads each vault
// secret and signs in with it). The goal is 3 × the delay. Jitter is off
// (its default, 30 s, spreads a wave on purpose).
//
// inflight=10 is the peer: the worker count rotor had before
// rotation.max_in_flight, when a rotation held a worker while it waited.
//
//	go test -run '^$' -bench BenchmarkWave300 -benchtime=1x -count=1 ./internal/server/
func BenchmarkWave300(b *testing.B) {
	for _, inflight := range []int{512, 10} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) { benchWave(b, inflight) })
	}
}

func benchWave(b *testing.B, inflight int) {
	var wall time.Duration
	var peakHeap, peakSys uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ctx, cancel := context.WithCancel(b.Context())
		dir := b.TempDir()
		info, simFile, cfg := waveSetup(b, dir, inflight, nil)
		cfgPath := filepath.Join(dir, "rotor.yaml")
		require.NoError(b, os.WriteFile(cfgPath, cfg, 0o600))
		tn := info.Tenants[0]
		srv, err := Open(ctx, cfgPath, Options{
			Logger: slog.New(slog.DiscardHandler),
			Getenv: func(k string) string {
				if k == "SECRET_"+tn.Name {
					return tn.Rotation.ClientSecret
				}
				return ""
			},
		})
		require.NoError(b, err)
		org := srv.Config().Organization

		sampler := startMemSampler(25 * time.Millisecond)
		runtime.GC()
		b.StartTimer()
		start := time.Now()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx, nil) }()
		verified := 0
		for verified < waveApps {
			time.Sleep(100 * time.Millisecond)
			runs, err := srv.Store().ListRuns(ctx, store.ListRunsParams{Org: org, States: []domain.RunState{domain.RunRetiring}})
			require.NoError(b, err)
			verified = len(runs)
			if time.Since(start) > 15*time.Minute {
				b.Fatalf("after 15 minutes only %d of %d rotations were verified", verified, waveApps)
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		h, s := sampler.stop()
		peakHeap, peakSys = max(peakHeap, h), max(peakSys, s)
		wall += elapsed

		failed, err := srv.Store().ListRuns(ctx, store.ListRunsParams{Org: org, States: []domain.RunState{domain.RunFailed}})
		require.NoError(b, err)
		require.Empty(b, failed, "no run may fail")
		checkVaultSecretsWork(b, ctx, info, simFile, srv)
		cancel()
		<-served
		require.NoError(b, srv.Close())
		b.StartTimer()
	}
	mean := wall.Seconds() / float64(b.N)
	b.ReportMetric(mean, "wave-s")
	b.ReportMetric(mean/waveDelay.Seconds(), "x-delay")
	b.ReportMetric(float64(peakHeap)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(peakSys)/1e6, "peak-sys-MB")
}

// waveSetup starts the wave's simulator (waveApps due applications, a
// waveDelay replication delay) and writes its rotor.yaml: jitter off, the
// planner every second, inflight rotate workers (0: the default), state in
// db (nil: SQLite in dir).
func waveSetup(b *testing.B, dir string, inflight int, db *config.SimulatorDatabase) (*simfile.Info, string, []byte) {
	st := simtest.Start(b, simtest.Options{
		StateDir: filepath.Join(dir, "sim"),
		Seed:     fmt.Sprintf("apps=%d,tenants=1,expiring=1h,replication=%s", waveApps, waveDelay),
	})
	info := st.Info
	simFile := filepath.Join(filepath.Dir(info.CAFile), simfile.FileName)
	cfg, err := config.SimulatorYAML(info, config.SimulatorConfig{
		SimFile: simFile, DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(tn simfile.Tenant) string { return "{env: SECRET_" + tn.Name + "}" },
		Rotation: config.SimulatorRotation{Jitter: "0s", PlanInterval: "1s", VerifyTimeout: "1m", MaxInFlight: inflight},
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "7d"}},
		Database: db,
	})
	require.NoError(b, err)
	return info, simFile, cfg
}

// checkVaultSecretsWork reads every application's vault secret as the
// consumer identity and gets a token with it, through azsecrets and
// azidentity.
func checkVaultSecretsWork(b *testing.B, ctx context.Context, info *simfile.Info, simFile string, srv *Server) {
	b.Helper()
	tn := info.Tenants[0]
	ep, err := azure.ResolveEndpoints(azure.Sim, simFile)
	require.NoError(b, err)
	consumer, err := simtest.NewConsumerCredential(info, tn.ID)
	require.NoError(b, err)
	kv, err := azure.NewSecretsClient(tn.KeyVaults[0].URL, consumer, ep)
	require.NoError(b, err)
	apps, err := srv.Store().ListApplications(ctx, store.ListApplicationsParams{Org: srv.Config().Organization, ManageableOnly: true})
	require.NoError(b, err)
	require.Len(b, apps, waveApps)
	for _, app := range apps {
		require.NoError(b, consumerSignsIn(ctx, info, simFile, tn.ID, kv, app.DisplayName, app.AppID), "%s: the vault's secret gets a token", app.DisplayName)
	}
}
