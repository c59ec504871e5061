package azure_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/azure/graph"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// simEnv is a running demo simulator, seen only through its sim.json.
type simEnv struct {
	sim     *simtest.Sim
	srv     *sim.Server
	simFile string
	info    *simfile.Info
	tenant  *simfile.Tenant
	ep      azure.Endpoints
}

func setupSim(t *testing.T, tenant string) *simEnv {
	t.Helper()
	s := simtest.Start(t, simtest.Options{Seed: "demo"})
	e := &simEnv{sim: s, srv: s.Server, simFile: s.File, info: s.Info, tenant: s.Tenant(t, tenant)}
	var err error
	e.ep, err = azure.ResolveEndpoints(azure.Sim, e.simFile)
	require.NoError(t, err)
	return e
}

func (e *simEnv) rotationConn() azure.Connection {
	return azure.Connection{
		Name: "rotation", TenantID: e.tenant.ID, Cloud: azure.Sim, SimFile: e.simFile,
		Identity: azure.Identity{Method: azure.ClientSecret, ClientID: e.tenant.Rotation.ClientID,
			ClientSecret: secret.New(e.tenant.Rotation.ClientSecret)},
	}
}

func (e *simEnv) graphClient(t *testing.T) *graph.Client {
	t.Helper()
	cred, err := azure.NewCredential(e.rotationConn(), e.ep)
	require.NoError(t, err)
	c, err := graph.New(cred, e.ep)
	require.NoError(t, err)
	return c
}

// ownedApp returns an application the rotation identity owns.
func (e *simEnv) ownedApp(t *testing.T, g *graph.Client, pick func(graph.Application) bool) graph.Application {
	t.Helper()
	objs, err := g.ListOwnedObjects(e.tenant.Rotation.ObjectID).Collect(t.Context())
	require.NoError(t, err)
	for _, o := range objs {
		if o.Application != nil && (pick == nil || pick(*o.Application)) {
			return *o.Application
		}
	}
	t.Fatal("no suitable owned application")
	return graph.Application{}
}

func TestSimVerifySecret(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	ctx := t.Context()
	require.NoError(t, azure.VerifySecret(ctx, e.ep, e.tenant.ID, e.tenant.Rotation.ClientID, secret.New(e.tenant.Rotation.ClientSecret)))

	const wrong = "definitely-not-the-secret"
	err := azure.VerifySecret(ctx, e.ep, e.tenant.ID, e.tenant.Rotation.ClientID, secret.New(wrong))
	var te *azure.TokenError
	require.ErrorAs(t, err, &te)
	require.Equal(t, azure.CodeInvalidClientSecret, te.Code)
	require.Equal(t, 401, te.Status)
	require.NotContains(t, err.Error(), wrong)
}

func TestSimKeyVault(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	require.NotEmpty(t, e.tenant.KeyVaults)
	cred, err := azure.NewCredential(e.rotationConn(), e.ep)
	require.NoError(t, err)
	kv, err := azure.NewSecretsClient(e.tenant.KeyVaults[0].URL, cred, e.ep)
	require.NoError(t, err)
	ctx := t.Context()

	// rotor's identity may set but not read values; the reads go through
	// the consumer identity, as an application reading its secret would.
	reader, err := azure.NewSecretsClient(e.tenant.KeyVaults[0].URL, e.sim.ConsumerCredential(t, e.tenant.ID), e.ep)
	require.NoError(t, err)

	set, err := kv.SetSecret(ctx, "app-client-secret", azsecrets.SetSecretParameters{
		Value: to.Ptr("v1-value"), ContentType: to.Ptr("text/plain"), Tags: map[string]*string{"managed-by": to.Ptr("rotor")},
	}, nil)
	require.NoError(t, err)
	require.NotNil(t, set.ID)
	got, err := reader.GetSecret(ctx, "app-client-secret", "", nil)
	require.NoError(t, err)
	require.Equal(t, "v1-value", *got.Value)
	require.Equal(t, "rotor", *got.Tags["managed-by"])

	_, err = kv.SetSecret(ctx, "app-client-secret", azsecrets.SetSecretParameters{Value: to.Ptr("v2-value")}, nil)
	require.NoError(t, err)
	got, err = reader.GetSecret(ctx, "app-client-secret", "", nil)
	require.NoError(t, err)
	require.Equal(t, "v2-value", *got.Value)
	require.Equal(t, "v1-value", func() string {
		v, err := reader.GetSecret(ctx, "app-client-secret", set.ID.Version(), nil)
		require.NoError(t, err)
		return *v.Value
	}())
}

func TestSimManagedIdentity(t *testing.T) {
	// Not parallel: managed identity is configured through the process
	// environment (t.Setenv), as App Service does it.
	e := setupSim(t, "contoso")
	t.Setenv("IDENTITY_ENDPOINT", e.ep.ManagedIdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", e.ep.ManagedIdentityHeader.Reveal())
	conn := azure.Connection{Name: "mi", Cloud: azure.Sim, SimFile: e.simFile, TenantID: e.tenant.ID,
		Identity: azure.Identity{Method: azure.ManagedIdentity}}
	cred, err := azure.NewCredential(conn, e.ep)
	require.NoError(t, err)
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{e.ep.GraphScope}})
	require.NoError(t, err)
	require.NotEmpty(t, tok.Token)

	t.Setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/elsewhere")
	_, err = azure.NewCredential(conn, e.ep)
	require.ErrorContains(t, err, "not the simulator's managed identity endpoint")
}

func TestSimCertificateCredential(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "fabrikam")
	g := e.graphClient(t)
	app := e.ownedApp(t, g, func(a graph.Application) bool { return len(a.KeyCredentials) == 0 })

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "rotor-cert"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	require.NoError(t, g.UpdateKeyCredentials(t.Context(), app.ID, []graph.KeyCredential{{Type: "AsymmetricX509Cert", Usage: "Verify", Key: der}}))

	p := filepath.Join(t.TempDir(), "app.pem")
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	require.NoError(t, os.WriteFile(p, data, 0o600))

	conn := azure.Connection{Name: "cert", TenantID: e.tenant.ID, Cloud: azure.Sim, SimFile: e.simFile,
		Identity: azure.Identity{Method: azure.Certificate, ClientID: app.AppID, CertificatePath: p}}
	cred, err := azure.NewCredential(conn, e.ep)
	require.NoError(t, err)
	// The new key is refused until the tenant's replication delay has
	// passed on the simulator's clock.
	e.sim.AdvancePastReplication(t, e.tenant.ID)
	_, err = cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{e.ep.GraphScope}})
	require.NoError(t, err)
}

func TestSimWorkloadIdentity(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	g := e.graphClient(t)
	app := e.ownedApp(t, g, nil)
	const issuer, subject = "https://oidc.example.test/cluster", "system:serviceaccount:rotor:rotor"
	_, err := g.AddFederatedCredential(t.Context(), app.ID, graph.FederatedIdentityCredential{Name: "k8s", Issuer: issuer, Subject: subject})
	require.NoError(t, err)

	assertion, err := e.srv.MintExternalToken(issuer, subject, "api://AzureADTokenExchange", time.Hour)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(assertion), 0o600))

	conn := azure.Connection{Name: "wi", TenantID: e.tenant.ID, Cloud: azure.Sim, SimFile: e.simFile,
		Identity: azure.Identity{Method: azure.WorkloadIdentity, ClientID: app.AppID, FederatedTokenFile: file}}
	cred, err := azure.NewCredential(conn, e.ep)
	require.NoError(t, err)
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{e.ep.GraphScope}})
	require.NoError(t, err)
	require.NotEmpty(t, tok.Token)
}
