package signin_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
	"github.com/rotor-dev/rotor/internal/web/breakglass"
	"github.com/rotor-dev/rotor/internal/web/csrf"
	"github.com/rotor-dev/rotor/internal/web/session"
	"github.com/rotor-dev/rotor/internal/web/signin"
)

const org domain.OrgID = "default"

// rotor is a rotor UI under test: the sign-in routes inside the session
// and CSRF middlewares, a protected page that says who is signed in with
// which role, a protected form action, all over HTTPS, with the demo's
// contoso tenant of a simulator as its Entra.
type rotor struct {
	sim      *simtest.Sim
	clock    *clock.Offset
	tn       *simfile.Tenant
	app      *sim.WebApp
	srv      *httptest.Server
	store    *sqlite.Store
	dbPath   string
	sessions *session.Manager
	roots    *tls.Config
	audit    *eventLog
	// graph sees (and may fail) rotor's requests to Graph (owned_test.go);
	// ownedOnly is org's owned_apps_only setting.
	graph     *graphTap
	ownedOnly atomic.Bool
	logs      *lockedBuffer
}

// eventLog is an app.Auditor that keeps what it is told.
type eventLog struct {
	mu     sync.Mutex
	events []app.Event
}

func (l *eventLog) Record(_ context.Context, e app.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) all() []app.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func setup(t *testing.T) *rotor {
	t.Helper()
	clk := &clock.Offset{}
	s := simtest.Start(t, simtest.Options{Clock: clk})
	tn := s.Tenant(t, "contoso")
	r := &rotor{sim: s, clock: clk, tn: tn, audit: &eventLog{}, graph: &graphTap{}, logs: &lockedBuffer{}}

	r.dbPath = filepath.Join(t.TempDir(), "rotor.db")
	st, err := sqlite.Open(t.Context(), r.dbPath)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.EnsureOrg(t.Context(), org, "Default"))
	require.NoError(t, st.EnsureOrg(t.Context(), "other", "Other"))
	r.store = st

	mux := http.NewServeMux()
	r.srv = httptest.NewUnstartedServer(nil)
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	r.app, err = s.Server.RegisterDemoSignIn(tn.ID, r.srv.URL+"/auth/callback")
	require.NoError(t, err)

	world := s.Server.World().Tenant(tn.ID)
	roles := signin.RoleMap{
		{AppRole: "Rotor.Admin", Organization: org, Role: app.RoleAdmin},
		{AppRole: "Rotor.Operator", Organization: org, Role: app.RoleOperator},
		{Group: world.GroupByName(sim.DemoViewerGroup).ObjectID, Organization: org, Role: app.RoleViewer},
		{Group: world.GroupByName(sim.DemoOperatorGroup).ObjectID, Organization: org, Role: app.RoleOperator},
		{AppRole: "Rotor.Viewer", Organization: "other", Role: app.RoleViewer},
	}
	rp, err := signin.NewRelyingParty(t.Context(), signin.EntraConfig{
		Authority: s.Info.AuthorityHost, Tenant: tn.ID, ClientID: r.app.AppID, ClientSecret: secret.New(r.app.Secret),
		RedirectURL: r.srv.URL + "/auth/callback", GraphURL: s.Info.GraphURL, Roles: roles,
	}, signin.WithHTTPClient(r.graph.client(s.HTTP)), signin.WithClock(clk))
	require.NoError(t, err)
	r.sessions, err = session.New(session.Config{Store: st, Clock: clk})
	require.NoError(t, err)
	h, err := signin.NewHandler(signin.Options{Entra: rp, Sessions: r.sessions, DefaultOrg: org,
		Local: &breakglass.Authenticator{Store: st, Clock: clk}, Auditor: r.audit, Clock: clk,
		Logger:        slog.New(slog.NewTextHandler(r.logs, nil)),
		OwnedAppsOnly: func(_ context.Context, o domain.OrgID) (bool, error) { return o == org && r.ownedOnly.Load(), nil }})
	require.NoError(t, err)
	h.Register(mux)
	mux.Handle("GET /whoami", session.Require(app.RoleViewer, signin.LoginPath, http.HandlerFunc(whoami)))
	mux.Handle("GET /form", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, csrf.Token(r)) }))
	mux.Handle("POST /act", session.Require(app.RoleOperator, signin.LoginPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "done")
	})))
	r.srv.Config.Handler = r.sessions.Middleware(csrf.New(csrf.Options{Binding: session.Binding}).Handler(mux))

	pool := s.CAPool.Clone()
	pool.AddCert(r.srv.Certificate())
	r.roots = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return r
}

// whoami says who the request's principal is and its role in org, as
// internal/auth's Authorizer would see it.
func whoami(w http.ResponseWriter, r *http.Request) {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		http.Error(w, "no principal", http.StatusInternalServerError)
		return
	}
	s, _ := session.FromContext(r.Context())
	role, _ := p.Role(s.Org)
	fmt.Fprintf(w, "%s %s %s %s", s.Org, role, p.Actor.String(), p.Method)
}

// browser is a person's browser: a cookie jar, trusting rotor and the
// simulator, following redirects.
type browser struct {
	t *testing.T
	r *rotor
	c *http.Client
}

func (r *rotor) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	tr := &http.Transport{TLSClientConfig: r.roots}
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: t, r: r, c: &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}}
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	require.NoError(b.t, err)
	return resp, body(b.t, resp)
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// signIn starts at rotor's /login, lands on the simulator's sign-in page,
// picks user with the page's one-click choice and follows Entra's
// redirect to rotor's callback. It returns the callback's answer.
func (b *browser) signIn(user, query string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.get(b.r.srv.URL + signin.LoginPath + query)
	require.Equal(b.t, http.StatusOK, resp.StatusCode, page)
	authorize := resp.Request.URL
	require.True(b.t, strings.HasPrefix(authorize.String(), b.r.sim.Info.AuthorityHost+b.r.tn.ID+"/oauth2/v2.0/authorize?"), authorize.String())
	q := authorize.Query()
	require.Equal(b.t, "S256", q.Get("code_challenge_method"))
	require.NotEmpty(b.t, q.Get("nonce"))
	require.NotEmpty(b.t, q.Get("state"))
	require.NotContains(b.t, q.Get("scope"), "offline_access", "rotor keeps no refresh token, so it asks for none")

	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		if !form.Has(m[1]) {
			form.Add(m[1], htmlUnescape(m[2]))
		}
	}
	u, ok := b.r.tn.User(user)
	require.True(b.t, ok, user)
	form.Set("user", u.ObjectID)
	resp, err := b.c.PostForm(authorize.Scheme+"://"+authorize.Host+authorize.Path, form)
	require.NoError(b.t, err)
	return resp, body(b.t, resp)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.r.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestSignInGivesTheSessionTheRoleOfTheUsersAppRolesAndGroups(t *testing.T) {
	t.Parallel()
	r := setup(t)
	for _, tc := range []struct{ user, role string }{
		{"ada", "admin"},      // app role Rotor.Admin
		{"oscar", "operator"}, // app role Rotor.Operator
		{"vera", "viewer"},    // group rotor-viewers, in the groups claim
		{"gus", "operator"},   // rotor-operators among 201 groups: the overage, answered from /me/memberOf
	} {
		t.Run(tc.user, func(t *testing.T) {
			b := r.browser(t)
			graphBefore := r.sim.Server.Stats().GraphRequests
			resp, page := b.signIn(tc.user, "?return_to=/whoami")
			require.Equal(t, http.StatusOK, resp.StatusCode, page)
			require.Equal(t, "/auth/callback", resp.Request.URL.Path)
			require.Contains(t, page, `content="0;url=/whoami"`, "a page that moves on by itself, same-site")
			u, _ := r.tn.User(tc.user)
			resp, who := b.get(r.srv.URL + "/whoami")
			require.Equal(t, http.StatusOK, resp.StatusCode, who)
			require.Equal(t, "default "+tc.role+" user:"+u.ObjectID+" session", who)
			if tc.user == "gus" {
				require.Greater(t, r.sim.Server.Stats().GraphRequests, graphBefore, "the overage is read from Graph")
			} else {
				require.Equal(t, graphBefore, r.sim.Server.Stats().GraphRequests, "groups in the token need no Graph call")
			}
		})
	}

	t.Run("NoRoleIsRefused", func(t *testing.T) {
		b := r.browser(t)
		resp, page := b.signIn("nia", "")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Contains(t, page, "no rotor role is granted to you")
		require.Nil(t, b.cookie("__Host-rotor_session"))
	})
	t.Run("NoRoleInTheOrganizationAskedFor", func(t *testing.T) {
		b := r.browser(t)
		resp, _ := b.signIn("ada", "?org=other")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("NotSignedInIsSentToLogin", func(t *testing.T) {
		b := r.browser(t)
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, _ := b.get(r.srv.URL + "/whoami?x=1")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, "/login?return_to=%2Fwhoami%3Fx%3D1", resp.Header.Get("Location"))
	})
}

func TestCookiesAreHostOnlySecureHttpOnlyAndSameSite(t *testing.T) {
	t.Parallel()
	r := setup(t)
	b := r.browser(t)
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := b.get(r.srv.URL + signin.LoginPath)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	pending := findSetCookie(t, resp, "__Host-rotor_signin")
	require.True(t, pending.Secure && pending.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, pending.SameSite, "Entra's redirect back is cross-site: Lax, not Strict")
	require.Equal(t, "/", pending.Path)
	require.Equal(t, 600, pending.MaxAge)

	b.c.CheckRedirect = nil
	jarless := r.browser(t)
	jarless.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasSuffix(req.URL.Path, "/auth/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, _ = jarless.signIn("ada", "")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	resp, err := jarless.c.Get(resp.Header.Get("Location"))
	require.NoError(t, err)
	_ = body(t, resp)
	c := findSetCookie(t, resp, "__Host-rotor_session")
	require.True(t, c.Secure && c.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	require.Equal(t, "/", c.Path)
	require.Empty(t, c.Domain)
	require.Equal(t, int(session.DefaultLifetime/time.Second), c.MaxAge)
	cleared := findSetCookie(t, resp, "__Host-rotor_signin")
	require.Negative(t, cleared.MaxAge, "the pending sign-in is used once")
}

func findSetCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	require.Failf(t, "no cookie", "%s not set: %v", name, resp.Header.Values("Set-Cookie"))
	return nil
}

// callbackURL signs user in at the simulator but stops before rotor's
// callback, returning its URL.
func (b *browser) callbackURL(user string) *url.URL {
	b.t.Helper()
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasSuffix(req.URL.Path, "/auth/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	defer func() { b.c.CheckRedirect = nil }()
	resp, _ := b.signIn(user, "")
	require.Equal(b.t, http.StatusFound, resp.StatusCode)
	u, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(b.t, err)
	return u
}

func TestCallbackRefusesWhatThisBrowserDidNotStart(t *testing.T) {
	t.Parallel()
	r := setup(t)

	t.Run("StateMismatch", func(t *testing.T) {
		b := r.browser(t)
		cb := b.callbackURL("ada")
		q := cb.Query()
		q.Set("state", "not-the-state")
		cb.RawQuery = q.Encode()
		resp, page := b.get(cb.String())
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, page)
		require.Nil(t, b.cookie("__Host-rotor_session"))
	})
	t.Run("NonceMismatch", func(t *testing.T) {
		b := r.browser(t)
		cb := b.callbackURL("ada")
		// The pending sign-in now expects another nonce than the one Entra
		// put in the ID token: as if the token had been made for another
		// sign-in.
		pc := b.cookie("__Host-rotor_signin")
		require.NotNil(t, pc)
		raw, err := base64.RawURLEncoding.DecodeString(pc.Value)
		require.NoError(t, err)
		var p map[string]any
		require.NoError(t, json.Unmarshal(raw, &p))
		p["n"] = "another-nonce"
		raw, _ = json.Marshal(p)
		u, _ := url.Parse(r.srv.URL)
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-rotor_signin", Value: base64.RawURLEncoding.EncodeToString(raw), Path: "/", Secure: true}})
		resp, page := b.get(cb.String())
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, page)
		require.Contains(t, page, "nonce")
		require.Nil(t, b.cookie("__Host-rotor_session"))
	})
	t.Run("AnotherBrowsersAnswer", func(t *testing.T) {
		cb := r.browser(t).callbackURL("ada")
		victim := r.browser(t)
		resp, _ := victim.get(cb.String())
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "no pending sign-in in this browser")
		require.Nil(t, victim.cookie("__Host-rotor_session"))
	})
	t.Run("CodeReplayed", func(t *testing.T) {
		b := r.browser(t)
		cb := b.callbackURL("ada")
		pc := b.cookie("__Host-rotor_signin")
		resp, _ := b.get(cb.String())
		require.Equal(t, http.StatusOK, resp.StatusCode)
		// Someone replays the same answer with the same pending cookie:
		// Entra refuses the used code.
		other := r.browser(t)
		u, _ := url.Parse(r.srv.URL)
		other.c.Jar.SetCookies(u, []*http.Cookie{pc})
		resp, page := other.get(cb.String())
		require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		require.Contains(t, page, "invalid_grant AADSTS54005")
	})
	t.Run("EntraRefused", func(t *testing.T) {
		b := r.browser(t)
		cb := b.callbackURL("ada")
		q := url.Values{"state": {cb.Query().Get("state")}, "error": {"access_denied"}, "error_description": {"AADSTS65004: User declined to consent."}}
		resp, page := b.get(r.srv.URL + "/auth/callback?" + q.Encode())
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, page, "access_denied")
	})
}

func TestSignOutEndsTheSessionForGood(t *testing.T) {
	t.Parallel()
	r := setup(t)
	b := r.browser(t)
	resp, _ := b.signIn("oscar", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	stolen := *b.cookie("__Host-rotor_session")

	_, token := b.get(r.srv.URL + "/form")
	resp, err := b.c.PostForm(r.srv.URL+"/act", url.Values{csrf.FieldName: {token}})
	require.NoError(t, err)
	require.Equal(t, "done", body(t, resp))

	resp, err = b.c.PostForm(r.srv.URL+signin.LogoutPath, url.Values{csrf.FieldName: {token}})
	require.NoError(t, err)
	require.Contains(t, body(t, resp), "Signed out")
	require.Equal(t, signin.LoginPath, resp.Request.URL.Path)
	require.Nil(t, b.cookie("__Host-rotor_session"), "the browser is told to forget it")
	oscar, _ := r.tn.User("oscar")
	var audited []string
	for _, e := range r.audit.all() {
		require.Equal(t, org, e.Org)
		require.Equal(t, oscar.ObjectID, e.Actor.ID, "the person is the actor")
		require.Equal(t, app.ObjectSession, e.Object)
		audited = append(audited, string(e.Action)+" "+string(e.Outcome))
	}
	require.Equal(t, []string{"sign-in ok", "sign-out ok"}, audited)

	// The copied cookie is worthless: its row is gone.
	thief := r.browser(t)
	thief.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u, _ := url.Parse(r.srv.URL)
	thief.c.Jar.SetCookies(u, []*http.Cookie{&stolen})
	resp, _ = thief.get(r.srv.URL + "/whoami")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, token = thief.get(r.srv.URL + "/form")
	resp, err = thief.c.PostForm(r.srv.URL+"/act", url.Values{csrf.FieldName: {token}})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Zero(t, countRows(t, r.dbPath, "sessions"))
}

func TestSessionsExpire(t *testing.T) {
	t.Parallel()
	r := setup(t)
	b := r.browser(t)
	resp, _ := b.signIn("ada", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = b.get(r.srv.URL + "/whoami")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r.clock.Advance(session.DefaultLifetime)
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = b.get(r.srv.URL + "/whoami")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Zero(t, countRows(t, r.dbPath, "sessions"), "an expired session found is deleted")
}

func TestFormsNeedTheCSRFTokenOfTheirSession(t *testing.T) {
	t.Parallel()
	r := setup(t)
	b := r.browser(t)
	_, before := b.get(r.srv.URL + "/form")
	resp, _ := b.signIn("oscar", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, token := b.get(r.srv.URL + "/form")
	require.NotEqual(t, before, token, "signing in changes the token")

	post := func(form url.Values, hdr map[string]string) int {
		req, err := http.NewRequest(http.MethodPost, r.srv.URL+"/act", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := b.c.Do(req)
		require.NoError(t, err)
		_ = body(t, resp)
		return resp.StatusCode
	}
	require.Equal(t, http.StatusForbidden, post(url.Values{}, nil), "no token")
	require.Equal(t, http.StatusForbidden, post(url.Values{csrf.FieldName: {before}}, nil), "a token from before the sign-in")
	require.Equal(t, http.StatusForbidden, post(url.Values{csrf.FieldName: {strings.Repeat("A", 43)}}, nil), "a made-up token")
	require.Equal(t, http.StatusForbidden, post(url.Values{csrf.FieldName: {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}),
		"the right token from another site's page")
	require.Equal(t, http.StatusOK, post(url.Values{csrf.FieldName: {token}}, nil))
	require.Equal(t, http.StatusOK, post(url.Values{}, map[string]string{csrf.HeaderName: token}))

	// A second person's token is not this one's.
	other := r.browser(t)
	resp, _ = other.signIn("ada", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, otherToken := other.get(r.srv.URL + "/form")
	require.Equal(t, http.StatusForbidden, post(url.Values{csrf.FieldName: {otherToken}}, nil))
}

func TestSessionIDsAreStoredOnlyAsHashes(t *testing.T) {
	t.Parallel()
	r := setup(t)
	b := r.browser(t)
	resp, _ := b.signIn("ada", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	c := b.cookie("__Host-rotor_session")
	token, orgPart, ok := strings.Cut(c.Value, ".")
	require.True(t, ok)
	require.Equal(t, string(org), orgPart)

	db, err := sql.Open("sqlite", "file:"+r.dbPath+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var idHash []byte
	var method, subject, role string
	require.NoError(t, db.QueryRow(`SELECT id_hash, method, subject, role FROM sessions`).Scan(&idHash, &method, &subject, &role))
	want := sha256.Sum256([]byte(token))
	require.Equal(t, want[:], idHash)
	require.Equal(t, "entra", method)
	require.Equal(t, "admin", role)
	dump := dumpTable(t, db, "sessions")
	require.NotContains(t, dump, token)
	require.False(t, bytes.Contains([]byte(dump), []byte(c.Value)))
}

func countRows(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM `+table).Scan(&n))
	return n
}

// dumpTable is every value of every row, as text.
func dumpTable(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM ` + table)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var sb strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		for _, v := range vals {
			fmt.Fprintf(&sb, "%s|", v)
		}
		sb.WriteString("\n")
	}
	require.NoError(t, rows.Err())
	return sb.String()
}

func TestBreakGlassAdminSignsInThroughItsForm(t *testing.T) {
	t.Parallel()
	r := setup(t)
	var out bytes.Buffer
	made, err := breakglass.Ensure(t.Context(), r.store, org, r.clock, &out, r.srv.URL+signin.LocalLoginPath)
	require.NoError(t, err)
	require.True(t, made)
	password := regexp.MustCompile(`\n      ([a-z2-7]{24})\n`).FindStringSubmatch(out.String())[1]

	b := r.browser(t)
	resp, page := b.get(r.srv.URL + signin.LocalLoginPath + "?return_to=/whoami")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	require.NotEmpty(t, form.Get(csrf.FieldName), page)
	form.Set("org", string(org))

	noToken := url.Values{"org": {string(org)}, "password": {password}}
	resp, err = b.c.PostForm(r.srv.URL+signin.LocalLoginPath, noToken)
	require.NoError(t, err)
	_ = body(t, resp)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "the form needs its CSRF token")

	form.Set("password", "wrong")
	resp, err = b.c.PostForm(r.srv.URL+signin.LocalLoginPath, form)
	require.NoError(t, err)
	require.Contains(t, body(t, resp), "Wrong password")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	ev := r.audit.all()
	require.Len(t, ev, 1)
	require.Equal(t, app.Event{At: ev[0].At, Org: org, Actor: app.Actor{Kind: app.ActorUser, ID: "local:breakglass", Name: ev[0].Actor.Name},
		Action: app.ActionSignIn, Object: app.ObjectSession, Outcome: app.OutcomeDenied, Error: app.ClassDenied}, ev[0], "a wrong password is audited")

	form.Set("password", password)
	resp, err = b.c.PostForm(r.srv.URL+signin.LocalLoginPath, form)
	require.NoError(t, err)
	who := body(t, resp)
	require.Equal(t, "/whoami", resp.Request.URL.Path)
	require.Equal(t, "default admin user:local:breakglass session", who)
	require.NotContains(t, dumpTableAt(t, r.dbPath, "local_admins"), password)
}

func dumpTableAt(t *testing.T, path, table string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	return dumpTable(t, db, table)
}
