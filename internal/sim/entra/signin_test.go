package entra_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

const callback = "https://rotor.example.com/auth/callback"

// signIn is a test's sign-in application in contoso and a browser that
// does not follow redirects.
type signIn struct {
	e       *simtest.Env
	tn      *simfile.Tenant
	app     *sim.WebApp
	browser *http.Client
}

func setupSignIn(t *testing.T) *signIn {
	t.Helper()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	app, err := e.Server.RegisterDemoSignIn(tn.ID, callback)
	require.NoError(t, err)
	b := *e.Client
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &signIn{e: e, tn: tn, app: app, browser: &b}
}

// pkce is a verifier and its S256 challenge.
func pkce(seed string) (verifier, challenge string) {
	verifier = strings.Repeat(seed, 43/len(seed)+1)[:43]
	h := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(h[:])
}

// authorizeQuery is a valid authorization request's parameters.
func (s *signIn) authorizeQuery(challenge string) url.Values {
	return url.Values{
		"client_id": {s.app.AppID}, "response_type": {"code"}, "redirect_uri": {callback},
		"scope": {"openid profile email offline_access https://graph.microsoft.com/GroupMember.Read.All"},
		"state": {"state-123"}, "nonce": {"nonce-456"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
}

func (s *signIn) authorizeURL() string {
	return s.e.Info.AuthorityHost + s.tn.ID + "/oauth2/v2.0/authorize"
}

// pick submits the sign-in page's one-click choice of user and returns
// the redirect's query.
func (s *signIn) pick(t *testing.T, q url.Values, user string) url.Values {
	t.Helper()
	u, ok := s.tn.User(user)
	require.True(t, ok, user)
	form := url.Values{}
	for k, v := range q {
		form[k] = v
	}
	form.Set("user", u.ObjectID)
	return s.post(t, form)
}

func (s *signIn) post(t *testing.T, form url.Values) url.Values {
	t.Helper()
	resp, err := s.browser.PostForm(s.authorizeURL(), form)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, callback, loc.Scheme+"://"+loc.Host+loc.Path)
	return loc.Query()
}

// code signs user in with a fresh PKCE pair and returns the code and the
// verifier.
func (s *signIn) code(t *testing.T, user string) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkce("v3rifier-" + user)
	got := s.pick(t, s.authorizeQuery(challenge), user)
	require.Equal(t, "state-123", got.Get("state"))
	require.NotEmpty(t, got.Get("code"))
	return got.Get("code"), verifier
}

func (s *signIn) redeemForm(code, verifier string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "client_id": {s.app.AppID}, "client_secret": {s.app.Secret},
		"code": {code}, "redirect_uri": {callback}, "code_verifier": {verifier},
	}
}

func (s *signIn) redeem(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	return s.e.TokenRequest(t, s.tn.ID, form)
}

func TestAuthorizeShowsSignInPageWithSeededUsers(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	_, challenge := pkce("x")
	resp, err := s.browser.Get(s.authorizeURL() + "?" + s.authorizeQuery(challenge).Encode())
	require.NoError(t, err)
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Contains(t, body, `name="passwd"`)
	for _, u := range s.tn.Users {
		require.Contains(t, body, u.ObjectID)
		require.NotContains(t, body, u.Password)
	}
	require.Contains(t, body, `name="code_challenge" value="`+challenge+`"`)
	require.Contains(t, body, "rotor-web")
	// The form's submission ends in a redirect to the application:
	// browsers hold that redirect to form-action too (the browser test
	// TestNewcomerFlow caught 'self' alone blocking sign-in).
	require.Equal(t, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://rotor.example.com",
		resp.Header.Get("Content-Security-Policy"))
}

func TestAuthorizationCodeFlowIssuesIDTokenWithRolesAndGroups(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	code, verifier := s.code(t, "ada")
	status, body := s.redeem(t, s.redeemForm(code, verifier))
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Equal(t, "Bearer", body["token_type"])
	require.NotEmpty(t, body["refresh_token"])
	require.Contains(t, body["scope"], "https://graph.microsoft.com/GroupMember.Read.All")

	ada, _ := s.tn.User("ada")
	id := simtest.ClaimsOf(t, body["id_token"].(string))
	require.Equal(t, s.e.Info.AuthorityHost+s.tn.ID+"/v2.0", id["iss"])
	require.Equal(t, s.app.AppID, id["aud"])
	require.Equal(t, ada.ObjectID, id["oid"])
	require.Equal(t, s.tn.ID, id["tid"])
	require.Equal(t, "nonce-456", id["nonce"])
	require.Equal(t, "Ada Admin", id["name"])
	require.Equal(t, ada.UserPrincipalName, id["preferred_username"])
	require.Equal(t, ada.UserPrincipalName, id["email"])
	require.Equal(t, "2.0", id["ver"])
	require.NotEqual(t, ada.ObjectID, id["sub"], "sub is pairwise, not the object id")
	require.Equal(t, []any{"Rotor.Admin"}, id["roles"])
	require.NotContains(t, id, "groups", "ada is in no group")
	require.NotContains(t, id, "_claim_names")

	at := simtest.ClaimsOf(t, body["access_token"].(string))
	require.Equal(t, "https://graph.microsoft.com", at["aud"])
	require.Equal(t, s.app.AppID, at["appid"])
	require.Equal(t, ada.ObjectID, at["oid"])
	require.Equal(t, "user", at["idtyp"])
	require.Contains(t, at["scp"], "GroupMember.Read.All")
	require.NotContains(t, at, "roles")

	// Vera has no app role; her group is in the claim.
	code, verifier = s.code(t, "vera")
	status, body = s.redeem(t, s.redeemForm(code, verifier))
	require.Equal(t, http.StatusOK, status, "%v", body)
	id = simtest.ClaimsOf(t, body["id_token"].(string))
	require.NotContains(t, id, "roles")
	viewers := s.e.Server.World().Tenant(s.tn.ID).GroupByName(sim.DemoViewerGroup)
	require.Equal(t, []any{viewers.ObjectID}, id["groups"])
}

func TestGroupOverageUserGetsClaimSourcesAndMemberOfPages(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	code, verifier := s.code(t, "gus")
	status, body := s.redeem(t, s.redeemForm(code, verifier))
	require.Equal(t, http.StatusOK, status, "%v", body)
	gus, _ := s.tn.User("gus")
	id := simtest.ClaimsOf(t, body["id_token"].(string))
	require.NotContains(t, id, "groups")
	require.Equal(t, map[string]any{"groups": "src1"}, id["_claim_names"])
	require.Equal(t, map[string]any{"src1": map[string]any{
		"endpoint": "https://graph.microsoft.com/v1.0/users/" + gus.ObjectID + "/getMemberObjects",
	}}, id["_claim_sources"])

	// The delegated token pages through all 201 groups.
	hdr := map[string]string{"Authorization": "Bearer " + body["access_token"].(string)}
	var ids []string
	next := s.e.Info.GraphURL + "/me/memberOf?$top=100&$select=id,displayName"
	pages := 0
	for next != "" {
		status, page := s.e.Do(t, http.MethodGet, next, nil, hdr)
		require.Equal(t, http.StatusOK, status, "%v", page)
		for _, v := range page["value"].([]any) {
			o := v.(map[string]any)
			require.Equal(t, "#microsoft.graph.group", o["@odata.type"])
			ids = append(ids, o["id"].(string))
		}
		next, _ = page["@odata.nextLink"].(string)
		pages++
	}
	require.Equal(t, 3, pages)
	require.Len(t, ids, 201)
	ops := s.e.Server.World().Tenant(s.tn.ID).GroupByName(sim.DemoOperatorGroup)
	require.Contains(t, ids, ops.ObjectID)

	status, me := s.e.Do(t, http.MethodGet, s.e.Info.GraphURL+"/me", nil, hdr)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, gus.UserPrincipalName, me["userPrincipalName"])
}

func TestMeNeedsADelegatedTokenAndGroupPermission(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	appOnly, err := s.e.Server.MintToken(s.tn.ID, s.tn.Rotation.ClientID, sim.GraphResource)
	require.NoError(t, err)
	status, body := s.e.Do(t, http.MethodGet, s.e.Info.GraphURL+"/me/memberOf", nil, map[string]string{"Authorization": "Bearer " + appOnly})
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "/me request is only valid with delegated authentication flow.", body["error"].(map[string]any)["message"])

	// Signed in with User.Read only: memberOf is refused, ownedObjects not.
	verifier, challenge := pkce("onlyuserread")
	q := s.authorizeQuery(challenge)
	q.Set("scope", "openid profile")
	got := s.pick(t, q, "oscar")
	status, toks := s.redeem(t, s.redeemForm(got.Get("code"), verifier))
	require.Equal(t, http.StatusOK, status, "%v", toks)
	require.NotContains(t, toks, "refresh_token", "no offline_access, no refresh token")
	require.Equal(t, "openid profile User.Read", simtest.ClaimsOf(t, toks["access_token"].(string))["scp"])
	hdr := map[string]string{"Authorization": "Bearer " + toks["access_token"].(string)}
	status, body = s.e.Do(t, http.MethodGet, s.e.Info.GraphURL+"/me/memberOf", nil, hdr)
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "Authorization_RequestDenied", body["error"].(map[string]any)["code"])

	oscar, _ := s.tn.User("oscar")
	owned := s.e.AppNamed(t, "contoso", "api-orders")
	s.e.Server.World().Update(func() { owned.Owners = append(owned.Owners, oscar.ObjectID) })
	status, body = s.e.Do(t, http.MethodGet, s.e.Info.GraphURL+"/me/ownedObjects", nil, hdr)
	require.Equal(t, http.StatusOK, status, "%v", body)
	// The demo seed makes oscar an owner of web-checkout and
	// web-customer-portal; api-orders is the one added here.
	var ids []string
	for _, v := range body["value"].([]any) {
		ids = append(ids, v.(map[string]any)["id"].(string))
	}
	require.Len(t, ids, 3)
	require.Contains(t, ids, owned.ObjectID)
	// A delegated token reads no applications by itself.
	status, _ = s.e.Do(t, http.MethodGet, s.e.Info.GraphURL+"/applications", nil, hdr)
	require.Equal(t, http.StatusForbidden, status)
}

func TestRefreshTokenRotatesAndReadsCurrentRoles(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	code, verifier := s.code(t, "oscar")
	status, body := s.redeem(t, s.redeemForm(code, verifier))
	require.Equal(t, http.StatusOK, status, "%v", body)
	first := body["refresh_token"].(string)
	require.Equal(t, []any{"Rotor.Operator"}, simtest.ClaimsOf(t, body["id_token"].(string))["roles"])

	require.NoError(t, s.e.Server.AssignUserAppRoles(s.tn.ID, "oscar@"+s.tn.Domain, s.app.AppID, "Rotor.Viewer"))
	refresh := func(rt string) (int, map[string]any) {
		return s.redeem(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {s.app.AppID},
			"client_secret": {s.app.Secret}, "refresh_token": {rt}})
	}
	status, body = refresh(first)
	require.Equal(t, http.StatusOK, status, "%v", body)
	second := body["refresh_token"].(string)
	require.NotEqual(t, first, second)
	id := simtest.ClaimsOf(t, body["id_token"].(string))
	require.Equal(t, []any{"Rotor.Operator", "Rotor.Viewer"}, id["roles"])
	require.NotContains(t, id, "nonce")

	status, body = refresh(first)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "invalid_grant", body["error"])
	simtest.RequireAADSTS(t, body, 70000)

	status, body = s.redeem(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {s.app.AppID},
		"refresh_token": {second}})
	require.Equal(t, http.StatusUnauthorized, status, "a confidential client must authenticate")
	simtest.RequireAADSTS(t, body, 7000218)
	status, _ = refresh(second)
	require.Equal(t, http.StatusOK, status)
}

func TestCodeRedemptionRefusesAsEntraDoes(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	other, err := s.e.Server.RegisterWebApp(s.tn.ID, sim.WebAppSpec{Name: "other-web", RedirectURIs: []string{callback}})
	require.NoError(t, err)

	cases := []struct {
		name   string
		tweak  func(f url.Values)
		status int
		error  string
		aadsts int
	}{
		{"WrongVerifier", func(f url.Values) { f.Set("code_verifier", strings.Repeat("w", 43)) }, 400, "invalid_grant", 501481},
		{"NoVerifier", func(f url.Values) { f.Del("code_verifier") }, 400, "invalid_grant", 501481},
		{"WrongRedirectURI", func(f url.Values) { f.Set("redirect_uri", "https://rotor.example.com/other") }, 400, "invalid_grant", 50011},
		{"NoRedirectURI", func(f url.Values) { f.Del("redirect_uri") }, 400, "invalid_request", 900144},
		{"WrongClientSecret", func(f url.Values) { f.Set("client_secret", "not-the-secret") }, 401, "invalid_client", 7000215},
		{"NoClientSecret", func(f url.Values) { f.Del("client_secret") }, 401, "invalid_client", 7000218},
		{"AnotherClient", func(f url.Values) { f.Set("client_id", other.AppID); f.Set("client_secret", other.Secret) }, 400, "invalid_grant", 70000},
		{"UnknownCode", func(f url.Values) { f.Set("code", "bm90LWEtY29kZQ") }, 400, "invalid_grant", 9002313},
		{"NoCode", func(f url.Values) { f.Del("code") }, 400, "invalid_request", 900144},
		{"OtherTenant", nil, 400, "invalid_grant", 700005},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, verifier := s.code(t, "ada")
			form := s.redeemForm(code, verifier)
			tenant := s.tn.ID
			if tc.tweak != nil {
				tc.tweak(form)
			} else {
				fab := s.e.Tenant(t, "fabrikam")
				fabApp, err := s.e.Server.RegisterWebApp(fab.ID, sim.WebAppSpec{Name: "fab-web", RedirectURIs: []string{callback}})
				require.NoError(t, err)
				tenant = fab.ID
				form.Set("client_id", fabApp.AppID)
				form.Set("client_secret", fabApp.Secret)
			}
			status, body := s.e.TokenRequest(t, tenant, form)
			require.Equal(t, tc.status, status, "%v", body)
			require.Equal(t, tc.error, body["error"])
			simtest.RequireAADSTS(t, body, tc.aadsts)
		})
	}

	t.Run("ReusedCodeRevokesItsRefreshToken", func(t *testing.T) {
		code, verifier := s.code(t, "ada")
		status, body := s.redeem(t, s.redeemForm(code, verifier))
		require.Equal(t, http.StatusOK, status)
		rt := body["refresh_token"].(string)
		status, body = s.redeem(t, s.redeemForm(code, verifier))
		require.Equal(t, http.StatusBadRequest, status)
		simtest.RequireAADSTS(t, body, 54005)
		status, body = s.redeem(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {s.app.AppID},
			"client_secret": {s.app.Secret}, "refresh_token": {rt}})
		require.Equal(t, http.StatusBadRequest, status)
		simtest.RequireAADSTS(t, body, 70000)
	})
	t.Run("FailedRedemptionUsesTheCodeUp", func(t *testing.T) {
		code, verifier := s.code(t, "ada")
		form := s.redeemForm(code, verifier)
		form.Set("code_verifier", strings.Repeat("w", 43))
		status, _ := s.redeem(t, form)
		require.Equal(t, http.StatusBadRequest, status)
		status, body := s.redeem(t, s.redeemForm(code, verifier))
		require.Equal(t, http.StatusBadRequest, status)
		simtest.RequireAADSTS(t, body, 54005)
	})
}

func TestCodeExpiresAfterTenMinutes(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	code, verifier := s.code(t, "ada")
	s.e.AdvanceClock(10*time.Minute + time.Second)
	status, body := s.redeem(t, s.redeemForm(code, verifier))
	require.Equal(t, http.StatusBadRequest, status)
	simtest.RequireAADSTS(t, body, 70008)
}

func TestPlainChallengeIsAcceptedAsEntraDocuments(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	verifier := strings.Repeat("p", 50)
	q := s.authorizeQuery(verifier)
	q.Set("code_challenge_method", "plain")
	got := s.pick(t, q, "ada")
	status, body := s.redeem(t, s.redeemForm(got.Get("code"), verifier))
	require.Equal(t, http.StatusOK, status, "%v", body)
}

func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	_, challenge := pkce("refuse")

	// Before the redirect URI is known good, refusals stay on Entra's page.
	for _, tc := range []struct {
		name   string
		tweak  func(q url.Values)
		aadsts string
	}{
		{"UnregisteredRedirectURI", func(q url.Values) { q.Set("redirect_uri", "https://evil.example.com/cb") }, "AADSTS50011"},
		{"UnknownClient", func(q url.Values) { q.Set("client_id", "00000000-0000-0000-0000-000000000001") }, "AADSTS700016"},
		{"NoClient", func(q url.Values) { q.Del("client_id") }, "AADSTS900144"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := s.authorizeQuery(challenge)
			tc.tweak(q)
			resp, err := s.browser.Get(s.authorizeURL() + "?" + q.Encode())
			require.NoError(t, err)
			body := readAll(t, resp)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			require.Empty(t, resp.Header.Get("Location"))
			require.Contains(t, body, tc.aadsts)
		})
	}
	// After it, they go to the redirect URI with the state.
	for _, tc := range []struct {
		name, error, aadsts string
		tweak               func(q url.Values)
	}{
		{"BadScope", "invalid_scope", "AADSTS70011", func(q url.Values) { q.Set("scope", "openid https://graph.microsoft.com/Mail.Send") }},
		{"BadChallengeMethod", "invalid_request", "AADSTS50149", func(q url.Values) { q.Set("code_challenge_method", "S512") }},
		{"ShortChallenge", "invalid_request", "AADSTS501491", func(q url.Values) { q.Set("code_challenge", "short") }},
		{"TokenResponseType", "unsupported_response_type", "AADSTS70005", func(q url.Values) { q.Set("response_type", "token") }},
		{"PromptNone", "login_required", "AADSTS50058", func(q url.Values) { q.Set("prompt", "none") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := s.authorizeQuery(challenge)
			tc.tweak(q)
			resp, err := s.browser.Get(s.authorizeURL() + "?" + q.Encode())
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusFound, resp.StatusCode)
			loc, err := url.Parse(resp.Header.Get("Location"))
			require.NoError(t, err)
			require.Equal(t, tc.error, loc.Query().Get("error"))
			require.True(t, strings.HasPrefix(loc.Query().Get("error_description"), tc.aadsts+": "), loc.Query().Get("error_description"))
			require.Equal(t, "state-123", loc.Query().Get("state"))
			require.Empty(t, loc.Query().Get("code"))
		})
	}
}

func TestPasswordSignIn(t *testing.T) {
	t.Parallel()
	s := setupSignIn(t)
	_, challenge := pkce("password")
	form := s.authorizeQuery(challenge)
	vera, _ := s.tn.User("vera")
	form.Set("login", "vera")
	form.Set("passwd", "wrong")
	resp, err := s.browser.PostForm(s.authorizeURL(), form)
	require.NoError(t, err)
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "AADSTS50126")

	form.Set("login", "nobody")
	resp, err = s.browser.PostForm(s.authorizeURL(), form)
	require.NoError(t, err)
	require.Contains(t, readAll(t, resp), "AADSTS50034")

	form.Set("login", strings.ToUpper(vera.UserPrincipalName))
	form.Set("passwd", vera.Password)
	got := s.post(t, form)
	require.NotEmpty(t, got.Get("code"))
	require.Equal(t, int64(1), s.e.Server.Stats().SignIns)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
