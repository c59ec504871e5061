package graph_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// simEnv is a running simulator and a Graph client for one of its tenants,
// configured only from sim.json (plus admin-token for the control API).
type simEnv struct {
	sim     *simtest.Sim
	srv     *sim.Server
	dir     string
	simFile string
	info    *simfile.Info
	tenant  *simfile.Tenant
	ep      azure.Endpoints
	client  *graph.Client
}

func setupSim(t testing.TB, tenant string, tweak ...func(*simtest.Options)) *simEnv {
	t.Helper()
	opts := simtest.Options{Seed: "demo"}
	for _, f := range tweak {
		f(&opts)
	}
	s := simtest.Start(t, opts)
	e := &simEnv{sim: s, srv: s.Server, dir: s.Dir, simFile: s.File, info: s.Info, tenant: s.Tenant(t, tenant)}
	var err error
	e.ep, err = azure.ResolveEndpoints(azure.Sim, e.simFile)
	require.NoError(t, err)
	e.client = e.clientFor(t, e.tenant.Rotation.ClientID, secret.New(e.tenant.Rotation.ClientSecret))
	return e
}

func (e *simEnv) connection(clientID string, s secret.Value) azure.Connection {
	return azure.Connection{
		Name: "sim-" + e.tenant.Name, TenantID: e.tenant.ID, Cloud: azure.Sim, SimFile: e.simFile,
		Identity: azure.Identity{Method: azure.ClientSecret, ClientID: clientID, ClientSecret: s},
	}
}

func (e *simEnv) clientFor(t testing.TB, clientID string, s secret.Value) *graph.Client {
	t.Helper()
	cred, err := azure.NewCredential(e.connection(clientID, s), e.ep)
	require.NoError(t, err)
	c, err := graph.New(cred, e.ep)
	require.NoError(t, err)
	return c
}

// control calls the simulator's /_sim/ API with the admin token.
func (e *simEnv) control(t testing.TB, method, path string, body, out any) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(e.dir, "admin-token"))
	require.NoError(t, err)
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(e.info.ControlURL, "/")+"/"+strings.TrimPrefix(path, "/"), rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.ep.HTTPClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "control %s %s", method, path)
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
}

type simStats struct {
	Throttled          int64 `json:"throttled"`
	InjectedErrors     int64 `json:"injected_errors"`
	DroppedConnections int64 `json:"dropped_connections"`
}

func (e *simEnv) stats(t testing.TB) simStats {
	var s simStats
	e.control(t, http.MethodGet, "stats", nil, &s)
	return s
}

// ownedApps lists what the rotation identity owns, as rotor discovers it.
func (e *simEnv) ownedApps(t testing.TB) []graph.Application {
	t.Helper()
	objs, err := e.client.ListOwnedObjects(e.tenant.Rotation.ObjectID).Collect(t.Context())
	require.NoError(t, err)
	var apps []graph.Application
	for _, o := range objs {
		if o.Application != nil {
			apps = append(apps, *o.Application)
		}
	}
	require.NotEmpty(t, apps)
	return apps
}

func TestSimListApplicationsPageByPage(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	ctx := t.Context()

	all, err := e.client.ListApplications(graph.ListOptions{Top: 999}).Collect(ctx)
	require.NoError(t, err)
	require.Greater(t, len(all), 10)

	const top = 7
	p := e.client.ListApplications(graph.ListOptions{Top: top, Select: []string{"id", "appId", "displayName", "passwordCredentials", "keyCredentials"}})
	seen := map[string]bool{}
	for p.More() {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), top)
		for _, a := range page {
			require.NotEmpty(t, a.AppID)
			require.False(t, seen[a.ID], "app %s listed twice", a.ID)
			seen[a.ID] = true
			for _, pc := range a.PasswordCredentials {
				require.NotEmpty(t, pc.KeyID)
				require.True(t, pc.SecretText.IsZero(), "listing never reveals secrets")
			}
		}
	}
	require.Len(t, seen, len(all))
	require.Equal(t, (len(all)+top-1)/top, p.PageCount())

	a, err := e.client.GetApplicationByAppID(ctx, all[0].AppID, []string{"id", "appId"})
	require.NoError(t, err)
	require.Equal(t, all[0].ID, a.ID)
	sp, err := e.client.GetServicePrincipalByAppID(ctx, e.tenant.Rotation.ClientID)
	require.NoError(t, err)
	require.Equal(t, e.tenant.Rotation.ObjectID, sp.ID)
	_, err = e.client.GetApplication(ctx, "00000000-0000-0000-0000-000000000000", nil)
	require.True(t, graph.IsNotFound(err), "%v", err)
}

func TestSimRotateSecret(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso", func(o *simtest.Options) {
		d := 2 * time.Second
		o.ReplicationDelay = &d
	})
	ctx := t.Context()
	app := e.ownedApps(t)[0]

	owners, err := e.client.ListOwners(ctx, app.ID)
	require.NoError(t, err)
	require.Contains(t, ownerIDs(owners), e.tenant.Rotation.ObjectID)

	pc, err := e.client.AddPassword(ctx, app.ID, graph.AddPasswordRequest{
		DisplayName: "rotor:test-run", EndDateTime: time.Now().Add(30 * 24 * time.Hour),
	})
	require.NoError(t, err)
	require.False(t, pc.SecretText.IsZero())
	require.Equal(t, pc.SecretText.Hint(), pc.Hint)
	require.NotContains(t, fmt.Sprintf("%v", pc), pc.SecretText.Reveal())

	// Entra's replication delay: 7000215 at first, then, once the delay
	// has passed on the simulator's clock, the token comes.
	sawPending := false
	err = azure.VerifySecret(ctx, e.ep, e.tenant.ID, app.AppID, pc.SecretText)
	if err != nil {
		require.True(t, azure.IsReplicationPending(err), "unexpected verify failure: %v", err)
		require.NotContains(t, err.Error(), pc.SecretText.Reveal())
		sawPending = true
	}
	require.True(t, sawPending, "the simulator should delay a new secret")
	e.sim.AdvanceClock(2*time.Second + time.Millisecond)
	require.NoError(t, azure.VerifySecret(ctx, e.ep, e.tenant.ID, app.AppID, pc.SecretText), "secret never replicated")

	got, err := e.client.GetApplication(ctx, app.ID, []string{"id", "passwordCredentials"})
	require.NoError(t, err)
	var found bool
	for _, c := range got.PasswordCredentials {
		if c.KeyID == pc.KeyID {
			found = true
			require.Equal(t, "rotor:test-run", c.DisplayName)
			require.True(t, c.SecretText.IsZero())
		}
	}
	require.True(t, found)

	require.NoError(t, e.client.RemovePassword(ctx, app.ID, pc.KeyID))
	require.NoError(t, e.client.RemovePassword(ctx, app.ID, pc.KeyID), "removing twice is fine")
	err = azure.VerifySecret(ctx, e.ep, e.tenant.ID, app.AppID, pc.SecretText)
	var te *azure.TokenError
	require.ErrorAs(t, err, &te)
	require.NotZero(t, te.Code)
}

func ownerIDs(objs []graph.DirectoryObject) []string {
	var ids []string
	for _, o := range objs {
		ids = append(ids, o.ID)
	}
	return ids
}

func TestSimForbiddenOnAppNotOwned(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	ctx := t.Context()
	owned := map[string]bool{}
	for _, a := range e.ownedApps(t) {
		owned[a.ID] = true
	}
	all, err := e.client.ListApplications(graph.ListOptions{Top: 999, Select: []string{"id", "appId"}}).Collect(ctx)
	require.NoError(t, err)
	var victim string
	for _, a := range all {
		if !owned[a.ID] && a.ID != e.tenant.Rotation.AppObjectID {
			victim = a.ID
			break
		}
	}
	require.NotEmpty(t, victim, "the demo has apps rotor does not own")
	_, err = e.client.AddPassword(ctx, victim, graph.AddPasswordRequest{EndDateTime: time.Now().Add(24 * time.Hour)})
	require.True(t, graph.IsForbidden(err), "%v", err)
	var ge *graph.Error
	require.ErrorAs(t, err, &ge)
	require.NotEmpty(t, ge.RequestID)
	require.NotEmpty(t, ge.ClientRequestID)
}

func TestSimPolicyViolation(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	require.NotEmpty(t, e.tenant.PasswordLifetimeLimit, "contoso has a password lifetime policy")
	app := e.ownedApps(t)[0]
	_, err := e.client.AddPassword(t.Context(), app.ID, graph.AddPasswordRequest{
		DisplayName: "rotor:too-long", EndDateTime: time.Now().Add(2 * 365 * 24 * time.Hour),
	})
	require.True(t, graph.IsPolicyViolation(err), "%v", err)
	require.False(t, graph.IsForbidden(err))
}

func TestSimSurvivesThrottling(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	ctx := t.Context()
	app := e.ownedApps(t)[0]
	e.control(t, http.MethodPut, "faults", map[string]any{"throttle": true, "throttle_scale": 0.005}, nil)

	before := e.client.Requests()
	const calls = 30
	for i := range calls {
		_, err := e.client.GetApplication(ctx, app.ID, []string{"id", "displayName"})
		require.NoError(t, err, "call %d", i)
	}
	require.Positive(t, e.stats(t).Throttled, "the simulator throttled")
	require.Greater(t, e.client.Requests()-before, int64(calls), "429s were retried")
}

func TestSimSurvivesErrorsAndDroppedConnections(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "fabrikam")
	ctx := t.Context()
	app := e.ownedApps(t)[0]
	e.control(t, http.MethodPut, "faults", map[string]any{"error_rate": 0.2, "drop_rate": 0.1}, nil)

	before := e.client.Requests()
	for i := range 15 {
		_, err := e.client.GetApplication(ctx, app.ID, []string{"id"})
		require.NoError(t, err, "call %d", i)
	}
	all, err := e.client.ListApplications(graph.ListOptions{Top: 10, Select: []string{"id"}}).Collect(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, all)
	st := e.stats(t)
	require.Positive(t, st.InjectedErrors+st.DroppedConnections)
	require.Greater(t, e.client.Requests()-before, int64(15))

	// A fresh credential's token request is retried through the faults too.
	c := e.clientFor(t, e.tenant.Rotation.ClientID, secret.New(e.tenant.Rotation.ClientSecret))
	_, err = c.GetApplication(ctx, app.ID, []string{"id"})
	require.NoError(t, err)
}

func TestSimBatch(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	apps := e.ownedApps(t)
	var reqs []graph.BatchRequest
	for i, a := range apps {
		if i == graph.MaxBatchRequests-1 {
			break
		}
		reqs = append(reqs, graph.BatchRequest{ID: fmt.Sprint(i), Method: "GET", URL: "/applications/" + a.ID + "?$select=id,appId"})
	}
	reqs = append(reqs, graph.BatchRequest{ID: "missing", Method: "GET", URL: "/applications/00000000-0000-0000-0000-000000000000"})
	res, err := e.client.Batch(t.Context(), reqs)
	require.NoError(t, err)
	require.Len(t, res, len(reqs))
	for i, r := range res[:len(res)-1] {
		require.NoError(t, r.Err())
		var a graph.Application
		require.NoError(t, json.Unmarshal(r.Body, &a))
		require.Equal(t, apps[i].ID, a.ID)
	}
	require.True(t, graph.IsNotFound(res[len(res)-1].Err()))
}

func TestSimCertificateRotationWithProof(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "fabrikam")
	ctx := t.Context()
	var app graph.Application
	for _, a := range e.ownedApps(t) {
		if len(a.KeyCredentials) == 0 {
			app = a
			break
		}
	}
	require.NotEmpty(t, app.ID, "an owned app without certificates")

	now := time.Now()
	key1, cert1 := newCert(t, "first", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	// No valid certificate yet: the first one goes in with PATCH.
	require.NoError(t, e.client.UpdateKeyCredentials(ctx, app.ID, []graph.KeyCredential{{
		Type: "AsymmetricX509Cert", Usage: "Verify", Key: cert1.Raw, DisplayName: "rotor:first",
	}}))

	// The next one with addKey, proving possession of the first.
	_, cert2 := newCert(t, "second", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	proof, err := graph.ProofOfPossession(app.ID, key1, cert1, time.Now())
	require.NoError(t, err)
	added, err := e.client.AddKey(ctx, app.ID, graph.KeyCredential{Key: cert2.Raw, DisplayName: "rotor:second"}, proof)
	require.NoError(t, err)
	require.NotEmpty(t, added.KeyID)

	// A proof signed by the wrong key is refused.
	other, _ := newCert(t, "other", now.Add(-time.Hour), now.Add(time.Hour))
	bad, err := graph.ProofOfPossession(app.ID, other, cert1, time.Now())
	require.Error(t, err, "key and certificate do not match")
	require.Empty(t, bad)

	got, err := e.client.GetApplication(ctx, app.ID, []string{"id", "keyCredentials"})
	require.NoError(t, err)
	require.Len(t, got.KeyCredentials, 2)
	var firstID string
	for _, k := range got.KeyCredentials {
		if k.KeyID != added.KeyID {
			firstID = k.KeyID
		}
	}
	proof, err = graph.ProofOfPossession(app.ID, key1, cert1, time.Now())
	require.NoError(t, err)
	require.NoError(t, e.client.RemoveKey(ctx, app.ID, firstID, proof))
	got, err = e.client.GetApplication(ctx, app.ID, []string{"id", "keyCredentials"})
	require.NoError(t, err)
	require.Len(t, got.KeyCredentials, 1)
	require.Equal(t, added.KeyID, got.KeyCredentials[0].KeyID)
}

func newCert(t *testing.T, cn string, from, to time.Time) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, cert
}

func TestSimFederatedCredentials(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	ctx := t.Context()
	app := e.ownedApps(t)[0]
	fic, err := e.client.AddFederatedCredential(ctx, app.ID, graph.FederatedIdentityCredential{
		Name: "github-main", Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:rotor-dev/rotor:ref:refs/heads/main",
	})
	require.NoError(t, err)
	require.NotEmpty(t, fic.ID)
	fics, err := e.client.ListFederatedCredentials(ctx, app.ID)
	require.NoError(t, err)
	require.Len(t, fics, 1)
	require.Equal(t, []string{"api://AzureADTokenExchange"}, fics[0].Audiences)
}
