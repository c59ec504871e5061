package ui_test

import (
	"context"
	"crypto/sha256"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/web/ui"
)

// evilName is a display name an application's owner could set in Entra.
const evilName = `<script>alert("x")</script><img src=x onerror=alert(1)>`

// bundle is rotor assembled on the simulator's demo tenants (through the
// composition root, as serve does), synced, one application renamed in
// Entra to evilName and one rotated, and the UI over httptest on it.
type bundle struct {
	t     *testing.T
	srv   *server.Server
	app   *app.Service
	scope app.Scope
	url   string
	http  *http.Client
	// info is the simulator's sim.json (the Sinks page's tests reach its
	// services).
	info *simfile.Info

	mu     sync.Mutex
	issued []string
	evilID string
	runApp string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{t: t}
	zero := time.Duration(0)
	st := simtest.Start(t, simtest.Options{Seed: "demo", ReplicationDelay: &zero,
		OnSecretIssued: func(_, _, _, value string) {
			b.mu.Lock()
			b.issued = append(b.issued, value)
			b.mu.Unlock()
		}})
	b.info = st.Info
	// An owner renames an application in Entra to markup.
	tn := st.Server.World().Tenant(st.Info.Tenants[0].ID)
	st.Server.World().Update(func() {
		a := tn.Apps[len(tn.Apps)/2]
		a.DisplayName = evilName
		b.evilID = a.ObjectID
	})

	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	require.NoError(t, os.MkdirAll(secrets, 0o700))
	for _, tn := range st.Info.Tenants {
		require.NoError(t, os.WriteFile(filepath.Join(secrets, tn.Name), []byte(tn.Rotation.ClientSecret), 0o600))
	}
	cfg, err := config.SimulatorYAML(st.Info, config.SimulatorConfig{
		SimFile: filepath.Join(st.Dir, simfile.FileName), DataDir: filepath.Join(dir, "data"),
		Secret:   func(tn simfile.Tenant) string { return "{file: " + filepath.Join(secrets, tn.Name) + "}" },
		Rotation: config.SimulatorRotation{Jitter: "1s", PlanInterval: "1s", SyncInterval: "10m", VerifyTimeout: "1m"},
		Policies: []config.SimulatorPolicy{
			{Name: "web", Applications: `{name_prefix: "web-"}`, Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"},
			{Name: "owned", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"},
		},
	})
	require.NoError(t, err)
	path := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, cfg, 0o600))
	b.srv, err = server.Open(context.Background(), path, server.Options{Logger: slog.New(slog.DiscardHandler), Process: "ui-test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.srv.Close() })
	b.app = b.srv.App()
	b.scope = app.Scope{Org: b.srv.Config().Organization, Actor: app.CLI}

	ctx := context.Background()
	_, err = b.app.Sync(ctx, b.scope, nil)
	require.NoError(t, err)
	rows, err := b.app.ListApplications(ctx, b.scope, app.ApplicationFilter{ManageableOnly: true})
	require.NoError(t, err)
	for _, r := range rows {
		if r.Policy != "" {
			_, err := b.app.Rotate(ctx, b.scope, []string{r.ObjectID}, nil)
			require.NoError(t, err)
			b.runApp = r.ObjectID
			break
		}
	}
	require.NotEmpty(t, b.runApp, "a manageable application with a policy")

	h := ui.New(ui.Deps{
		App: b.app, Logger: slog.New(slog.DiscardHandler), Clock: b.srv.Clock(), SinkTypes: b.srv.SinkTypes(),
		Scope: func(r *http.Request) (app.Scope, bool) {
			if r.Header.Get("X-Test-Anonymous") != "" {
				return app.Scope{}, false
			}
			if owned, ok := r.Header["X-Test-Owned"]; ok { // a session restricted to these object ids (owned_test.go)
				sc := b.scope
				sc.Owned = app.NewOwnedSet(strings.Split(owned[0], ","))
				return sc, true
			}
			return b.scope, true
		},
	})
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	b.url, b.http = hs.URL, hs.Client()
	return b
}

type response struct {
	status int
	header http.Header
	body   string
}

// get fetches path as a browser without JavaScript does (plain GET).
func (b *bundle) get(path string, header ...string) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url+path, nil)
	require.NoError(b.t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := b.http.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return response{status: res.StatusCode, header: res.Header, body: string(body)}
}

var (
	rowLink  = regexp.MustCompile(`<td><a href="/applications/([^"]+)">`)
	nextLink = regexp.MustCompile(`<a rel="next" href="([^"]+)"`)
)

// ids are the object ids of the rows of a list page, in order.
func ids(t *testing.T, body string) []string {
	t.Helper()
	out := []string{}
	for _, m := range rowLink.FindAllStringSubmatch(body, -1) {
		id, err := url.PathUnescape(html.UnescapeString(m[1]))
		require.NoError(t, err)
		out = append(out, id)
	}
	return out
}

// walk follows the next-page links from path to the last page, as a
// person without JavaScript would, returning every row's id.
func (b *bundle) walk(path string) (all []string, pages int) {
	b.t.Helper()
	all = []string{}
	for range 1000 {
		res := b.get(path)
		require.Equal(b.t, http.StatusOK, res.status, res.body)
		got := ids(b.t, res.body)
		all = append(all, got...)
		pages++
		m := nextLink.FindStringSubmatch(res.body)
		if m == nil {
			return all, pages
		}
		require.Len(b.t, got, ui.PageSize, "only the last page is short")
		path = html.UnescapeString(m[1])
	}
	b.t.Fatal("paging does not end")
	return nil, 0
}

func (b *bundle) want(f app.ApplicationFilter) []string {
	b.t.Helper()
	rows, err := b.app.ListApplications(context.Background(), b.scope, f)
	require.NoError(b.t, err)
	out := []string{}
	for _, r := range rows {
		out = append(out, r.ObjectID)
	}
	return out
}

func TestApplicationsList(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("EveryApplicationOnceByName", func(t *testing.T) {
		all := b.want(app.ApplicationFilter{})
		require.Greater(t, len(all), ui.PageSize, "the demo inventory spans pages")
		got, pages := b.walk("/applications")
		require.Equal(t, all, got, "the next-page links neither skip nor repeat")
		require.Greater(t, pages, 1)
	})
	t.Run("EveryApplicationOnceByExpiry", func(t *testing.T) {
		got, _ := b.walk("/applications?sort=expiry")
		require.ElementsMatch(t, b.want(app.ApplicationFilter{}), got)
		page, err := b.app.ListApplicationsPage(context.Background(), b.scope, app.ApplicationFilter{}, app.ApplicationPageRequest{Sort: app.SortByExpiry, Limit: ui.PageSize})
		require.NoError(t, err)
		first := ids(t, b.get("/applications?sort=expiry").body)
		for i, r := range page.Rows {
			require.Equal(t, r.ObjectID, first[i], "soonest first, as the app layer orders")
		}
	})
	t.Run("Filters", func(t *testing.T) {
		conns, err := b.app.ListConnections(context.Background(), b.scope)
		require.NoError(t, err)
		for name, c := range map[string]struct {
			query  string
			filter app.ApplicationFilter
		}{
			"NamePrefix":  {"q=web-", app.ApplicationFilter{NamePrefix: "web-"}},
			"Manageable":  {"manageable=1", app.ApplicationFilter{ManageableOnly: true}},
			"Expiring7":   {"expiring=7", app.ApplicationFilter{ExpiringWithin: 7 * 24 * time.Hour}},
			"Expiring90":  {"expiring=90&manageable=1", app.ApplicationFilter{ExpiringWithin: 90 * 24 * time.Hour, ManageableOnly: true}},
			"Connection":  {"connection=" + url.QueryEscape(conns[0].Name), app.ApplicationFilter{Connection: conns[0].Name}},
			"NoneMatches": {"q=zzz-nothing", app.ApplicationFilter{NamePrefix: "zzz-nothing"}},
		} {
			want := b.want(c.filter)
			got, _ := b.walk("/applications?" + c.query)
			require.Equal(t, want, got, name)
			if name != "NoneMatches" && name != "Expiring7" {
				require.NotEmpty(t, want, name)
			}
		}
		require.Less(t, len(b.want(app.ApplicationFilter{ExpiringWithin: 7 * 24 * time.Hour})), len(b.want(app.ApplicationFilter{})))
		res := b.get("/applications?q=zzz-nothing")
		require.Contains(t, res.body, "No applications match.")
	})
	t.Run("FormKeepsTheQueryEscaped", func(t *testing.T) {
		res := b.get("/applications?q=" + url.QueryEscape(`"><b>x</b>`) + "&expiring=30&sort=expiry&manageable=1")
		require.Equal(t, http.StatusOK, res.status)
		require.NotContains(t, res.body, "<b>x</b>")
		require.Contains(t, res.body, `value="&#34;&gt;&lt;b&gt;x&lt;/b&gt;"`)
		require.Contains(t, res.body, `<option value="30" selected>`)
		require.Contains(t, res.body, `<option value="expiry" selected>`)
		require.Contains(t, res.body, `value="1" checked>`)
	})
	t.Run("BadQueries", func(t *testing.T) {
		for _, q := range []string{"expiring=8", "expiring=7x", "sort=size", "manageable=yes", "cursor=garbage", "cursor=" + url.QueryEscape("<script>")} {
			res := b.get("/applications?" + q)
			require.Equal(t, http.StatusBadRequest, res.status, q)
			require.NotContains(t, res.body, "<script>", q)
		}
		// A cursor of the name order does not continue the expiry order.
		m := nextLink.FindStringSubmatch(b.get("/applications").body)
		require.NotNil(t, m)
		u, err := url.Parse(html.UnescapeString(m[1]))
		require.NoError(t, err)
		res := b.get("/applications?sort=expiry&cursor=" + url.QueryEscape(u.Query().Get("cursor")))
		require.Equal(t, http.StatusBadRequest, res.status)
	})
	t.Run("HTMLInjectionEscaped", func(t *testing.T) {
		res := b.get("/applications?q=" + url.QueryEscape("<script>"))
		require.Equal(t, []string{b.evilID}, ids(t, res.body), "the renamed application is found by its name")
		require.NotContains(t, res.body, evilName)
		require.NotContains(t, res.body, "<img")
		require.Contains(t, res.body, html.EscapeString(`<script>alert(`))
		page := b.get("/applications/" + b.evilID)
		require.Equal(t, http.StatusOK, page.status)
		require.NotContains(t, page.body, evilName)
		require.NotContains(t, page.body, "<img")
		require.Contains(t, page.body, "<title>&lt;script&gt;")
	})
	t.Run("HtmxGetsTheResultsOnly", func(t *testing.T) {
		full := b.get("/applications?manageable=1")
		part := b.get("/applications?manageable=1", "HX-Request", "true")
		require.Equal(t, http.StatusOK, part.status)
		require.NotContains(t, part.body, "<html")
		require.Contains(t, part.body, `<tbody id="rows">`)
		require.Equal(t, ids(t, full.body), ids(t, part.body))
		require.Contains(t, part.header.Values("Vary"), "HX-Request")
		restore := b.get("/applications?manageable=1", "HX-Request", "true", "HX-History-Restore-Request", "true")
		require.Contains(t, restore.body, "<html", "a history restore gets the whole page")
	})
}

// scriptSrc finds every script element's src (and counts those without).
var (
	scriptTag = regexp.MustCompile(`(?i)<script\b[^>]*>`)
	srcAttr   = regexp.MustCompile(`src="([^"]+)"`)
	styleHref = regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)"`)
	anyURL    = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+`)
	urlAttr   = regexp.MustCompile(`\s(href|src|action|hx-get|hx-post|hx-put|hx-delete|hx-patch|formaction)="([^"]*)"`)
	handlerAt = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=[^>]*>`)
)

// isTarget reports whether u is part of a delivery target of an application
// the bundle knows (the rotated one).
func (b *bundle) isTarget(u string) bool {
	ex, err := b.app.Explain(context.Background(), b.scope, b.runApp)
	require.NoError(b.t, err)
	for _, tg := range ex.Targets {
		if strings.Contains(tg.Target, u) {
			return true
		}
	}
	return false
}

func TestPagesAreSelfContained(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/", "/applications", "/applications?sort=expiry&expiring=30", "/applications/" + b.runApp, "/applications/no-such-app"} {
		res := b.get(path)
		require.Equal(t, ui.ContentSecurityPolicy, res.header.Get("Content-Security-Policy"), path)
		require.Contains(t, res.header.Get("Content-Security-Policy"), "script-src 'self'")
		require.NotContains(t, res.header.Get("Content-Security-Policy"), "unsafe-inline")
		require.Equal(t, "nosniff", res.header.Get("X-Content-Type-Options"))
		// Nothing the page makes a browser fetch or follow names a host:
		// every link, source and form action is rotor's own, relative.
		for _, m := range urlAttr.FindAllStringSubmatch(res.body, -1) {
			require.True(t, strings.HasPrefix(m[2], "/") && !strings.HasPrefix(m[2], "//"), "%s: %s=%q is not rotor's own", path, m[1], m[2])
		}
		// Any other absolute URL is text: a delivery target the application
		// layer reports (a Key Vault secret's URL), shown, never fetched.
		host := strings.TrimPrefix(b.url, "http://")
		for _, u := range anyURL.FindAllString(res.body, -1) {
			if strings.Contains(u, host) {
				continue
			}
			require.True(t, b.isTarget(u), "%s names another host: %s", path, u)
			require.NotRegexp(t, `="`+regexp.QuoteMeta(u), res.body, "%s: a target's URL is never an attribute", path)
		}
		// No inline script, no event handler attributes.
		for _, tag := range scriptTag.FindAllString(res.body, -1) {
			require.Regexp(t, srcAttr, tag, path)
		}
		require.Equal(t, strings.Count(res.body, "<script"), strings.Count(res.body, "</script>"))
		require.NotRegexp(t, `<script[^>]*>[^<]+</script>`, res.body)
		require.NotRegexp(t, handlerAt, res.body, path)
		require.NotContains(t, res.body, "style=", path)
	}
	res := b.get("/applications")
	tags := scriptTag.FindAllString(res.body, -1)
	require.Len(t, tags, 1)
	src := html.UnescapeString(srcAttr.FindStringSubmatch(tags[0])[1])
	require.True(t, strings.HasPrefix(src, "/static/"), src)

	htmx := b.get(src)
	require.Equal(t, http.StatusOK, htmx.status)
	require.Equal(t, "text/javascript; charset=utf-8", htmx.header.Get("Content-Type"))
	require.Equal(t, "public, max-age=31536000, immutable", htmx.header.Get("Cache-Control"))
	vendored, err := os.ReadFile("static/htmx.min.js")
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(vendored), sha256.Sum256([]byte(htmx.body)), "the vendored htmx, from the binary")
	require.Contains(t, htmx.body, `version:"2.0.11"`)

	css := b.get(html.UnescapeString(styleHref.FindStringSubmatch(res.body)[1]))
	require.Equal(t, http.StatusOK, css.status)
	require.Equal(t, "text/css; charset=utf-8", css.header.Get("Content-Type"))

	require.Equal(t, http.StatusNotFound, b.get("/static/0000000000000000/htmx.min.js").status, "a stale hash is not served as if current")
	require.Equal(t, http.StatusNotFound, b.get("/static/x/htmx.LICENSE").status)
}

func TestApplicationPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ex, err := b.app.Explain(context.Background(), b.scope, b.runApp)
	require.NoError(t, err)

	// Reached from the list by a plain link.
	list := b.get("/applications")
	require.Contains(t, list.body, `href="/applications/`)
	res := b.get("/applications/" + url.PathEscape(b.runApp))
	require.Equal(t, http.StatusOK, res.status)
	body := res.body
	d := ex.Application
	for _, s := range []string{d.AppID, d.ObjectID, d.TenantID, "Owners", "Created", ex.Policy, "Credentials", "Recent runs"} {
		require.Contains(t, body, s)
	}
	require.NotEmpty(t, d.Credentials)
	for _, c := range d.Credentials {
		require.Contains(t, body, c.KeyID)
		if c.Hint != "" {
			require.Contains(t, body, html.EscapeString(c.Hint)+"…")
		}
	}
	require.NotEmpty(t, ex.Decision.Checks)
	for _, c := range ex.Decision.Checks {
		require.Contains(t, body, html.EscapeString(c.Message))
	}
	runs, err := b.app.ListRuns(context.Background(), b.scope, app.RunFilter{App: b.runApp})
	require.NoError(t, err)
	require.NotEmpty(t, runs)
	require.Contains(t, body, runs[0].ID)
	require.Contains(t, body, string(runs[0].State))

	b.mu.Lock()
	issued := append([]string(nil), b.issued...)
	b.mu.Unlock()
	require.NotEmpty(t, issued, "the rotation issued a secret")
	for _, v := range issued {
		require.NotContains(t, body, v, "no secret value on the page")
	}

	// By app id and by name the same application is found.
	require.Contains(t, b.get("/applications/"+d.AppID).body, d.ObjectID)

	nf := b.get("/applications/no-such-app")
	require.Equal(t, http.StatusNotFound, nf.status)
	require.Contains(t, nf.body, "no-such-app")
	evil := b.get("/applications/" + url.PathEscape(`<b>nope</b>`))
	require.Equal(t, http.StatusNotFound, evil.status)
	require.NotContains(t, evil.body, "<b>nope")
}

func TestSignInRequired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/applications", "/applications/" + b.runApp} {
		res := b.get(path, "X-Test-Anonymous", "1")
		require.Equal(t, http.StatusUnauthorized, res.status, path)
		require.Contains(t, res.body, "Sign in")
		require.NotContains(t, res.body, b.runApp)
	}
	// The stylesheet and htmx need no sign-in (they hold no data).
	res := b.get("/applications")
	css := html.UnescapeString(styleHref.FindStringSubmatch(res.body)[1])
	require.Equal(t, http.StatusOK, b.get(css, "X-Test-Anonymous", "1").status)
	root := b.get("/")
	require.Equal(t, http.StatusOK, root.status, "/ is the dashboard")
	require.Contains(t, root.body, "<h1>Dashboard</h1>")
	require.Equal(t, http.StatusUnauthorized, b.get("/", "X-Test-Anonymous", "1").status)
}

// TestUnknownPathIsTheUIsNotFoundPage: a mistyped or stale link gets the
// UI's own 404 page, navigation and all, and only once signed in.
func TestUnknownPathIsTheUIsNotFoundPage(t *testing.T) {
	t.Parallel()
	u := ui.New(ui.Deps{App: &app.Service{}, Logger: slog.New(slog.DiscardHandler),
		Scope: func(r *http.Request) (app.Scope, bool) {
			return app.Scope{Org: "org-1", Actor: app.CLI}, r.Header.Get("X-Signed-In") == "1"
		}})
	req := httptest.NewRequest(http.MethodGet, "/no/such/page", nil)
	req.Header.Set("X-Signed-In", "1")
	rec := httptest.NewRecorder()
	u.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotFound, rec.Code)
	require.Contains(t, rec.Body.String(), "rotor has no page here.")
	require.Contains(t, rec.Body.String(), `href="/applications"`, "with the navigation")
	require.Equal(t, ui.ContentSecurityPolicy, rec.Header().Get("Content-Security-Policy"))

	rec = httptest.NewRecorder()
	u.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/no/such/page", nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code, "not signed in: no page at all")
}
