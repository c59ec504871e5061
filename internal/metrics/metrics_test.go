package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// bundle is a real SQLite inventory with an organization and three
// connections (rotation, read, and a vm one that reads no applications).
type bundle struct {
	ctx   context.Context
	store *sqlite.Store
	clock *clock.Fake
	org   domain.OrgID
}

func setup(t testing.TB) *bundle {
	t.Helper()
	ctx := context.Background()
	c := clock.NewFake(t0)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rotor.db"), sqlite.WithClock(c))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	b := &bundle{ctx: ctx, store: st, clock: c, org: "acme"}
	require.NoError(t, st.EnsureOrg(ctx, b.org, "Acme"))
	for _, cn := range []struct{ name, purpose string }{{"main", "rotation"}, {"reader", "read"}, {"vms", "vm"}} {
		require.NoError(t, st.UpsertConnection(ctx, store.UpsertConnectionParams{Connection: store.Connection{
			Org: b.org, Name: cn.name, TenantID: "tenant-1", Cloud: "sim", SimFile: "/sim.json", Purpose: cn.purpose,
			Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: "11111111-1111-1111-1111-111111111111",
				ClientSecret: &store.SecretRef{Kind: store.SecretEnv, Env: "S"}},
		}}))
	}
	return b
}

// sync writes apps as one connection's sync sees them.
func (b *bundle) sync(t testing.TB, connection string, apps ...domain.Application) {
	t.Helper()
	_, err := b.store.SyncApplications(b.ctx, store.SyncApplicationsParams{Org: b.org, Connection: connection, SyncStarted: b.clock.Now(), Applications: apps})
	require.NoError(t, err)
}

func app(name string, manageable bool, ends ...time.Duration) domain.Application {
	a := domain.Application{TenantID: "tenant-1", ObjectID: "obj-" + name, AppID: "app-" + name, DisplayName: name, Manageable: manageable}
	for i, d := range ends {
		a.Credentials = append(a.Credentials, domain.Credential{KeyID: fmt.Sprintf("%s-key-%d", name, i), Kind: domain.KindSecret,
			DisplayName: "hand-made", Start: t0.Add(-100 * day), End: t0.Add(d)})
	}
	return a
}

// series gathers c and returns every sample as name{label="value",…}
// (labels sorted, as the text format writes them) → value.
func series(t *testing.T, c prometheus.Collector, prefix string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[key(mf.GetName(), m)] = value(m)
		}
	}
	return out
}

func key(name string, m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

// TestInventoryGauges: one pass over a real store gives each connection
// that reads applications its soonest expiry and its counts, an
// application two connections see counts for both, a connection that sees
// nothing has zeros rather than no series, and a connection that reads no
// applications has only its info.
func TestInventoryGauges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// "both" is seen by main (which may change it) and reader.
	both := app("both", true, 2*day, 40*day, -day)
	b.sync(t, "main", both, app("bare", true))
	both.Manageable = false
	b.sync(t, "reader", both, app("far", false, 100*day), app("soon", false, 6*day+23*time.Hour, 8*day))
	c := newInventoryCollector(b.store, b.clock, 30*time.Second, nil)

	require.Equal(t, map[string]float64{
		`rotor_inventory_up{}`: 1,
		`rotor_connection_info{cloud="sim",connection="main",org="acme",purpose="rotation",tenant="tenant-1"}`: 1,
		`rotor_connection_info{cloud="sim",connection="reader",org="acme",purpose="read",tenant="tenant-1"}`:   1,
		`rotor_connection_info{cloud="sim",connection="vms",org="acme",purpose="vm",tenant="tenant-1"}`:        1,

		`rotor_applications{connection="main",org="acme"}`:                                2,
		`rotor_applications_manageable{connection="main",org="acme"}`:                     2,
		`rotor_credentials_expired{connection="main",org="acme"}`:                         1,
		`rotor_credentials_expiring{connection="main",org="acme",window="7d"}`:            1,
		`rotor_credentials_expiring{connection="main",org="acme",window="30d"}`:           1,
		`rotor_credentials_expiring{connection="main",org="acme",window="90d"}`:           2,
		`rotor_credentials_next_expiry_timestamp_seconds{connection="main",org="acme"}`:   float64(t0.Add(2 * day).Unix()),
		`rotor_applications{connection="reader",org="acme"}`:                              3,
		`rotor_applications_manageable{connection="reader",org="acme"}`:                   0,
		`rotor_credentials_expired{connection="reader",org="acme"}`:                       1,
		`rotor_credentials_expiring{connection="reader",org="acme",window="7d"}`:          2,
		`rotor_credentials_expiring{connection="reader",org="acme",window="30d"}`:         3,
		`rotor_credentials_expiring{connection="reader",org="acme",window="90d"}`:         4,
		`rotor_credentials_next_expiry_timestamp_seconds{connection="reader",org="acme"}`: float64(t0.Add(2 * day).Unix()),
	}, series(t, c, "rotor_"))

	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP rotor_credentials_expired Credentials whose end has passed and that are still on an application the connection sees.
# TYPE rotor_credentials_expired gauge
rotor_credentials_expired{connection="main",org="acme"} 1
rotor_credentials_expired{connection="reader",org="acme"} 1
`), "rotor_credentials_expired"))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestInventoryGaugesPage: the pass pages through the store; every page
// is counted once.
func TestInventoryGaugesPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var apps []domain.Application
	for i := range 7 {
		apps = append(apps, app(fmt.Sprintf("app-%02d", i), true, time.Duration(i+1)*day))
	}
	b.sync(t, "main", apps...)
	c := newInventoryCollector(b.store, b.clock, 30*time.Second, nil)
	c.page = 3
	got := series(t, c, "rotor_credentials_expiring")
	require.Equal(t, 7.0, got[`rotor_credentials_expiring{connection="main",org="acme",window="7d"}`])
	require.Equal(t, 7.0, series(t, c, "rotor_applications")[`rotor_applications{connection="main",org="acme"}`])
}

// TestInventoryGaugesAreCached: one reading serves scrapes for the TTL;
// the next scrape after it reads the store again.
func TestInventoryGaugesAreCached(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sync(t, "main", app("a", true, 10*day))
	c := newInventoryCollector(b.store, b.clock, 30*time.Second, nil)
	const week = `rotor_credentials_expiring{connection="main",org="acme",window="7d"}`
	require.Equal(t, 0.0, series(t, c, "rotor_credentials_expiring")[week])

	b.sync(t, "main", app("a", true, 10*day), app("b", true, time.Hour))
	b.clock.Advance(29 * time.Second)
	require.Equal(t, 0.0, series(t, c, "rotor_credentials_expiring")[week], "within the TTL: the cached reading")
	b.clock.Advance(time.Second)
	require.Equal(t, 1.0, series(t, c, "rotor_credentials_expiring")[week], "after the TTL: read again")
}

// TestInventoryUnreadable: a store that cannot be read gives
// rotor_inventory_up 0 and no inventory gauges, not a stale reading.
func TestInventoryUnreadable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sync(t, "main", app("a", true, day))
	c := newInventoryCollector(b.store, b.clock, 30*time.Second, slog.New(slog.DiscardHandler))
	require.NotEmpty(t, series(t, c, "rotor_credentials"))
	require.NoError(t, b.store.Close())
	b.clock.Advance(time.Minute)
	require.Equal(t, map[string]float64{`rotor_inventory_up{}`: 0}, series(t, c, "rotor_"))
}

// TestCounters: what the engine, the Azure clients and the sign-ins
// report lands in its series; a connection's counters start at zero when
// it is added and go when it is forgotten.
func TestCounters(t *testing.T) {
	t.Parallel()
	m := New(Options{})
	m.AddConnection("acme", "main")
	require.Equal(t, 0.0, testutil.ToFloat64(m.runs.WithLabelValues("acme", "main", "failed_permanent")))
	require.Equal(t, 0.0, testutil.ToFloat64(m.throttled.WithLabelValues("acme", "main", "graph")))
	require.Equal(t, len(rotation.RunOutcomes()), testutil.CollectAndCount(m.runs))

	m.Observe("acme", "main", rotation.RunOutcomeDone)
	m.Observe("acme", "main", rotation.RunOutcomeDone)
	m.Observe("acme", "main", rotation.RunOutcomeFailedTransient)
	m.Rotated("acme", "main", 42*time.Second)
	m.SignInFailed("acme", "main", 7000215)
	m.SignInFailed("acme", "main", 0)
	obs := m.Requests("acme", "main")
	for _, a := range []azure.Attempt{
		{Service: azure.ServiceGraph, Status: 429},
		{Service: azure.ServiceGraph, Status: 200, Retry: true},
		{Service: azure.ServiceKeyVault, Status: 401},
		{Service: azure.ServiceKeyVault, Status: 0},
		{Service: azure.ServiceEntra, Status: 200},
	} {
		obs.ObserveAttempt(a)
	}
	require.Equal(t, 2.0, testutil.ToFloat64(m.runs.WithLabelValues("acme", "main", "done")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.runs.WithLabelValues("acme", "main", "failed_transient")))
	require.Equal(t, 0.0, testutil.ToFloat64(m.runs.WithLabelValues("acme", "main", "failed_permanent")))
	require.NoError(t, testutil.CollectAndCompare(m.signIns, strings.NewReader(`
# HELP rotor_connection_signin_failures_total Token requests of a connection's identity that failed, by Entra's AADSTS code (none when Entra did not answer with one: network, timeout).
# TYPE rotor_connection_signin_failures_total counter
rotor_connection_signin_failures_total{aadsts="7000215",connection="main",org="acme"} 1
rotor_connection_signin_failures_total{aadsts="none",connection="main",org="acme"} 1
`)))
	require.Equal(t, map[string]float64{
		`rotor_azure_requests_total{connection="main",org="acme",service="graph",status_class="4xx"}`:      1,
		`rotor_azure_requests_total{connection="main",org="acme",service="graph",status_class="2xx"}`:      1,
		`rotor_azure_requests_total{connection="main",org="acme",service="keyvault",status_class="4xx"}`:   1,
		`rotor_azure_requests_total{connection="main",org="acme",service="keyvault",status_class="error"}`: 1,
		`rotor_azure_requests_total{connection="main",org="acme",service="entra",status_class="2xx"}`:      1,
		`rotor_azure_throttled_total{connection="main",org="acme",service="graph"}`:                        1,
		`rotor_azure_throttled_total{connection="main",org="acme",service="keyvault"}`:                     0,
		`rotor_azure_throttled_total{connection="main",org="acme",service="entra"}`:                        0,
		`rotor_azure_retries_total{connection="main",org="acme",service="graph"}`:                          1,
		`rotor_azure_retries_total{connection="main",org="acme",service="keyvault"}`:                       0,
		`rotor_azure_retries_total{connection="main",org="acme",service="entra"}`:                          0,
	}, merge(series(t, m.requests, ""), series(t, m.throttled, ""), series(t, m.retries, "")))
	h := series(t, m.rotation, "")
	require.Equal(t, 1.0, h[`rotor_rotation_duration_seconds{connection="main",org="acme"}`])

	m.AddConnection("acme", "other")
	m.ForgetConnection("acme", "main")
	for _, c := range []prometheus.Collector{m.runs, m.rotation, m.requests, m.throttled, m.retries, m.signIns} {
		for k := range series(t, c, "") {
			require.NotContains(t, k, `connection="main"`)
		}
	}
	require.Equal(t, len(rotation.RunOutcomes()), testutil.CollectAndCount(m.runs), "the other connection keeps its series")
}

func merge(ms ...map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// TestHandler: /metrics answers in the text format with rotor's, Go's
// and the process's metrics, and the connection gauges from the health
// the server reports; every metric passes Prometheus' lint.
func TestHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sync(t, "main", app("a", true, day))
	m := New(Options{Inventory: b.store, Clock: b.clock, Health: func() []ConnectionHealth {
		return []ConnectionHealth{
			{Org: "acme", Connection: "main", LastSuccess: t0},
			{Org: "acme", Connection: "reader", Failing: true},
		}
	}})
	m.AddConnection("acme", "main")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, want := range []string{
		`rotor_runs_total{connection="main",org="acme",outcome="done"} 0`,
		`rotor_credentials_expiring{connection="main",org="acme",window="7d"} 1`,
		`rotor_connection_failing{connection="main",org="acme"} 0`,
		`rotor_connection_failing{connection="reader",org="acme"} 1`,
		`rotor_connection_last_success_timestamp_seconds{connection="main",org="acme"} ` + strconv.FormatFloat(float64(t0.Unix()), 'g', -1, 64),
		"go_goroutines ", "process_",
	} {
		require.Contains(t, string(body), want)
	}
	require.NotContains(t, string(body), `rotor_connection_last_success_timestamp_seconds{connection="reader"`)

	problems, err := testutil.GatherAndLint(m.Gatherer())
	require.NoError(t, err)
	var ours []string
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "rotor_") {
			ours = append(ours, p.Metric+": "+p.Text)
		}
	}
	require.Empty(t, ours)
}

func TestStatusClass(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{0: "error", 200: "2xx", 204: "2xx", 301: "3xx", 401: "4xx", 429: "4xx", 503: "5xx", 99: "other", 600: "other"} {
		require.Equal(t, want, statusClass(status), "%d", status)
	}
}
