package entra

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/sim/core"
)

// fuzzServer is a started Entra service whose first bulk app has a
// certificate and a federated credential, so assertions can get deep into
// validation. It returns the host:port of the token endpoint's listener.
func fuzzServer(t testing.TB) (*Service, *core.Tenant, *core.Application, *rsa.PrivateKey, string) {
	fake := clock.NewFake(time.Now())
	s := &Service{}
	c, err := core.New(core.Options{StateDir: t.TempDir(), Clock: fake, Seed: "apps=3,tenants=2"}, s)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { cancel(); _ = c.Close() })
	u, err := url.Parse(c.AuthorityHost())
	require.NoError(t, err)
	tn := s.World().Tenants()[0]
	var app *core.Application
	for _, a := range tn.Apps {
		if a.AppID != tn.RotationClientID {
			app = a
			break
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: fake.Now().Add(-time.Hour), NotAfter: fake.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	s.World().Update(func() {
		app.Keys = append(app.Keys, core.NewKey("k1", "CN=fuzz", cert, fake.Now().Add(-time.Hour)))
		app.FICs = append(app.FICs, &core.FederatedCredential{ID: "f1", Name: "f", Issuer: "https://issuer.example", Subject: "sub", Audiences: []string{TokenExchangeAudience}})
	})
	return s, tn, app, key, u.Host
}

func FuzzClientAssertion(f *testing.F) {
	s, tn, app, key, host := fuzzServer(f)
	cert := app.Keys[0].Cert
	now := time.Now()
	claims := jwt.MapClaims{"aud": s.AuthorityHost() + tn.ID + "/oauth2/v2.0/token", "iss": app.AppID, "sub": app.AppID,
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
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {core.GraphResource + "/.default"},
			"client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {tok}, "client_id": {app.AppID}}
		_, e := s.grantFor(tokenRequest{tenant: tn.ID, host: host, form: form})
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
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {core.GraphResource + "/.default"},
			"client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {raw}}
		if withClientID {
			form.Set("client_id", app.AppID)
		}
		g, e := s.grantFor(tokenRequest{tenant: tn.ID, host: host, form: form})
		if e == nil && g.sp.AppID != app.AppID {
			t.Fatalf("granted a token to %s for an assertion", g.sp.AppID)
		}
		if e != nil && (e.aadsts == 0 || e.status < 400) {
			t.Fatalf("bad refusal %+v", e)
		}
	})
}
