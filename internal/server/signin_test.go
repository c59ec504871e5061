package server

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/web/csrf"
	"github.com/rotor-dev/rotor/internal/web/session"
)

// syncBuffer is an io.Writer tests read while rotor writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// signInRig is `rotor serve` with sign_in against the simulator's contoso
// tenant, on a real loopback listener over plain HTTP (as the demo runs).
type signInRig struct {
	sim   *simtest.Sim
	tn    *simfile.Tenant
	clock *clock.Offset
	path  string
	env   envMap
	base  string // http://127.0.0.1:PORT
	db    string
}

func newSignInRig(t *testing.T) *signInRig {
	t.Helper()
	st := simtest.Start(t, simtest.Options{})
	tn := st.Tenant(t, "contoso")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	r := &signInRig{sim: st, tn: tn, clock: &clock.Offset{}, base: "http://" + addr}
	web, err := st.Server.RegisterDemoSignIn(tn.ID, r.base+"/auth/callback")
	require.NoError(t, err)

	dir := t.TempDir()
	simFile := filepath.Join(filepath.Dir(st.Info.CAFile), simfile.FileName)
	yaml, err := config.SimulatorYAML(st.Info, config.SimulatorConfig{
		SimFile: simFile, DataDir: filepath.Join(dir, "data"), LogLevel: "warn", Listen: addr,
		Secret: func(tn simfile.Tenant) string { return "{env: S_" + tn.Name + "}" },
	})
	require.NoError(t, err)
	viewers := st.Server.World().Tenant(tn.ID).GroupByName(sim.DemoViewerGroup).ObjectID
	// No binding makes anyone admin of default: it gets a break-glass
	// admin.
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
      - {group: %s, organization: default, role: viewer}
      - {app_role: Rotor.Admin, organization: elsewhere, role: admin}
  session_lifetime: 1h
`, simFile, tn.ID, web.AppID, r.base, viewers)...)
	r.path = filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(r.path, yaml, 0o600))
	r.env = envMap{"SIGNIN_SECRET": web.Secret}
	for _, tn := range st.Info.Tenants {
		r.env["S_"+tn.Name] = tn.Rotation.ClientSecret
	}
	r.db = filepath.Join(dir, "data", "rotor.db")
	return r
}

// serve opens rotor and serves it until the test ends or stop is called;
// it returns once rotor listens.
func (r *signInRig) serve(t *testing.T, console io.Writer) (srv *Server, stop func()) {
	t.Helper()
	srv, err := Open(context.Background(), r.path, Options{
		Logger: slog.New(slog.DiscardHandler), Getenv: r.env.get, Clock: r.clock, Console: console,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, func(string) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		srv.Close()
		t.Fatalf("serve stopped before listening: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			require.NoError(t, srv.Close())
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

// browser is a person's browser: a cookie jar, trusting the simulator,
// following redirects unless told not to.
type signInBrowser struct {
	t *testing.T
	r *signInRig
	c *http.Client
}

func (r *signInRig) browser(t *testing.T) *signInBrowser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.sim.CAPool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &signInBrowser{t: t, r: r, c: &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}}
}

func (b *signInBrowser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, string(body)
}

func (b *signInBrowser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

func (b *signInBrowser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	breakGlass  = regexp.MustCompile(`\n      ([a-z2-7]{24})\n`)
	logoutForm  = regexp.MustCompile(`<form method="post" action="/logout" id="logout">.*?</form>`)
)

func unescapeHTML(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// signIn starts at /ui/ unauthenticated, is sent to /login, then to the
// simulator's sign-in page, picks user there and follows Entra's redirect
// back to rotor's callback, whose page moves on to /ui/. It returns /ui/.
func (b *signInBrowser) signIn(user string) string {
	b.t.Helper()
	t := b.t
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := b.get(b.r.base + "/ui/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/login?return_to=%2Fui%2F", resp.Header.Get("Location"))
	b.c.CheckRedirect = nil

	resp, page := b.get(b.r.base + resp.Header.Get("Location"))
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	authorize := resp.Request.URL
	require.True(t, strings.HasPrefix(authorize.String(), b.r.sim.Info.AuthorityHost+b.r.tn.ID+"/oauth2/v2.0/authorize?"), authorize.String())
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		if !form.Has(m[1]) {
			form.Add(m[1], unescapeHTML(m[2]))
		}
	}
	u, ok := b.r.tn.User(user)
	require.True(t, ok, user)
	form.Set("user", u.ObjectID)
	resp, page = b.post(authorize.Scheme+"://"+authorize.Host+authorize.Path, form)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	require.Equal(t, "/auth/callback", resp.Request.URL.Path)
	require.Contains(t, page, `content="0;url=/ui/"`, "the callback's page moves on to where the person was going")

	resp, page = b.get(b.r.base + "/ui/")
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	return page
}

// TestServeSignsPeopleIn: `rotor serve` with sign_in serves the whole
// sign-in on its listener: /ui/ sends a stranger to /login, Entra (the
// simulator) signs them in, the callback starts the session, /ui/ shows
// who they are and their role; sign-out needs the form's CSRF token; the
// audit trail has the sign-in and the sign-out with the person as actor;
// the organization no binding makes admin of gets a break-glass password,
// printed once (a restart prints nothing); the sweep job deletes expired
// sessions.
func TestServeSignsPeopleIn(t *testing.T) {
	t.Parallel()
	r := newSignInRig(t)
	console := &syncBuffer{}
	srv, stop := r.serve(t, console)

	out := console.String()
	require.Contains(t, out, "no one can administer organization default yet, so it has a break-glass admin")
	require.Contains(t, out, r.base+"/login/local")
	require.Len(t, breakGlass.FindAllStringSubmatch(out, -1), 1, "one password, for default only:\n%s", out)
	require.NotContains(t, out, "elsewhere")

	b := r.browser(t)
	page := b.signIn("oscar")
	oscar, _ := r.tn.User("oscar")
	// /ui/ is the dashboard; its header (every page's) says who is
	// signed in, as what, where.
	require.Contains(t, page, "<h1>Dashboard</h1>")
	require.Contains(t, page, `<span id="name">Oscar Operator &lt;`+oscar.UserPrincipalName+`&gt;</span>`)
	require.Contains(t, page, `<span class="id" id="actor" hidden>user:`+oscar.ObjectID+`</span>`)
	require.Contains(t, page, `<span id="role">operator</span> in <span id="org">default</span>`)
	logout := logoutForm.FindString(page)
	require.NotEmpty(t, logout, "a sign-out form:\n%s", page)
	token := ""
	for _, m := range hiddenInput.FindAllStringSubmatch(logout, -1) {
		if m[1] == csrf.FieldName {
			token = unescapeHTML(m[2])
		}
	}
	require.NotEmpty(t, token, "the sign-out form carries its CSRF token:\n%s", page)

	// The pages read the inventory as oscar, in his session's organization.
	require.Contains(t, page, `href="/ui/applications"`)
	require.NoError(t, srv.Sync(context.Background(), nil))
	resp, list := b.get(r.base + "/ui/applications")
	require.Equal(t, http.StatusOK, resp.StatusCode, list)
	apps, err := srv.Store().ListApplications(context.Background(), store.ListApplicationsParams{Org: "default", Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, apps)
	require.Contains(t, list, template.HTMLEscapeString(apps[0].DisplayName), "the list shows the inventory")
	resp, detail := b.get(r.base + "/ui/applications/" + apps[0].ObjectID)
	require.Equal(t, http.StatusOK, resp.StatusCode, detail)
	require.Contains(t, detail, apps[0].AppID)
	// The settings page shows the role mappings of oscar's organization
	// only (sign_in.entra.roles, passed in by signInHandler) and that its
	// break-glass admin exists; an operator manages no API keys.
	resp, settings := b.get(r.base + "/ui/settings")
	require.Equal(t, http.StatusOK, resp.StatusCode, settings)
	require.Contains(t, settings, "<td>Rotor.Operator</td>")
	viewers := r.sim.Server.World().Tenant(r.tn.ID).GroupByName(sim.DemoViewerGroup).ObjectID
	require.Contains(t, settings, `<td class="id">`+strings.ToLower(viewers)+`</td><td>viewer</td>`)
	require.NotContains(t, settings, "Rotor.Admin", "another organization's mapping")
	require.Contains(t, settings, `<dd id="break-glass">yes: `)
	require.Contains(t, settings, `id="api-keys-admins-only"`)
	require.NotContains(t, settings, `id="create-api-key"`)
	anon := r.browser(t)
	resp, anonPage := anon.get(r.base + "/ui/applications")
	require.NotEqual(t, "/ui/applications", resp.Request.URL.Path, "the pages need a session: sent to sign in")
	require.NotContains(t, anonPage, template.HTMLEscapeString(apps[0].DisplayName))

	resp, _ = b.post(r.base+"/logout", url.Values{})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "sign-out without the CSRF token is refused")
	resp, _ = b.get(r.base + "/ui/")
	require.Equal(t, "/ui/", resp.Request.URL.Path, "still signed in")

	resp, page = b.post(r.base+"/logout", url.Values{csrf.FieldName: {token}})
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	require.Contains(t, page, "Signed out")
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = b.get(r.base + "/ui/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "signed out")

	recs, err := srv.App().AuditList(context.Background(), app.Scope{Org: "default", Actor: app.CLI}, app.AuditFilter{Actor: oscar.ObjectID})
	require.NoError(t, err)
	var got []string
	for _, rec := range recs {
		require.Equal(t, "user", rec.Actor.Kind)
		require.Equal(t, app.ObjectSession, rec.Object)
		got = append(got, rec.Action+" "+rec.Outcome)
	}
	require.Equal(t, []string{"sign-in ok", "sign-out ok"}, got, "the audit trail has both, the person as actor")
	res, err := srv.App().AuditVerify(context.Background(), app.Scope{Org: "default", Actor: app.CLI}, app.AuditVerifyOptions{})
	require.NoError(t, err)
	require.True(t, res.Intact, "the chain holds: %+v", res)

	// A restart prints no password: the break-glass admin exists.
	stop()
	console2 := &syncBuffer{}
	srv, _ = r.serve(t, console2)
	require.Empty(t, console2.String(), "the break-glass password is shown once only")

	// Vera (a viewer through her group) signs in; once her session has
	// expired the sweep job deletes its row.
	vera := r.browser(t)
	page = vera.signIn("vera")
	require.Contains(t, page, `<span id="role">viewer</span>`)
	require.Equal(t, 1, countSessions(t, r.db))
	r.clock.Advance(time.Hour)
	require.NoError(t, srv.jobs.SweepSessions(context.Background()))
	require.Zero(t, countSessions(t, r.db))
	vera.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = vera.get(r.base + "/ui/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, session.MaxLifetime, config.MaxSessionLifetime, "the configuration's bound is the session manager's")
}

func countSessions(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n))
	return n
}

// TestSignInReplacesStatusPage: with sign_in, nothing about the inventory
// is served without a session, even on loopback: / sends to the UI, and
// the status page's run pages are not served (the UI has its own).
func TestSignInReplacesStatusPage(t *testing.T) {
	t.Parallel()
	r := newSignInRig(t)
	srv, _ := r.serve(t, &syncBuffer{})
	require.NoError(t, srv.Sync(context.Background(), nil))
	anon := r.browser(t)
	anon.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := anon.get(r.base + "/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, UIPath, resp.Header.Get("Location"))
	resp, page := anon.get(r.base + "/runs/any")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, page)
	require.NotContains(t, page, "How a rotation goes")
	resp, _ = anon.get(r.base + "/healthz")
	require.Equal(t, http.StatusOK, resp.StatusCode, "probes stay open")
}
