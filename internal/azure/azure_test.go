package azure

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/simfile"
)

func TestParseCloud(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Cloud{
		"public": Public, "AzureCloud": Public, "": Public, "usgov": USGov, "AzureUSGovernment": USGov,
		"china": China, "AzureChinaCloud": China, "sim": Sim, " SIM ": Sim,
	} {
		got, err := ParseCloud(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := ParseCloud("mars")
	require.ErrorContains(t, err, "unknown cloud")
}

func TestResolveEndpointsRealClouds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cloud                           Cloud
		authority, graph, arm, kvSuffix string
	}{
		{Public, "https://login.microsoftonline.com/", "https://graph.microsoft.com", "https://management.azure.com", "vault.azure.net"},
		{USGov, "https://login.microsoftonline.us/", "https://graph.microsoft.us", "https://management.usgovcloudapi.net", "vault.usgovcloudapi.net"},
		{China, "https://login.chinacloudapi.cn/", "https://microsoftgraph.chinacloudapi.cn", "https://management.chinacloudapi.cn", "vault.azure.cn"},
	}
	for _, tc := range tests {
		ep, err := ResolveEndpoints(tc.cloud, "")
		require.NoError(t, err)
		require.Equal(t, tc.authority, ep.AuthorityHost)
		require.Equal(t, tc.graph+"/v1.0", ep.GraphURL)
		require.Equal(t, tc.graph+"/.default", ep.GraphScope)
		require.Equal(t, tc.arm, ep.ARMURL)
		require.Equal(t, tc.arm+"/.default", ep.ARMScope)
		require.Equal(t, "https://"+tc.kvSuffix+"/.default", ep.KeyVaultScope)
		require.Equal(t, tc.kvSuffix, ep.KeyVaultSuffix)
		require.Nil(t, ep.HTTPClient)
		require.False(t, ep.DisableChallengeResourceVerification)
		require.Equal(t, tc.arm, ep.CloudConfiguration().Services["resourceManager"].Endpoint)
	}
	_, err := ResolveEndpoints("mars", "")
	require.Error(t, err)
	_, err = ResolveEndpoints(Sim, "")
	require.ErrorContains(t, err, "sim.json")
}

// writeCA writes a throwaway CA certificate and returns its path.
func writeCA(t *testing.T, dir string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	p := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return p
}

func TestResolveEndpointsSim(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	info := &simfile.Info{
		AuthorityHost: "https://127.0.0.1:8443", GraphURL: "https://127.0.0.1:8443/graph/v1.0/",
		GraphAudience: "https://graph.microsoft.com", ARMURL: "https://127.0.0.1:8443/arm/", ARMAudience: "https://management.azure.com/",
		KeyVaultAudience: "https://vault.azure.net", CAFile: writeCA(t, dir),
		ManagedIdentityEndpoint: "http://127.0.0.1:9000/msi/token", ManagedIdentityHeader: "hdr",
	}
	require.NoError(t, simfile.Write(dir, info))
	ep, err := ResolveEndpoints(Sim, filepath.Join(dir, simfile.FileName))
	require.NoError(t, err)
	require.Equal(t, "https://127.0.0.1:8443/", ep.AuthorityHost)
	require.Equal(t, "https://127.0.0.1:8443/graph/v1.0", ep.GraphURL)
	require.Equal(t, "https://graph.microsoft.com/.default", ep.GraphScope)
	require.Equal(t, "https://127.0.0.1:8443/arm", ep.ARMURL)
	require.Equal(t, "https://management.azure.com/.default", ep.ARMScope)
	require.Equal(t, "https://vault.azure.net/.default", ep.KeyVaultScope)
	require.NotNil(t, ep.HTTPClient)
	require.True(t, ep.DisableChallengeResourceVerification)
	require.True(t, ep.DisableInstanceDiscovery)
	require.Equal(t, "hdr", ep.ManagedIdentityHeader.Reveal())
	tr := ep.HTTPClient.Transport.(*http.Transport)
	require.Nil(t, tr.Proxy, "simulator traffic never goes through a proxy")
	require.NotNil(t, tr.TLSClientConfig.RootCAs)

	require.NoError(t, os.WriteFile(info.CAFile, []byte("not pem"), 0o600))
	_, err = ResolveEndpoints(Sim, filepath.Join(dir, simfile.FileName))
	require.ErrorContains(t, err, "no PEM")
}

func TestClientOptions(t *testing.T) {
	t.Parallel()
	o := ClientOptions(Endpoints{AuthorityHost: "https://a/"})
	require.Nil(t, o.Transport, "nil client must not become a non-nil interface")
	require.EqualValues(t, 6, o.Retry.MaxRetries)
	require.Equal(t, 800*time.Millisecond, o.Retry.RetryDelay)
	require.Equal(t, 60*time.Second, o.Retry.MaxRetryDelay)
	require.ElementsMatch(t, []int{408, 429, 500, 502, 503, 504}, o.Retry.StatusCodes)
	hc := &http.Client{}
	require.Same(t, hc, ClientOptions(Endpoints{HTTPClient: hc}).Transport)
}

func TestNewCredentialErrors(t *testing.T) {
	t.Parallel()
	ep, err := ResolveEndpoints(Public, "")
	require.NoError(t, err)
	const sec = "super-secret-value-123"
	base := func() Connection {
		return Connection{Name: "prod", TenantID: "contoso.onmicrosoft.com", Cloud: Public,
			Identity: Identity{Method: ClientSecret, ClientID: "cid", ClientSecret: secret.New(sec)}}
	}
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("nope"), 0o600))
	tests := []struct {
		name  string
		tweak func(*Connection)
		want  string
	}{
		{"missing secret", func(c *Connection) { c.Identity.ClientSecret = secret.Value{} }, `connection "prod": client_secret is empty`},
		{"missing client id", func(c *Connection) { c.Identity.ClientID = "" }, "client_id is empty"},
		{"missing tenant", func(c *Connection) { c.TenantID = "" }, "tenant_id is empty"},
		{"bad tenant", func(c *Connection) { c.TenantID = "a/b" }, "not a valid tenant"},
		{"bad auxiliary tenant", func(c *Connection) { c.AuxiliaryTenants = []string{"x y"} }, "auxiliary tenant"},
		{"no method", func(c *Connection) { c.Identity.Method = "" }, "method is empty"},
		{"unknown method", func(c *Connection) { c.Identity.Method = "kerberos" }, "unknown identity method"},
		{"certificate path empty", func(c *Connection) { c.Identity.Method = Certificate }, "certificate_path is empty"},
		{"certificate missing", func(c *Connection) {
			c.Identity.Method, c.Identity.CertificatePath = Certificate, filepath.Join(dir, "none.pem")
		}, "read certificate"},
		{"certificate garbage", func(c *Connection) {
			c.Identity.Method, c.Identity.CertificatePath = Certificate, garbage
			c.Identity.CertificatePassword = secret.New(sec)
		}, "garbage.pem"},
		{"workload without token file", func(c *Connection) {
			c.Identity.Method = WorkloadIdentity
		}, "federated_token_file is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "workload without token file" && os.Getenv("AZURE_FEDERATED_TOKEN_FILE") != "" {
				t.Skip("AZURE_FEDERATED_TOKEN_FILE is set in this environment")
			}
			c := base()
			tc.tweak(&c)
			_, err := NewCredential(c, ep)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), sec)
		})
	}
	cred, err := NewCredential(base(), ep)
	require.NoError(t, err)
	require.NotNil(t, cred)
}

func TestNewCredentialCertificate(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	var pemData []byte
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	p := filepath.Join(t.TempDir(), "app.pem")
	require.NoError(t, os.WriteFile(p, pemData, 0o600))
	ep, _ := ResolveEndpoints(Public, "")
	cred, err := NewCredential(Connection{Name: "c", TenantID: "t1", Cloud: Public,
		Identity: Identity{Method: Certificate, ClientID: "cid", CertificatePath: p}}, ep)
	require.NoError(t, err)
	require.NotNil(t, cred)

	// A certificate without its key is refused with a clear message.
	certOnly := filepath.Join(t.TempDir(), "cert.pem")
	require.NoError(t, os.WriteFile(certOnly, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	_, err = NewCredential(Connection{Name: "c", TenantID: "t1", Cloud: Public,
		Identity: Identity{Method: Certificate, ClientID: "cid", CertificatePath: certOnly}}, ep)
	require.Error(t, err)
}

// fakeEntra is a minimal token endpoint: enough for MSAL's discovery and a
// client credentials request, answering with a chosen AADSTS error.
type fakeEntra struct {
	srv      *httptest.Server
	failCode atomic.Int64 // 0 = succeed
}

func newFakeEntra(t *testing.T) *fakeEntra {
	f := &fakeEntra{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		base := f.srv.URL + "/" + r.PathValue("tenant")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"issuer":                 base + "/v2.0",
		})
	})
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if code := f.failCode.Load(); code != 0 {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"error":             "invalid_client",
				"error_description": fmt.Sprintf("AADSTS%d: Invalid client secret provided.\r\nTrace ID: x\r\nCorrelation ID: y", code),
				"error_codes":       []int64{code},
			})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": "tok"})
	})
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEntra) endpoints() Endpoints {
	return Endpoints{Cloud: Sim, AuthorityHost: f.srv.URL + "/", GraphScope: "https://graph.microsoft.com/.default",
		HTTPClient: f.srv.Client(), DisableInstanceDiscovery: true}
}

func TestVerifySecret(t *testing.T) {
	t.Parallel()
	f := newFakeEntra(t)
	ep := f.endpoints()
	const sec = "the-new-secret-value"

	require.NoError(t, VerifySecret(t.Context(), ep, "tenant1", "client1", secret.New(sec)))

	f.failCode.Store(CodeInvalidClientSecret)
	err := VerifySecret(t.Context(), ep, "tenant1", "client1", secret.New(sec))
	require.True(t, IsReplicationPending(err))
	var te *TokenError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 401, te.Status)
	require.Equal(t, "invalid_client", te.OAuthError)
	require.Equal(t, "AADSTS7000215: Invalid client secret provided.", te.Description)
	require.NotContains(t, err.Error(), sec)
	require.Contains(t, err.Error(), "AADSTS7000215")

	f.failCode.Store(CodeSecretExpired)
	err = VerifySecret(t.Context(), ep, "tenant1", "client1", secret.New(sec))
	require.False(t, IsReplicationPending(err))
	require.ErrorAs(t, err, &te)
	require.Equal(t, CodeSecretExpired, te.Code)

	err = VerifySecret(t.Context(), ep, "tenant1", "client1", secret.Value{})
	require.ErrorAs(t, err, &te)
	require.False(t, IsReplicationPending(err))
}

func TestParseAADSTS(t *testing.T) {
	t.Parallel()
	require.Equal(t, 7000215, parseAADSTS("AADSTS7000215: Invalid"))
	require.Equal(t, 70011, parseAADSTS("x AADSTS70011"))
	require.Zero(t, parseAADSTS("nothing"))
	require.False(t, strings.Contains((&TokenError{ClientID: "c", TenantID: "t"}).Error(), "AADSTS"))
}

func TestNewSecretsClient(t *testing.T) {
	t.Parallel()
	_, err := NewSecretsClient("http://127.0.0.1/", nil, Endpoints{})
	require.Error(t, err)
}
