package entra_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
)

// TestPublicClientLoopbackFlow: rotor's CLI (a public client) signs ada
// in with a loopback redirect on a port of its choosing, redeems the code
// without a secret but with its PKCE verifier, and gets a user token for
// rotor's API carrying her app role; refresh works the same way.
func TestPublicClientLoopbackFlow(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	reg, err := s.e.Server.RegisterDemoCLI(s.tn.ID)
	require.NoError(t, err)
	redirect := "http://127.0.0.1:53117/"
	verifier, challenge := pkce("cli-verifier")
	q := url.Values{
		"client_id": {reg.CLI.AppID}, "response_type": {"code"}, "redirect_uri": {redirect},
		"scope": {sim.DemoAPIIdentifierURI + "/user_impersonation offline_access"}, "state": {"st"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	ada, ok := s.tn.User("ada")
	require.True(t, ok)

	// pickAt posts the sign-in form and returns where the browser goes.
	pickAt := func(q url.Values) *url.URL {
		form := url.Values{}
		for k, v := range q {
			form[k] = v
		}
		form.Set("user", ada.ObjectID)
		resp, err := s.browser.PostForm(s.authorizeURL(), form)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		return loc
	}
	loc := pickAt(q)
	require.Equal(t, "127.0.0.1:53117", loc.Host, "any port of a registered loopback redirect")
	code := loc.Query().Get("code")
	require.NotEmpty(t, code)

	redeem := url.Values{"grant_type": {"authorization_code"}, "client_id": {reg.CLI.AppID}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}
	status, body := s.e.TokenRequest(t, s.tn.ID, redeem)
	require.Equal(t, http.StatusOK, status, body)
	claims := jwt.MapClaims{}
	_, _, err = jwt.NewParser().ParseUnverified(body["access_token"].(string), claims)
	require.NoError(t, err)
	require.Equal(t, sim.DemoAPIIdentifierURI, claims["aud"])
	require.Equal(t, "user_impersonation", claims["scp"])
	require.Equal(t, reg.CLI.AppID, claims["appid"])
	require.Equal(t, "0", claims["appidacr"], "a public client")
	require.Equal(t, ada.ObjectID, claims["oid"])
	require.Equal(t, []any{"Rotor.Admin"}, claims["roles"])
	require.Equal(t, sim.DemoAPIIdentifierURI+"/user_impersonation offline_access", body["scope"])

	status, body = s.e.TokenRequest(t, s.tn.ID, url.Values{"grant_type": {"refresh_token"}, "client_id": {reg.CLI.AppID},
		"refresh_token": {body["refresh_token"].(string)}})
	require.Equal(t, http.StatusOK, status, body)
	require.NotEmpty(t, body["access_token"])

	for name, tc := range map[string]struct {
		tweak func(url.Values)
		want  string
	}{
		"NoPKCE":          {func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "AADSTS9002325"},
		"PlainPKCE":       {func(q url.Values) { q.Set("code_challenge_method", "plain") }, "AADSTS9002325"},
		"TwoResources":    {func(q url.Values) { q.Set("scope", sim.DemoAPIIdentifierURI+"/user_impersonation User.Read") }, "invalid_scope"},
		"UnknownAPIScope": {func(q url.Values) { q.Set("scope", sim.DemoAPIIdentifierURI+"/everything") }, "invalid_scope"},
	} {
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = append([]string(nil), v...)
		}
		tc.tweak(q2)
		got := pickAt(q2).Query()
		require.Contains(t, got.Get("error")+" "+got.Get("error_description"), tc.want, name)
	}

	// A redirect on another host, or https on loopback, is not registered.
	for _, bad := range []string{"http://evil.example.com:53117/", "http://127.0.0.2:1/", "https://127.0.0.1:53117/"} {
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = v
		}
		q2.Set("redirect_uri", bad)
		resp, err := s.browser.Get(s.authorizeURL() + "?" + q2.Encode())
		require.NoError(t, err)
		page := readAll(t, resp)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
		require.True(t, strings.Contains(page, "AADSTS50011"), bad)
	}

	// Without its verifier, a stolen code is worth nothing to a public client.
	loc = pickAt(q)
	redeem.Set("code", loc.Query().Get("code"))
	redeem.Del("code_verifier")
	status, body = s.e.TokenRequest(t, s.tn.ID, redeem)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_grant", body["error"])
}
