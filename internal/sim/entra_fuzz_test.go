package sim

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
)

// fuzzServer is a listener-less simulator whose first bulk app has a
// certificate and a federated credential, so assertions can get deep into
// validation.
func fuzzServer(t testing.TB) (*Server, *Tenant, *Application) {
	fake := clock.NewFake(time.Now())
	s := newTestServer(t, fake)
	s.authority = "https://127.0.0.1:4443/"
	tn := s.world.Tenants()[0]
	var app *Application
	for _, a := range tn.Apps {
		if a.AppID != tn.RotationClientID {
			app = a
			break
		}
	}
	key, err := pooledRSAKey(0)
	require.NoError(t, err)
	cert, err := selfSignedCert(key, "CN=fuzz", fake.Now().Add(-time.Hour), fake.Now().Add(time.Hour))
	require.NoError(t, err)
	app.Keys = append(app.Keys, NewKey("k1", "CN=fuzz", cert, fake.Now().Add(-time.Hour)))
	app.FICs = append(app.FICs, &FederatedCredential{ID: "f1", Name: "f", Issuer: "https://issuer.example", Subject: "sub", Audiences: []string{TokenExchangeAudience}})
	return s, tn, app
}

func FuzzClientAssertion(f *testing.F) {
	s, tn, app := fuzzServer(f)
	key, _ := pooledRSAKey(0)
	cert := app.Keys[0].Cert
	now := time.Now()
	claims := jwt.MapClaims{"aud": s.authority + tn.ID + "/oauth2/v2.0/token", "iss": app.AppID, "sub": app.AppID,
		"jti": "j", "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	ps := jwt.NewWithClaims(jwt.SigningMethodPS256, claims)
	s256 := sha256.Sum256(cert.Raw)
	ps.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(s256[:])
	ps.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(cert.Raw)}
	psTok, err := ps.SignedString(key)
	require.NoError(f, err)
	fed, err := s.MintExternalToken("https://issuer.example", "sub", TokenExchangeAudience, time.Hour)
	require.NoError(f, err)

	// Sanity: the seeds are accepted, so the fuzzer starts from the deep end.
	for _, tok := range []string{psTok, fed} {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {GraphResource + "/.default"},
			"client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {tok}, "client_id": {app.AppID}}
		_, e := s.grantFor(tokenRequest{tenant: tn.ID, host: "127.0.0.1:4443", form: form})
		require.Nil(f, e)
	}

	for _, seed := range []string{psTok, fed, "", "a.b.c", "e30.e30.", "eyJhbGciOiJub25lIn0.eyJleHAiOiIxZTk5OSJ9.",
		"eyJhbGciOiJSUzI1NiIsIng1YyI6WzEsIiEiXX0.eyJhdWQiOlsxLHt9XSwiZXhwIjoiTmFOIn0.AAAA"} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, raw string, withClientID bool) {
		if a, err := parseAssertion(raw); err == nil {
			_ = a.audiences()
			_, _ = a.numericDate("exp")
			_, _ = a.numericDate("nbf")
			_ = a.x5c()
			_ = a.verify(&key.PublicKey)
			_ = s.assertionTimeValid(a, now)
			_ = s.assertionLifetimeValid(a, now)
		}
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {GraphResource + "/.default"},
			"client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {raw}}
		if withClientID {
			form.Set("client_id", app.AppID)
		}
		g, e := s.grantFor(tokenRequest{tenant: tn.ID, host: "127.0.0.1:4443", form: form})
		if e == nil && g.sp.AppID != app.AppID {
			t.Fatalf("granted a token to %s for an assertion", g.sp.AppID)
		}
		if e != nil && (e.aadsts == 0 || e.status < 400) {
			t.Fatalf("bad refusal %+v", e)
		}
	})
}

func TestVaultByHost(t *testing.T) {
	t.Parallel()
	s, err := New(Options{StateDir: t.TempDir(), Seed: "apps=1,tenants=2"})
	require.NoError(t, err)
	require.NoError(t, s.Start(t.Context()))
	t.Cleanup(func() { _ = s.Close() })
	for _, tn := range s.Info().Tenants {
		u, err := url.Parse(tn.KeyVaults[0].URL)
		require.NoError(t, err)
		for _, host := range []string{u.Host, "localhost:" + u.Port(), "[::1]:" + u.Port()} {
			v := s.vaultByHost(host)
			require.NotNil(t, v, host)
			require.Equal(t, tn.KeyVaults[0].Name, v.Name)
			require.Equal(t, tn.ID, v.TenantID)
		}
	}
	require.Nil(t, s.vaultByHost("127.0.0.1:1"))
	require.Nil(t, s.vaultByHost("garbage"))
	mainURL, err := url.Parse(s.Info().AuthorityHost)
	require.NoError(t, err)
	require.Nil(t, s.vaultByHost(mainURL.Host), "the main listener is no vault")
}
