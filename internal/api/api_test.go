package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/server"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
)

const (
	orgA = domain.OrgID("org-a")
	orgB = domain.OrgID("org-b")
	// appsPerTenant is each organization's inventory: 250, so that pages
	// of 100 make three.
	appsPerTenant = 250
)

// bundle is rotor serving its HTTP handler over httptest: organization
// org-a provisioned by rotor.yaml on the simulator's first tenant, org-b
// provisioned (as another rotor.yaml would) on its second, each synced
// with 250 applications, one rotation run and an API key; rotor's API
// registered in the first tenant with client applications holding its app
// roles, whose tokens Microsoft's azidentity gets from the simulator.
type bundle struct {
	ctx     context.Context
	sim     *simtest.Sim
	srv     *server.Server
	url     string
	http    *http.Client
	uri     string
	api     *sim.API
	tenantA simfile.Tenant
	tenantB simfile.Tenant
	clients map[string]*sim.Client
	// keys are admin API keys of each organization; runs one run of each.
	keys map[domain.OrgID]string
	runs map[domain.OrgID]string
	// keyIDs are the ids of those keys.
	keyIDs map[domain.OrgID]string
}

// App roles of rotor's API registration, bound in rotor.yaml.
const (
	roleAdmin    = "Rotor.Admin"
	roleOperator = "Rotor.Operator"
	roleViewer   = "Rotor.Viewer"
	roleBAdmin   = "Rotor.B.Admin"
)

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := simtest.Start(t, simtest.Options{Seed: fmt.Sprintf("apps=%d,tenants=2,expiring=720h,replication=0s", appsPerTenant)})
	b := &bundle{ctx: ctx, sim: st, tenantA: st.Info.Tenants[0], tenantB: st.Info.Tenants[1], clients: map[string]*sim.Client{},
		keys: map[domain.OrgID]string{}, runs: map[domain.OrgID]string{}, keyIDs: map[domain.OrgID]string{}}

	b.uri = "api://rotor-test"
	var err error
	b.api, err = st.Server.RegisterAPI(b.tenantA.ID, sim.APISpec{Name: "rotor-api", IdentifierURI: b.uri, Roles: []string{roleAdmin, roleOperator, roleViewer, roleBAdmin}})
	require.NoError(t, err)
	for name, roles := range map[string][]string{"admin": {roleAdmin}, "operator": {roleOperator}, "viewer": {roleViewer}, "b-admin": {roleBAdmin}, "none": nil} {
		c, err := st.Server.AddClient(b.tenantA.ID, sim.ClientSpec{Name: "client-" + name, API: b.api.AppID, Roles: roles})
		require.NoError(t, err)
		b.clients[name] = c
	}

	dir := t.TempDir()
	cfg := fmt.Sprintf(`organization: org-a
data_dir: %q
connections:
  - name: a-conn
    cloud: sim
    sim_file: %q
    tenant_id: %q
    client_id: %q
    client_secret: {env: SECRET_A}
policies:
  - name: a-policy
    connection: a-conn
    applications: {all_owned: true}
    lifetime: 30d
    renew_before: 10d
    overlap: 1h
api_auth:
  rate_limit: {requests_per_second: 1000, burst: 1000}
  entra:
    cloud: sim
    sim_file: %q
    tenants: [%q]
    app_id_uri: %q
    client_id: %q
    roles:
      - {app_role: %s, organization: org-a, role: admin}
      - {app_role: %s, organization: org-a, role: operator}
      - {app_role: %s, organization: org-a, role: viewer}
      - {app_role: %s, organization: org-b, role: admin}
`, filepath.Join(dir, "data"), st.File, b.tenantA.ID, b.tenantA.Rotation.ClientID, st.File, b.tenantA.ID, b.uri, b.api.AppID,
		roleAdmin, roleOperator, roleViewer, roleBAdmin)
	path := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	env := map[string]string{"SECRET_A": b.tenantA.Rotation.ClientSecret, "SECRET_B": b.tenantB.Rotation.ClientSecret}
	b.srv, err = server.Open(ctx, path, server.Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(k string) string { return env[k] }, Process: "api-test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.srv.Close() })

	// org-b, as its own rotor.yaml would provision it.
	s := b.srv.Store()
	require.NoError(t, s.EnsureOrg(ctx, orgB, "Org B"))
	_, err = s.Provision(ctx, store.ProvisionParams{Org: orgB, Name: "Org B", Source: filepath.Join(dir, "org-b.yaml"),
		Connections: []store.Connection{{
			Org: orgB, Name: "b-conn", TenantID: b.tenantB.ID, Cloud: "sim", SimFile: st.File, Purpose: "rotation",
			Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: b.tenantB.Rotation.ClientID,
				ClientSecret: &store.SecretRef{Kind: store.SecretEnv, Env: "SECRET_B"}},
		}},
		Policies: []domain.Policy{{
			Name: "b-policy", Connection: "b-conn", Selector: domain.Selector{AllOwned: true}, Enabled: true, Kind: domain.KindSecret,
			Lifetime: 30 * 24 * time.Hour, RenewBefore: 10 * 24 * time.Hour, Overlap: time.Hour, Verify: true,
		}},
	})
	require.NoError(t, err)

	svc := b.srv.App()
	for _, org := range []domain.OrgID{orgA, orgB} {
		sys := app.Scope{Org: org, Actor: app.CLI}
		_, err := svc.Sync(ctx, sys, nil)
		require.NoError(t, err, "sync %s", org)
		page, err := svc.ListApplicationsPage(ctx, sys, app.ApplicationFilter{ManageableOnly: true}, app.ApplicationPageRequest{Limit: 1})
		require.NoError(t, err)
		require.Len(t, page.Rows, 1)
		res, err := svc.Rotate(ctx, sys, []string{page.Rows[0].ObjectID}, nil)
		require.NoError(t, err, "rotate in %s", org)
		b.runs[org] = res[0].RunID
		k, err := svc.CreateAPIKey(ctx, sys, app.NewAPIKey{Name: "admin-" + string(org), Role: app.RoleAdmin})
		require.NoError(t, err)
		b.keys[org], b.keyIDs[org] = k.Key.Reveal(), k.ID
	}

	h, err := b.srv.HTTPHandler(ctx, false)
	require.NoError(t, err)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	b.url, b.http = hs.URL, hs.Client()
	return b
}

// token gets a client credentials token for rotor's API with azidentity.
func (b *bundle) token(t *testing.T, client string) string {
	t.Helper()
	c := b.clients[client]
	cred, err := azidentity.NewClientSecretCredential(b.tenantA.ID, c.AppID, c.Secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: b.sim.ClientOptions, DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	tok, err := cred.GetToken(b.ctx, policy.TokenRequestOptions{Scopes: []string{b.uri + "/.default"}})
	require.NoError(t, err)
	return tok.Token
}

// response is an answer, its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

// do sends method path (with query) and body (JSON, when not nil) with the
// bearer credential (none when empty).
func (b *bundle) do(t *testing.T, cred, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(t, err)
		rd = strings.NewReader(string(data))
	}
	req, err := http.NewRequestWithContext(b.ctx, method, b.url+path, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	resp, err := b.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// requireProblem checks an RFC 9457 answer: the status, the media type,
// and the members every problem has.
func requireProblem(t *testing.T, r response, status int, code string, msgAndArgs ...any) map[string]any {
	t.Helper()
	require.Equal(t, status, r.status, append(msgAndArgs, string(r.body))...)
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"), msgAndArgs...)
	p := r.json(t)
	require.Equal(t, "about:blank", p["type"], msgAndArgs...)
	require.Equal(t, http.StatusText(status), p["title"], msgAndArgs...)
	require.EqualValues(t, status, p["status"], msgAndArgs...)
	require.NotEmpty(t, p["detail"], msgAndArgs...)
	if code != "" {
		require.Equal(t, code, p["code"], msgAndArgs...)
	}
	return p
}

// forge re-signs a genuine token's claims, changed by tweak, with key
// (the simulator's own when nil) under kid.
func (b *bundle) forge(t *testing.T, genuine string, method jwt.SigningMethod, key any, tweak func(jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{}
	_, _, err := jwt.NewParser().ParseUnverified(genuine, c)
	require.NoError(t, err)
	if tweak != nil {
		tweak(c)
	}
	if key == nil {
		key = b.sim.Server.SigningKey()
	}
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = b.sim.Server.KeyID()
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func TestAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	admin := b.token(t, "admin")

	t.Run("HostileTokensGet401", func(t *testing.T) {
		now := time.Now()
		claims := func() jwt.MapClaims {
			c := jwt.MapClaims{}
			_, _, err := jwt.NewParser().ParseUnverified(admin, c)
			require.NoError(t, err)
			return c
		}
		body, err := json.Marshal(claims())
		require.NoError(t, err)
		algNone := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+b.sim.Server.KeyID()+`"}`)) + "." +
			base64.RawURLEncoding.EncodeToString(body) + "."
		// An API of the same tenant whose tokens are genuine, and not
		// for rotor.
		other, err := b.sim.Server.RegisterAPI(b.tenantA.ID, sim.APISpec{Name: "other-api", IdentifierURI: "api://not-rotor", Roles: []string{roleAdmin}})
		require.NoError(t, err)
		oc, err := b.sim.Server.AddClient(b.tenantA.ID, sim.ClientSpec{Name: "other-client", API: other.AppID, Roles: []string{roleAdmin}})
		require.NoError(t, err)
		cred, err := azidentity.NewClientSecretCredential(b.tenantA.ID, oc.AppID, oc.Secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: b.sim.ClientOptions, DisableInstanceDiscovery: true})
		require.NoError(t, err)
		otherTok, err := cred.GetToken(b.ctx, policy.TokenRequestOptions{Scopes: []string{"api://not-rotor/.default"}})
		require.NoError(t, err)

		for _, c := range []struct {
			name, token, reason string
		}{
			{"NoToken", "", "missing"},
			{"Garbage", "not-a-token", "malformed"},
			{"AlgNone", algNone, "algorithm"},
			{"HS256", b.forge(t, admin, jwt.SigningMethodHS256, []byte("public-key-as-hmac-secret"), nil), "algorithm"},
			{"WrongKey", b.forge(t, admin, jwt.SigningMethodRS256, simtest.RSAKey(1), nil), "signature"},
			{"WrongIssuer", b.forge(t, admin, jwt.SigningMethodRS256, nil, func(c jwt.MapClaims) {
				c["iss"], c["tid"] = sim.StsIssuer(b.tenantB.ID), b.tenantB.ID
			}), "issuer"},
			{"Expired", b.forge(t, admin, jwt.SigningMethodRS256, nil, func(c jwt.MapClaims) {
				c["nbf"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
			}), "expired"},
			{"WrongAudienceForged", b.forge(t, admin, jwt.SigningMethodRS256, nil, func(c jwt.MapClaims) { c["aud"] = "api://someone-else" }), "audience"},
			{"WrongAudienceGenuine", otherTok.Token, "audience"},
			{"TamperedRoles", strings.Join([]string{strings.Split(b.token(t, "viewer"), ".")[0], strings.Split(admin, ".")[1], strings.Split(b.token(t, "viewer"), ".")[2]}, "."), "signature"},
			{"UnknownAPIKey", "rtr_org-a_aaaaaaaaaaaaaaaa_" + strings.Repeat("a", 52), ""},
		} {
			for _, path := range []string{"/api/v1/orgs/org-a/applications", "/api/v1/orgs/org-a/applications/x/rotate", "/api/v1/whoami", "/api/v1/no-such-route"} {
				method := http.MethodGet
				if strings.HasSuffix(path, "/rotate") {
					method = http.MethodPost
				}
				r := b.do(t, c.token, method, path, nil)
				p := requireProblem(t, r, http.StatusUnauthorized, "", "%s %s", c.name, path)
				ch := r.header.Get("WWW-Authenticate")
				require.True(t, strings.HasPrefix(ch, `Bearer realm="rotor"`), "%s: %s", c.name, ch)
				if c.reason != "" {
					require.Equal(t, c.reason, p["reason"], c.name)
				}
				if c.token != "" {
					require.Contains(t, ch, `error="invalid_token"`, c.name)
					require.NotContains(t, string(r.body), c.token, "%s: the token is not echoed", c.name)
				}
			}
		}
		// A genuine token for rotor without a bound role: 403, not 401.
		r := b.do(t, b.token(t, "none"), http.MethodGet, "/api/v1/orgs/org-a/applications", nil)
		requireProblem(t, r, http.StatusForbidden, "insufficient_scope")
		// A token in the URL is refused, never used.
		r = b.do(t, "", http.MethodGet, "/api/v1/orgs/org-a/applications?access_token="+url.QueryEscape(admin), nil)
		requireProblem(t, r, http.StatusBadRequest, "invalid_request")
	})

	t.Run("DocumentIsPublic", func(t *testing.T) {
		r := b.do(t, "", http.MethodGet, "/api/v1/openapi.json", nil)
		require.Equal(t, http.StatusOK, r.status)
		doc := r.json(t)
		require.Equal(t, "3.1.0", doc["openapi"])
		require.NotContains(t, string(r.body), b.tenantA.ID, "the document holds no data")
		requireProblem(t, b.do(t, "", http.MethodGet, "/api/v1/openapi.yaml", nil), http.StatusUnauthorized, "", "only the JSON document is public")
	})

	t.Run("Roles", func(t *testing.T) {
		viewer, operator := b.token(t, "viewer"), b.token(t, "operator")
		ref := b.firstApp(t, admin, orgA)
		r := b.do(t, viewer, http.MethodGet, "/api/v1/orgs/org-a/applications?limit=1", nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		p := requireProblem(t, b.do(t, viewer, http.MethodPost, "/api/v1/orgs/org-a/applications/"+ref+"/rotate", nil), http.StatusForbidden, "denied")
		require.Contains(t, p["detail"], "role viewer does not permit it")
		requireProblem(t, b.do(t, viewer, http.MethodGet, "/api/v1/orgs/org-a/api-keys", nil), http.StatusForbidden, "denied")
		requireProblem(t, b.do(t, operator, http.MethodGet, "/api/v1/orgs/org-a/api-keys", nil), http.StatusForbidden, "denied")

		r = b.do(t, operator, http.MethodPost, "/api/v1/orgs/org-a/applications/"+ref+"/rotate", nil)
		require.Equal(t, http.StatusAccepted, r.status, string(r.body))
		require.Equal(t, "queued", r.json(t)["status"])

		// The audit trail names the token and the request.
		r = b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/audit?order=newest&action=rotate&limit=5", nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var recs struct{ Items []map[string]any }
		require.NoError(t, json.Unmarshal(r.body, &recs))
		require.NotEmpty(t, recs.Items)
		var outcomes []string
		for _, rec := range recs.Items {
			actor := rec["actor"].(map[string]any)
			if actor["kind"] == "token" {
				outcomes = append(outcomes, rec["outcome"].(string))
				require.NotEmpty(t, rec["request_id"])
			}
		}
		require.Contains(t, outcomes, "ok")
		require.Contains(t, outcomes, "denied")

		w := b.do(t, viewer, http.MethodGet, "/api/v1/whoami", nil).json(t)
		require.Equal(t, map[string]any{"org-a": "viewer"}, w["organizations"])
		require.Equal(t, "entra", w["method"])
	})

	t.Run("APIKeys", func(t *testing.T) {
		r := b.do(t, admin, http.MethodPost, "/api/v1/orgs/org-a/api-keys", map[string]any{"name": "ci", "role": "viewer", "expires": "1d"})
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		created := r.json(t)
		key := created["key"].(string)
		require.True(t, strings.HasPrefix(key, "rtr_org-a_"))
		list := b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/api-keys", nil)
		require.Equal(t, http.StatusOK, list.status)
		require.Contains(t, string(list.body), created["id"])
		require.NotContains(t, string(list.body), key, "the key is shown once")

		require.Equal(t, http.StatusOK, b.do(t, key, http.MethodGet, "/api/v1/orgs/org-a/plan", nil).status)
		requireProblem(t, b.do(t, key, http.MethodPost, "/api/v1/orgs/org-a/applications/"+b.firstApp(t, admin, orgA)+"/rotate", nil), http.StatusForbidden, "denied")
		requireProblem(t, b.do(t, key, http.MethodGet, "/api/v1/orgs/org-b/plan", nil), http.StatusNotFound, "not_found", "a key is scoped to its organization")

		requireProblem(t, b.do(t, admin, http.MethodPost, "/api/v1/orgs/org-a/api-keys", map[string]any{"name": "x", "role": "owner"}), http.StatusUnprocessableEntity, "invalid")
		requireProblem(t, b.do(t, admin, http.MethodPost, "/api/v1/orgs/org-a/api-keys", map[string]any{"name": "x", "role": "viewer", "expires": "1000d"}), http.StatusBadRequest, "invalid")

		r = b.do(t, admin, http.MethodDelete, "/api/v1/orgs/org-a/api-keys/"+created["id"].(string), nil)
		require.Equal(t, http.StatusNoContent, r.status, string(r.body))
		p := requireProblem(t, b.do(t, key, http.MethodGet, "/api/v1/orgs/org-a/plan", nil), http.StatusUnauthorized, "invalid_token")
		require.Equal(t, "revoked", p["reason"])
	})

	t.Run("Problems", func(t *testing.T) {
		p := requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/applications/no-such-app", nil), http.StatusNotFound, "not_found")
		require.Equal(t, `no application "no-such-app"`, p["detail"])
		requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/runs/no-such-run", nil), http.StatusNotFound, "not_found")
		p = requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/applications?limit=0", nil), http.StatusUnprocessableEntity, "invalid")
		require.NotEmpty(t, p["errors"], "a validation problem lists each invalid parameter")
		requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/applications?cursor=garbage", nil), http.StatusBadRequest, "invalid")
		requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/applications?expiring_within=soon", nil), http.StatusBadRequest, "invalid")
		requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/runs?state=sleeping", nil), http.StatusUnprocessableEntity, "invalid")
		requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/no-such-route", nil), http.StatusNotFound, "not_found")
		requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/orgs/no-such-org/plan", nil), http.StatusNotFound, "not_found")
		r := b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/plan", nil)
		require.NotEmpty(t, r.header.Get("X-Request-ID"))
	})

	t.Run("PagesNeitherSkipNorRepeat", func(t *testing.T) {
		all := b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/applications?limit=1000", nil)
		require.Equal(t, http.StatusOK, all.status)
		var one struct {
			Items []struct {
				ObjectID string `json:"object_id"`
			}
			NextCursor string `json:"next_cursor"`
		}
		require.NoError(t, json.Unmarshal(all.body, &one))
		require.GreaterOrEqual(t, len(one.Items), appsPerTenant)
		require.Empty(t, one.NextCursor)
		var want []string
		for _, it := range one.Items {
			want = append(want, it.ObjectID)
		}
		for _, sort := range []string{"name", "expiry"} {
			var got []string
			pages := 0
			next := ""
			for {
				q := url.Values{"limit": {"100"}, "sort": {sort}}
				if next != "" {
					q.Set("cursor", next)
				}
				r := b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/applications?"+q.Encode(), nil)
				require.Equal(t, http.StatusOK, r.status, string(r.body))
				var page struct {
					Items []struct {
						ObjectID    string    `json:"object_id"`
						EarliestEnd time.Time `json:"earliest_end"`
					}
					NextCursor string `json:"next_cursor"`
				}
				require.NoError(t, json.Unmarshal(r.body, &page))
				pages++
				for i, it := range page.Items {
					got = append(got, it.ObjectID)
					if sort == "expiry" && i > 0 && !it.EarliestEnd.IsZero() && !page.Items[i-1].EarliestEnd.IsZero() {
						require.False(t, it.EarliestEnd.Before(page.Items[i-1].EarliestEnd), "soonest first")
					}
				}
				if page.NextCursor == "" {
					break
				}
				require.Len(t, page.Items, 100)
				next = page.NextCursor
			}
			require.Equal(t, (len(want)+99)/100, pages, sort)
			if sort == "name" {
				require.Equal(t, want, got, "pages by name are the whole listing, in order")
			} else {
				require.ElementsMatch(t, want, got, "pages by expiry neither skip nor repeat")
			}
		}
		// The plan pages too, by name: the same applications as in one page.
		planIDs := func(limit string) (ids []string, pages int) {
			next := ""
			for {
				q := url.Values{"limit": {limit}}
				if next != "" {
					q.Set("cursor", next)
				}
				r := b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/plan?"+q.Encode(), nil)
				require.Equal(t, http.StatusOK, r.status, string(r.body))
				var page struct {
					Items []struct {
						Application struct {
							ObjectID string `json:"object_id"`
						} `json:"application"`
					}
					NextCursor string `json:"next_cursor"`
				}
				require.NoError(t, json.Unmarshal(r.body, &page))
				pages++
				for _, it := range page.Items {
					ids = append(ids, it.Application.ObjectID)
				}
				if page.NextCursor == "" {
					return ids, pages
				}
				next = page.NextCursor
			}
		}
		whole, _ := planIDs("1000")
		require.NotEmpty(t, whole)
		paged, pages := planIDs("2")
		require.Equal(t, whole, paged)
		require.Equal(t, (len(whole)+1)/2, pages)
		requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/plan?cursor=garbage", nil), http.StatusBadRequest, "invalid")
		// Runs page too.
		r := b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/runs?limit=1", nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
	})

	t.Run("VaultPickerIsAnOperators", func(t *testing.T) {
		base := "/api/v1/orgs/org-a/connections/a-conn/vaults"
		requireProblem(t, b.do(t, b.token(t, "viewer"), http.MethodGet, base, nil), http.StatusForbidden, "denied")
		r := b.do(t, b.token(t, "operator"), http.MethodGet, base, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		items := r.json(t)["items"].([]any)
		require.Len(t, items, 1)
		v := items[0].(map[string]any)
		require.Equal(t, b.tenantA.KeyVaults[0].URL, v["url"])
		require.Equal(t, "rg-rotor", v["resource_group"])
		r = b.do(t, b.token(t, "operator"), http.MethodGet, base+"/secrets?vault="+url.QueryEscape(b.tenantA.KeyVaults[0].URL), nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		require.Equal(t, []any{}, r.json(t)["items"])
		// A URL the identity does not see is never called: 404.
		requireProblem(t, b.do(t, b.token(t, "operator"), http.MethodGet, base+"/secrets?vault="+url.QueryEscape("https://169.254.169.254/"), nil),
			http.StatusNotFound, "not_found")
		requireProblem(t, b.do(t, b.token(t, "operator"), http.MethodGet, base+"/secrets", nil), http.StatusUnprocessableEntity, "")
	})

	t.Run("ApplicationSettings", func(t *testing.T) {
		sys := app.Scope{Org: orgA, Actor: app.CLI}
		ref := b.runsApp(t, sys)
		path := "/api/v1/orgs/org-a/applications/" + ref + "/settings"
		operator, viewer := b.token(t, "operator"), b.token(t, "viewer")

		r := b.do(t, viewer, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		got := r.json(t)
		require.Equal(t, "a-policy", got["policy"])
		require.Equal(t, map[string]any{"value": "30d", "source": "policy", "policy": "30d"}, got["lifetime"])

		requireProblem(t, b.do(t, viewer, http.MethodPut, path, map[string]any{"lifetime": "7d"}), http.StatusForbidden, "denied")
		requireProblem(t, b.do(t, operator, http.MethodPut, path, map[string]any{"lifetime": "soon"}), http.StatusBadRequest, "invalid")
		p := requireProblem(t, b.do(t, operator, http.MethodPut, path, map[string]any{"lifetime": "7d"}), http.StatusBadRequest, "invalid")
		require.Contains(t, p["detail"], "renew_before", "the policy's 10d is not shorter than 7d")

		r = b.do(t, operator, http.MethodPut, path, map[string]any{"lifetime": "7d", "renew_before": "36h", "enabled": false})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		got = r.json(t)
		require.Equal(t, map[string]any{"value": "7d", "source": "application", "policy": "30d"}, got["lifetime"])
		require.Equal(t, "false", got["enabled"].(map[string]any)["value"])
		require.Equal(t, "policy", got["overlap"].(map[string]any)["source"])

		ex := b.do(t, viewer, http.MethodGet, "/api/v1/orgs/org-a/applications/"+ref+"/explain", nil)
		require.Contains(t, string(ex.body), "lifetime 7d (this application's setting; policy says 30d)")

		// Clear: everything inherits again.
		r = b.do(t, operator, http.MethodPut, path, map[string]any{})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		require.Equal(t, "policy", r.json(t)["lifetime"].(map[string]any)["source"])

		r = b.do(t, operator, http.MethodPost, "/api/v1/orgs/org-a/applications/"+ref+"/sinks/test", nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		require.Equal(t, []any{}, r.json(t)["sinks"], "a-policy has no sinks")
		requireProblem(t, b.do(t, viewer, http.MethodPost, "/api/v1/orgs/org-a/applications/"+ref+"/sinks/test", nil), http.StatusForbidden, "denied")
	})

	t.Run("OrganizationsAreIsolated", func(t *testing.T) { b.walkIsolation(t, admin) })
}

// firstApp is the object id of the first manageable application of org.
func (b *bundle) firstApp(t *testing.T, cred string, org domain.OrgID) string {
	t.Helper()
	r := b.do(t, cred, http.MethodGet, "/api/v1/orgs/"+string(org)+"/applications?manageable=true&limit=1", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var page struct {
		Items []struct {
			ObjectID string `json:"object_id"`
		}
	}
	require.NoError(t, json.Unmarshal(r.body, &page))
	require.Len(t, page.Items, 1)
	return page.Items[0].ObjectID
}

// operation is one operation of the OpenAPI document.
type operation struct {
	method, path string
	hasBody      bool
}

func (b *bundle) operations(t *testing.T) []operation {
	t.Helper()
	r := b.do(t, "", http.MethodGet, "/api/v1/openapi.json", nil)
	require.Equal(t, http.StatusOK, r.status)
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody *struct{ Required bool } `json:"requestBody"`
		}
	}
	require.NoError(t, json.Unmarshal(r.body, &doc))
	var ops []operation
	for p, methods := range doc.Paths {
		for m, op := range methods {
			ops = append(ops, operation{method: strings.ToUpper(m), path: p, hasBody: op.RequestBody != nil})
		}
	}
	slices.SortFunc(ops, func(x, y operation) int { return strings.Compare(x.path+x.method, y.path+y.method) })
	require.Greater(t, len(ops), 20)
	return ops
}

// walkIsolation takes every operation of the OpenAPI document and calls
// it as a member of org-a (an admin: no role check stands in the way)
// with org-b's objects: org-b itself is 404 on every route, org-b's
// object ids are 404 in org-a on every route that names an object, and no
// listing of org-a shows anything of org-b. org-b's own admin key sees the
// same objects, so the ids are real.
func (b *bundle) walkIsolation(t *testing.T, admin string) {
	svc := b.srv.App()
	sysB := app.Scope{Org: orgB, Actor: app.CLI}
	appsB, err := svc.ListApplications(b.ctx, sysB, app.ApplicationFilter{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(appsB), appsPerTenant)
	// Everything of org-b that org-a must never show.
	secretsOfB := []string{b.tenantB.ID, "b-conn", "b-policy", b.runs[orgB], b.keyIDs[orgB]}
	for _, a := range appsB {
		secretsOfB = append(secretsOfB, a.ObjectID, a.AppID)
	}
	refB := b.runsApp(t, sysB)
	params := map[string]string{"ref": refB, "sink": "0"}
	objectOf := func(op operation) (map[string]string, bool) {
		vals := map[string]string{}
		named := false
		for _, seg := range strings.Split(op.path, "/") {
			if !strings.HasPrefix(seg, "{") {
				continue
			}
			name := strings.Trim(seg, "{}")
			switch {
			case name == "org":
				continue
			case name == "id" && strings.Contains(op.path, "/runs/"):
				vals[name] = b.runs[orgB]
			case name == "id" && strings.Contains(op.path, "/api-keys/"):
				vals[name] = b.keyIDs[orgB]
			case name == "name" && strings.Contains(op.path, "/policies/"):
				vals[name] = "b-policy"
			case name == "name" && strings.Contains(op.path, "/connections/"):
				vals[name] = "b-conn"
			case name == "type" && strings.Contains(op.path, "/sinks/"):
				vals[name] = "keyvault" // a sink type: no organization's object
				continue
			case params[name] != "":
				vals[name] = params[name]
			default:
				t.Fatalf("%s %s: the isolation walk does not know path parameter {%s}: give it an object of org-b", op.method, op.path, name)
			}
			named = named || name != "sink"
		}
		return vals, named
	}
	fill := func(path string, org domain.OrgID, vals map[string]string) string {
		path = strings.ReplaceAll(path, "{org}", string(org))
		for k, v := range vals {
			path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
		}
		if strings.HasSuffix(path, "/vaults/secrets") { // its required query names org-b's vault
			path += "?vault=" + url.QueryEscape(b.tenantB.KeyVaults[0].URL)
		}
		return path
	}
	body := func(op operation) any {
		if op.hasBody && strings.HasSuffix(op.path, "/settings") {
			return map[string]any{"lifetime": "30d"}
		}
		if op.hasBody && strings.HasSuffix(op.path, "/discover") {
			return map[string]any{}
		}
		if op.hasBody {
			return map[string]any{"name": "walk", "role": "viewer"}
		}
		return nil
	}
	// Listings first: once org-a's members have named org-b's ids, org-a's
	// audit trail records the names they gave (application:ID), which is
	// their own input, not org-b's data.
	ops := b.operations(t)
	walked := map[string]bool{}
	for _, op := range ops {
		name := op.method + " " + op.path
		if !strings.Contains(op.path, "{org}") {
			// Not an organization's route (whoami): it names none of
			// org-b's.
			r := b.do(t, admin, op.method, op.path, body(op))
			if op.path == "/api/v1/login-config" {
				// This rotor offers the CLI no sign-in: a problem, naming no one's data.
				require.Equal(t, http.StatusNotFound, r.status, name)
			} else {
				require.Equal(t, http.StatusOK, r.status, name)
			}
			require.NotContains(t, string(r.body), string(orgB), name)
			walked[name] = true
			continue
		}
		vals, namesObject := objectOf(op)
		// org-b's own admin reaches the object (GETs only: nothing
		// changes): the ids are real.
		if op.method == http.MethodGet {
			r := b.do(t, b.keys[orgB], op.method, fill(op.path, orgB, vals), nil)
			require.Less(t, r.status, 300, "%s as org-b's admin: %s", name, r.body)
		}
		// org-b, named by a member of org-a: 404, as for no organization.
		r := b.do(t, admin, op.method, fill(op.path, orgB, vals), body(op))
		p := requireProblem(t, r, http.StatusNotFound, "not_found", "%s in org-b", name)
		require.Equal(t, `no organization "org-b"`, p["detail"], name)
		if namesObject {
			continue
		}
		// org-a's own listings: nothing of org-b's.
		r = b.do(t, admin, op.method, fill(op.path, orgA, vals), body(op))
		require.Less(t, r.status, 300, "%s: %s", name, r.body)
		for _, s := range secretsOfB {
			require.NotContains(t, string(r.body), s, "%s in org-a shows org-b's %s", name, s)
		}
		walked[name] = true
	}
	// A picker acting as org-b's connection, asked for in org-a: 404.
	r := b.do(t, admin, http.MethodPost, "/api/v1/orgs/org-a/sinks/keyvault/discover", map[string]any{"connection": "b-conn", "key": "vault_url"})
	requireProblem(t, r, http.StatusNotFound, "not_found", "discover as org-b's connection")

	r = b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/audit?run="+b.runs[orgB], nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, []any{}, r.json(t)["items"], "org-a's trail has nothing of org-b's run")

	for _, op := range ops {
		vals, namesObject := objectOf(op)
		if !namesObject {
			continue
		}
		// org-b's objects, asked for in org-a: 404.
		name := op.method + " " + op.path
		r := b.do(t, admin, op.method, fill(op.path, orgA, vals), body(op))
		p := requireProblem(t, r, http.StatusNotFound, "not_found", "%s in org-a with org-b's object", name)
		require.NotContains(t, p["detail"], "no such route", name)
		walked[name] = true
	}
	require.Len(t, walked, len(ops), "every operation walked")

	// A filter naming org-b's application is 404 in org-a too.
	requireProblem(t, b.do(t, admin, http.MethodGet, "/api/v1/orgs/org-a/runs?application="+refB, nil), http.StatusNotFound, "not_found")
}

// runsApp is the object id of the application of org-b's run.
func (b *bundle) runsApp(t *testing.T, sys app.Scope) string {
	t.Helper()
	r, err := b.srv.App().GetRun(b.ctx, sys, b.runs[sys.Org])
	require.NoError(t, err)
	return r.AppObjectID
}
