package core

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/clock"
)

// newTestServer builds a simulator without listeners: enough for token,
// throttling and seed logic. The demo seed is shared per test binary in
// spirit: each call reseeds (certificates reuse pooled keys).
func newTestServer(t testing.TB, c clock.Clock) *Core {
	t.Helper()
	s, err := New(Options{StateDir: t.TempDir(), Clock: c, Seed: "apps=3,tenants=2"})
	require.NoError(t, err)
	return s
}

func bearerRequest(tok string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1/graph/v1.0/applications", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

var (
	otherKeyOnce sync.Once
	otherKey     *rsa.PrivateKey
)

func foreignKey(t *testing.T) *rsa.PrivateKey {
	otherKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		otherKey = k
	})
	return otherKey
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newTestServer(t, fake)
	tn := s.world.Tenants()[0]
	sp := tn.SPByAppID(tn.RotationClientID)
	now := fake.Now()

	valid := func() jwt.MapClaims {
		return jwt.MapClaims{
			"aud": GraphResource, "iss": StsIssuer(tn.ID), "tid": tn.ID,
			"appid": sp.AppID, "oid": sp.ObjectID, "roles": []string{RoleReadAll},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
	}
	signed := func(c jwt.MapClaims) string {
		tok, err := s.Sign(c)
		require.NoError(t, err)
		return tok
	}
	tweak := func(f func(jwt.MapClaims)) string { c := valid(); f(c); return signed(c) }
	hs256, err := jwt.NewWithClaims(jwt.SigningMethodHS256, valid()).SignedString(s.signKey.PublicKey.N.Bytes())
	require.NoError(t, err)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, valid()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	foreign := jwt.NewWithClaims(jwt.SigningMethodRS256, valid())
	foreign.Header["kid"] = s.kid
	foreignTok, err := foreign.SignedString(foreignKey(t))
	require.NoError(t, err)
	minted, _, err := s.MintAccessToken(tn.ID, sp, GraphResource, AcrSecret)
	require.NoError(t, err)

	cases := []struct {
		name     string
		token    string
		resource string
		ok       bool
	}{
		{"minted token", minted, GraphResource, true},
		{"valid", signed(valid()), GraphResource, true},
		{"audience with trailing slash", tweak(func(c jwt.MapClaims) { c["aud"] = GraphResource + "/" }), GraphResource, true},
		{"resource with trailing slash", signed(valid()), GraphResource + "/", true},
		{"audience array", tweak(func(c jwt.MapClaims) { c["aud"] = []string{"x", GraphResource} }), GraphResource, true},
		{"not yet valid within skew", tweak(func(c jwt.MapClaims) { c["nbf"] = now.Add(4 * time.Minute).Unix() }), GraphResource, true},
		{"no header", "", GraphResource, false},
		{"garbage", "not-a-jwt", GraphResource, false},
		{"wrong audience", signed(valid()), KeyVaultResource, false},
		{"expired", tweak(func(c jwt.MapClaims) { c["exp"] = now.Add(-6 * time.Minute).Unix() }), GraphResource, false},
		{"no exp", tweak(func(c jwt.MapClaims) { delete(c, "exp") }), GraphResource, false},
		{"no nbf", tweak(func(c jwt.MapClaims) { delete(c, "nbf") }), GraphResource, false},
		{"nbf not a number", tweak(func(c jwt.MapClaims) { c["nbf"] = "soon" }), GraphResource, false},
		{"not yet valid", tweak(func(c jwt.MapClaims) { c["nbf"] = now.Add(6 * time.Minute).Unix() }), GraphResource, false},
		{"wrong issuer", tweak(func(c jwt.MapClaims) { c["iss"] = "https://sts.windows.net/" + "other/" }), GraphResource, false},
		{"v2 issuer", tweak(func(c jwt.MapClaims) { c["iss"] = "https://login.microsoftonline.com/" + tn.ID + "/v2.0" }), GraphResource, false},
		{"unknown tenant", tweak(func(c jwt.MapClaims) { c["tid"] = "t"; c["iss"] = StsIssuer("t") }), GraphResource, false},
		{"no appid", tweak(func(c jwt.MapClaims) { delete(c, "appid") }), GraphResource, false},
		{"alg none", none, GraphResource, false},
		{"HS256 keyed with public data", hs256, GraphResource, false},
		{"signed by another key", foreignTok, GraphResource, false},
		{"tampered", minted[:len(minted)-6] + "AAAAAA", GraphResource, false},
	}
	for _, tc := range cases {
		c, err := s.Authenticate(bearerRequest(tc.token), tc.resource)
		if !tc.ok {
			var ae *AuthError
			require.ErrorAs(t, err, &ae, tc.name)
			require.Equal(t, http.StatusUnauthorized, ae.Status, tc.name)
			if tc.token != "" {
				require.NotContains(t, ae.Message, tc.token, tc.name)
			}
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, tn.ID, c.TenantID, tc.name)
		require.Equal(t, sp.AppID, c.AppID, tc.name)
		require.Equal(t, sp.ObjectID, c.ObjectID, tc.name)
	}

	c, err := s.Authenticate(bearerRequest(minted), GraphResource)
	require.NoError(t, err)
	require.True(t, c.HasRole(RoleReadWriteOwned))
	require.True(t, c.HasRole(RoleReadAll))

	// The clock decides: an hour and a bit later the minted token is dead.
	fake.Advance(time.Hour + 6*time.Minute)
	_, err = s.Authenticate(bearerRequest(minted), GraphResource)
	require.Error(t, err)
}

func TestMintTokenRolesOnlyForGraph(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	tn := s.world.Tenants()[0]
	for res, wantRoles := range map[string]bool{GraphResource: true, GraphResource + "/": true, ARMResource: false, KeyVaultResource: false} {
		tok, err := s.MintToken(tn.Name, tn.RotationClientID, res)
		require.NoError(t, err)
		c, err := s.Authenticate(bearerRequest(tok), res)
		require.NoError(t, err, res)
		require.Equal(t, wantRoles, len(c.Roles) > 0, res)
	}
	_, err := s.MintToken("nope", tn.RotationClientID, GraphResource)
	require.Error(t, err)
	_, err = s.MintToken(tn.ID, "nope", GraphResource)
	require.Error(t, err)
}

// TestAuthenticateSaysWhy checks that a refused token is refused for the
// reason it has, not with a generic message: a client author debugging
// against the simulator needs to know which claim or header is wrong.
func TestAuthenticateSaysWhy(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	tn := s.world.Tenants()[0]
	sp := tn.SPByAppID(tn.RotationClientID)
	now := s.clock.Now()
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{
			"aud": GraphResource, "iss": StsIssuer(tn.ID), "tid": tn.ID,
			"appid": sp.AppID, "oid": sp.ObjectID,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
	}
	// withHeader signs claims with the simulator's own key and header
	// tweaked, so only the tweak can be the reason for a refusal.
	withHeader := func(c jwt.MapClaims, f func(map[string]any)) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tok.Header["kid"] = s.kid
		f(tok.Header)
		out, err := tok.SignedString(s.signKey)
		require.NoError(t, err)
		return out
	}
	noExp := claims()
	delete(noExp, "exp")

	cases := []struct {
		name  string
		token string
		want  string
	}{
		{"no kid", withHeader(claims(), func(h map[string]any) { delete(h, "kid") }), "no kid"},
		{"numeric kid", withHeader(claims(), func(h map[string]any) { h["kid"] = 42 }), "kid is not a string"},
		{"null kid", withHeader(claims(), func(h map[string]any) { h["kid"] = nil }), "kid is not a string"},
		{"unknown kid", withHeader(claims(), func(h map[string]any) { h["kid"] = "other" }), "names no signing key"},
		{"no exp", withHeader(noExp, func(map[string]any) {}), "no exp claim"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := s.Authenticate(bearerRequest(tc.token), GraphResource)
			var ae *AuthError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, http.StatusUnauthorized, ae.Status)
			require.Contains(t, ae.Message, tc.want)
		})
	}
}
