package ui_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/web/ui"
)

const (
	benchApps = 100_000
	// benchSamples is how many requests each variant makes per benchmark
	// iteration: enough for a p99 from one iteration (-benchtime=1x).
	benchSamples = 400
)

// BenchmarkUIApplicationsList100k requests the applications list page
// through the UI's handler over a real app service on SQLite holding
// 100,000 applications (two secrets each, ends spread over a year, a
// tenth expired, a tenth not manageable, names in 100 prefixes of 1,000):
//
//   - first: the first page by name;
//   - filtered: name prefix, manageable only, expiring within 30 days;
//   - deep: a cursor 90,000 applications into the name order;
//   - expiry: the first page by soonest expiry;
//   - expiry-filtered: a name prefix, expiring within 90 days, by expiry;
//   - expiry-no-match: by expiry, a name prefix no application has.
//
// Loading the applications (written to the store as a sync writes them)
// is not timed. Each variant reports p50 and p99 in ms; the benchmark
// reports the process's peak RSS (getrusage maxrss: the whole test
// process, the loading and the in-process simulator included), its RSS
// after the requests, and the Go heap in use.
//
//	go test -run '^$' -bench BenchmarkUIApplicationsList100k -benchtime=1x ./internal/web/ui/
func BenchmarkUIApplicationsList100k(b *testing.B) {
	h, deep := setupBench(b)
	variants := []struct{ name, path string }{
		{"first", "/applications"},
		{"filtered", "/applications?q=team-042-&manageable=1&expiring=30"},
		{"deep", "/applications?cursor=" + url.QueryEscape(deep)},
		{"expiry", "/applications?sort=expiry"},
		{"expiry-filtered", "/applications?q=team-042-&expiring=90&sort=expiry"},
		// The worst case of the expiry order: a prefix nothing matches
		// walks the organization's whole expiry index.
		{"expiry-no-match", "/applications?q=zzz&sort=expiry"},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				for range benchSamples {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodGet, v.path, nil)
					t0 := time.Now()
					h.ServeHTTP(rec, req)
					lat = append(lat, time.Since(t0))
					if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<tr>`) {
						b.Fatalf("%s: %d %s", v.path, rec.Code, rec.Body.String())
					}
				}
			}
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)*50/100]), "p50-ms")
			b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
			reportMemory(b)
		})
	}
}

// reportMemory reports the process's peak RSS (getrusage maxrss, since
// the process started), its RSS now, and the Go heap in use.
func reportMemory(b *testing.B) {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB")
	b.ReportMetric(rssNow(b), "rss-MiB")
	b.ReportMetric(float64(m.HeapInuse)/(1<<20), "heap-MiB")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rssNow is the process's resident set now, from /proc/self/statm.
func rssNow(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/self/statm")
	require.NoError(b, err)
	f := strings.Fields(string(raw))
	pages, err := strconv.Atoi(f[1])
	require.NoError(b, err)
	return float64(pages*os.Getpagesize()) / (1 << 20)
}

// setupBench assembles rotor on a one-application simulator (its
// connection and policy are what rotor.yaml provisions), writes
// benchApps applications into the store as the connection's sync would,
// and returns the UI's handler and a cursor deep into the name order.
func setupBench(b *testing.B) (http.Handler, string) {
	ctx := context.Background()
	st := simtest.Start(b, simtest.Options{Seed: "apps=1,tenants=1,replication=0s"})
	tn := st.Info.Tenants[0]
	dir := b.TempDir()
	cfg := fmt.Sprintf(`organization: bench
data_dir: %q
connections:
  - name: conn
    cloud: sim
    sim_file: %q
    tenant_id: %q
    client_id: %q
    client_secret: {env: SECRET}
policies:
  - name: owned
    connection: conn
    applications: {all_owned: true}
    lifetime: 30d
    renew_before: 10d
    overlap: 1h
`, filepath.Join(dir, "data"), st.File, tn.ID, tn.Rotation.ClientID)
	path := filepath.Join(dir, "rotor.yaml")
	require.NoError(b, os.WriteFile(path, []byte(cfg), 0o600))
	srv, err := server.Open(ctx, path, server.Options{Logger: slog.New(slog.DiscardHandler), Process: "ui-bench",
		Getenv: func(k string) string {
			if k == "SECRET" {
				return tn.Rotation.ClientSecret
			}
			return ""
		}})
	require.NoError(b, err)
	b.Cleanup(func() { _ = srv.Close() })
	org := srv.Config().Organization
	now := srv.Clock().Now()

	// Written a page at a time, generated as written, so that loading
	// does not hold 100,000 applications in memory at once.
	const page = 5000
	started := now.Add(-time.Minute)
	for from := 0; from < benchApps; from += page {
		apps := make([]domain.Application, 0, page)
		for i := from; i < from+page; i++ {
			apps = append(apps, benchApp(org, tn.ID, i, now))
		}
		_, err := srv.Store().SyncApplications(ctx, store.SyncApplicationsParams{Org: org, Connection: "conn", SyncStarted: started, Applications: apps})
		require.NoError(b, err)
	}
	svc := srv.App()
	scope := app.Scope{Org: org, Actor: app.CLI}
	n, err := srv.Store().CountApplications(ctx, org, "")
	require.NoError(b, err)
	require.GreaterOrEqual(b, n, benchApps)

	// A real cursor 90,000 rows in, walked as a client would.
	req := app.ApplicationPageRequest{Limit: app.MaxPageSize}
	for range 90 {
		p, err := svc.ListApplicationsPage(ctx, scope, app.ApplicationFilter{}, req)
		require.NoError(b, err)
		req.Cursor = p.Next
	}
	require.NotEmpty(b, req.Cursor)
	runtime.GC()
	return ui.New(ui.Deps{App: svc, Clock: srv.Clock(), Logger: slog.New(slog.DiscardHandler),
		Scope: func(*http.Request) (app.Scope, bool) { return scope, true }}), req.Cursor
}

// benchApp is the i-th application of the benchmark's inventory.
func benchApp(org domain.OrgID, tenant string, i int, now time.Time) domain.Application {
	sum := sha256.Sum256(fmt.Appendf(nil, "ui-bench-%d", i))
	h := hex.EncodeToString(sum[:])
	guid := func(s string) string {
		return s[:8] + "-" + s[8:12] + "-4" + s[13:16] + "-8" + s[17:20] + "-" + s[20:32]
	}
	// Ends spread over a year from 36 days ago: a tenth already expired.
	end := now.Add(time.Duration((i*7919)%400-36) * 24 * time.Hour)
	return domain.Application{
		Org: org, TenantID: tenant, ObjectID: guid(h[:32]), AppID: guid(h[32:64]),
		DisplayName: fmt.Sprintf("team-%03d-app-%06d", i%100, i), SignInAudience: "AzureADMyOrg",
		CreatedAt: now.Add(-400 * 24 * time.Hour), Manageable: i%10 != 0,
		Credentials: []domain.Credential{
			{KeyID: guid(h[8:40]), Kind: domain.KindSecret, DisplayName: "ci", Hint: "abc", Start: end.Add(-365 * 24 * time.Hour), End: end},
			{KeyID: guid(h[16:48]), Kind: domain.KindSecret, DisplayName: "old", Hint: "xyz", Start: end.Add(-400 * 24 * time.Hour), End: end.Add(30 * 24 * time.Hour)},
		},
	}
}

// BenchmarkDashboard100k requests the dashboard (/) through the UI's
// handler over the same 100,000 applications: the expiry counts and
// timeline (one aggregate query), the failing runs, and the plan, which
// here decides its 1,000-candidate cap (nine in ten applications have no
// rotor credential yet: all due now, the plan's worst case). Reports p50
// and p99 in ms.
//
//	go test -run '^$' -bench BenchmarkDashboard100k -benchtime=1x ./internal/web/ui/
func BenchmarkDashboard100k(b *testing.B) {
	h, _ := setupBench(b)
	var lat []time.Duration
	for b.Loop() {
		for range benchSamples / 20 {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			t0 := time.Now()
			h.ServeHTTP(rec, req)
			lat = append(lat, time.Since(t0))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<svg class="timeline"`) {
				b.Fatalf("/: %d %s", rec.Code, rec.Body.String())
			}
		}
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)*50/100]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
	reportMemory(b)
}
