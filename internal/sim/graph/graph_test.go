package graph_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// graphEnv is a running simulator plus a Graph token for one tenant's
// rotation identity (Application.ReadWrite.OwnedBy + Application.Read.All),
// obtained the way rotor does: azidentity configured from sim.json.
type graphEnv struct {
	*simtest.Env
	tn    *simfile.Tenant
	token string
}

func graphSetup(t *testing.T, tenant string, tweak ...func(*simtest.Options)) *graphEnv {
	t.Helper()
	e := simtest.StartEnv(t, tweak...)
	tn := e.Tenant(t, tenant)
	cred := e.RotationCredential(t, tn.ID)
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{e.Info.GraphAudience + "/.default"}})
	require.NoError(t, err)
	return &graphEnv{Env: e, tn: tn, token: tok.Token}
}

// gresp is a Graph answer.
type gresp struct {
	status int
	hdr    http.Header
	body   map[string]any
	raw    []byte
}

// call sends a Graph request with token ("" for none). path is below the
// Graph base, query included and already escaped.
func (g *graphEnv) call(t *testing.T, token, method, path string, body any, hdr ...string) gresp {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "https://") {
		u = g.Info.GraphURL + path
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, r)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := g.Client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := gresp{status: resp.StatusCode, hdr: resp.Header, raw: raw}
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		require.NoError(t, json.Unmarshal(raw, &out.body), "body: %s", raw)
	}
	return out
}

// requireGraphError checks Graph's error shape, code and request ids.
func requireGraphError(t *testing.T, r gresp, status int, code string) map[string]any {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.raw)
	e, ok := r.body["error"].(map[string]any)
	require.True(t, ok, "body: %s", r.raw)
	require.Equal(t, code, e["code"], "body: %s", r.raw)
	require.NotEmpty(t, e["message"])
	inner, ok := e["innerError"].(map[string]any)
	require.True(t, ok)
	require.Equal(t, r.hdr.Get("request-id"), inner["request-id"])
	require.NotEmpty(t, inner["date"])
	return e
}

// tokenWithRoles registers a new app + service principal holding roles in
// the env's tenant and mints it a Graph token. It returns the token and the
// service principal's object id.
func (g *graphEnv) tokenWithRoles(t *testing.T, roles ...string) (string, string) {
	t.Helper()
	tn := g.Server.World().Tenant(g.tn.ID)
	app := &sim.Application{ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: "caller", SignInAudience: "AzureADMyOrg"}
	sp := &sim.ServicePrincipal{ObjectID: uuid.NewString(), AppID: app.AppID, DisplayName: "caller", AppRoles: roles}
	g.Server.World().Update(func() {
		tn.AddApp(app)
		tn.AddSP(sp)
	})
	tok, err := g.Server.MintToken(g.tn.ID, app.AppID, sim.GraphResource)
	require.NoError(t, err)
	return tok, sp.ObjectID
}

// appWhere returns the first app of the env's tenant matching pred.
func (g *graphEnv) appWhere(t *testing.T, pred func(*sim.Application) bool) *sim.Application {
	t.Helper()
	tn := g.Server.World().Tenant(g.tn.ID)
	var out *sim.Application
	g.Server.World().Update(func() {
		for _, a := range tn.Apps {
			if out == nil && pred(a) {
				out = a
			}
		}
	})
	require.NotNil(t, out)
	return out
}

func (g *graphEnv) ownedApp(t *testing.T) *sim.Application {
	return g.appWhere(t, func(a *sim.Application) bool { return a.OwnedBy(g.tn.Rotation.ObjectID) })
}

func (g *graphEnv) foreignApp(t *testing.T) *sim.Application {
	return g.appWhere(t, func(a *sim.Application) bool { return !a.OwnedBy(g.tn.Rotation.ObjectID) })
}

func values(t *testing.T, r gresp) []map[string]any {
	t.Helper()
	raw, ok := r.body["value"].([]any)
	require.True(t, ok, "body: %s", r.raw)
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i] = v.(map[string]any)
	}
	return out
}

func TestGraphListPagesThroughAllApps(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "tenant1", func(o *simtest.Options) { o.Seed = "apps=2500,tenants=1,expiring=720h" })
	want := map[string]bool{}
	for _, a := range g.Server.World().Tenant(g.tn.ID).Apps {
		want[a.ObjectID] = true
	}

	got := map[string]bool{}
	pages := 0
	next := "/applications?$top=999&$select=id,appId,displayName"
	for next != "" {
		r := g.call(t, g.token, http.MethodGet, next, nil)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
		require.Equal(t, "https://graph.microsoft.com/v1.0/$metadata#applications(id,appId,displayName)", r.body["@odata.context"])
		pages++
		for _, v := range values(t, r) {
			id := v["id"].(string)
			require.False(t, got[id], "app %s returned twice", id)
			got[id] = true
			require.NotContains(t, v, "passwordCredentials")
		}
		next, _ = r.body["@odata.nextLink"].(string)
		if next != "" {
			require.True(t, strings.HasPrefix(next, g.Info.GraphURL+"/applications?"), next)
			require.Contains(t, next, "$skiptoken=")
			require.Contains(t, next, "$top=999")
		}
	}
	require.Equal(t, 3, pages)
	require.Equal(t, want, got)
}

func TestGraphPagingIsStableWhileAppsAreAdded(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	tn := g.Server.World().Tenant(g.tn.ID)
	var before []string
	g.Server.World().Update(func() {
		for _, a := range tn.Apps {
			before = append(before, a.ObjectID)
		}
	})

	r := g.call(t, g.token, http.MethodGet, "/applications?$top=4", nil)
	require.Equal(t, http.StatusOK, r.status)
	seen := []string{}
	for _, v := range values(t, r) {
		seen = append(seen, v["id"].(string))
	}
	added := uuid.NewString()
	g.Server.World().Update(func() {
		tn.AddApp(&sim.Application{ObjectID: added, AppID: uuid.NewString(), DisplayName: "late"})
		tn.RemoveApp(before[1]) // already returned: must not shift the walk
	})
	next, _ := r.body["@odata.nextLink"].(string)
	for next != "" {
		r = g.call(t, g.token, http.MethodGet, next, nil)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
		for _, v := range values(t, r) {
			seen = append(seen, v["id"].(string))
		}
		next, _ = r.body["@odata.nextLink"].(string)
	}
	require.Equal(t, append(append([]string{}, before...), added), seen)
}

func TestGraphListDefaultsAndSelect(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	withKey := g.appWhere(t, func(a *sim.Application) bool { return len(a.Keys) > 0 })

	r := g.call(t, g.token, http.MethodGet, "/applications/"+withKey.ObjectID, nil, "client-request-id", "my-id")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "my-id", r.hdr.Get("client-request-id"))
	require.NotEmpty(t, r.hdr.Get("request-id"))
	require.Equal(t, "https://graph.microsoft.com/v1.0/$metadata#applications/$entity", r.body["@odata.context"])
	require.Equal(t, withKey.AppID, r.body["appId"])
	keys := r.body["keyCredentials"].([]any)
	require.NotEmpty(t, keys)
	k0 := keys[0].(map[string]any)
	require.Nil(t, k0["key"], "key material only when selected")
	require.NotEmpty(t, k0["customKeyIdentifier"])
	require.True(t, strings.HasSuffix(k0["endDateTime"].(string), "Z"))
	require.Contains(t, r.body, "passwordCredentials")

	r = g.call(t, g.token, http.MethodGet, "/applications/"+withKey.ObjectID+"?$select=keyCredentials,appId", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, r.body, 3) // @odata.context, appId, keyCredentials
	der, err := base64.StdEncoding.DecodeString(r.body["keyCredentials"].([]any)[0].(map[string]any)["key"].(string))
	require.NoError(t, err)
	_, err = x509.ParseCertificate(der)
	require.NoError(t, err)

	r = g.call(t, g.token, http.MethodGet, "/applications(appId='"+withKey.AppID+"')?$select=id", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, withKey.ObjectID, r.body["id"])

	requireGraphError(t, g.call(t, g.token, http.MethodGet, "/applications?$select=nope", nil), http.StatusBadRequest, "Request_BadRequest")
	e := requireGraphError(t, g.call(t, g.token, http.MethodGet, "/applications?$top=1000", nil), http.StatusBadRequest, "Request_BadRequest")
	require.Contains(t, e["message"], "Invalid page size specified")
	requireGraphError(t, g.call(t, g.token, http.MethodGet, "/applications?$orderby=displayName", nil), http.StatusBadRequest, "Request_UnsupportedQuery")
	requireGraphError(t, g.call(t, g.token, http.MethodGet, "/applications?$skiptoken=garbage", nil), http.StatusBadRequest, "Directory_ExpiredPageToken")

	missing := uuid.NewString()
	e = requireGraphError(t, g.call(t, g.token, http.MethodGet, "/applications/"+missing, nil), http.StatusNotFound, "Request_ResourceNotFound")
	require.Equal(t, fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", missing), e["message"])
	requireGraphError(t, g.call(t, g.token, http.MethodGet, "/applications(appId='"+missing+"')", nil), http.StatusNotFound, "Request_ResourceNotFound")
	requireGraphError(t, g.call(t, g.token, http.MethodGet, "/applications/not-a-guid", nil), http.StatusBadRequest, "Request_BadRequest")
	requireGraphError(t, g.call(t, g.token, http.MethodGet, "/groups", nil), http.StatusBadRequest, "Request_BadRequest")
	requireGraphError(t, g.call(t, g.token, http.MethodPut, "/applications", nil), http.StatusMethodNotAllowed, "Request_BadRequest")
}

func TestGraphFilter(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	tn := g.Server.World().Tenant(g.tn.ID)
	quoted := &sim.Application{ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: "O'Brien's app", SignInAudience: "AzureADMyOrg"}
	g.Server.World().Update(func() { tn.AddApp(quoted) })
	any1 := g.ownedApp(t)

	ids := func(filter string, hdr ...string) []string {
		t.Helper()
		r := g.call(t, g.token, http.MethodGet, "/applications?$filter="+url.QueryEscape(filter), nil, hdr...)
		require.Equal(t, http.StatusOK, r.status, "filter %q: %s", filter, r.raw)
		var out []string
		for _, v := range values(t, r) {
			out = append(out, v["id"].(string))
		}
		return out
	}
	require.Equal(t, []string{any1.ObjectID}, ids("appId eq '"+any1.AppID+"'"))
	require.Equal(t, []string{any1.ObjectID}, ids("appId eq '"+strings.ToUpper(any1.AppID)+"'"))
	require.Equal(t, []string{any1.ObjectID}, ids("id eq '"+any1.ObjectID+"'"))
	require.Equal(t, []string{quoted.ObjectID}, ids("displayName eq 'O''Brien''s app'"))
	require.Equal(t, []string{quoted.ObjectID}, ids("startswith(displayName,'o''brien')"))
	require.ElementsMatch(t, []string{quoted.ObjectID, any1.ObjectID},
		ids("displayName eq 'O''Brien''s app' or appId eq '"+any1.AppID+"'"))
	require.Empty(t, ids("displayName eq 'O''Brien''s app' and appId eq '"+any1.AppID+"'"))

	for _, bad := range []string{"displayName ne 'x'", "tags/any(t:t eq 'x')", "displayName eq 'x", "publisherDomain eq 'x'"} {
		r := g.call(t, g.token, http.MethodGet, "/applications?$filter="+url.QueryEscape(bad), nil)
		requireGraphError(t, r, http.StatusBadRequest, "Request_UnsupportedQuery")
	}

	r := g.call(t, g.token, http.MethodGet, "/applications?$count=true&$top=1&$filter="+url.QueryEscape("startswith(displayName,'O''Bri')"), nil,
		"ConsistencyLevel", "eventual")
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	require.EqualValues(t, 1, r.body["@odata.count"])
	requireGraphError(t, g.call(t, g.token, http.MethodGet, "/applications?$count=true", nil), http.StatusBadRequest, "Request_UnsupportedQuery")

	r = g.call(t, g.token, http.MethodGet, "/applications/$count", nil, "ConsistencyLevel", "eventual")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, fmt.Sprint(len(g.Server.World().Tenant(g.tn.ID).Apps)), string(r.raw))
}

func TestGraphPermissions(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	owned, foreign := g.ownedApp(t), g.foreignApp(t)
	ownedOnly, _ := g.tokenWithRoles(t, sim.RoleReadWriteOwned)
	noRoles, _ := g.tokenWithRoles(t)
	readOnly, _ := g.tokenWithRoles(t, sim.RoleReadAll)

	// The rotation identity (OwnedBy + Read.All) reads everything ...
	require.Equal(t, http.StatusOK, g.call(t, g.token, http.MethodGet, "/applications/"+foreign.ObjectID, nil).status)
	// ... but writes only what it owns.
	e := requireGraphError(t, g.call(t, g.token, http.MethodPost, "/applications/"+foreign.ObjectID+"/addPassword",
		map[string]any{"passwordCredential": map[string]any{"endDateTime": time.Now().Add(24 * time.Hour).Format(time.RFC3339)}}),
		http.StatusForbidden, "Authorization_RequestDenied")
	require.Equal(t, "Insufficient privileges to complete the operation.", e["message"])
	requireGraphError(t, g.call(t, g.token, http.MethodPatch, "/applications/"+foreign.ObjectID, map[string]any{"displayName": "x"}),
		http.StatusForbidden, "Authorization_RequestDenied")
	require.Equal(t, http.StatusNoContent, g.call(t, g.token, http.MethodPatch, "/applications/"+owned.ObjectID, map[string]any{"tags": []string{"t"}}).status)

	// OwnedBy alone reads only what it owns (here: nothing).
	requireGraphError(t, g.call(t, ownedOnly, http.MethodGet, "/applications/"+foreign.ObjectID, nil), http.StatusForbidden, "Authorization_RequestDenied")
	r := g.call(t, ownedOnly, http.MethodGet, "/applications", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Empty(t, values(t, r))

	// Read.All cannot write; no application permission cannot even read.
	requireGraphError(t, g.call(t, readOnly, http.MethodPatch, "/applications/"+owned.ObjectID, map[string]any{"displayName": "x"}),
		http.StatusForbidden, "Authorization_RequestDenied")
	requireGraphError(t, g.call(t, noRoles, http.MethodGet, "/applications", nil), http.StatusForbidden, "Authorization_RequestDenied")

	// No token, a bad token, a token for another resource.
	requireGraphError(t, g.call(t, "", http.MethodGet, "/applications", nil), http.StatusUnauthorized, "InvalidAuthenticationToken")
	requireGraphError(t, g.call(t, "abc.def.ghi", http.MethodGet, "/applications", nil), http.StatusUnauthorized, "InvalidAuthenticationToken")
	kvTok, err := g.Server.MintToken(g.tn.ID, g.tn.Rotation.ClientID, sim.KeyVaultResource)
	require.NoError(t, err)
	requireGraphError(t, g.call(t, kvTok, http.MethodGet, "/applications", nil), http.StatusUnauthorized, "InvalidAuthenticationToken")
	noKid := requireGraphError(t, g.call(t, simtest.WithoutKid(t, g.token), http.MethodGet, "/applications", nil), http.StatusUnauthorized, "InvalidAuthenticationToken")
	require.Contains(t, noKid["message"], "no kid")
}

func TestGraphAddAndRemovePassword(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	app := g.ownedApp(t)
	end := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second)

	r := g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/addPassword",
		map[string]any{"passwordCredential": map[string]any{"displayName": "rotor", "endDateTime": end.Format(time.RFC3339)}})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	secret := r.body["secretText"].(string)
	require.Len(t, secret, 40)
	require.Equal(t, "8Q~", secret[3:6])
	require.Equal(t, secret[:3], r.body["hint"])
	require.Nil(t, r.body["customKeyIdentifier"])
	require.Equal(t, "rotor", r.body["displayName"])
	require.Equal(t, end.Format(time.RFC3339), r.body["endDateTime"])
	keyID := r.body["keyId"].(string)

	// Stored as a hash, never shown again.
	g.Server.World().Update(func() {
		p := app.Passwords[len(app.Passwords)-1]
		require.Equal(t, keyID, p.KeyID)
		require.Equal(t, sim.HashSecret(secret), p.SecretHash)
		require.False(t, p.AddedAt.IsZero())
	})
	r = g.call(t, g.token, http.MethodGet, "/applications/"+app.ObjectID+"?$select=passwordCredentials", nil)
	require.NotContains(t, string(r.raw), secret)

	require.Equal(t, http.StatusNoContent, g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/removePassword",
		map[string]any{"keyId": keyID}).status)
	requireGraphError(t, g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/removePassword",
		map[string]any{"keyId": keyID}), http.StatusNotFound, "Request_ResourceNotFound")
	requireGraphError(t, g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/removePassword",
		map[string]any{"keyId": "nope"}), http.StatusBadRequest, "Request_BadRequest")
}

func TestGraphPasswordLifetimePolicy(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso") // contoso caps passwords at 90 days
	app := g.ownedApp(t)
	var policyID string
	tn := g.Server.World().Tenant(g.tn.ID)
	g.Server.World().Update(func() { policyID = tn.Policy.ID })

	// No endDateTime: Graph's default of two years breaks the policy.
	r := g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/addPassword", map[string]any{})
	e := requireGraphError(t, r, http.StatusBadRequest, "CredentialInvalidLifetimeAsPerAppPolicy")
	require.Equal(t, fmt.Sprintf("Credential lifetime exceeds the max value allowed as per assigned policy '%s'.", policyID), e["message"])
	require.Equal(t, []any{map[string]any{"code": "InvalidKeyEndDate", "target": "EndDate"}}, e["details"])

	// An empty body means all defaults too.
	requireGraphError(t, g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/addPassword", nil),
		http.StatusBadRequest, "CredentialInvalidLifetimeAsPerAppPolicy")

	// fabrikam has no policy: the two-year default is fine.
	f := &graphEnv{Env: g.Env, tn: g.Tenant(t, "fabrikam")}
	f.token, _ = f.tokenWithRoles(t, sim.RoleReadWriteAll)
	fapp := f.appWhere(t, func(*sim.Application) bool { return true })
	r = f.call(t, f.token, http.MethodPost, "/applications/"+fapp.ObjectID+"/addPassword", nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	start, err := time.Parse(time.RFC3339, r.body["startDateTime"].(string))
	require.NoError(t, err)
	endT, err := time.Parse(time.RFC3339, r.body["endDateTime"].(string))
	require.NoError(t, err)
	require.Equal(t, 2*365*24*time.Hour, endT.Sub(start))
}

// graphCert is a certificate valid now (wall clock, which the default
// simulator clock follows) and its key; i picks one of the test binary's
// two shared RSA keys.
func graphCert(t *testing.T, i int, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key := simtest.RSAKey(i)
	now := time.Now()
	return simtest.SelfSignedCert(t, key, cn, now.Add(-time.Hour), now.Add(30*24*time.Hour)), key
}

// proof builds an addKey/removeKey proof; tweak adjusts the claims.
func proof(t *testing.T, appObjectID string, cert *x509.Certificate, key *rsa.PrivateKey, tweak func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"aud": sim.ProofAudience, "iss": appObjectID,
		"nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	if tweak != nil {
		tweak(claims)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	sum := sha1.Sum(cert.Raw) //nolint:gosec // x5t
	tok.Header["x5t"] = base64.RawURLEncoding.EncodeToString(sum[:])
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func TestGraphAddKeyWithProof(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "fabrikam") // no app management policy
	app := g.ownedApp(t)
	oldCert, oldKey := graphCert(t, 0, "current")
	g.Server.World().Update(func() {
		app.Keys = []*sim.Key{sim.NewKey(uuid.NewString(), "CN=current", oldCert, time.Now().Add(-time.Hour))}
	})
	newCert, _ := graphCert(t, 1, "next")
	strangerCert, strangerKey := graphCert(t, 1, "stranger")
	addKey := func(proof string) gresp {
		return g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/addKey", map[string]any{
			"keyCredential": map[string]any{
				"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(newCert.Raw),
			},
			"passwordCredential": nil,
			"proof":              proof,
		})
	}

	refusals := map[string]string{
		"wrong audience": proof(t, app.ObjectID, oldCert, oldKey, func(c jwt.MapClaims) { c["aud"] = sim.GraphAppID }),
		"wrong issuer":   proof(t, app.AppID, oldCert, oldKey, nil),
		"expired": proof(t, app.ObjectID, oldCert, oldKey, func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = time.Now().Add(-20*time.Minute).Unix(), time.Now().Add(-15*time.Minute).Unix()
		}),
		"lives longer than 10 minutes": proof(t, app.ObjectID, oldCert, oldKey, func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(10 * time.Minute).Unix()
		}),
		"signed by an unknown key":     proof(t, app.ObjectID, strangerCert, strangerKey, nil),
		"unknown key claiming our x5t": proof(t, app.ObjectID, oldCert, strangerKey, nil),
		"missing":                      "",
	}
	for name, p := range refusals {
		r := addKey(p)
		requireGraphError(t, r, http.StatusBadRequest, "Authentication_MissingOrMalformed")
		if p != "" {
			require.NotContains(t, string(r.raw), p[len(p)-20:], "%s: the proof must not be echoed", name)
		}
	}

	r := addKey(proof(t, app.ObjectID, oldCert, oldKey, nil))
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	require.Equal(t, "AsymmetricX509Cert", r.body["type"])
	require.Equal(t, "CN=next", r.body["displayName"])
	newKeyID := r.body["keyId"].(string)
	sum := sha1.Sum(newCert.Raw) //nolint:gosec // thumbprint
	require.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), r.body["customKeyIdentifier"])
	g.Server.World().Update(func() { require.Len(t, app.Keys, 2) })

	// The same certificate twice is refused.
	requireGraphError(t, addKey(proof(t, app.ObjectID, oldCert, oldKey, nil)), http.StatusBadRequest, "Request_BadRequest")

	// removeKey needs a proof too.
	rm := func(keyID, p string) gresp {
		return g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/removeKey", map[string]any{"keyId": keyID, "proof": p})
	}
	requireGraphError(t, rm(newKeyID, proof(t, app.ObjectID, strangerCert, strangerKey, nil)), http.StatusBadRequest, "Authentication_MissingOrMalformed")
	requireGraphError(t, rm(uuid.NewString(), proof(t, app.ObjectID, oldCert, oldKey, nil)), http.StatusNotFound, "Request_ResourceNotFound")
	require.Equal(t, http.StatusNoContent, rm(newKeyID, proof(t, app.ObjectID, oldCert, oldKey, nil)).status)
	g.Server.World().Update(func() { require.Len(t, app.Keys, 1) })

	// Without a valid certificate addKey is impossible: use PATCH.
	g.Server.World().Update(func() { app.Keys = nil })
	e := requireGraphError(t, addKey(proof(t, app.ObjectID, oldCert, oldKey, nil)), http.StatusBadRequest, "Request_BadRequest")
	require.Contains(t, e["message"], "PATCH")
}

func TestGraphPatchKeyCredentials(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "fabrikam")
	app := g.ownedApp(t)
	oldCert, _ := graphCert(t, 0, "old")
	oldID := uuid.NewString()
	g.Server.World().Update(func() {
		app.Keys = []*sim.Key{sim.NewKey(oldID, "CN=old", oldCert, time.Now().Add(-48*time.Hour))}
	})
	newCert, _ := graphCert(t, 1, "new")

	r := g.call(t, g.token, http.MethodPatch, "/applications/"+app.ObjectID, map[string]any{
		"keyCredentials": []any{
			map[string]any{"keyId": oldID},
			map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(newCert.Raw), "displayName": "next"},
		},
	})
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.raw)
	g.Server.World().Update(func() {
		require.Len(t, app.Keys, 2)
		require.Equal(t, oldID, app.Keys[0].KeyID)
		require.True(t, app.Keys[0].AddedAt.Before(time.Now().Add(-47*time.Hour)), "kept keys keep their replication clock")
		require.Equal(t, "next", app.Keys[1].DisplayName)
	})

	bad := map[string]map[string]any{
		"passwordCredentials": {"passwordCredentials": []any{}},
		"unknown keyId":       {"keyCredentials": []any{map[string]any{"keyId": uuid.NewString()}}},
		"not a certificate":   {"keyCredentials": []any{map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "aGVsbG8="}}},
		"wrong usage": {"keyCredentials": []any{map[string]any{
			"type": "AsymmetricX509Cert", "usage": "Sign", "key": base64.StdEncoding.EncodeToString(newCert.Raw),
		}}},
		"unknown property": {"web": map[string]any{}},
		"empty name":       {"displayName": ""},
		"null keys":        {"keyCredentials": nil},
	}
	for name, body := range bad {
		r := g.call(t, g.token, http.MethodPatch, "/applications/"+app.ObjectID, body)
		requireGraphError(t, r, http.StatusBadRequest, "Request_BadRequest")
		_ = name
	}
	g.Server.World().Update(func() { require.Len(t, app.Keys, 2, "a refused PATCH changes nothing") })

	// Dropping the old key from the array removes it.
	r = g.call(t, g.token, http.MethodPatch, "/applications/"+app.ObjectID, map[string]any{
		"keyCredentials": []any{map[string]any{"keyId": app.Keys[1].KeyID}},
	})
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.raw)
	g.Server.World().Update(func() { require.Len(t, app.Keys, 1) })
}

func TestGraphOwners(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	app := g.ownedApp(t)
	admin, adminSP := g.tokenWithRoles(t, sim.RoleReadWriteAll)

	r := g.call(t, g.token, http.MethodGet, "/applications/"+app.ObjectID+"/owners", nil)
	require.Equal(t, http.StatusOK, r.status)
	var found bool
	for _, o := range values(t, r) {
		if o["id"] == g.tn.Rotation.ObjectID {
			found = true
			require.Equal(t, "#microsoft.graph.servicePrincipal", o["@odata.type"])
			require.Equal(t, g.tn.Rotation.ClientID, o["appId"])
		}
	}
	require.True(t, found)

	ref := map[string]any{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + adminSP}
	requireGraphError(t, g.call(t, g.token, http.MethodPost, "/applications/"+app.ObjectID+"/owners/$ref", ref),
		http.StatusForbidden, "Authorization_RequestDenied")
	require.Equal(t, http.StatusNoContent, g.call(t, admin, http.MethodPost, "/applications/"+app.ObjectID+"/owners/$ref", ref).status)
	requireGraphError(t, g.call(t, admin, http.MethodPost, "/applications/"+app.ObjectID+"/owners/$ref", ref),
		http.StatusBadRequest, "Request_BadRequest")
	require.Equal(t, http.StatusNoContent, g.call(t, admin, http.MethodDelete, "/applications/"+app.ObjectID+"/owners/"+adminSP+"/$ref", nil).status)
	requireGraphError(t, g.call(t, admin, http.MethodDelete, "/applications/"+app.ObjectID+"/owners/"+adminSP+"/$ref", nil),
		http.StatusNotFound, "Request_ResourceNotFound")
}

func TestGraphServicePrincipals(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")

	// ownedObjects is how an OwnedBy identity finds what it manages.
	r := g.call(t, g.token, http.MethodGet, "/servicePrincipals/"+g.tn.Rotation.ObjectID+"/ownedObjects?$top=3", nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	total := 0
	for {
		for _, v := range values(t, r) {
			require.Equal(t, "#microsoft.graph.application", v["@odata.type"])
			total++
		}
		next, _ := r.body["@odata.nextLink"].(string)
		if next == "" {
			break
		}
		r = g.call(t, g.token, http.MethodGet, next, nil)
		require.Equal(t, http.StatusOK, r.status)
	}
	want := 0
	for _, a := range g.Server.World().Tenant(g.tn.ID).Apps {
		if a.OwnedBy(g.tn.Rotation.ObjectID) {
			want++
		}
	}
	require.Equal(t, want, total)
	require.Greater(t, total, 3)

	r = g.call(t, g.token, http.MethodGet, "/servicePrincipals(appId='"+g.tn.Rotation.ClientID+"')", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, g.tn.Rotation.ObjectID, r.body["id"])
	r = g.call(t, g.token, http.MethodGet, "/servicePrincipals?$filter="+url.QueryEscape("appId eq '"+g.tn.Rotation.ClientID+"'"), nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, values(t, r), 1)
	r = g.call(t, g.token, http.MethodGet, "/servicePrincipals/"+g.tn.Rotation.ObjectID, nil)
	require.Equal(t, g.tn.Rotation.ClientID, r.body["appId"])
	require.Equal(t, g.tn.ID, r.body["appOwnerOrganizationId"])

	// A multi-tenant app of contoso gets its stub in fabrikam.
	contoso := g.Server.World().Tenant(g.tn.ID)
	multi := &sim.Application{ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: "shared", SignInAudience: "AzureADMultipleOrgs"}
	single := &sim.Application{ObjectID: uuid.NewString(), AppID: uuid.NewString(), DisplayName: "local", SignInAudience: "AzureADMyOrg"}
	g.Server.World().Update(func() {
		contoso.AddApp(multi)
		contoso.AddApp(single)
	})
	f := &graphEnv{Env: g.Env, tn: g.Tenant(t, "fabrikam")}
	ftok, _ := f.tokenWithRoles(t, sim.RoleReadWriteOwned)
	r = f.call(t, ftok, http.MethodPost, "/servicePrincipals", map[string]any{"appId": multi.AppID})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.raw)
	require.Equal(t, multi.AppID, r.body["appId"])
	require.Equal(t, g.tn.ID, r.body["appOwnerOrganizationId"])
	requireGraphError(t, f.call(t, ftok, http.MethodPost, "/servicePrincipals", map[string]any{"appId": multi.AppID}),
		http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue")
	requireGraphError(t, f.call(t, ftok, http.MethodPost, "/servicePrincipals", map[string]any{"appId": single.AppID}),
		http.StatusBadRequest, "Request_BadRequest")
	requireGraphError(t, f.call(t, ftok, http.MethodPost, "/servicePrincipals", map[string]any{"appId": uuid.NewString()}),
		http.StatusBadRequest, "Request_BadRequest")
	readOnly, _ := f.tokenWithRoles(t, sim.RoleReadAll)
	requireGraphError(t, f.call(t, readOnly, http.MethodPost, "/servicePrincipals", map[string]any{"appId": single.AppID}),
		http.StatusForbidden, "Authorization_RequestDenied")
}

func TestGraphCreateApplicationMakesOwnedByCallerAnOwner(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	r := g.call(t, g.token, http.MethodPost, "/applications", map[string]any{"displayName": "made by rotor"})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.raw)
	id := r.body["id"].(string)
	r = g.call(t, g.token, http.MethodGet, "/applications/"+id+"/owners", nil)
	require.Equal(t, g.tn.Rotation.ObjectID, values(t, r)[0]["id"])
	require.Equal(t, http.StatusNoContent, g.call(t, g.token, http.MethodDelete, "/applications/"+id, nil).status)
	requireGraphError(t, g.call(t, g.token, http.MethodGet, "/applications/"+id, nil), http.StatusNotFound, "Request_ResourceNotFound")
}

func TestGraphFederatedIdentityCredentials(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	app := g.ownedApp(t)
	base := "/applications/" + app.ObjectID + "/federatedIdentityCredentials"
	fic := func(i int) map[string]any {
		return map[string]any{
			"name": fmt.Sprintf("gh-%d", i), "issuer": "https://token.actions.githubusercontent.com",
			"subject": fmt.Sprintf("repo:org/repo:environment:e%d", i), "audiences": []string{"api://AzureADTokenExchange"},
		}
	}
	r := g.call(t, g.token, http.MethodPost, base, fic(0))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.raw)
	id := r.body["id"].(string)

	dupName := fic(1)
	dupName["name"] = "gh-0"
	requireGraphError(t, g.call(t, g.token, http.MethodPost, base, dupName), http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue")
	dupSubject := fic(0)
	dupSubject["name"] = "other"
	requireGraphError(t, g.call(t, g.token, http.MethodPost, base, dupSubject), http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue")
	long := fic(1)
	long["name"] = strings.Repeat("a", 121)
	requireGraphError(t, g.call(t, g.token, http.MethodPost, base, long), http.StatusBadRequest, "Request_BadRequest")

	for i := 1; i < 20; i++ {
		require.Equal(t, http.StatusCreated, g.call(t, g.token, http.MethodPost, base, fic(i)).status)
	}
	requireGraphError(t, g.call(t, g.token, http.MethodPost, base, fic(20)), http.StatusBadRequest, "Request_BadRequest")

	r = g.call(t, g.token, http.MethodGet, base, nil)
	require.Len(t, values(t, r), 20)
	require.Equal(t, http.StatusOK, g.call(t, g.token, http.MethodGet, base+"/"+id, nil).status)
	require.Equal(t, http.StatusNoContent, g.call(t, g.token, http.MethodDelete, base+"/"+id, nil).status)
	requireGraphError(t, g.call(t, g.token, http.MethodDelete, base+"/"+id, nil), http.StatusNotFound, "Request_ResourceNotFound")
	requireGraphError(t, g.call(t, g.token, http.MethodPost, "/applications/"+g.foreignApp(t).ObjectID+"/federatedIdentityCredentials", fic(30)),
		http.StatusForbidden, "Authorization_RequestDenied")
}

// batchItems indexes a $batch answer by item id.
func batchItems(t *testing.T, r gresp) map[string]map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.raw)
	out := map[string]map[string]any{}
	for _, v := range r.body["responses"].([]any) {
		m := v.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

func TestGraphBatch(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	owned, foreign := g.ownedApp(t), g.foreignApp(t)
	end := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	json := map[string]string{"Content-Type": "application/json"}

	r := g.call(t, g.token, http.MethodPost, "/$batch", map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": "/applications/" + owned.ObjectID + "?$select=id"},
		map[string]any{"id": "2", "method": "POST", "url": "/applications/" + owned.ObjectID + "/addPassword",
			"headers": json, "body": map[string]any{"passwordCredential": map[string]any{"endDateTime": end}}},
		map[string]any{"id": "3", "method": "POST", "url": "/applications/" + foreign.ObjectID + "/addPassword",
			"headers": json, "body": map[string]any{"passwordCredential": map[string]any{"endDateTime": end}}},
		map[string]any{"id": "4", "method": "GET", "url": "/applications/" + owned.ObjectID, "dependsOn": []string{"3"}},
		map[string]any{"id": "5", "method": "POST", "url": "/applications/" + owned.ObjectID + "/addPassword",
			"body": map[string]any{}},
		map[string]any{"id": "6", "method": "GET", "url": "applications/$count", "headers": map[string]string{"ConsistencyLevel": "eventual"}},
	}})
	items := batchItems(t, r)
	require.Len(t, items, 6)
	require.EqualValues(t, 200, items["1"]["status"])
	require.Equal(t, owned.ObjectID, items["1"]["body"].(map[string]any)["id"])
	require.EqualValues(t, 200, items["2"]["status"])
	require.Len(t, items["2"]["body"].(map[string]any)["secretText"], 40)
	require.EqualValues(t, 403, items["3"]["status"])
	require.Equal(t, "Authorization_RequestDenied", items["3"]["body"].(map[string]any)["error"].(map[string]any)["code"])
	require.EqualValues(t, 424, items["4"]["status"], "a failed dependency is not run")
	require.EqualValues(t, 400, items["5"]["status"], "a body needs a Content-Type")
	require.EqualValues(t, 200, items["6"]["status"])

	var many []any
	for i := range 21 {
		many = append(many, map[string]any{"id": fmt.Sprint(i), "method": "GET", "url": "/applications"})
	}
	requireGraphError(t, g.call(t, g.token, http.MethodPost, "/$batch", map[string]any{"requests": many}), http.StatusBadRequest, "BadRequest")
	requireGraphError(t, g.call(t, g.token, http.MethodPost, "/$batch", map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": "/applications"},
		map[string]any{"id": "1", "method": "GET", "url": "/applications"},
	}}), http.StatusBadRequest, "BadRequest")
	requireGraphError(t, g.call(t, g.token, http.MethodPost, "/$batch", map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": "/applications", "dependsOn": []string{"2"}},
		map[string]any{"id": "2", "method": "GET", "url": "/applications", "dependsOn": []string{"1"}},
	}}), http.StatusBadRequest, "BadRequest")
	requireGraphError(t, g.call(t, g.token, http.MethodPost, "/$batch", map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": "/applications", "dependsOn": []string{"9"}},
	}}), http.StatusBadRequest, "BadRequest")
	requireGraphError(t, g.call(t, "", http.MethodPost, "/$batch", map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": "/applications"},
	}}), http.StatusUnauthorized, "InvalidAuthenticationToken")
}

func TestGraphBatchItemsAreThrottledOneByOne(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso", func(o *simtest.Options) {
		o.Faults = sim.FaultConfig{Throttle: true, ThrottleScale: 0.001} // about 3 resource units
	})
	owned := g.ownedApp(t)
	var reqs []any
	for i := range 10 {
		reqs = append(reqs, map[string]any{"id": fmt.Sprint(i), "method": "GET", "url": "/applications/" + owned.ObjectID})
	}
	items := batchItems(t, g.call(t, g.token, http.MethodPost, "/$batch", map[string]any{"requests": reqs}))
	var ok, throttled int
	for _, it := range items {
		switch it["status"].(float64) {
		case 200:
			ok++
		case 429:
			throttled++
			require.NotEmpty(t, it["headers"].(map[string]any)["Retry-After"])
		}
	}
	require.Positive(t, ok)
	require.Positive(t, throttled)
	require.Equal(t, 10, ok+throttled)
}

// A listing never carries certificate bodies, even with keyCredentials
// selected: only a GET of one application does.
func TestListingsCarryNoCertificateBodies(t *testing.T) {
	t.Parallel()
	g := graphSetup(t, "contoso")
	r := g.call(t, g.token, http.MethodGet, "/applications?$select=id,keyCredentials&$top=999", nil)
	require.Equal(t, http.StatusOK, r.status)
	seen := 0
	for _, v := range r.body["value"].([]any) {
		for _, k := range v.(map[string]any)["keyCredentials"].([]any) {
			km := k.(map[string]any)
			require.Nil(t, km["key"], "no key in a listing")
			require.NotEmpty(t, km["customKeyIdentifier"], "the thumbprint is listed")
			seen++
		}
	}
	require.NotZero(t, seen, "the demo seed has certificates")
}
