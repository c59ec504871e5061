package cli_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// remoteRig is a rotor serving its API (API keys, and user tokens of the
// simulator's rotor-cli for rotor-api) over the env's simulator, beside
// the same rotor.yaml the local commands read.
type remoteRig struct {
	*env
	url    string
	srv    *server.Server
	cli    *sim.DemoCLI
	tenant simfile.Tenant
	// admin and viewer are environment variables holding API keys.
	admin, viewer string
	cache         string
}

// setupRemote syncs the demo tenants, rotates one application (so there
// are runs and audit records), registers rotor's API and CLI in the first
// tenant and serves rotor's API with api_auth accepting the CLI's user
// tokens.
func setupRemote(t *testing.T, extraYAML string) *remoteRig {
	t.Helper()
	e := newEnv(t, "demo", 0)
	e.mustRun("sync")
	r := &remoteRig{env: e, tenant: e.info.Tenants[0], cache: filepath.Join(t.TempDir(), "cfg", "tokens.json")}
	var err error
	r.cli, err = e.sim.RegisterDemoCLI(r.tenant.ID)
	require.NoError(t, err)
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintf(f, `
api_auth:
  entra:
    cloud: sim
    sim_file: %q
    tenants: [%s]
    app_id_uri: %s
    client_id: %s
    cli_client_id: %s
    roles:
      - {app_role: Rotor.Admin,  organization: default, role: admin}
      - {app_role: Rotor.Viewer, organization: default, role: viewer}
%s`, filepath.Join(e.dir, "sim", simfile.FileName), r.tenant.ID, r.cli.API.IdentifierURI, r.cli.API.AppID, r.cli.CLI.AppID, extraYAML)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	r.srv, err = server.Open(context.Background(), e.cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.srv.Close() })
	h, err := r.srv.HTTPHandler(context.Background(), false)
	require.NoError(t, err)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	r.url = hs.URL

	org := r.srv.Config().Organization
	for role, dst := range map[app.Role]*string{app.RoleAdmin: &r.admin, app.RoleViewer: &r.viewer} {
		key, err := r.srv.App().CreateAPIKey(context.Background(), app.Scope{Org: org, Actor: app.CLI}, app.NewAPIKey{Name: "test-" + string(role), Role: role})
		require.NoError(t, err)
		*dst = r.setEnv(t, string(role), key.Key.Reveal())
	}
	return r
}

// setEnv sets a variable of this test's own (the tests run in parallel)
// and returns its name.
func (r *remoteRig) setEnv(t *testing.T, what, value string) string {
	name := "ROTOR_TEST_" + strings.ToUpper(regexp.MustCompile(`[^A-Za-z0-9]`).ReplaceAllString(t.Name()+"_"+what, "_"))
	require.NoError(t, os.Setenv(name, value))
	t.Cleanup(func() { _ = os.Unsetenv(name) })
	return name
}

// remote runs a command against the server with the token in tokenEnv.
func (r *remoteRig) remote(tokenEnv string, args ...string) (int, string, string) {
	return r.runCtx(context.Background(), append(args, "--server", r.url, "--token-env", tokenEnv, "--token-cache", r.cache)...)
}

// TestRemoteMatchesLocal: every listing and read command prints the same
// table and the same JSON with --server as it does on the store.
func TestRemoteMatchesLocal(t *testing.T) {
	t.Parallel()
	r := setupRemote(t, "")
	var rows []app.ApplicationRow
	r.mustJSON(&rows, "apps", "list", "--manageable")
	require.NotEmpty(t, rows)
	rotated := rows[0].ObjectID
	r.mustRun("rotate", rotated)
	var all []app.ApplicationRow
	r.mustJSON(&all, "apps", "list")
	unmanaged := ""
	for _, a := range all {
		if !a.Manageable {
			unmanaged = a.ObjectID
			break
		}
	}
	require.NotEmpty(t, unmanaged)
	var runs []app.RunRow
	r.mustJSON(&runs, "runs", "list")
	require.NotEmpty(t, runs)
	conn := r.tenant.Name
	var pols []app.PolicyRow
	r.mustJSON(&pols, "policies", "list")
	require.NotEmpty(t, pols)

	// "due in 19d 23h" ticks between two calls a minute apart at worst.
	// An application due now is due at the time of the call.
	dueIn := regexp.MustCompile(`due in [0-9dhm ]+`)
	dueNow := regexp.MustCompile(`("due": true,\n\s*"due_at": )"[^"]*"`)
	same := func(s string) string {
		return dueNow.ReplaceAllString(dueIn.ReplaceAllString(s, "due in …"), `$1"now"`)
	}
	noAt := func(s string) string { return regexp.MustCompile(`(?m)^  "at": .*\n`).ReplaceAllString(s, "") }
	for _, tc := range []struct {
		args []string
		norm func(string) string
	}{
		{[]string{"apps", "list"}, same},
		{[]string{"apps", "list", "--manageable", "--prefix", "web-"}, same},
		{[]string{"apps", "list", "--expiring", "30d"}, same},
		{[]string{"apps", "show", rotated}, nil},
		{[]string{"explain", unmanaged}, noAt},
		{[]string{"plan"}, same},
		{[]string{"runs", "list"}, nil},
		{[]string{"runs", "list", "--state", "retiring,done", "--limit", "1"}, nil},
		{[]string{"runs", "show", runs[0].ID}, nil},
		{[]string{"policies", "list"}, nil},
		{[]string{"policies", "show", pols[len(pols)-1].Name}, nil},
		{[]string{"connections", "list"}, nil},
		{[]string{"connections", "show", conn}, nil},
		{[]string{"connections", "test", conn}, nil},
		{[]string{"audit", "list"}, nil},
		{[]string{"audit", "list", "--newest", "--limit", "3", "--action", "rotation.step"}, nil},
		{[]string{"audit", "verify"}, nil},
		{[]string{"apikey", "list"}, nil},
	} {
		for _, format := range []string{"table", "json"} {
			args := append(append([]string{}, tc.args...), "-o", format)
			if tc.args[0] == "explain" && format == "table" {
				continue // the table says "in 3h" of times, from now
			}
			local, _ := r.mustRun(args...)
			code, remote, stderr := r.remote(r.admin, args...)
			require.Equal(t, 0, code, "%v: %s", args, stderr)
			if tc.norm != nil {
				local, remote = tc.norm(local), tc.norm(remote)
			}
			require.Equal(t, local, remote, "rotor %s: local and --server differ", strings.Join(args, " "))
			require.NotEmpty(t, strings.TrimSpace(remote), "%v", args)
		}
	}

	// Writes: a key made through the API works and is listed; revoking it
	// through the API refuses it from then on.
	code, key, stderr := r.remote(r.admin, "apikey", "create", "--role", "viewer", "--name", "from-cli")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^rtr_default_`, key)
	require.Contains(t, stderr, "role viewer in default) expires")
	made := r.setEnv(t, "made", strings.TrimSpace(key))
	code, _, stderr = r.remote(made, "apps", "list")
	require.Equal(t, 0, code, stderr)
	var keys []app.APIKeyRow
	r.mustJSON(&keys, "apikey", "list")
	id := ""
	for _, k := range keys {
		if k.Name == "from-cli" {
			id = k.ID
		}
	}
	require.NotEmpty(t, id)
	code, out, stderr := r.remote(r.admin, "apikey", "revoke", id)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "API key "+id+" revoked\n", out)
	code, _, stderr = r.remote(made, "apps", "list")
	require.NotZero(t, code)
	require.Contains(t, stderr, "not signed in to "+r.url+" (the server answered 401 invalid_token: revoked)")
	require.NotContains(t, stderr, strings.TrimSpace(key), "the key is never printed")
}

// TestRemoteErrors: each refusal is one line that says what to do.
func TestRemoteErrors(t *testing.T) {
	t.Parallel()
	r := setupRemote(t, "  rate_limit: {requests_per_second: 1, burst: 2}\n")
	for _, tc := range []struct {
		name     string
		tokenEnv string
		args     []string
		want     string
	}{
		{"NoToken", "ROTOR_TEST_UNSET_VARIABLE", []string{"apps", "list"},
			"rotor: not signed in to " + r.url + ": run 'rotor login --server " + r.url + "' or set $ROTOR_TEST_UNSET_VARIABLE\n"},
		{"ViewerMayNotListKeys", r.viewer, []string{"apikey", "list"}, "refused (403): token:apikey:"},
		{"ViewerMayNotListKeysSaysWhy", r.viewer, []string{"apikey", "list"}, "role viewer does not permit it; it needs admin"},
		{"NoSuchApplication", r.admin, []string{"apps", "show", "no-such-app"}, `no application "no-such-app"`},
		{"NoSuchOrganization", r.admin, []string{"policies", "list", "--org", "elsewhere"}, `no organization "elsewhere", or you hold no role in it: name yours with --org`},
		{"RateLimited", r.admin, []string{"policies", "list"}, "is limiting your requests (429): try again in 1 s"},
	} {
		code, _, stderr := 0, "", ""
		for range 4 { // the rate limit's burst is 2
			if code, _, stderr = r.remote(tc.tokenEnv, tc.args...); code != 0 {
				break
			}
		}
		require.NotZero(t, code, tc.name)
		require.Contains(t, stderr, tc.want, tc.name)
		require.Equal(t, 1, countLines(stderr), "%s: one line: %s", tc.name, stderr)
		noStack(t, stderr)
	}
	// A show command's 404 for the organization is not "no such object".
	time.Sleep(2 * time.Second) // the rate limit's bucket, emptied above, refills
	code, _, stderr := r.remote(r.admin, "connections", "show", "anything", "--org", "elsewhere")
	require.NotZero(t, code)
	require.Contains(t, stderr, `no organization "elsewhere", or you hold no role in it: name yours with --org`)
	require.NotContains(t, stderr, `no connection "anything"`)

	bad := r.setEnv(t, "bad", "rtr_default_aaaaaaaaaaaaaaaa_"+strings.Repeat("a", 52))
	code, _, stderr = r.remote(bad, "apps", "list")
	require.NotZero(t, code)
	require.Contains(t, stderr, "not signed in to "+r.url+" (the server answered 401 invalid_token: signature): the token in $"+bad+" was refused")
	require.NotContains(t, stderr, strings.Repeat("a", 52), "the key is never printed")

	// Plain http to anything but loopback is refused before any request.
	code, _, stderr = r.runCtx(context.Background(), "apps", "list", "--server", "http://rotor.example.com", "--token-env", r.admin)
	require.NotZero(t, code)
	require.Contains(t, stderr, "plain http is refused except to a loopback address")
	code, _, stderr = r.runCtx(context.Background(), "login", "--server", "http://10.0.0.1:8080", "--token-cache", r.cache)
	require.NotZero(t, code)
	require.Contains(t, stderr, "plain http is refused")

	// A server that redirects (to plain http, say) is not followed with
	// the token: the answer says where it points, without its query.
	var sawToken atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "" {
			sawToken.Store(true)
		}
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.RedirectHandler(target.URL+"/api/v1/orgs/default/applications?leak=1", http.StatusTemporaryRedirect))
	defer redirector.Close()
	code, _, stderr = r.runCtx(context.Background(), "apps", "list", "--server", redirector.URL, "--token-env", r.admin)
	require.NotZero(t, code)
	require.Contains(t, stderr, "answered 307, a redirect to \""+target.URL+"/api/v1/orgs/default/applications\"")
	require.Contains(t, stderr, "does not follow redirects with your token")
	require.False(t, sawToken.Load(), "the token never reaches the redirect's target")
}

// browser plays the person at the browser: it trusts the simulator's CA,
// follows nothing by itself.
func browser(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// signIn opens the authorize URL, picks the user (by display name) on
// the simulator's page (its form posts the request's parameters back with
// user=OBJECT_ID) and returns where Entra sends the browser: the CLI's
// loopback redirect.
func signIn(t *testing.T, b *http.Client, authorize, who string) *url.URL {
	t.Helper()
	resp, err := b.Get(authorize)
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(page))
	require.Contains(t, string(page), "rotor-cli", "the sign-in page names the CLI")
	m := regexp.MustCompile(`name="user" value="([^"]+)">` + regexp.QuoteMeta(who) + ` `).FindStringSubmatch(string(page))
	require.NotNil(t, m, "the sign-in page offers %s", who)
	u, err := url.Parse(authorize)
	require.NoError(t, err)
	form := u.Query()
	form.Set("user", m[1])
	resp, err = b.PostForm(u.Scheme+"://"+u.Host+u.Path, form)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	back, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return back
}

var loginURL = regexp.MustCompile(`\n  (https://\S+/oauth2/v2\.0/authorize\?\S+)\n`)

// startLogin runs rotor login in the background and returns the
// authorize URL it printed and a channel with its exit code.
func startLogin(t *testing.T, e *env, args ...string) (string, <-chan int, *lockedBuffer, *lockedBuffer) {
	t.Helper()
	out, errOut := e.newBuffer(), e.newBuffer()
	done := make(chan int, 1)
	go func() {
		done <- runExecute(context.Background(), append([]string{"login", "--no-browser"}, args...), out, errOut)
	}()
	var authorize string
	require.Eventually(t, func() bool {
		select {
		case code := <-done:
			t.Fatalf("rotor login exited early with %d: %s", code, errOut.String())
		default:
		}
		m := loginURL.FindStringSubmatch(errOut.String())
		if m != nil {
			authorize = m[1]
		}
		return m != nil
	}, 30*time.Second, 10*time.Millisecond)
	return authorize, done, out, errOut
}

func (r *remoteRig) userID(t *testing.T, name string) string {
	t.Helper()
	tn := r.sim.World().Tenant(r.tenant.ID)
	u := tn.UserByName(name + "@" + tn.Domain)
	require.NotNil(t, u, name)
	return u.ObjectID
}

// TestLogin signs ada in as the browser would, then uses, refreshes and
// forgets her tokens.
func TestLogin(t *testing.T) {
	t.Parallel()
	r := setupRemote(t, "")
	unset := "ROTOR_TEST_LOGIN_NO_TOKEN"
	authorize, done, out, errOut := startLogin(t, r.env, "--server", r.url, "--ca-file", r.info.CAFile, "--token-cache", r.cache, "--timeout", "1m")
	au, err := url.Parse(authorize)
	require.NoError(t, err)
	q := au.Query()
	require.Equal(t, r.cli.CLI.AppID, q.Get("client_id"))
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Equal(t, sim.DemoAPIIdentifierURI+"/user_impersonation offline_access", q.Get("scope"))
	redirect, err := url.Parse(q.Get("redirect_uri"))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", redirect.Hostname())

	b := browser(t, r.info.CAFile)
	back := signIn(t, b, authorize, "Ada Admin")
	require.Equal(t, redirect.Host, back.Host, "Entra sends the browser to the CLI's port")

	// Hostile: the same code with another state is refused, and the
	// login goes on waiting for its own.
	forged := *back
	fq := forged.Query()
	fq.Set("state", "not-the-state")
	forged.RawQuery = fq.Encode()
	resp, err := b.Get(forged.String())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	select {
	case code := <-done:
		t.Fatalf("a wrong state ended the login (%d): %s", code, errOut.String())
	case <-time.After(100 * time.Millisecond):
	}

	resp, err = b.Get(back.String())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	select {
	case code := <-done:
		require.Equal(t, 0, code, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("rotor login did not finish")
	}
	require.Equal(t, "Signed in to "+r.url+" as Ada Admin <ada@"+r.sim.World().Tenant(r.tenant.ID).Domain+"> (admin in default).\n", out.String())

	fi, err := os.Stat(r.cache)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the token cache is the user's alone")
	di, err := os.Stat(filepath.Dir(r.cache))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	first := readCache(t, r.cache, r.url)
	require.NotEmpty(t, first.AccessToken)
	require.NotEmpty(t, first.RefreshToken)

	// The commands use the cached token: the same answers as locally,
	// and writes are recorded as ada, the person.
	local, _ := r.mustRun("policies", "list", "-o", "json")
	code, remote, stderr := r.remote(unset, "policies", "list", "-o", "json")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, local, remote)
	code, _, stderr = r.remote(unset, "apikey", "create", "--role", "viewer", "--name", "by-ada")
	require.Equal(t, 0, code, stderr)
	var recs []struct {
		Actor  struct{ Kind, ID, Name string }
		Action string
	}
	r.mustJSON(&recs, "audit", "list", "--newest", "--limit", "1", "--action", "manage-api-keys")
	require.Len(t, recs, 1)
	require.Equal(t, "user", recs[0].Actor.Kind)
	require.Equal(t, r.userID(t, "ada"), recs[0].Actor.ID, "the audit trail names the person, as the UI does")

	// An expired access token is renewed with the refresh token.
	expireCache(t, r.cache, r.url)
	code, _, stderr = r.remote(unset, "apps", "list")
	require.Equal(t, 0, code, stderr)
	second := readCache(t, r.cache, r.url)
	require.NotEqual(t, first.AccessToken, second.AccessToken, "refreshed")
	require.NotEqual(t, first.RefreshToken, second.RefreshToken, "the simulator rotates refresh tokens")
	require.True(t, second.ExpiresAt.After(time.Now().Add(30*time.Minute)))

	// Logout forgets them.
	code, out2, stderr := r.runCtx(context.Background(), "logout", "--server", r.url, "--token-cache", r.cache)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out2, "Signed out of "+r.url)
	code, _, stderr = r.remote(unset, "apps", "list")
	require.NotZero(t, code)
	require.Contains(t, stderr, "not signed in to "+r.url+": run 'rotor login --server "+r.url+"'")

	// No token was ever printed.
	r.mu.Lock()
	outputs := append([]*lockedBuffer(nil), r.outputs...)
	r.mu.Unlock()
	for _, o := range outputs {
		for _, tok := range []string{first.AccessToken, first.RefreshToken, second.AccessToken, second.RefreshToken} {
			require.NotContains(t, o.String(), tok)
		}
	}
}

// TestLoginTimesOut: nobody comes back; the login says so and stops.
func TestLoginTimesOut(t *testing.T) {
	t.Parallel()
	r := setupRemote(t, "")
	_, done, _, errOut := startLogin(t, r.env, "--server", r.url, "--ca-file", r.info.CAFile, "--token-cache", r.cache, "--timeout", "1s")
	select {
	case code := <-done:
		require.Equal(t, 1, code)
		require.Contains(t, errOut.String(), "no sign-in came back within 1s")
	case <-time.After(30 * time.Second):
		t.Fatal("rotor login did not time out")
	}
	_, err := os.Stat(r.cache)
	require.True(t, os.IsNotExist(err), "nothing is cached")
}

type cachedTokens struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

func readCache(t *testing.T, path, server string) cachedTokens {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var f struct{ Servers map[string]cachedTokens }
	require.NoError(t, json.Unmarshal(b, &f))
	e, ok := f.Servers[server]
	require.True(t, ok, "the cache has %s: %s", server, b)
	return e
}

// expireCache moves the server's access token's expiry into the past.
func expireCache(t *testing.T, path, server string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var f map[string]any
	require.NoError(t, json.Unmarshal(b, &f))
	f["servers"].(map[string]any)[server].(map[string]any)["expires_at"] = time.Now().Add(-time.Minute).Format(time.RFC3339)
	b, err = json.Marshal(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}
