package graph

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

var (
	proofKeysOnce sync.Once
	proofKeys     [2]*rsa.PrivateKey
)

// proofFixture is an app with one valid certificate and the key behind it.
type proofFixture struct {
	app   *core.Application
	key   *rsa.PrivateKey
	other *rsa.PrivateKey // a key the app does not know
	cert  *x509.Certificate
	now   time.Time
}

func newProofFixture(t testing.TB) proofFixture {
	t.Helper()
	proofKeysOnce.Do(func() {
		for i := range proofKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			proofKeys[i] = k
		}
	})
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	cert := selfSigned(t, proofKeys[0], "proof", now.Add(-time.Hour), now.Add(24*time.Hour))
	app := &core.Application{ObjectID: "11111111-1111-1111-1111-111111111111", AppID: "22222222-2222-2222-2222-222222222222"}
	app.Keys = []*core.Key{core.NewKey("33333333-3333-3333-3333-333333333333", "CN=proof", cert, now.Add(-time.Hour))}
	return proofFixture{app: app, key: proofKeys[0], other: proofKeys[1], cert: cert, now: now}
}

func selfSigned(t testing.TB, key *rsa.PrivateKey, cn string, nb, na time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

// proofSpec is one proof to build; tweaks change it from the valid base.
type proofSpec struct {
	claims jwt.MapClaims
	header map[string]any
	key    *rsa.PrivateKey
	method jwt.SigningMethod
}

func (f proofFixture) base() proofSpec {
	sum := sha1.Sum(f.cert.Raw) //nolint:gosec // x5t
	return proofSpec{
		claims: jwt.MapClaims{
			"aud": core.ProofAudience, "iss": f.app.ObjectID,
			"nbf": f.now.Add(-time.Minute).Unix(), "exp": f.now.Add(5 * time.Minute).Unix(),
		},
		header: map[string]any{"x5t": base64.RawURLEncoding.EncodeToString(sum[:])},
		key:    f.key,
		method: jwt.SigningMethodRS256,
	}
}

func (p proofSpec) sign(t testing.TB) string {
	t.Helper()
	tok := jwt.NewWithClaims(p.method, p.claims)
	for k, v := range p.header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(p.key)
	require.NoError(t, err)
	return s
}

func TestValidateProof(t *testing.T) {
	t.Parallel()
	f := newProofFixture(t)
	cases := []struct {
		name    string
		tweak   func(*proofSpec)
		wantErr string // substring of the refusal; "" = accepted
	}{
		{"valid with x5t", func(*proofSpec) {}, ""},
		{"valid without any key header", func(p *proofSpec) { p.header = nil }, ""},
		{"valid with kid = keyId", func(p *proofSpec) { p.header = map[string]any{"kid": f.app.Keys[0].KeyID} }, ""},
		{"valid with free-form kid", func(p *proofSpec) { p.header = map[string]any{"kid": "whatever"} }, ""},
		{"audience as array", func(p *proofSpec) { p.claims["aud"] = []string{core.ProofAudience} }, ""},
		{"wrong audience", func(p *proofSpec) { p.claims["aud"] = core.GraphAppID }, "audience"},
		{"wrong issuer", func(p *proofSpec) { p.claims["iss"] = f.app.AppID }, "issuer"},
		{"expired", func(p *proofSpec) {
			p.claims["nbf"], p.claims["exp"] = f.now.Add(-20*time.Minute).Unix(), f.now.Add(-11*time.Minute).Unix()
		}, "expired"},
		{"not yet valid", func(p *proofSpec) { p.claims["nbf"] = f.now.Add(time.Minute).Unix() }, "not yet valid"},
		{"lives longer than 10 minutes", func(p *proofSpec) {
			p.claims["nbf"], p.claims["exp"] = f.now.Add(-time.Minute).Unix(), f.now.Add(10*time.Minute).Unix()
		}, "10 minutes"},
		{"no nbf", func(p *proofSpec) { delete(p.claims, "nbf") }, "nbf"},
		{"no exp", func(p *proofSpec) { delete(p.claims, "exp") }, "exp"},
		{"signed by an unknown key", func(p *proofSpec) { p.key, p.header = f.other, nil }, "signature"},
		{"x5t of an unknown certificate", func(p *proofSpec) {
			p.header = map[string]any{"x5t": base64.RawURLEncoding.EncodeToString(make([]byte, 20))}
		}, "x5t"},
		{"PS256", func(p *proofSpec) { p.method = jwt.SigningMethodPS256 }, "RS256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := f.base()
			claims := jwt.MapClaims{}
			for k, v := range p.claims {
				claims[k] = v
			}
			p.claims = claims
			tc.tweak(&p)
			k, err := validateProof(p.sign(t), f.app, f.now)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.Same(t, f.app.Keys[0], k)
				return
			}
			var pe *proofError
			require.ErrorAs(t, err, &pe)
			require.Contains(t, pe.msg, tc.wantErr)
		})
	}
}

func TestValidateProofNeedsAValidCertificate(t *testing.T) {
	t.Parallel()
	f := newProofFixture(t)
	proof := f.base().sign(t)

	_, err := validateProof(proof, f.app, f.now.Add(48*time.Hour)) // the certificate has expired
	require.ErrorIs(t, err, errNoValidCertificate)

	_, err = validateProof(proof, &core.Application{ObjectID: f.app.ObjectID}, f.now)
	require.ErrorIs(t, err, errNoValidCertificate)

	_, err = validateProof("", f.app, f.now)
	var pe *proofError
	require.ErrorAs(t, err, &pe)

	_, err = validateProof("not.a.jwt", f.app, f.now)
	require.ErrorAs(t, err, &pe)
}

// FuzzProof: the proof is outside input; validation must never panic.
func FuzzProof(f *testing.F) {
	pf := newProofFixture(f)
	f.Add(pf.base().sign(f))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		_, _ = validateProof(tok, pf.app, pf.now)
	})
}

func TestLifetimePolicies(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &core.AppManagementPolicy{ID: "pol", MaxPasswordLifetime: 90 * 24 * time.Hour, MaxKeyLifetime: 365 * 24 * time.Hour}
	require.NoError(t, checkPasswordLifetime(p, start, start.Add(90*24*time.Hour)))
	require.NoError(t, checkPasswordLifetime(nil, start, start.AddDate(10, 0, 0)))
	err := checkPasswordLifetime(p, start, start.Add(90*24*time.Hour+time.Second))
	var v *policyViolation
	require.ErrorAs(t, err, &v)
	require.Equal(t, "Credential lifetime exceeds the max value allowed as per assigned policy 'pol'.", v.Error())
	require.NoError(t, checkKeyLifetime(p, start, start.AddDate(0, 6, 0)))
	require.Error(t, checkKeyLifetime(p, start, start.AddDate(2, 0, 0)))
	require.NoError(t, checkKeyLifetime(&core.AppManagementPolicy{ID: "x"}, start, start.AddDate(20, 0, 0)))
}

func TestSkiptokenRoundTripAndResume(t *testing.T) {
	t.Parallel()
	c := cursor{Index: 999, ID: "abc", Seq: 1000}
	got, err := decodeSkiptoken(encodeSkiptoken(c))
	require.NoError(t, err)
	require.Equal(t, c, got)
	for _, bad := range []string{"", "x", skiptokenPrefix + "!!", skiptokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(`{"i":-1}`))} {
		_, err := decodeSkiptoken(bad)
		require.Error(t, err, bad)
	}

	// Apps 1..10; the cursor points at app 6 (index 5, seq 6).
	tn := core.NewTenant("t", "t")
	for i := range 10 {
		tn.AddApp(&core.Application{ObjectID: string(rune('a' + i)), AppID: string(rune('A' + i))})
	}
	cur := cursor{Index: 5, ID: "f", Seq: 6}
	resume := func() int {
		return resumeIndex(cur, len(tn.Apps), func(i int) string { return tn.Apps[i].ObjectID }, func() int {
			for i, a := range tn.Apps {
				if a.Seq() >= cur.Seq {
					return i
				}
			}
			return len(tn.Apps)
		})
	}
	require.Equal(t, 5, resume())
	tn.AddApp(&core.Application{ObjectID: "z", AppID: "Z"}) // appended: nothing moves
	require.Equal(t, 5, resume())
	tn.RemoveApp("b") // shifted left: found again
	require.Equal(t, "f", tn.Apps[resume()].ObjectID)
	tn.RemoveApp("f") // the cursor's own app is gone: resume at its successor
	require.Equal(t, "g", tn.Apps[resume()].ObjectID)
}

func TestNextLinkKeepsOptionsAndDollarSigns(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "https://127.0.0.1:8443/graph/v1.0/applications?$top=5&$filter=displayName%20eq%20'a%20b'&$skiptoken=old", nil)
	link := nextLink(r, "NEW")
	require.Equal(t, "https://127.0.0.1:8443/graph/v1.0/applications?$filter=displayName%20eq%20%27a%20b%27&$top=5&$skiptoken=NEW", link)
}

func TestSplitAltKey(t *testing.T) {
	t.Parallel()
	coll, prop, val, ok := splitAltKey("applications(appId='ab''c')")
	require.True(t, ok)
	require.Equal(t, []string{"applications", "appId", "ab'c"}, []string{coll, prop, val})
	_, prop, _, ok = splitAltKey("applications('x')")
	require.True(t, ok)
	require.Equal(t, "id", prop)
	_, _, _, ok = splitAltKey("applications(displayName='x')")
	require.False(t, ok)
	coll, prop, _, ok = splitAltKey("applications")
	require.True(t, ok)
	require.Equal(t, "applications", coll)
	require.Empty(t, prop)
}
