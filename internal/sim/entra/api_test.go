package entra_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
)

// apiToken gets a client credentials token for scope with Microsoft's
// SDK, as a client of a web API would, and returns its verified claims
// and header.
func apiToken(t *testing.T, e *simtest.Env, tenantID string, c *sim.Client, scope string) (jwt.MapClaims, map[string]any) {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenantID, c.AppID, c.Secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: e.NoRetry, DisableInstanceDiscovery: true})
	require.NoError(t, err)
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{scope}})
	require.NoError(t, err)
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok.Token, claims, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		return e.Server.PublicKey(kid), nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	require.NoError(t, err)
	return claims, parsed.Header
}

func TestAPITokensCarryAssignedAppRoles(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	v1, err := e.Server.RegisterAPI(tn.ID, sim.APISpec{Name: "rotor-api", IdentifierURI: "api://rotor-test",
		Roles: []string{"Rotor.Admin", "Rotor.Viewer"}})
	require.NoError(t, err)
	v2, err := e.Server.RegisterAPI(tn.ID, sim.APISpec{Name: "rotor-api-v2", Roles: []string{"Rotor.Operator"}, TokenVersion: 2})
	require.NoError(t, err)
	require.Equal(t, "api://"+v2.AppID, v2.IdentifierURI)
	_, err = e.Server.RegisterAPI(tn.ID, sim.APISpec{Name: "dup", IdentifierURI: "api://rotor-test"})
	require.ErrorContains(t, err, "taken")

	client, err := e.Server.AddClient(tn.ID, sim.ClientSpec{Name: "automation", API: v1.AppID, Roles: []string{"Rotor.Admin"}})
	require.NoError(t, err)
	require.NoError(t, e.Server.AssignAppRoles(tn.ID, client.AppID, v2.AppID, "Rotor.Operator"))
	require.ErrorContains(t, e.Server.AssignAppRoles(tn.ID, client.AppID, v2.AppID, "Rotor.Nope"), "defines no app role")
	bare, err := e.Server.AddClient(tn.ID, sim.ClientSpec{Name: "unassigned"})
	require.NoError(t, err)

	t.Run("V1ByIdentifierURI", func(t *testing.T) {
		c, h := apiToken(t, e, tn.ID, client, "api://rotor-test/.default")
		require.Equal(t, "api://rotor-test", c["aud"])
		require.Equal(t, sim.StsIssuer(tn.ID), c["iss"])
		require.Equal(t, "1.0", c["ver"])
		require.Equal(t, client.AppID, c["appid"])
		require.Equal(t, client.ObjectID, c["oid"])
		require.Equal(t, tn.ID, c["tid"])
		require.Equal(t, []any{"Rotor.Admin"}, c["roles"], "only the roles of this API, only the assigned ones")
		require.NotContains(t, c, "azp")
		require.Equal(t, e.Server.KeyID(), h["kid"])
	})
	t.Run("V1ByAppID", func(t *testing.T) {
		c, _ := apiToken(t, e, tn.ID, client, v1.AppID+"/.default")
		require.Equal(t, v1.AppID, c["aud"], "a v1.0 token's audience is the resource as requested")
	})
	t.Run("V2", func(t *testing.T) {
		c, _ := apiToken(t, e, tn.ID, client, v2.IdentifierURI+"/.default")
		require.Equal(t, v2.AppID, c["aud"], "a v2.0 token's audience is always the API's app id")
		require.Equal(t, e.Info.AuthorityHost+tn.ID+"/v2.0", c["iss"])
		require.Equal(t, "2.0", c["ver"])
		require.Equal(t, client.AppID, c["azp"])
		require.Equal(t, "1", c["azpacr"])
		require.NotContains(t, c, "appid")
		require.Equal(t, []any{"Rotor.Operator"}, c["roles"])
	})
	t.Run("NoAssignment", func(t *testing.T) {
		c, _ := apiToken(t, e, tn.ID, bare, "api://rotor-test/.default")
		require.Equal(t, []any{}, c["roles"])
	})
	t.Run("UnknownIdentifierURI", func(t *testing.T) {
		status, body := e.TokenRequest(t, tn.ID, url.Values{
			"grant_type": {"client_credentials"}, "client_id": {client.AppID}, "client_secret": {client.Secret},
			"scope": {"api://no-such-api/.default"},
		})
		require.Equal(t, http.StatusBadRequest, status)
		simtest.RequireAADSTS(t, body, 70011)
	})
	t.Run("OtherTenantDoesNotKnowTheAPI", func(t *testing.T) {
		fab := e.Tenant(t, "fabrikam")
		_, err := e.Server.AddClient(fab.ID, sim.ClientSpec{Name: "x", API: v1.AppID, Roles: []string{"Rotor.Admin"}})
		require.ErrorContains(t, err, "no API")
	})
}

func TestV1DiscoveryAndKeyRollover(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	tn := e.Tenant(t, "contoso")
	status, doc := e.Do(t, http.MethodGet, e.Info.AuthorityHost+tn.ID+"/.well-known/openid-configuration", nil, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, sim.StsIssuer(tn.ID), doc["issuer"], "v1.0 tokens' issuer, not the document's URL")
	jwksURI := doc["jwks_uri"].(string)
	require.Equal(t, e.Info.AuthorityHost+tn.ID+"/discovery/keys", jwksURI)

	kids := func() []string {
		status, jwks := e.Do(t, http.MethodGet, jwksURI, nil, nil)
		require.Equal(t, http.StatusOK, status)
		var out []string
		for _, k := range jwks["keys"].([]any) {
			out = append(out, k.(map[string]any)["kid"].(string))
		}
		return out
	}
	first := e.Server.KeyID()
	require.Equal(t, []string{first}, kids())
	before := e.Server.Stats().JWKSRequests

	second, err := e.Server.RotateSigningKey()
	require.NoError(t, err)
	require.NotEqual(t, first, second)
	require.Equal(t, []string{second, first}, kids(), "the new key first, the old one still published")
	third, err := e.Server.RotateSigningKey()
	require.NoError(t, err)
	fourth, err := e.Server.RotateSigningKey()
	require.NoError(t, err)
	require.Equal(t, []string{fourth, third, second}, kids(), "at most two replaced keys stay")
	require.Equal(t, before+2, e.Server.Stats().JWKSRequests)

	// Tokens are signed with the new key, and the simulated services
	// accept them (they validate by kid among the published keys).
	status, body := e.TokenRequest(t, tn.ID, simtest.SecretForm(tn, "https://graph.microsoft.com/.default"))
	require.Equal(t, http.StatusOK, status)
	tok, _, err := jwt.NewParser().ParseUnverified(body["access_token"].(string), jwt.MapClaims{})
	require.NoError(t, err)
	require.Equal(t, fourth, tok.Header["kid"])
	status, _ = e.Do(t, http.MethodGet, e.Info.GraphURL+"/applications?$top=1", nil, map[string]string{
		"Authorization": "Bearer " + body["access_token"].(string),
	})
	require.Equal(t, http.StatusOK, status)

	// The control API rolls the key over too.
	status, out := e.Do(t, http.MethodPost, e.Info.ControlURL+"keys/rotate", nil, e.AdminHeader())
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, e.Server.KeyID(), out["kid"])
}
