package sqlite

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/storetest"
)

const (
	benchApps     = 100_000
	benchPageSize = 999 // Graph's largest $top for applications
)

// benchTenant returns benchApps applications with three credentials each,
// in two variants that differ in every application's first hint.
var benchTenant = sync.OnceValue(func() [2][]domain.Application {
	var out [2][]domain.Application
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for v := range out {
		apps := make([]domain.Application, benchApps)
		for i := range apps {
			apps[i] = domain.Application{
				TenantID:       "bench-tenant",
				ObjectID:       fmt.Sprintf("0bec0000-0000-4000-8000-%012d", i),
				AppID:          fmt.Sprintf("a9900000-0000-4000-8000-%012d", i),
				DisplayName:    fmt.Sprintf("svc-%06d", i),
				SignInAudience: "AzureADMyOrg",
				CreatedAt:      base.Add(-time.Duration(i) * time.Minute),
				Owners:         []string{"rotor-sp", fmt.Sprintf("owner-%d", i%50)},
				Manageable:     i%3 == 0,
				Credentials: []domain.Credential{
					{KeyID: fmt.Sprintf("4e400000-0001-4000-8000-%012d", i), Kind: domain.KindSecret,
						DisplayName: "rotor:run", Hint: fmt.Sprintf("h%d", v), Start: base, End: base.Add(time.Duration(i) * time.Minute)},
					{KeyID: fmt.Sprintf("4e400000-0002-4000-8000-%012d", i), Kind: domain.KindSecret,
						DisplayName: "legacy", Hint: "abc", Start: base, End: base.Add(365 * 24 * time.Hour)},
					{KeyID: fmt.Sprintf("4e400000-0003-4000-8000-%012d", i), Kind: domain.KindCertificate,
						DisplayName: "CN=svc", Thumbprint: "0A1B2C3D", Start: base, End: base.Add(2 * 365 * 24 * time.Hour)},
				},
			}
		}
		out[v] = apps
	}
	return out
})

// syncAll runs one full sync of apps in pages and finishes it.
func syncAll(b *testing.B, s *Store, apps []domain.Application, at time.Time) (changed int) {
	ctx := b.Context()
	for i := 0; i < len(apps); i += benchPageSize {
		n, err := s.SyncApplications(ctx, store.SyncApplicationsParams{
			Org: domain.DefaultOrg, Connection: "bench", SyncStarted: at,
			Applications: apps[i:min(i+benchPageSize, len(apps))],
		})
		require.NoError(b, err)
		changed += n
	}
	removed, err := s.FinishSync(ctx, store.FinishSyncParams{Org: domain.DefaultOrg, Connection: "bench", SyncStarted: at})
	require.NoError(b, err)
	require.Zero(b, removed)
	return changed
}

func openBench(b *testing.B) *Store {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	require.NoError(b, err)
	require.NoError(b, s.EnsureOrg(b.Context(), domain.DefaultOrg, "bench"))
	return s
}

// BenchmarkSyncApplications measures one full sync of a 100,000-app
// tenant (three credentials each) in pages of 999, FinishSync included:
// into an empty database, again with nothing changed, and again with
// every application changed.
func BenchmarkSyncApplications(b *testing.B) {
	variants := benchTenant()
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	b.Run("Insert", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			s := openBench(b)
			b.StartTimer()
			require.Equal(b, benchApps, syncAll(b, s, variants[0], at))
			b.StopTimer()
			require.NoError(b, s.Close())
			b.StartTimer()
		}
		b.ReportMetric(float64(benchApps)*float64(b.N)/b.Elapsed().Seconds(), "apps/s")
	})

	b.Run("Unchanged", func(b *testing.B) {
		s := openBench(b)
		defer s.Close()
		syncAll(b, s, variants[0], at)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			require.Zero(b, syncAll(b, s, variants[0], at.Add(time.Duration(i)*time.Hour)))
		}
		b.ReportMetric(float64(benchApps)*float64(b.N)/b.Elapsed().Seconds(), "apps/s")
	})

	b.Run("AllChanged", func(b *testing.B) {
		s := openBench(b)
		defer s.Close()
		syncAll(b, s, variants[0], at)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			require.Equal(b, benchApps, syncAll(b, s, variants[i%2], at.Add(time.Duration(i)*time.Hour)))
		}
		b.ReportMetric(float64(benchApps)*float64(b.N)/b.Elapsed().Seconds(), "apps/s")
	})
}

// BenchmarkStoreOps100k is the store operation latency at 100,000
// applications (storetest.Bench; the same benchmark runs on PostgreSQL).
//
//	go test -run '^$' -bench BenchmarkStoreOps100k -count=3 ./internal/store/sqlite/ ./internal/store/postgres/
func BenchmarkStoreOps100k(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return openBench(b) })
}
