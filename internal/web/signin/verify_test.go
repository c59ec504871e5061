package signin

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// TestVerifyRefusesIDTokensNotMadeForThisSignIn validates ID tokens signed
// by the simulator's own key (so only the claim under test is wrong) and
// a few signed otherwise.
func TestVerifyRefusesIDTokensNotMadeForThisSignIn(t *testing.T) {
	t.Parallel()
	clk := &clock.Offset{}
	s := simtest.Start(t, simtest.Options{Clock: clk})
	tn, fab := s.Tenant(t, "contoso"), s.Tenant(t, "fabrikam")
	wa, err := s.Server.RegisterDemoSignIn(tn.ID, "https://rotor.example.com/auth/callback")
	require.NoError(t, err)
	rp, err := NewRelyingParty(t.Context(), EntraConfig{
		Authority: s.Info.AuthorityHost, Tenant: tn.ID, ClientID: wa.AppID, ClientSecret: secret.New(wa.Secret),
		RedirectURL: "https://rotor.example.com/auth/callback", GraphURL: s.Info.GraphURL,
		Roles: RoleMap{{AppRole: "Rotor.Admin", Organization: "default", Role: app.RoleAdmin}},
	}, WithHTTPClient(s.HTTP), WithClock(clk))
	require.NoError(t, err)

	const nonce = "the-nonce"
	oid := "5e0f2c3a-1111-4222-8333-944445555666"
	base := func() jwt.MapClaims {
		now := clk.Now()
		return jwt.MapClaims{
			"iss": s.Server.V2Issuer(tn.ID), "aud": wa.AppID, "tid": tn.ID, "oid": oid, "sub": "pairwise",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": nonce, "ver": "2.0",
			"name": "Ada", "preferred_username": "ada@contoso.example", "roles": []string{"Rotor.Admin"},
		}
	}
	signed := func(tweak func(jwt.MapClaims)) string {
		c := base()
		if tweak != nil {
			tweak(c)
		}
		tok, err := s.Server.Sign(c)
		require.NoError(t, err)
		return tok
	}
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	withKey := func(m jwt.SigningMethod, key any) string {
		tk := jwt.NewWithClaims(m, base())
		tk.Header["kid"] = s.Server.KeyID()
		out, err := tk.SignedString(key)
		require.NoError(t, err)
		return out
	}
	unsigned := func() string {
		tk := jwt.NewWithClaims(jwt.SigningMethodNone, base())
		out, err := tk.SignedString(jwt.UnsafeAllowNoneSignatureType)
		require.NoError(t, err)
		return out
	}

	p, err := rp.verify(t.Context(), signed(nil), nonce)
	require.NoError(t, err)
	require.Equal(t, oid, p.ObjectID)
	require.Equal(t, []string{"Rotor.Admin"}, p.AppRoles)
	require.False(t, p.Overage)
	p, err = rp.verify(t.Context(), signed(func(c jwt.MapClaims) {
		c["_claim_names"] = map[string]string{"groups": "src1"}
		c["_claim_sources"] = map[string]any{"src1": map[string]string{"endpoint": "https://graph.microsoft.com/v1.0/users/" + oid + "/getMemberObjects"}}
	}), nonce)
	require.NoError(t, err)
	require.True(t, p.Overage)

	for _, tc := range []struct {
		name   string
		raw    string
		reason string
	}{
		{"AnotherAudience", signed(func(c jwt.MapClaims) { c["aud"] = "00000000-0000-0000-0000-0000000000aa" }), ReasonIDToken},
		{"AnotherTenantsIssuer", signed(func(c jwt.MapClaims) { c["iss"] = s.Server.V2Issuer(fab.ID); c["tid"] = fab.ID }), ReasonIDToken},
		{"V1Issuer", signed(func(c jwt.MapClaims) { c["iss"] = "https://sts.windows.net/" + tn.ID + "/" }), ReasonIDToken},
		{"TenantClaimDisagrees", signed(func(c jwt.MapClaims) { c["tid"] = fab.ID }), ReasonIDToken},
		{"Expired", signed(func(c jwt.MapClaims) { c["exp"] = clk.Now().Add(-time.Second).Unix() }), ReasonIDToken},
		{"NotYetValid", signed(func(c jwt.MapClaims) { c["nbf"] = clk.Now().Add(10 * time.Minute).Unix() }), ReasonIDToken},
		{"WrongNonce", signed(func(c jwt.MapClaims) { c["nonce"] = "another" }), ReasonNonce},
		{"NoNonce", signed(func(c jwt.MapClaims) { delete(c, "nonce") }), ReasonNonce},
		{"NoObjectID", signed(func(c jwt.MapClaims) { delete(c, "oid") }), ReasonIDToken},
		{"ForeignKeySameKid", withKey(jwt.SigningMethodRS256, foreign), ReasonIDToken},
		{"PS256", withKey(jwt.SigningMethodPS256, s.Server.SigningKey()), ReasonIDToken},
		{"HS256WithTheClientSecret", withKey(jwt.SigningMethodHS256, []byte(wa.Secret)), ReasonIDToken},
		{"AlgNone", unsigned(), ReasonIDToken},
		{"Garbage", "not.a.token", ReasonIDToken},
		{"Empty", "", ReasonIDToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rp.verify(t.Context(), tc.raw, nonce)
			var ce *CallbackError
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Equal(t, tc.reason, ce.Reason)
			require.Equal(t, 401, ce.HTTPStatus())
		})
	}
}

func TestNewRelyingPartyChecksItsConfiguration(t *testing.T) {
	t.Parallel()
	ok := EntraConfig{Tenant: "11111111-1111-1111-1111-111111111111", ClientID: "22222222-2222-2222-2222-222222222222",
		ClientSecret: secret.New("s"), RedirectURL: "https://rotor.example.com/auth/callback",
		Roles: RoleMap{{AppRole: "Rotor.Admin", Organization: "default", Role: app.RoleAdmin}}}
	_, err := ok.normalized()
	require.NoError(t, err)
	for name, tweak := range map[string]func(*EntraConfig){
		"CommonTenant":      func(c *EntraConfig) { c.Tenant = "common" },
		"NoSecret":          func(c *EntraConfig) { c.ClientSecret = secret.Value{} },
		"HTTPRedirect":      func(c *EntraConfig) { c.RedirectURL = "http://rotor.example.com/auth/callback" },
		"RedirectWithQuery": func(c *EntraConfig) { c.RedirectURL = "https://rotor.example.com/cb?x=1" },
		"HTTPAuthority":     func(c *EntraConfig) { c.Authority = "http://login.example.com/" },
		"NoRoles":           func(c *EntraConfig) { c.Roles = nil },
		"GroupByName": func(c *EntraConfig) {
			c.Roles = RoleMap{{Group: "rotor-admins", Organization: "default", Role: app.RoleAdmin}}
		},
		"AppRoleAndGroup":    func(c *EntraConfig) { c.Roles[0].Group = "33333333-3333-3333-3333-333333333333" },
		"UnknownRotorRole":   func(c *EntraConfig) { c.Roles = RoleMap{{AppRole: "x", Organization: "default", Role: "root"}} },
		"BadOrganization":    func(c *EntraConfig) { c.Roles = RoleMap{{AppRole: "x", Organization: "a b", Role: app.RoleViewer}} },
		"ClientIDNotAnAppID": func(c *EntraConfig) { c.ClientID = "rotor" },
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			c.Roles = append(RoleMap(nil), ok.Roles...)
			tweak(&c)
			_, err := c.normalized()
			require.Error(t, err)
		})
	}
	loop := ok
	loop.RedirectURL = "http://127.0.0.1:8080/auth/callback"
	_, err = loop.normalized()
	require.NoError(t, err, "plain http on loopback, for the demo")
}

func TestRoleMapResolvesTheMostPowerfulRolePerOrganization(t *testing.T) {
	t.Parallel()
	g := "AAAAAAAA-0000-4000-8000-000000000001"
	m := RoleMap{
		{AppRole: "Rotor.Viewer", Organization: "a", Role: app.RoleViewer},
		{Group: g, Organization: "a", Role: app.RoleOperator},
		{AppRole: "Rotor.Admin", Organization: "b", Role: app.RoleAdmin},
	}
	require.Equal(t, map[string]app.Role{"a": app.RoleOperator},
		toStrings(m.Resolve([]string{"Rotor.Viewer"}, []string{"aaaaaaaa-0000-4000-8000-000000000001"})))
	require.Equal(t, map[string]app.Role{"a": app.RoleViewer, "b": app.RoleAdmin},
		toStrings(m.Resolve([]string{"Rotor.Viewer", "Rotor.Admin", "Unbound"}, nil)))
	require.Empty(t, m.Resolve([]string{"rotor.admin"}, nil), "app role values are case-sensitive")
	require.True(t, m.UsesGroups())
	require.True(t, m.GrantsAdmin("b"))
	require.False(t, m.GrantsAdmin("a"))
}

func toStrings(m map[domain.OrgID]app.Role) map[string]app.Role {
	out := map[string]app.Role{}
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}
