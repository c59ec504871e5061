package entra_test

import (
	"context"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

var graphScope = []string{"https://graph.microsoft.com/.default"}

// testCert is a certificate and key a test registers on an app.
type testCert struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// newTestCert makes a certificate valid now (wall clock) over the test
// binary's shared RSA key.
func newTestCert(t *testing.T, cn string) testCert {
	t.Helper()
	key := simtest.RSAKey(0)
	now := time.Now()
	return testCert{key: key, cert: simtest.SelfSignedCert(t, key, cn, now.Add(-time.Hour), now.Add(24*time.Hour))}
}

// addCert registers c on app, replicated long ago.
func addCert(srv *sim.Server, app *sim.Application, c testCert) {
	srv.World().Update(func() {
		app.Keys = append(app.Keys, sim.NewKey(uuid.NewString(), "CN=test", c.cert, time.Now().Add(-time.Hour)))
	})
}

func TestClientSecretCredentialGetsGraphToken(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	cred, err := azidentity.NewClientSecretCredential(tn.ID, tn.Rotation.ClientID, tn.Rotation.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: e.NoRetry, DisableInstanceDiscovery: true})
	require.NoError(t, err)
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: graphScope})
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(time.Hour), tok.ExpiresOn, 2*time.Minute)

	c := simtest.ClaimsOf(t, tok.Token)
	require.Equal(t, "https://graph.microsoft.com", c["aud"])
	require.Equal(t, "https://sts.windows.net/"+tn.ID+"/", c["iss"])
	require.Equal(t, tn.Rotation.ClientID, c["appid"])
	require.Equal(t, "1", c["appidacr"])
	require.Equal(t, tn.Rotation.ObjectID, c["oid"])
	require.Equal(t, tn.Rotation.ObjectID, c["sub"])
	require.Equal(t, tn.ID, c["tid"])
	require.Equal(t, "1.0", c["ver"])
	require.Equal(t, "app", c["idtyp"])
	require.NotEmpty(t, c["uti"])
	require.ElementsMatch(t, []any{sim.RoleReadWriteOwned, sim.RoleReadAll}, c["roles"])
	iat, exp, nbf := c["iat"].(float64), c["exp"].(float64), c["nbf"].(float64)
	require.Equal(t, 3600.0, exp-iat)
	require.LessOrEqual(t, nbf, iat)

	// Other audiences get no roles; ARM's trailing-slash scope keeps its slash.
	tok, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com//.default"}})
	require.NoError(t, err)
	c = simtest.ClaimsOf(t, tok.Token)
	require.Equal(t, "https://management.azure.com/", c["aud"])
	require.NotContains(t, c, "roles")
}

func TestClientCertificateCredentialGetsToken(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "fabrikam")
	app := e.AppNamed(t, "fabrikam", "api-orders")
	tc := newTestCert(t, "api-orders")
	addCert(e.Server, app, tc)

	for _, chain := range []bool{false, true} {
		cred, err := azidentity.NewClientCertificateCredential(tn.ID, app.AppID, []*x509.Certificate{tc.cert}, tc.key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.NoRetry, DisableInstanceDiscovery: true, SendCertificateChain: chain})
		require.NoError(t, err)
		tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
		require.NoError(t, err, "SendCertificateChain=%v", chain)
		c := simtest.ClaimsOf(t, tok.Token)
		require.Equal(t, app.AppID, c["appid"])
		require.Equal(t, "2", c["appidacr"])
		require.Equal(t, "https://vault.azure.net", c["aud"])
	}

	// A certificate the app does not have is refused with AADSTS700027.
	other := newTestCert(t, "someone-else")
	cred, err := azidentity.NewClientCertificateCredential(tn.ID, app.AppID, []*x509.Certificate{other.cert}, other.key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.NoRetry, DisableInstanceDiscovery: true})
	require.NoError(t, err)
	_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: graphScope})
	require.ErrorContains(t, err, "AADSTS700027")
}

// rs256Assertion builds the RS256 + SHA-1 x5t assertion some clients send,
// with exp/nbf as strings; tweaks adjust the claims before signing.
func rs256Assertion(t *testing.T, tc testCert, clientID, aud string, x5tEnc *base64.Encoding, tweaks ...func(jwt.MapClaims)) string {
	t.Helper()
	tp := sha1.Sum(tc.cert.Raw) //nolint:gosec // x5t
	claims := jwt.MapClaims{
		"aud": aud, "iss": clientID, "sub": clientID, "jti": uuid.NewString(),
		"nbf": strconvUnix(time.Now()), "exp": strconvUnix(time.Now().Add(10 * time.Minute)),
	}
	for _, f := range tweaks {
		f(claims)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["x5t"] = x5tEnc.EncodeToString(tp[:])
	s, err := tok.SignedString(tc.key)
	require.NoError(t, err)
	return s
}

func strconvUnix(t time.Time) string { return big.NewInt(t.Unix()).String() }

func TestCertificateAssertionVariants(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	app := e.AppNamed(t, "contoso", "svc-audit-log")
	tc := newTestCert(t, "svc-audit-log")
	addCert(e.Server, app, tc)
	tokenURL := e.Info.AuthorityHost + tn.ID + "/oauth2/v2.0/token"

	for name, enc := range map[string]*base64.Encoding{"std": base64.StdEncoding, "url": base64.RawURLEncoding} {
		form := url.Values{
			"grant_type": {"client_credentials"}, "scope": {"https://graph.microsoft.com/.default openid offline_access profile"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {rs256Assertion(t, tc, app.AppID, tokenURL, enc)},
		}
		status, body := e.TokenRequest(t, tn.ID, form) // no client_id: taken from iss
		require.Equal(t, http.StatusOK, status, "%s: %v", name, body)
	}

	// The audience must be this tenant's token endpoint.
	form := url.Values{
		"grant_type": {"client_credentials"}, "scope": {"https://graph.microsoft.com/.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {rs256Assertion(t, tc, app.AppID, "https://login.microsoftonline.com/"+tn.ID+"/oauth2/v2.0/token", base64.StdEncoding)},
	}
	status, body := e.TokenRequest(t, tn.ID, form)
	require.Equal(t, http.StatusBadRequest, status)
	simtest.RequireAADSTS(t, body, 50013)

	// The audience's host must be the host the request went to; the
	// loopback names stand for each other. Its lifetime is at most an hour.
	u, err := url.Parse(e.Info.AuthorityHost)
	require.NoError(t, err)
	port := u.Port()
	endpoint := func(host string) string { return "https://" + host + ":" + port + "/" + tn.ID + "/oauth2/v2.0/token" }
	window := func(nbf, exp time.Duration) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = strconvUnix(time.Now().Add(nbf)), strconvUnix(time.Now().Add(exp))
		}
	}
	noNBF := func(exp time.Duration) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) { delete(c, "nbf"); c["exp"] = strconvUnix(time.Now().Add(exp)) }
	}
	cases := []struct {
		name    string
		reqHost string // the host the request is sent to
		aud     string
		tweak   func(jwt.MapClaims)
		status  int
		code    int
	}{
		{"localhost audience", "127.0.0.1", endpoint("localhost"), nil, http.StatusOK, 0},
		{"[::1] audience", "127.0.0.1", endpoint("[::1]"), nil, http.StatusOK, 0},
		{"request via localhost", "localhost", endpoint("127.0.0.1"), nil, http.StatusOK, 0},
		{"audience on another host", "127.0.0.1", endpoint("sim.example.com"), nil, http.StatusBadRequest, 50013},
		{"audience on another loopback address", "127.0.0.1", endpoint("127.0.0.2"), nil, http.StatusBadRequest, 50013},
		{"audience on another port", "127.0.0.1", "https://127.0.0.1:1/" + tn.ID + "/oauth2/v2.0/token", nil, http.StatusBadRequest, 50013},
		{"lifetime exactly 1h", "127.0.0.1", tokenURL, window(-30*time.Minute, 30*time.Minute), http.StatusOK, 0},
		{"lifetime over 1h", "127.0.0.1", tokenURL, window(-time.Minute, time.Hour), http.StatusBadRequest, 700024},
		{"no nbf, exp within 1h", "127.0.0.1", tokenURL, noNBF(50 * time.Minute), http.StatusOK, 0},
		{"no nbf, exp past 1h and skew", "127.0.0.1", tokenURL, noNBF(2 * time.Hour), http.StatusBadRequest, 700024},
	}
	for _, c := range cases {
		var tweaks []func(jwt.MapClaims)
		if c.tweak != nil {
			tweaks = append(tweaks, c.tweak)
		}
		form := url.Values{
			"grant_type": {"client_credentials"}, "scope": {"https://graph.microsoft.com/.default"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {rs256Assertion(t, tc, app.AppID, c.aud, base64.StdEncoding, tweaks...)},
		}
		resp, err := e.Client.PostForm("https://"+c.reqHost+":"+port+"/"+tn.ID+"/oauth2/v2.0/token", form)
		require.NoError(t, err, c.name)
		status, body := simtest.DecodeBody(t, resp)
		require.Equal(t, c.status, status, "%s: %v", c.name, body)
		if c.code != 0 {
			simtest.RequireAADSTS(t, body, c.code)
		}
	}
}

func TestClientAssertionCredentialWithManagedIdentityFederation(t *testing.T) {
	// Not parallel: azidentity reads IDENTITY_ENDPOINT at construction.
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	t.Setenv("IDENTITY_ENDPOINT", e.Info.ManagedIdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", e.Info.ManagedIdentityHeader)

	app := e.AppNamed(t, "contoso", "func-billing")
	e.Server.World().Update(func() {
		app.FICs = append(app.FICs, &sim.FederatedCredential{
			ID: uuid.NewString(), Name: "app-service-mi",
			Issuer: "https://sts.windows.net/" + tn.ID + "/", Subject: tn.ManagedIdentity.PrincipalID,
			Audiences: []string{sim.TokenExchangeAudience},
		})
	})

	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: e.NoRetry})
	require.NoError(t, err)
	assertion := func(ctx context.Context) (string, error) {
		tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{sim.TokenExchangeAudience + "/.default"}})
		return tok.Token, err
	}
	cred, err := azidentity.NewClientAssertionCredential(tn.ID, app.AppID, assertion,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: e.NoRetry, DisableInstanceDiscovery: true})
	require.NoError(t, err)
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: graphScope})
	require.NoError(t, err)
	c := simtest.ClaimsOf(t, tok.Token)
	require.Equal(t, app.AppID, c["appid"])
	require.Equal(t, "2", c["appidacr"])

	// Another app without that federated credential is refused: AADSTS70021.
	other := e.AppNamed(t, "contoso", "func-invoice-pdf")
	cred, err = azidentity.NewClientAssertionCredential(tn.ID, other.AppID, assertion,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: e.NoRetry, DisableInstanceDiscovery: true})
	require.NoError(t, err)
	_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: graphScope})
	require.ErrorContains(t, err, "AADSTS70021")
}

func TestFederationFromAnIssuerTheSimulatorPlays(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "fabrikam")
	app := e.AppNamed(t, "fabrikam", "web-checkout")
	const iss, sub = "https://token.actions.githubusercontent.com", "repo:fabrikam/checkout:ref:refs/heads/main"
	e.Server.World().Update(func() {
		app.FICs = append(app.FICs, &sim.FederatedCredential{ID: uuid.NewString(), Name: "gh", Issuer: iss, Subject: sub, Audiences: []string{sim.TokenExchangeAudience}})
	})
	good, err := e.Server.MintExternalToken(iss, sub, sim.TokenExchangeAudience, 10*time.Minute)
	require.NoError(t, err)
	cases := map[string]struct {
		assertion string
		status    int
		code      int
	}{
		"matching credential": {good, http.StatusOK, 0},
		"wrong subject":       {mustMint(t, e.Server, iss, "repo:evil/fork", sim.TokenExchangeAudience), http.StatusBadRequest, 70021},
		"wrong audience":      {mustMint(t, e.Server, iss, sub, "api://other"), http.StatusBadRequest, 70021},
		"expired":             {mustMintTTL(t, e.Server, iss, sub, -time.Hour), http.StatusBadRequest, 700024},
		"tampered signature":  {good[:len(good)-4] + "AAAA", http.StatusUnauthorized, 700027},
		"not a JWT":           {"abc.def", http.StatusBadRequest, 50027},
	}
	for name, tc := range cases {
		form := url.Values{
			"grant_type": {"client_credentials"}, "client_id": {app.AppID}, "scope": {"https://graph.microsoft.com/.default"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {tc.assertion},
		}
		status, body := e.TokenRequest(t, tn.ID, form)
		require.Equal(t, tc.status, status, "%s: %v", name, body)
		if tc.code != 0 {
			simtest.RequireAADSTS(t, body, tc.code)
		}
	}
}

func mustMint(t *testing.T, srv *sim.Server, iss, sub, aud string) string {
	t.Helper()
	s, err := srv.MintExternalToken(iss, sub, aud, 10*time.Minute)
	require.NoError(t, err)
	return s
}

func mustMintTTL(t *testing.T, srv *sim.Server, iss, sub string, ttl time.Duration) string {
	t.Helper()
	s, err := srv.MintExternalToken(iss, sub, sim.TokenExchangeAudience, ttl)
	require.NoError(t, err)
	return s
}

func TestManagedIdentityCredential(t *testing.T) {
	// Not parallel: azidentity reads IDENTITY_ENDPOINT at construction.
	e := simtest.StartEnv(t)
	t.Setenv("IDENTITY_ENDPOINT", e.Info.ManagedIdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", e.Info.ManagedIdentityHeader)
	contoso, fabrikam := e.Tenant(t, "contoso"), e.Tenant(t, "fabrikam")

	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: e.NoRetry})
	require.NoError(t, err)
	tok, err := mi.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: graphScope})
	require.NoError(t, err)
	c := simtest.ClaimsOf(t, tok.Token)
	require.Equal(t, contoso.ID, c["tid"], "system-assigned means the first tenant's identity")
	require.Equal(t, contoso.ManagedIdentity.PrincipalID, c["oid"])
	require.Equal(t, contoso.ManagedIdentity.ClientID, c["appid"])
	require.Equal(t, []any{sim.RoleReadAll}, c["roles"])

	byID, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: e.NoRetry, ID: azidentity.ClientID(fabrikam.ManagedIdentity.ClientID)})
	require.NoError(t, err)
	tok, err = byID.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: graphScope})
	require.NoError(t, err)
	require.Equal(t, fabrikam.ID, simtest.ClaimsOf(t, tok.Token)["tid"])

	// The endpoint insists on the identity header.
	status, body := e.Do(t, http.MethodGet, e.Info.ManagedIdentityEndpoint+"?api-version=2019-08-01&resource=https://graph.microsoft.com", nil,
		map[string]string{"X-IDENTITY-HEADER": "wrong"})
	require.Equal(t, http.StatusBadRequest, status)
	require.NotEmpty(t, body["message"])
	status, _ = e.Do(t, http.MethodGet, e.Info.ManagedIdentityEndpoint+"?api-version=2019-08-01&resource=https://graph.microsoft.com&client_id="+uuid.NewString(), nil,
		map[string]string{"X-IDENTITY-HEADER": e.Info.ManagedIdentityHeader})
	require.Equal(t, http.StatusBadRequest, status)
}

func TestNewSecretIsRefusedUntilReplicated(t *testing.T) {
	t.Parallel()
	delay := 300 * time.Millisecond
	e := simtest.StartEnv(t, func(o *simtest.Options) { o.ReplicationDelay = &delay })
	tn := e.Tenant(t, "contoso")
	app := e.AppNamed(t, "contoso", "web-storefront")
	const secret = "new8Q~replicationdelaytestsecret-abcdefg"
	now := e.Now()
	e.AddSecret(app, secret, now, now.Add(30*24*time.Hour), now)

	cred, err := azidentity.NewClientSecretCredential(tn.ID, app.AppID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: e.NoRetry, DisableInstanceDiscovery: true})
	require.NoError(t, err)
	_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: graphScope})
	require.ErrorContains(t, err, "AADSTS7000215", "a fresh secret has not replicated")

	// Past the delay on the simulator's clock, the same secret works.
	e.AdvanceClock(delay)
	_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: graphScope})
	require.NoError(t, err)
}

func TestReplicationBoundaryWithFakeClock(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Now())
	delay := 3 * time.Second
	e := simtest.StartEnv(t, func(o *simtest.Options) { o.Clock = fake; o.ReplicationDelay = &delay })
	tn := e.Tenant(t, "fabrikam")
	app := e.AppNamed(t, "fabrikam", "api-payments")
	const secret = "bnd8Q~boundarytestsecret-abcdefghijklmn"
	e.AddSecret(app, secret, fake.Now(), fake.Now().Add(24*time.Hour), fake.Now())
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.AppID}, "client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"}}

	status, body := e.TokenRequest(t, tn.ID, form)
	require.Equal(t, http.StatusUnauthorized, status)
	simtest.RequireAADSTS(t, body, 7000215)
	fake.Advance(delay - time.Millisecond)
	status, _ = e.TokenRequest(t, tn.ID, form)
	require.Equal(t, http.StatusUnauthorized, status)
	fake.Advance(time.Millisecond)
	status, _ = e.TokenRequest(t, tn.ID, form)
	require.Equal(t, http.StatusOK, status)
	fake.Advance(24 * time.Hour)
	status, body = e.TokenRequest(t, tn.ID, form)
	require.Equal(t, http.StatusBadRequest, status)
	simtest.RequireAADSTS(t, body, 7000222)
}

func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	expired := e.AppNamed(t, "contoso", "batch-nightly-etl")
	const expiredSecret = "exp8Q~expiredsecretfortests-abcdefghijkl"
	e.AddSecret(expired, expiredSecret, time.Now().AddDate(-1, 0, 0), time.Now().Add(-time.Hour), time.Now().AddDate(-1, 0, 0))

	base := func() url.Values { return simtest.SecretForm(tn, "https://graph.microsoft.com/.default") }
	with := func(k, v string) url.Values { f := base(); f.Set(k, v); return f }
	cases := []struct {
		name   string
		tenant string
		form   url.Values
		status int
		code   int
		error  string
	}{
		{"unknown tenant", uuid.NewString(), base(), 400, 90002, "invalid_request"},
		{"unknown client", tn.ID, with("client_id", uuid.NewString()), 400, 700016, "unauthorized_client"},
		{"wrong secret", tn.ID, with("client_secret", "nope8Q~wrong"), 401, 7000215, "invalid_client"},
		{"expired secret", tn.ID, func() url.Values {
			f := with("client_id", expired.AppID)
			f.Set("client_secret", expiredSecret)
			return f
		}(), 400, 7000222, "invalid_client"},
		{"scope without .default", tn.ID, with("scope", "https://graph.microsoft.com/User.Read"), 400, 70011, "invalid_scope"},
		{"unknown resource", tn.ID, with("scope", "https://example.com/.default"), 400, 70011, "invalid_scope"},
		{"no credential", tn.ID, with("client_secret", ""), 401, 7000218, "invalid_client"},
		{"wrong grant", tn.ID, with("grant_type", "password"), 400, 70003, "unsupported_grant_type"},
		{"no grant", tn.ID, with("grant_type", ""), 400, 900144, "invalid_request"},
	}
	for _, tc := range cases {
		status, body := e.TokenRequest(t, tc.tenant, tc.form)
		require.Equal(t, tc.status, status, "%s: %v", tc.name, body)
		require.Equal(t, tc.error, body["error"], tc.name)
		simtest.RequireAADSTS(t, body, tc.code)
		require.NotContains(t, body["error_description"], tn.Rotation.ClientSecret, "no secret in errors")
	}
}

func TestTokenEndpointAcceptsItsVariants(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "fabrikam")

	// Tenant by domain and by name; extra OIDC scopes; the token is for the tenant id.
	for _, tenant := range []string{tn.Domain, tn.Name} {
		status, body := e.TokenRequest(t, tenant, simtest.SecretForm(tn, "https://graph.microsoft.com/.default openid offline_access profile"))
		require.Equal(t, http.StatusOK, status, "%v", body)
		require.Equal(t, "Bearer", body["token_type"])
		require.Equal(t, 3599.0, body["expires_in"])
		require.Equal(t, 3599.0, body["ext_expires_in"])
		require.Equal(t, tn.ID, simtest.ClaimsOf(t, body["access_token"].(string))["tid"])
	}

	// HTTP Basic client authentication.
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"https://vault.azure.net/.default"}}
	req, err := http.NewRequest(http.MethodPost, e.Info.AuthorityHost+tn.ID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(tn.Rotation.ClientID), url.QueryEscape(tn.Rotation.ClientSecret))
	resp, err := e.Client.Do(req)
	require.NoError(t, err)
	status, body := simtest.DecodeBody(t, resp)
	require.Equal(t, http.StatusOK, status, "%v", body)
}

func TestDiscoveryAndJWKSVerifyIssuedTokens(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	status, doc := e.Do(t, http.MethodGet, e.Info.AuthorityHost+tn.Domain+"/v2.0/.well-known/openid-configuration", nil, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, e.Info.AuthorityHost+tn.ID+"/v2.0", doc["issuer"])
	require.Equal(t, e.Info.AuthorityHost+tn.ID+"/oauth2/v2.0/token", doc["token_endpoint"])
	require.NotEmpty(t, doc["authorization_endpoint"])
	require.NotEmpty(t, doc["response_types_supported"])

	status, jwks := e.Do(t, http.MethodGet, doc["jwks_uri"].(string), nil, nil)
	require.Equal(t, http.StatusOK, status)
	keys := jwks["keys"].([]any)
	require.Len(t, keys, 1)
	k := keys[0].(map[string]any)
	require.Equal(t, "RSA", k["kty"])
	require.Equal(t, "sig", k["use"])
	require.Equal(t, k["kid"], k["x5t"])
	der, err := base64.StdEncoding.DecodeString(k["x5c"].([]any)[0].(string))
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pub := cert.PublicKey.(*rsa.PublicKey)
	n, err := base64.RawURLEncoding.DecodeString(k["n"].(string))
	require.NoError(t, err)
	require.Equal(t, pub.N.Bytes(), n)
	tp := sha1.Sum(der) //nolint:gosec // x5t
	require.Equal(t, base64.RawURLEncoding.EncodeToString(tp[:]), k["x5t"])

	status, body := e.TokenRequest(t, tn.ID, simtest.SecretForm(tn, "https://graph.microsoft.com/.default"))
	require.Equal(t, http.StatusOK, status)
	parsed, err := jwt.Parse(body["access_token"].(string), func(tok *jwt.Token) (any, error) {
		require.Equal(t, k["kid"], tok.Header["kid"])
		require.Equal(t, k["x5t"], tok.Header["x5t"])
		return pub, nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	require.NoError(t, err)
	require.True(t, parsed.Valid)

	status, body = e.Do(t, http.MethodGet, e.Info.AuthorityHost+"no-such-tenant/v2.0/.well-known/openid-configuration", nil, nil)
	require.Equal(t, http.StatusBadRequest, status)
	simtest.RequireAADSTS(t, body, 90002)
}
