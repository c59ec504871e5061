package servebench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

const (
	benchApps = 100_000
	// benchOwned of them are owned by rotor's rotation identity
	// (manageable); the rest rotor only sees.
	benchOwned = 90_000
	// listSamples is how many requests each list variant makes per
	// iteration: enough for a p99 from one iteration (-benchtime=1x).
	listSamples = 400
	// dashboardSamples is the dashboard's: each decides the plan's
	// 1,000-candidate cap, so a few hundred ms each.
	dashboardSamples = 20
)

// BenchmarkServeRSS100k measures `rotor serve` itself at 100,000
// applications: the rotor binary (go build) runs as a process of its own
// on a SQLite database that a real inventory sync filled from a simulated
// tenant of 100,000 applications (90,000 owned by rotor's rotation
// identity, one client secret each, ends spread over 400 days). The
// simulator and the seeding live in the test process, so none of their
// memory is the child's.
//
// The child runs as configured for production but for a day-long
// rotation.jitter (the 90,000 adoptions it plans at once are spread over a
// day, as an operator adopting a tenant that size would spread them, so a
// few rotations run during the measurement rather than the whole wave).
// Before any request the benchmark waits until the child has synced
// (incrementally: one delta request and a full reading of the ownership)
// and planned (90,000 due, enqueued). Then, signed in as the break-glass
// admin, it requests the UI's applications list (the variants of
// BenchmarkUIApplicationsList100k), the REST API's listing and the
// dashboard, over loopback HTTP, one request at a time, and reports each
// variant's p50 and p99.
//
// Memory comes from /proc/PID/status of the child: a variant's
// peak-rss-MiB is VmHWM over its requests (reset before them through
// /proc/PID/clear_refs), rss-MiB VmRSS after them. The memory
// sub-benchmark reports the peak of the start (sync and plan included),
// of the break-glass sign-in (one argon2id hash: 19 MiB by design) and
// of all the requests, and anon-MiB, the anonymous part of the RSS
// (RssAnon: Go's heap, stacks, SQLite's page caches; the rest is the
// binary's mapped text).
// The memory sub-benchmark adds, from the same run: the floor, an idle
// `rotor serve` of the same configuration on a one-application tenant;
// a first start on an empty database, where the child itself makes the
// full sync of the 100,000 applications and plans them (first-sync-*:
// its peak, its RSS after, and how long after its start the sync ended);
// and the database file's size.
//
//	go test -run '^$' -bench BenchmarkServeRSS100k -benchtime=1x ./internal/servebench/
func BenchmarkServeRSS100k(b *testing.B) {
	bin := buildRotor(b)

	// The floor first, alone on the machine.
	seed := fmt.Sprintf("apps=%d,tenants=1,replication=0s,expiring=9600h,owned=%d", benchApps, benchOwned)
	floor := startRig(b, bin, "apps=1,tenants=1,replication=0s,expiring=9600h", 1, false)
	floorMem := floor.memory(b)
	floor.stop(b)
	// The first start on an empty database: the child lists and writes
	// the 100,000 applications itself, then plans them all.
	first := startRig(b, bin, seed, benchApps, true)
	firstMem := first.memory(b)
	first.stop(b)

	r := startRig(b, bin, seed, benchApps, false)
	settled := r.memory(b) // its peak: start, sync and plan
	r.resetPeak(b)
	c := r.signIn(b)
	signIn := r.memory(b)
	deep := r.deepCursor(b, 90_000)

	ui := func(path, want string) func(*testing.B) {
		return func(b *testing.B) { r.measure(b, c, "/ui"+path, "", want, listSamples) }
	}
	api := func(path string) func(*testing.B) {
		return func(b *testing.B) { r.measure(b, c, "/api/v1/orgs/default"+path, r.apiKey, `"items":[{`, listSamples) }
	}
	b.Run("ui-first", ui("/applications", `bulk-app-000001`))
	b.Run("ui-filtered", ui("/applications?q=bulk-app-012&manageable=1&expiring=90", `bulk-app-0120`))
	b.Run("ui-deep", ui("/applications?cursor="+url.QueryEscape(deep), `bulk-app-090001`))
	b.Run("ui-expiry", ui("/applications?sort=expiry", `bulk-app-000001`))
	b.Run("ui-expiry-filtered", ui("/applications?q=bulk-app-012&expiring=90&sort=expiry", `bulk-app-012000`))
	// The worst case of the expiry order: a prefix nothing matches walks
	// the organization's whole expiry index.
	b.Run("ui-expiry-no-match", ui("/applications?q=zzz&sort=expiry", `<table`))
	b.Run("api-first", api("/applications?limit=50"))
	b.Run("api-filtered", api("/applications?name_prefix=bulk-app-012&manageable=true&expiring_within=90d&sort=expiry&limit=50"))
	// The plan, 90,000 due: one page of it, not the whole plan per request.
	b.Run("api-plan", api("/plan?limit=100"))
	b.Run("dashboard", func(b *testing.B) { r.measure(b, c, "/ui/", "", `<svg class="timeline"`, dashboardSamples) })
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
		}
		m := r.memory(b)
		b.ReportMetric(settled.peak, "startup-peak-rss-MiB")
		b.ReportMetric(settled.rss, "settled-rss-MiB")
		b.ReportMetric(signIn.peak, "signin-peak-rss-MiB")
		b.ReportMetric(r.requestsPeak, "requests-peak-rss-MiB")
		b.ReportMetric(m.rss, "rss-MiB")
		b.ReportMetric(m.anon, "anon-MiB")
		b.ReportMetric(firstMem.peak, "first-sync-peak-rss-MiB")
		b.ReportMetric(firstMem.rss, "first-sync-rss-MiB")
		b.ReportMetric(first.syncTook.Seconds(), "first-sync-s")
		b.ReportMetric(floorMem.peak, "floor-peak-rss-MiB")
		b.ReportMetric(floorMem.rss, "floor-rss-MiB")
		b.ReportMetric(r.dbMiB, "db-MiB")
	})
	r.stop(b)
}

// buildRotor builds cmd/rotor into a temporary directory.
func buildRotor(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "rotor")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/rotor-dev/rotor/cmd/rotor")
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "go build: %s", out)
	return bin
}

// rig is one simulator (in the test process) and one `rotor serve` child
// on a database the test process filled.
type rig struct {
	base   string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	done   chan error
	log    string
	apiKey string
	pw     string // the break-glass admin's password, from the child's console
	dbMiB  float64
	// syncTook is how long after its start the child logged its first
	// sync's end.
	syncTook time.Duration
	// requestsPeak is the highest VmHWM of the variants measured so far.
	requestsPeak float64
	client       *http.Client
}

var breakGlass = regexp.MustCompile(`\n      ([a-z2-7]{24})\n`)

// startRig starts a simulator seeded with seed, writes rotor.yaml for it
// (sign-in through the simulator's Entra, so rotor serves the UI), fills
// the database with a real sync of its applications in this process
// (want of them), makes an API key, and starts `rotor serve` on that
// database; it returns once the child has synced and planned.
func startRig(b *testing.B, bin, seed string, want int, childSyncs bool) *rig {
	b.Helper()
	ctx := context.Background()
	st := simtest.Start(b, simtest.Options{Seed: seed})
	tn := st.Info.Tenants[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	addr := ln.Addr().String()
	require.NoError(b, ln.Close())
	r := &rig{base: "http://" + addr, done: make(chan error, 1)}
	// rotor's sign-in registration; a bulk tenant has no people, so only
	// the break-glass admin signs in.
	web, err := st.Server.RegisterWebApp(tn.ID, sim.WebAppSpec{Name: "rotor-web", RedirectURIs: []string{r.base + "/auth/callback"}, Roles: sim.DemoSignInAppRoles})
	require.NoError(b, err)

	dir := b.TempDir()
	yaml, err := config.SimulatorYAML(st.Info, config.SimulatorConfig{
		SimFile: st.File, DataDir: filepath.Join(dir, "data"), LogLevel: "info", Listen: addr,
		Secret:   func(tn simfile.Tenant) string { return "{env: S_" + tn.Name + "}" },
		Rotation: config.SimulatorRotation{Jitter: "1d"},
	})
	require.NoError(b, err)
	// Nobody is bound to admin: the organization gets a break-glass
	// admin, whose password the child prints at its first start.
	yaml = append(yaml, fmt.Sprintf(`sign_in:
  entra:
    cloud: sim
    sim_file: %q
    tenant: %s
    client_id: %s
    client_secret: {env: SIGNIN_SECRET}
    redirect_url: %s/auth/callback
    roles:
      - {app_role: Rotor.Operator, organization: default, role: operator}
api_auth:
  rate_limit: {requests_per_second: 10000, burst: 100000}
`, st.File, tn.ID, web.AppID, r.base)...)
	path := filepath.Join(dir, "rotor.yaml")
	require.NoError(b, os.WriteFile(path, yaml, 0o600))
	env := map[string]string{"S_" + tn.Name: tn.Rotation.ClientSecret, "SIGNIN_SECRET": web.Secret}

	// Seed: a real full sync, as the first `rotor sync` would make it
	// (unless the child is to make it).
	srv, err := server.Open(ctx, path, server.Options{Logger: slog.New(slog.DiscardHandler), Process: "servebench-seed",
		Getenv: func(k string) string { return env[k] }, Console: io.Discard})
	require.NoError(b, err)
	if !childSyncs {
		require.NoError(b, srv.Sync(ctx, nil))
		n, err := srv.Store().CountApplications(ctx, "default", "")
		require.NoError(b, err)
		require.GreaterOrEqual(b, n, want)
	}
	key, err := srv.App().CreateAPIKey(ctx, app.Scope{Org: "default", Actor: app.CLI}, app.NewAPIKey{Name: "servebench", Role: app.RoleViewer})
	require.NoError(b, err)
	r.apiKey = key.Key.Reveal()
	require.NoError(b, srv.Close())
	r.dbMiB = dbSize(b, filepath.Join(dir, "data"))

	r.log = filepath.Join(dir, "serve.log")
	logf, err := os.Create(r.log)
	require.NoError(b, err)
	r.cmd = exec.Command(bin, "serve", "--config", path)
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	require.NoError(b, r.cmd.Start())
	go func() { r.done <- r.cmd.Wait(); logf.Close() }()
	b.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	// Ready when it has planned after its first sync (every owned
	// application is due: adoption), which the log says.
	started := time.Now()
	r.waitLog(b, `msg="inventory synced"`, 5*time.Minute)
	r.syncTook = time.Since(started)
	if childSyncs {
		require.Contains(b, r.readLog(b), `full_reason="first sync of the connection" seen=100002`, "the child listed every application")
	}
	r.waitLog(b, `msg="planned rotations"`, 5*time.Minute)
	r.pw = breakGlass.FindStringSubmatch(r.readLog(b))[1]
	// Let the plan's enqueueing and the first jittered rotations pass.
	time.Sleep(5 * time.Second)
	return r
}

// dbSize is the SQLite database's size in MiB, its WAL included.
func dbSize(b *testing.B, dir string) float64 {
	var n int64
	for _, f := range []string{"rotor.db", "rotor.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			n += fi.Size()
		}
	}
	require.NotZero(b, n)
	return float64(n) / (1 << 20)
}

func (r *rig) readLog(b *testing.B) string {
	raw, err := os.ReadFile(r.log)
	require.NoError(b, err)
	return string(raw)
}

// waitLog waits until the child's log has a line containing s.
func (r *rig) waitLog(b *testing.B, s string, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := r.readLog(b)
		if strings.Contains(out, s) && breakGlass.MatchString(out) {
			return
		}
		select {
		case err := <-r.done:
			b.Fatalf("rotor serve exited (%v) before %q:\n%s", err, s, lastLines(out, 40))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("rotor serve did not log %q within %s:\n%s", s, timeout, lastLines(out, 40))
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// stop sends SIGTERM and waits for a clean exit.
func (r *rig) stop(b *testing.B) {
	b.Helper()
	if r.client != nil {
		r.client.CloseIdleConnections()
	}
	require.NoError(b, r.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-r.done:
		require.NoError(b, err, "rotor serve must exit cleanly on SIGTERM:\n%s", lastLines(r.readLog(b), 20))
	case <-time.After(45 * time.Second):
		_ = r.cmd.Process.Kill()
		b.Fatal("rotor serve did not stop within 45s of SIGTERM")
	}
}

// mem is what /proc/PID/status says of the child, in MiB.
type mem struct{ peak, rss, anon float64 }

func (r *rig) memory(b *testing.B) mem {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	require.NoError(b, err)
	kb := func(field string) float64 {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				require.NoError(b, err, line)
				return float64(n) / 1024
			}
		}
		b.Fatalf("no %s in /proc/PID/status", field)
		return 0
	}
	return mem{peak: kb("VmHWM"), rss: kb("VmRSS"), anon: kb("RssAnon")}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// signIn signs in as the break-glass admin (the form's CSRF token, then
// the password) and returns the browser.
func (r *rig) signIn(b *testing.B) *http.Client {
	b.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(b, err)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	r.client = c
	resp, page := get(b, c, r.base+"/login/local", "")
	require.Equal(b, http.StatusOK, resp.StatusCode, page)
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		if !form.Has(m[1]) {
			form.Add(m[1], html.UnescapeString(m[2]))
		}
	}
	form.Set("org", "default")
	form.Set("password", r.pw)
	form.Set("return_to", "/ui/")
	resp, err = c.PostForm(r.base+"/login/local", form)
	require.NoError(b, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(b, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(b, "/ui/", resp.Request.URL.Path, "signed in, on the dashboard")
	return c
}

func get(b *testing.B, c *http.Client, u, bearer string) (*http.Response, string) {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(b, err)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	require.NoError(b, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b, err)
	return resp, string(body)
}

// deepCursor walks the API's name order n applications in, a page of
// 1,000 at a time, as a client would, and returns the cursor there.
func (r *rig) deepCursor(b *testing.B, n int) string {
	b.Helper()
	cursor := ""
	for range n / app.MaxPageSize {
		u := r.base + "/api/v1/orgs/default/applications?limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		resp, body := get(b, r.client, u, r.apiKey)
		require.Equal(b, http.StatusOK, resp.StatusCode, body)
		var page struct {
			Next string `json:"next_cursor"`
		}
		require.NoError(b, json.NewDecoder(strings.NewReader(body)).Decode(&page))
		require.NotEmpty(b, page.Next)
		cursor = page.Next
	}
	return cursor
}

// measure requests path samples times per iteration and reports p50 and
// p99 in ms and the child's memory after.
func (r *rig) measure(b *testing.B, c *http.Client, path, bearer, want string, samples int) {
	r.resetPeak(b)
	var lat []time.Duration
	for b.Loop() {
		for range samples {
			req, err := http.NewRequest(http.MethodGet, r.base+path, nil)
			require.NoError(b, err)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			t0 := time.Now()
			resp, err := c.Do(req)
			require.NoError(b, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
			require.NoError(b, err)
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(want)) {
				b.Fatalf("%s: %d, want %q in:\n%.2000s", path, resp.StatusCode, want, body)
			}
		}
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)*50/100]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
	m := r.memory(b)
	r.requestsPeak = max(r.requestsPeak, m.peak)
	b.ReportMetric(m.peak, "peak-rss-MiB")
	b.ReportMetric(m.rss, "rss-MiB")
}

// resetPeak resets the child's VmHWM to its RSS now (Linux's clear_refs
// "5"), so that the next reading is the peak of what happened since.
func (r *rig) resetPeak(b *testing.B) {
	b.Helper()
	require.NoError(b, os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", r.cmd.Process.Pid), []byte("5"), 0))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
