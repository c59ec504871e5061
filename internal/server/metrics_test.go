package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/rotation"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
)

// scrape is one GET /metrics, as its text and parsed.
type scrape struct {
	body     string
	families map[string]*dto.MetricFamily
}

func scrapeMetrics(t *testing.T, addr string) scrape {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	require.NoError(t, err, "/metrics is Prometheus' text format")
	return scrape{body: string(b), families: fams}
}

// value is the sample of name whose labels include every pair of labels
// (name, value, name, value, …), summed over the samples that match, and
// whether any did. Histograms give their sample count.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	fam, ok := s.families[name]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, found
}

func (s scrape) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.value(name, labels...)
	require.True(t, ok, "/metrics has %s%v", name, labels)
	return v
}

// TestMetricsAfterRotation (issue 7, item 4): rotor serve on the
// simulator adopts every application it owns — new secret, Key Vault,
// token check, retirement — and /metrics then says so: each run done and
// timed, Graph, Key Vault and Entra requests counted, the connection
// healthy, and the inventory's expiry gauges as the store has them. No
// application's name or id is in it, and no secret the simulator issued,
// nor rotor's own.
func TestMetricsAfterRotation(t *testing.T) {
	t.Parallel()
	var issuedMu sync.Mutex
	var issued []string
	st := simtest.Start(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=1h,replication=0s",
		OnSecretIssued: func(_, _, _, value string) {
			issuedMu.Lock()
			defer issuedMu.Unlock()
			issued = append(issued, value)
		}})
	tn := st.Info.Tenants[0]
	dir := t.TempDir()
	yaml, err := config.SimulatorYAML(st.Info, config.SimulatorConfig{
		SimFile: filepath.Join(filepath.Dir(st.Info.CAFile), simfile.FileName), DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(simfile.Tenant) string { return "{env: ROTATION_SECRET}" },
		Rotation: config.SimulatorRotation{Jitter: "0s"},
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "60d", RenewBefore: "10d", Overlap: "0s"}},
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))

	// The test waits on the journal, not on the clock: allDone closes at
	// the want-th run done.
	var doneMu sync.Mutex
	done, allDone := 0, make(chan struct{})
	want := -1
	srv, err := Open(context.Background(), cfgPath, Options{
		Logger: slog.New(slog.DiscardHandler),
		Getenv: envMap{"ROTATION_SECRET": tn.Rotation.ClientSecret}.get,
		Hooks: rotation.Hooks{AfterJournal: func(_ domain.Run, step domain.Step) {
			if step.Kind != domain.StepDone {
				return
			}
			doneMu.Lock()
			defer doneMu.Unlock()
			done++
			if done == want {
				close(allDone)
			}
		}},
	})
	require.NoError(t, err)
	defer srv.Close()
	org := srv.Config().Organization
	conn := tn.Name

	// Sync first, to know how many applications the policy rotates.
	ctx := context.Background()
	require.NoError(t, srv.Sync(ctx, nil))
	apps, err := srv.Store().ListApplications(ctx, store.ListApplicationsParams{Org: org})
	require.NoError(t, err)
	rotated := 0
	for _, a := range apps {
		if p := srv.PolicyFor(a); p != nil && a.CanChange(p.Connection) {
			rotated++
		}
	}
	require.Positive(t, rotated)
	doneMu.Lock()
	want = rotated
	doneMu.Unlock()

	sctx, cancel := context.WithCancel(ctx)
	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, func(a string) { addrc <- a }) }()
	addr := <-addrc
	defer func() { cancel(); <-served }()
	select {
	case <-allDone:
	case <-time.After(90 * time.Second):
		doneMu.Lock()
		defer doneMu.Unlock()
		t.Fatalf("%d of %d rotations done", done, rotated)
	}

	m := scrapeMetrics(t, addr)
	l := []string{"org", string(org), "connection", conn}
	with := func(more ...string) []string { return append(append([]string(nil), l...), more...) }

	// Runs.
	require.Equal(t, float64(rotated), m.must(t, "rotor_runs_total", with("outcome", "done")...))
	for _, out := range []string{"failed_transient", "failed_permanent", "failed_removed", "abandoned", "lease_lost"} {
		require.Zero(t, m.must(t, "rotor_runs_total", with("outcome", out)...), out)
	}
	require.Equal(t, float64(rotated), m.must(t, "rotor_rotation_duration_seconds", l...), "one duration per rotation")

	// Azure requests, per service.
	for _, svc := range []string{"graph", "keyvault", "entra"} {
		require.Positive(t, m.must(t, "rotor_azure_requests_total", with("service", svc, "status_class", "2xx")...), svc)
	}
	_, any5xx := m.value("rotor_azure_requests_total", with("status_class", "5xx")...)
	require.False(t, any5xx)
	require.Zero(t, m.must(t, "rotor_azure_throttled_total", with("service", "graph")...))

	// The connection works.
	require.Zero(t, m.must(t, "rotor_connection_failing", l...))
	require.Positive(t, m.must(t, "rotor_connection_last_success_timestamp_seconds", l...))
	_, failed := m.value("rotor_connection_signin_failures_total")
	require.False(t, failed, "no sign-in failed")
	require.Equal(t, 1.0, m.must(t, "rotor_connection_info", with("tenant", tn.ID, "purpose", "rotation", "cloud", "sim")...))

	// The inventory, as the store has it now.
	apps, err = srv.Store().ListApplications(ctx, store.ListApplicationsParams{Org: org, Connection: conn})
	require.NoError(t, err)
	now := time.Now()
	var week, quarter int
	var next time.Time
	for _, a := range apps {
		for _, c := range a.Credentials {
			if !c.End.After(now) {
				continue
			}
			if next.IsZero() || c.End.Before(next) {
				next = c.End
			}
			if c.End.Before(now.Add(7 * 24 * time.Hour)) {
				week++
			}
			if c.End.Before(now.Add(90 * 24 * time.Hour)) {
				quarter++
			}
		}
	}
	t.Logf("%d rotations; %d of %d applications' credentials end within 7 days, %d within 90", rotated, week, len(apps), quarter)
	require.Positive(t, week, "the seed's secrets expire within the hour")
	require.Equal(t, float64(len(apps)), m.must(t, "rotor_applications", l...))
	require.Equal(t, float64(week), m.must(t, "rotor_credentials_expiring", with("window", "7d")...))
	require.Equal(t, float64(quarter), m.must(t, "rotor_credentials_expiring", with("window", "90d")...))
	require.Equal(t, rotated, quarter-week, "each rotation's 60-day secret is within 90 days, not 7")
	require.Equal(t, float64(next.Unix()), m.must(t, "rotor_credentials_next_expiry_timestamp_seconds", l...))
	require.Equal(t, 1.0, m.must(t, "rotor_inventory_up"))

	// Nothing that names an application, and no secret.
	all, err := srv.Store().ListApplications(ctx, store.ListApplicationsParams{Org: org})
	require.NoError(t, err)
	for _, a := range all {
		for _, s := range []string{a.DisplayName, a.ObjectID, a.AppID} {
			require.NotContains(t, m.body, s, "an application's name or id in /metrics")
		}
	}
	issuedMu.Lock()
	defer issuedMu.Unlock()
	require.GreaterOrEqual(t, len(issued), rotated, "the simulator reported the secrets it issued")
	for _, v := range issued {
		require.NotContains(t, m.body, v, "an issued secret in /metrics")
	}
	require.NotContains(t, m.body, tn.Rotation.ClientSecret, "rotor's own secret in /metrics")
}

// TestMetricsCountSignInFailures: rotor started with a wrong secret for
// its rotation identity counts the failed sign-ins by Entra's AADSTS code
// and says the connection is failing; the wrong secret is nowhere in
// /metrics. With metrics.enabled false, /metrics is not served.
func TestMetricsCountSignInFailures(t *testing.T) {
	t.Parallel()
	st := simtest.Start(t, simtest.Options{Seed: "apps=1,tenants=1,expiring=1h"})
	tn := st.Info.Tenants[0]
	const wrong = "definitely-not-the-secret-0123456789"
	start := func(t *testing.T, env envMap) (string, func()) {
		t.Helper()
		dir := t.TempDir()
		yaml, err := config.SimulatorYAML(st.Info, config.SimulatorConfig{
			SimFile: filepath.Join(filepath.Dir(st.Info.CAFile), simfile.FileName), DataDir: filepath.Join(dir, "data"), LogLevel: "error",
			Secret: func(simfile.Tenant) string { return "{env: S}" },
		})
		require.NoError(t, err)
		cfgPath := filepath.Join(dir, "rotor.yaml")
		require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))
		srv, err := Open(context.Background(), cfgPath, Options{Logger: slog.New(slog.DiscardHandler), Getenv: env.get})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		addrc := make(chan string, 1)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx, func(a string) { addrc <- a }) }()
		return <-addrc, func() { cancel(); <-served; srv.Close() }
	}

	addr, stop := start(t, envMap{"S": wrong})
	defer stop()
	var m scrape
	deadline := time.Now().Add(20 * time.Second)
	for {
		m = scrapeMetrics(t, addr)
		if v, ok := m.value("rotor_connection_failing", "connection", tn.Name); ok && v == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the connection is not reported failing:\n%s", m.body)
		time.Sleep(100 * time.Millisecond)
	}
	require.Positive(t, m.must(t, "rotor_connection_signin_failures_total", "org", "default", "connection", tn.Name, "aadsts", "7000215"))
	require.NotContains(t, m.body, wrong)

	addr, stop = start(t, envMap{"S": tn.Rotation.ClientSecret, "ROTOR_METRICS_ENABLED": "false"})
	defer stop()
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "metrics.enabled: false serves no /metrics")
}
