package auth_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/auth"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// The API's app roles, and the rotor roles they are bound to.
const (
	roleAdmin    = "Rotor.Admin"
	roleOperator = "Rotor.Operator"
	roleViewer   = "Rotor.Viewer"
	roleUnbound  = "Rotor.Unbound"
	orgA         = domain.OrgID("org-a")
	orgB         = domain.OrgID("org-b")
)

var roleMap = auth.RoleMap{
	{AppRole: roleAdmin, Organization: orgA, Role: app.RoleAdmin},
	{AppRole: roleOperator, Organization: orgA, Role: app.RoleOperator},
	{AppRole: roleViewer, Organization: orgA, Role: app.RoleViewer},
	{AppRole: roleViewer, Organization: orgB, Role: app.RoleViewer},
}

// bundle is a simulator with rotor's API registered in contoso (v1.0
// tokens, api://rotor-…) and again with v2.0 tokens, client applications
// with app roles assigned, and a Validator for each API.
type bundle struct {
	sim     *simtest.Sim
	tenant  *simfile.Tenant
	other   *simfile.Tenant
	uri     string
	api     *sim.API
	apiV2   *sim.API
	clients map[string]*sim.Client
	// foreign is a client of an API with the same identifier URI in
	// fabrikam: its tokens are genuine, for the right audience, from the
	// wrong tenant.
	foreign *sim.Client
	v, v2   *auth.Validator
	logs    *syncBuffer
	cfg     auth.EntraConfig
}

func setup(t testing.TB) *bundle {
	t.Helper()
	s := simtest.Start(t, simtest.Options{})
	b := &bundle{sim: s, tenant: s.Tenant(t, "contoso"), other: s.Tenant(t, "fabrikam"), clients: map[string]*sim.Client{}, logs: &syncBuffer{}}
	b.uri = "api://rotor-" + uuid.NewString()[:8]
	roles := []string{roleAdmin, roleOperator, roleViewer, roleUnbound}
	var err error
	b.api, err = s.Server.RegisterAPI(b.tenant.ID, sim.APISpec{Name: "rotor-api", IdentifierURI: b.uri, Roles: roles})
	require.NoError(t, err)
	b.apiV2, err = s.Server.RegisterAPI(b.tenant.ID, sim.APISpec{Name: "rotor-api-v2", Roles: roles, TokenVersion: 2})
	require.NoError(t, err)
	for name, rs := range map[string][]string{
		"admin": {roleAdmin}, "operator": {roleOperator}, "viewer": {roleViewer}, "unbound": {roleUnbound}, "none": nil,
		"multi": {roleViewer, roleAdmin},
	} {
		c, err := s.Server.AddClient(b.tenant.ID, sim.ClientSpec{Name: "client-" + name, API: b.api.AppID, Roles: rs})
		require.NoError(t, err)
		if len(rs) > 0 {
			require.NoError(t, s.Server.AssignAppRoles(b.tenant.ID, c.AppID, b.apiV2.AppID, rs...))
		}
		b.clients[name] = c
	}
	fapi, err := s.Server.RegisterAPI(b.other.ID, sim.APISpec{Name: "rotor-api", IdentifierURI: b.uri, Roles: roles})
	require.NoError(t, err)
	b.foreign, err = s.Server.AddClient(b.other.ID, sim.ClientSpec{Name: "intruder", API: fapi.AppID, Roles: []string{roleAdmin}})
	require.NoError(t, err)

	b.cfg = auth.EntraConfig{Authority: s.Info.AuthorityHost, Tenants: []string{b.tenant.ID}, AppIDURI: b.uri, ClientID: b.api.AppID, Roles: roleMap}
	b.v = b.validator(t, b.cfg)
	cfg2 := b.cfg
	cfg2.AppIDURI, cfg2.ClientID, cfg2.TokenVersions = "", b.apiV2.AppID, []int{2}
	b.v2 = b.validator(t, cfg2)
	return b
}

func (b *bundle) validator(t testing.TB, cfg auth.EntraConfig) *auth.Validator {
	t.Helper()
	v, err := auth.NewValidator(t.Context(), cfg, auth.WithHTTPClient(b.sim.HTTP), auth.WithClock(b.sim.Clock),
		auth.WithLogger(slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	return v
}

// token gets a client credentials token for scope with Microsoft's SDK.
func (b *bundle) token(t testing.TB, tenantID string, c *sim.Client, scope string) string {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenantID, c.AppID, c.Secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: b.sim.ClientOptions, DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{scope}})
	require.NoError(t, err)
	return tok.Token
}

func (b *bundle) adminToken(t testing.TB) string {
	return b.token(t, b.tenant.ID, b.clients["admin"], b.uri+"/.default")
}

// claimsOf returns a token's claims, unverified.
func claimsOf(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	_, _, err := jwt.NewParser().ParseUnverified(tok, c)
	require.NoError(t, err)
	return c
}

// sign signs claims with key under method, with the given kid (none when
// empty).
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// forge re-signs a genuine token's claims, changed by tweak, with the
// simulator's own key: what Entra would have to have issued for the
// claims to pass.
func (b *bundle) forge(t *testing.T, genuine string, tweak func(jwt.MapClaims)) string {
	t.Helper()
	c := claimsOf(t, genuine)
	tweak(c)
	return sign(t, jwt.SigningMethodRS256, b.sim.Server.SigningKey(), b.sim.Server.KeyID(), c)
}

func requireRefused(t *testing.T, err error, reason auth.Reason, status int, msgAndArgs ...any) {
	t.Helper()
	var ae *auth.Error
	require.ErrorAs(t, err, &ae, msgAndArgs...)
	require.Equal(t, reason, ae.Reason, msgAndArgs...)
	require.Equal(t, status, ae.HTTPStatus(), msgAndArgs...)
}

func (b *bundle) jwksFetches() int64 { return b.sim.Server.Stats().JWKSRequests }

func TestSDKTokensAreAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	admin := b.clients["admin"]

	p, err := b.v.Validate(ctx, b.adminToken(t))
	require.NoError(t, err)
	require.Equal(t, app.Actor{Kind: app.ActorToken, ID: admin.AppID,
		Name: "app " + admin.AppID + ", service principal " + admin.ObjectID + ", tenant " + b.tenant.ID}, p.Actor)
	require.Equal(t, auth.MethodEntra, p.Method)
	require.Equal(t, admin.ObjectID, p.ObjectID)
	require.Equal(t, b.tenant.ID, p.TenantID)
	require.Equal(t, map[domain.OrgID]app.Role{orgA: app.RoleAdmin}, p.Roles)
	require.Equal(t, []string{roleAdmin}, p.AppRoles)
	require.Equal(t, "entra:"+b.tenant.ID+"/"+admin.AppID, p.RateKey)
	require.WithinDuration(t, b.sim.Now().Add(time.Hour), p.ExpiresAt, 2*time.Minute)

	t.Run("ByAppID", func(t *testing.T) {
		// A v1.0 token asked for by app id carries it as aud.
		tok := b.token(t, b.tenant.ID, admin, b.api.AppID+"/.default")
		require.Equal(t, b.api.AppID, claimsOf(t, tok)["aud"])
		_, err := b.v.Validate(ctx, tok)
		require.NoError(t, err)
	})
	t.Run("V2", func(t *testing.T) {
		tok := b.token(t, b.tenant.ID, b.clients["operator"], b.apiV2.IdentifierURI+"/.default")
		require.Equal(t, "2.0", claimsOf(t, tok)["ver"])
		p, err := b.v2.Validate(ctx, tok)
		require.NoError(t, err)
		require.Equal(t, b.clients["operator"].AppID, p.ClientID, "azp")
		require.Equal(t, map[domain.OrgID]app.Role{orgA: app.RoleOperator}, p.Roles)
		_, err = b.v.Validate(ctx, tok)
		requireRefused(t, err, auth.ReasonAudience, http.StatusUnauthorized, "the v2.0 API's token is not for the v1.0 one")
	})
	t.Run("RolesPerOrganization", func(t *testing.T) {
		p, err := b.v.Validate(ctx, b.token(t, b.tenant.ID, b.clients["multi"], b.uri+"/.default"))
		require.NoError(t, err)
		require.Equal(t, map[domain.OrgID]app.Role{orgA: app.RoleAdmin, orgB: app.RoleViewer}, p.Roles, "the most powerful role per organization")
	})
	require.ElementsMatch(t, []string{sim.StsIssuer(b.tenant.ID), b.sim.Info.AuthorityHost + b.tenant.ID + "/v2.0"}, b.v.Issuers())
	require.Equal(t, []string{b.uri, b.api.AppID}, b.v.Audiences())
}

func TestHostileTokensAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	genuine := b.adminToken(t)
	now := b.sim.Now()
	pub := &b.sim.Server.SigningKey().PublicKey
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(pub))})
	foreignKey := simtest.RSAKey(1)
	kid := b.sim.Server.KeyID()
	claims := func(tweak func(jwt.MapClaims)) jwt.MapClaims {
		c := claimsOf(t, genuine)
		if tweak != nil {
			tweak(c)
		}
		return c
	}
	// The JWKS is fetched by the first validation; the hostile tokens
	// must not make rotor fetch it again (unknown kids: at most once a
	// minute, and the first one already used this minute's fetch).
	_, err := b.v.Validate(ctx, genuine)
	require.NoError(t, err)
	// A v2.0 token (of another API) has the v2.0 issuer, whose jwks_uri
	// is another URL: its keys are fetched once too.
	v2Token := b.token(t, b.tenant.ID, b.clients["admin"], b.apiV2.IdentifierURI+"/.default")
	_, err = b.v.Validate(ctx, v2Token)
	requireRefused(t, err, auth.ReasonAudience, http.StatusUnauthorized)
	fetches := b.jwksFetches()

	unsigned := func(header string, c jwt.MapClaims) string {
		body, err := json.Marshal(c)
		require.NoError(t, err)
		return b64(header) + "." + b64(string(body)) + "."
	}
	cases := []struct {
		name   string
		token  string
		reason auth.Reason
		status int
	}{
		{"Garbage", "not-a-token", auth.ReasonMalformed, 401},
		{"TwoParts", "a.b", auth.ReasonMalformed, 401},
		{"BadBase64", "!!.!!.!!", auth.ReasonMalformed, 401},
		{"HeaderNotJSON", b64("nope") + "." + b64("{}") + ".c2ln", auth.ReasonMalformed, 401},
		{"Huge", strings.Repeat("a", 20<<10), auth.ReasonMalformed, 401},
		{"AlgNone", unsigned(`{"alg":"none","typ":"JWT"}`, claims(nil)), auth.ReasonAlgorithm, 401},
		{"AlgNoneWithKid", unsigned(`{"alg":"none","kid":"`+kid+`"}`, claims(nil)), auth.ReasonAlgorithm, 401},
		{"AlgNoneCapitalized", unsigned(`{"alg":"None","kid":"`+kid+`"}`, claims(nil)), auth.ReasonAlgorithm, 401},
		{"HS256WithThePublicKeyPEM", sign(t, jwt.SigningMethodHS256, pubPEM, kid, claims(nil)), auth.ReasonAlgorithm, 401},
		{"HS256WithTheModulus", sign(t, jwt.SigningMethodHS256, pub.N.Bytes(), kid, claims(nil)), auth.ReasonAlgorithm, 401},
		{"PS256", sign(t, jwt.SigningMethodPS256, b.sim.Server.SigningKey(), kid, claims(nil)), auth.ReasonAlgorithm, 401},
		{"RS512", sign(t, jwt.SigningMethodRS512, b.sim.Server.SigningKey(), kid, claims(nil)), auth.ReasonAlgorithm, 401},
		{"WrongKeySameKid", sign(t, jwt.SigningMethodRS256, foreignKey, kid, claims(nil)), auth.ReasonSignature, 401},
		{"WrongKeyUnknownKid", sign(t, jwt.SigningMethodRS256, foreignKey, "rotor-test-unknown-kid", claims(nil)), auth.ReasonUnknownKey, 401},
		{"NoKid", sign(t, jwt.SigningMethodRS256, b.sim.Server.SigningKey(), "", claims(nil)), auth.ReasonUnknownKey, 401},
		{"TamperedPayload", tamper(t, genuine, func(c jwt.MapClaims) { c["roles"] = []string{roleAdmin, roleOperator} }), auth.ReasonSignature, 401},
		{"StrippedSignature", genuine[:strings.LastIndexByte(genuine, '.')+1], auth.ReasonSignature, 401},
		{"OtherTenantsGenuineToken", b.token(t, b.other.ID, b.foreign, b.uri+"/.default"), auth.ReasonIssuer, 401},
		{"IssuerOfAnUnknownTenant", b.forge(t, genuine, func(c jwt.MapClaims) {
			c["iss"], c["tid"] = sim.StsIssuer(uuid.NewString()), uuid.NewString()
		}), auth.ReasonIssuer, 401},
		{"IssuerOfTheRightTenantOnAnotherHost", b.forge(t, genuine, func(c jwt.MapClaims) { c["iss"] = "https://sts.example.com/" + b.tenant.ID + "/" }), auth.ReasonIssuer, 401},
		{"TenantClaimDisagreesWithIssuer", b.forge(t, genuine, func(c jwt.MapClaims) { c["tid"] = b.other.ID }), auth.ReasonIssuer, 401},
		{"Expired", b.forge(t, genuine, func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-6*time.Minute).Unix()
		}), auth.ReasonExpired, 401},
		{"NotYetValid", b.forge(t, genuine, func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = now.Add(6*time.Minute).Unix(), now.Add(time.Hour).Unix()
		}), auth.ReasonNotYetValid, 401},
		{"NoExp", b.forge(t, genuine, func(c jwt.MapClaims) { delete(c, "exp") }), auth.ReasonClaims, 401},
		{"NoNbf", b.forge(t, genuine, func(c jwt.MapClaims) { delete(c, "nbf") }), auth.ReasonClaims, 401},
		{"GraphTokenOfTheSameTenant", b.token(t, b.tenant.ID, &sim.Client{AppID: b.tenant.Rotation.ClientID, Secret: b.tenant.Rotation.ClientSecret}, "https://graph.microsoft.com/.default"), auth.ReasonAudience, 401},
		{"AnotherAPIsToken", v2Token, auth.ReasonAudience, 401},
		{"WrongAudience", b.forge(t, genuine, func(c jwt.MapClaims) { c["aud"] = "api://someone-else" }), auth.ReasonAudience, 401},
		{"AudienceCaseDiffers", b.forge(t, genuine, func(c jwt.MapClaims) { c["aud"] = strings.ToUpper(b.uri) }), auth.ReasonAudience, 401},
		{"VersionDisagreesWithIssuer", b.forge(t, genuine, func(c jwt.MapClaims) { c["ver"] = "2.0" }), auth.ReasonClaims, 401},
		{"DelegatedUserToken", b.forge(t, genuine, func(c jwt.MapClaims) { c["scp"] = "user_impersonation" }), auth.ReasonClaims, 401},
		{"NoAppID", b.forge(t, genuine, func(c jwt.MapClaims) { delete(c, "appid") }), auth.ReasonClaims, 401},
		{"NoObjectID", b.forge(t, genuine, func(c jwt.MapClaims) { delete(c, "oid") }), auth.ReasonClaims, 401},
		{"NoRoleAssigned", b.token(t, b.tenant.ID, b.clients["none"], b.uri+"/.default"), auth.ReasonNoRole, 403},
		{"OnlyAnUnboundRole", b.token(t, b.tenant.ID, b.clients["unbound"], b.uri+"/.default"), auth.ReasonNoRole, 403},
	}
	log := &syncBuffer{}
	mw := (&auth.Authenticator{Entra: b.v, Logger: slog.New(slog.NewTextHandler(log, nil))}).Middleware(okHandler(t))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.v.Validate(ctx, c.token)
			requireRefused(t, err, c.reason, c.status)
			require.NotContains(t, err.Error(), c.token)

			rec := serve(mw, c.token, "")
			require.Equal(t, c.status, rec.Code)
			ch := rec.Header().Get("WWW-Authenticate")
			want := `Bearer realm="rotor", error="invalid_token"`
			if c.status == http.StatusForbidden {
				want = `Bearer realm="rotor", error="insufficient_scope"`
			}
			require.True(t, strings.HasPrefix(ch, want), ch)
			require.NotContains(t, rec.Body.String(), c.token)
			require.NotContains(t, ch, c.token)
			require.Contains(t, rec.Body.String(), `"reason":"`+string(c.reason)+`"`)
		})
	}
	require.Equal(t, fetches, b.jwksFetches(), "no hostile token made rotor fetch the keys again")
	for _, c := range cases {
		sig := c.token[strings.LastIndexByte(c.token, '.')+1:]
		if len(sig) > 16 {
			require.NotContains(t, log.String(), sig, "%s: no token in the log", c.name)
		}
	}
	require.NotContains(t, log.String(), genuine)

	t.Run("WithinTheSkew", func(t *testing.T) {
		for name, tw := range map[string]func(jwt.MapClaims){
			"ExpiredFourMinutesAgo": func(c jwt.MapClaims) { c["exp"] = now.Add(-4 * time.Minute).Unix() },
			"ValidInFourMinutes":    func(c jwt.MapClaims) { c["nbf"] = now.Add(4 * time.Minute).Unix() },
		} {
			_, err := b.v.Validate(ctx, b.forge(t, genuine, tw))
			require.NoError(t, err, name)
		}
	})
	t.Run("Requests", func(t *testing.T) {
		rec := serve(mw, "", "")
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		require.Equal(t, `Bearer realm="rotor"`, rec.Header().Get("WWW-Authenticate"), "no error code without credentials (RFC 6750 3.1)")
		for name, h := range map[string]string{"Basic": "Basic dXNlcjpwYXNz", "EmptyBearer": "Bearer ", "NoScheme": genuine} {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/api/v1/apps", nil)
			r.Header.Set("Authorization", h)
			mw.ServeHTTP(rec, r)
			require.Equal(t, http.StatusUnauthorized, rec.Code, name)
		}
		rec = serve(mw, "", "?access_token="+genuine)
		require.Equal(t, http.StatusBadRequest, rec.Code, "a token in the URL is refused, not used")
		require.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="invalid_request"`)
		require.NotContains(t, rec.Body.String(), genuine)

		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Add("Authorization", "Bearer "+genuine)
		r.Header.Add("Authorization", "Bearer "+genuine)
		rec = httptest.NewRecorder()
		mw.ServeHTTP(rec, r)
		require.Equal(t, http.StatusUnauthorized, rec.Code, "two Authorization headers")

		rec = serve(mw, genuine, "")
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "token:"+b.clients["admin"].AppID+" admin", rec.Body.String())

		rec = serve(mw, "rtr_org-a_aaaaaaaaaaaaaaaa_"+strings.Repeat("a", 52), "")
		require.Equal(t, http.StatusUnauthorized, rec.Code, "API keys are refused where none are configured")
	})
	require.NotContains(t, log.String(), genuine)
}

// TestUnknownKidRefreshesTheKeysOnce: after Entra rolls its signing key
// over, the first token signed with the new key makes rotor fetch the
// JWKS once (no sooner than a minute after the last fetch) and is
// accepted; tokens signed with the old key still are; known keys and
// forged signatures cause no fetch.
func TestUnknownKidRefreshesTheKeysOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	before := b.jwksFetches()
	old := b.adminToken(t)
	for range 3 {
		_, err := b.v.Validate(ctx, old)
		require.NoError(t, err)
	}
	require.Equal(t, before+1, b.jwksFetches(), "the keys are fetched once, then cached")

	_, err := b.sim.Server.RotateSigningKey()
	require.NoError(t, err)
	fresh := b.adminToken(t)
	require.NotEqual(t, claimsHeaderKid(t, old), claimsHeaderKid(t, fresh))
	_, err = b.v.Validate(ctx, fresh)
	requireRefused(t, err, auth.ReasonUnknownKey, http.StatusUnauthorized, "within a minute of the last fetch the keys are not fetched again")
	require.Equal(t, before+1, b.jwksFetches())

	b.sim.AdvanceClock(auth.DefaultKeyRefreshInterval)
	fresh = b.adminToken(t)
	_, err = b.v.Validate(ctx, fresh)
	require.NoError(t, err, "the unknown kid made rotor fetch the keys, which now hold it")
	require.Equal(t, before+2, b.jwksFetches())
	for _, tok := range []string{fresh, old, fresh} {
		_, err := b.v.Validate(ctx, tok)
		require.NoError(t, err, "the old key is still published, so its tokens still validate")
	}
	forged := sign(t, jwt.SigningMethodRS256, simtest.RSAKey(1), b.sim.Server.KeyID(), claimsOf(t, fresh))
	_, err = b.v.Validate(ctx, forged)
	requireRefused(t, err, auth.ReasonSignature, http.StatusUnauthorized)
	require.Equal(t, before+2, b.jwksFetches(), "neither known kids nor a bad signature fetch the keys")

	// A stream of unknown kids costs one fetch a minute.
	b.sim.AdvanceClock(auth.DefaultKeyRefreshInterval)
	for i := range 5 {
		unknown := sign(t, jwt.SigningMethodRS256, simtest.RSAKey(1), "kid-"+string(rune('a'+i)), claimsOf(t, fresh))
		_, err = b.v.Validate(ctx, unknown)
		requireRefused(t, err, auth.ReasonUnknownKey, http.StatusUnauthorized)
	}
	require.Equal(t, before+3, b.jwksFetches())
}

func claimsHeaderKid(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	require.NoError(t, err)
	return parsed.Header["kid"].(string)
}

func TestRateLimitPerCallingApplication(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lim := auth.NewLimiter(1.0/60, 2, b.sim.Clock) // two at once, then one a minute
	h := (&auth.Authenticator{Entra: b.v}).Middleware(lim.Middleware(okHandler(t)))
	admin := b.adminToken(t)
	operator := b.token(t, b.tenant.ID, b.clients["operator"], b.uri+"/.default")

	for range 2 {
		require.Equal(t, http.StatusOK, serve(h, admin, "").Code)
	}
	rec := serve(h, admin, "")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "60", rec.Header().Get("Retry-After"))
	require.Contains(t, rec.Body.String(), `"code":"rate_limited"`)
	require.Equal(t, http.StatusOK, serve(h, operator, "").Code, "another application has its own budget")

	// A new token of the same application shares its budget.
	again := b.token(t, b.tenant.ID, b.clients["admin"], b.api.AppID+"/.default")
	require.Equal(t, http.StatusTooManyRequests, serve(h, again, "").Code)

	b.sim.AdvanceClock(30 * time.Second)
	rec = serve(h, admin, "")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "30", rec.Header().Get("Retry-After"))
	b.sim.AdvanceClock(30 * time.Second)
	require.Equal(t, http.StatusOK, serve(h, admin, "").Code, "waiting Retry-After is enough")

	// Refused credentials never reach the limiter.
	for range 5 {
		require.Equal(t, http.StatusUnauthorized, serve(h, "x.y.z", "").Code)
	}
}

func TestNewValidatorRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, simtest.Options{})
	tn := s.Tenant(t, "contoso")
	base := auth.EntraConfig{Authority: s.Info.AuthorityHost, Tenants: []string{tn.ID}, AppIDURI: "api://rotor", Roles: roleMap}
	for name, c := range map[string]struct {
		tweak func(*auth.EntraConfig)
		want  string
	}{
		"NoTenant":         {func(c *auth.EntraConfig) { c.Tenants = nil }, "at least one tenant"},
		"Common":           {func(c *auth.EntraConfig) { c.Tenants = []string{"common"} }, "not a tenant id"},
		"Domain":           {func(c *auth.EntraConfig) { c.Tenants = []string{"contoso.onmicrosoft.com"} }, "not a tenant id"},
		"NoAudience":       {func(c *auth.EntraConfig) { c.AppIDURI = "" }, "app_id_uri or client_id"},
		"ClientIDNotAGUID": {func(c *auth.EntraConfig) { c.ClientID = "rotor" }, "not an app id"},
		"HTTPAuthority":    {func(c *auth.EntraConfig) { c.Authority = "http://login.example.com/" }, "https"},
		"Version3":         {func(c *auth.EntraConfig) { c.TokenVersions = []int{3} }, "not 1 or 2"},
		"LongSkew":         {func(c *auth.EntraConfig) { c.ClockSkew = 10 * time.Minute }, "clock_skew"},
		"NoRoles":          {func(c *auth.EntraConfig) { c.Roles = nil }, "no token gets in"},
		"BadRole":          {func(c *auth.EntraConfig) { c.Roles = auth.RoleMap{{AppRole: "x", Organization: orgA, Role: "owner"}} }, "not a role"},
		"BadOrg":           {func(c *auth.EntraConfig) { c.Roles = auth.RoleMap{{AppRole: "x", Organization: "a b", Role: "admin"}} }, "not an organization id"},
		"UnknownTenant":    {func(c *auth.EntraConfig) { c.Tenants = []string{uuid.NewString()} }, "discovery"},
	} {
		cfg := base
		c.tweak(&cfg)
		_, err := auth.NewValidator(t.Context(), cfg, auth.WithHTTPClient(s.HTTP))
		require.ErrorContains(t, err, c.want, name)
	}
	_, err := auth.NewValidator(t.Context(), base, auth.WithHTTPClient(s.HTTP))
	require.NoError(t, err)
}

// TestDiscoveryMustNameTheTenantsOwnIssuerAndKeys serves discovery
// documents that point elsewhere: rotor refuses to start on them.
func TestDiscoveryMustNameTheTenantsOwnIssuerAndKeys(t *testing.T) {
	t.Parallel()
	tenant := uuid.NewString()
	var doc map[string]any
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	authority := srv.URL + "/"
	for name, c := range map[string]struct {
		version int
		doc     map[string]any
		want    string
	}{
		"V2IssuerOfAnotherTenant": {2, map[string]any{"issuer": authority + uuid.NewString() + "/v2.0", "jwks_uri": authority + "keys"}, "names issuer"},
		"V1IssuerOfAnotherTenant": {1, map[string]any{"issuer": "https://sts.windows.net/" + uuid.NewString() + "/", "jwks_uri": authority + "keys"}, "names issuer"},
		"V1IssuerPlaceholder":     {1, map[string]any{"issuer": "https://sts.windows.net/{tenantid}/", "jwks_uri": authority + "keys"}, "names issuer"},
		"KeysElsewhere":           {2, map[string]any{"issuer": authority + tenant + "/v2.0", "jwks_uri": "https://keys.example.com/keys"}, "jwks_uri"},
		"KeysOverHTTP":            {1, map[string]any{"issuer": "https://sts.windows.net/" + tenant + "/", "jwks_uri": strings.Replace(authority, "https", "http", 1) + "keys"}, "jwks_uri"},
	} {
		mu.Lock()
		doc = c.doc
		mu.Unlock()
		_, err := auth.NewValidator(t.Context(), auth.EntraConfig{Authority: authority, Tenants: []string{tenant}, AppIDURI: "api://rotor",
			TokenVersions: []int{c.version}, Roles: roleMap}, auth.WithHTTPClient(srv.Client()))
		require.ErrorContains(t, err, c.want, name)
	}
}

// okHandler answers 200 with the principal's actor and its role in org-a.
func okHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok {
			t.Errorf("a request reached the handler without a principal")
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		role, _ := p.Role(orgA)
		_, _ = io.WriteString(w, p.Actor.String()+" "+string(role))
	})
}

// serve sends GET /api/v1/apps{query} with the bearer credential (none
// when empty).
func serve(h http.Handler, cred, query string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/apps"+query, nil)
	if cred != "" {
		r.Header.Set("Authorization", "Bearer "+cred)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// tamper changes a signed token's payload and keeps its signature.
func tamper(t *testing.T, tok string, tweak func(jwt.MapClaims)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	c := claimsOf(t, tok)
	tweak(c)
	body, err := json.Marshal(c)
	require.NoError(t, err)
	return parts[0] + "." + b64(string(body)) + "." + parts[2]
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// syncBuffer is a bytes.Buffer loggers may write to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCLIUserTokens: a person's delegated token issued to rotor's CLI
// (cli_client_id) with its scope is accepted as that person, with the
// app roles assigned to them; the same token shape from any other client,
// without the scope, without a bound role, or for another audience is
// refused; and a rotor that names no CLI refuses every delegated token.
func TestCLIUserTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	cliID, userID := uuid.NewString(), uuid.NewString()
	cfg := b.cfg
	cfg.CLIClientID = cliID
	v := b.validator(t, cfg)
	genuine := b.adminToken(t)
	user := func(tweak func(jwt.MapClaims)) string {
		return b.forge(t, genuine, func(c jwt.MapClaims) {
			c["appid"], c["appidacr"], c["oid"], c["sub"], c["idtyp"] = cliID, "0", userID, "pairwise", "user"
			c["scp"], c["roles"] = "user_impersonation", []string{roleOperator}
			c["name"], c["upn"] = "Ada Admin", "ada@contoso.example"
			if tweak != nil {
				tweak(c)
			}
		})
	}

	p, err := v.Validate(ctx, user(nil))
	require.NoError(t, err)
	require.Equal(t, app.Actor{Kind: app.ActorUser, ID: userID, Name: "Ada Admin <ada@contoso.example>"}, p.Actor, "the person, as the UI names them")
	require.Equal(t, map[domain.OrgID]app.Role{orgA: app.RoleOperator}, p.Roles)
	require.Equal(t, userID, p.ObjectID)
	require.Equal(t, "entra-user:"+b.tenant.ID+"/"+userID, p.RateKey, "a person's own budget")

	for name, tc := range map[string]struct {
		v      *auth.Validator
		token  string
		reason auth.Reason
		status int
	}{
		"NoCLIConfigured":   {b.v, user(nil), auth.ReasonClaims, 401},
		"AnotherClient":     {v, user(func(c jwt.MapClaims) { c["appid"] = b.clients["admin"].AppID }), auth.ReasonClaims, 401},
		"WithoutTheScope":   {v, user(func(c jwt.MapClaims) { c["scp"] = "User.Read" }), auth.ReasonClaims, 401},
		"NoUser":            {v, user(func(c jwt.MapClaims) { delete(c, "oid") }), auth.ReasonClaims, 401},
		"NoRoleAssigned":    {v, user(func(c jwt.MapClaims) { delete(c, "roles") }), auth.ReasonNoRole, 403},
		"OnlyAnUnboundRole": {v, user(func(c jwt.MapClaims) { c["roles"] = []string{roleUnbound} }), auth.ReasonNoRole, 403},
		"GraphAudience":     {v, user(func(c jwt.MapClaims) { c["aud"] = "https://graph.microsoft.com" }), auth.ReasonAudience, 401},
		"Expired": {v, user(func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = b.sim.Now().Add(-2*time.Hour).Unix(), b.sim.Now().Add(-6*time.Minute).Unix()
		}), auth.ReasonExpired, 401},
	} {
		_, err := tc.v.Validate(ctx, tc.token)
		requireRefused(t, err, tc.reason, tc.status, name)
	}

	t.Run("ConfigChecks", func(t *testing.T) {
		for _, bad := range []auth.EntraConfig{
			func() auth.EntraConfig { c := b.cfg; c.CLIClientID = "rotor-cli"; return c }(),
			func() auth.EntraConfig {
				c := b.cfg
				c.CLIClientID, c.CLIScope = cliID, "api://x/user_impersonation"
				return c
			}(),
		} {
			_, err := auth.NewValidator(ctx, bad, auth.WithHTTPClient(b.sim.HTTP))
			require.Error(t, err)
		}
	})
}
