package sim_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// env is what a test against a running simulator needs.
type env struct {
	sim    *simtest.Sim
	srv    *sim.Server
	info   *simfile.Info
	dir    string
	http   *http.Client // trusts the simulator's CA
	client azcore.ClientOptions
}

// setup starts a simulator through simtest (which reads sim.json back, as
// any client would). Its Graph and Key Vault clients do not retry, so a
// refusal shows up as the answer it is.
func setup(t *testing.T, tweak ...func(*simtest.Options)) *env {
	t.Helper()
	var opts simtest.Options
	for _, f := range tweak {
		f(&opts)
	}
	s := simtest.Start(t, opts)
	hc := &http.Client{Transport: s.HTTP.Transport, Timeout: 10 * time.Second}
	client := s.ClientOptions
	client.Transport = hc
	client.Retry = policy.RetryOptions{MaxRetries: -1}
	return &env{sim: s, srv: s.Server, info: s.Info, dir: s.Dir, http: hc, client: client}
}

// advance moves the simulator's clock forward by d.
func (e *env) advance(t *testing.T, d time.Duration) {
	t.Helper()
	e.sim.AdvanceClock(d)
}

func (e *env) tenant(t *testing.T, name string) *simfile.Tenant {
	t.Helper()
	tn, ok := e.info.Tenant(name)
	require.True(t, ok, "tenant %s", name)
	return tn
}

// tokenRequest posts a raw token request and returns status and JSON body.
func (e *env) tokenRequest(t *testing.T, tenant string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := e.http.PostForm(e.info.AuthorityHost+tenant+"/oauth2/v2.0/token", form)
	require.NoError(t, err)
	return decodeBody(t, resp)
}

func (e *env) do(t *testing.T, method, url string, body any, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Do(req)
	require.NoError(t, err)
	return decodeBody(t, resp)
}

func (e *env) admin() map[string]string {
	return map[string]string{"Authorization": "Bearer " + e.srv.AdminToken()}
}

func decodeBody(t *testing.T, resp *http.Response) (int, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &m), "body: %s", b)
	}
	return resp.StatusCode, m
}

// claimsOf decodes a JWT's payload without verifying it.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func secretForm(tn *simfile.Tenant, scope string) url.Values {
	return url.Values{
		"grant_type": {"client_credentials"}, "client_id": {tn.Rotation.ClientID},
		"client_secret": {tn.Rotation.ClientSecret}, "scope": {scope},
	}
}

func TestStartWritesSimJSON(t *testing.T) {
	t.Parallel()
	e := setup(t)
	info := e.info

	require.True(t, strings.HasPrefix(info.AuthorityHost, "https://127.0.0.1:"))
	require.True(t, strings.HasSuffix(info.AuthorityHost, "/"))
	require.Equal(t, info.AuthorityHost+"graph/v1.0", info.GraphURL)
	require.Equal(t, info.AuthorityHost+"arm/", info.ARMURL)
	require.Equal(t, "https://graph.microsoft.com", info.GraphAudience)
	require.Equal(t, "https://management.azure.com", info.ARMAudience)
	require.Equal(t, "https://vault.azure.net", info.KeyVaultAudience)
	require.True(t, strings.HasPrefix(info.ManagedIdentityEndpoint, "http://127.0.0.1:"))
	require.True(t, strings.HasSuffix(info.ManagedIdentityEndpoint, "/msi/token"))
	require.NotEmpty(t, info.ManagedIdentityHeader)
	require.True(t, filepath.IsAbs(info.CAFile))
	require.Equal(t, info.AuthorityHost+"_sim/", info.ControlURL)
	require.Equal(t, info, e.srv.Info())

	st, err := os.Stat(info.CAFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	leftovers, err := filepath.Glob(filepath.Join(e.dir, ".*.tmp-*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "atomic writes leave no temp files")
	st, err = os.Stat(filepath.Join(e.dir, "admin-token"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	tokFile, err := os.ReadFile(filepath.Join(e.dir, "admin-token"))
	require.NoError(t, err)
	require.Equal(t, e.srv.AdminToken(), strings.TrimSpace(string(tokFile)))
	raw, err := os.ReadFile(filepath.Join(e.dir, simfile.FileName))
	require.NoError(t, err)
	require.NotContains(t, string(raw), e.srv.AdminToken(), "sim.json must not hand out the admin token")

	require.Len(t, info.Tenants, 2)
	contoso, fabrikam := e.tenant(t, "contoso"), e.tenant(t, "fabrikam")
	require.Equal(t, "contoso.onmicrosoft.com", contoso.Domain)
	require.Equal(t, "2160h0m0s", contoso.PasswordLifetimeLimit)
	require.Empty(t, fabrikam.PasswordLifetimeLimit)
	for _, tn := range info.Tenants {
		require.NotEmpty(t, tn.ID)
		require.NotEmpty(t, tn.Rotation.ClientID)
		require.Len(t, tn.Rotation.ClientSecret, 40)
		require.NotEmpty(t, tn.Rotation.ObjectID)
		require.NotEmpty(t, tn.Rotation.AppObjectID)
		require.NotEqual(t, tn.Rotation.ObjectID, tn.Rotation.AppObjectID)
		require.NotNil(t, tn.ManagedIdentity)
		require.Len(t, tn.KeyVaults, 1)
		require.Equal(t, "kv-"+tn.Name, tn.KeyVaults[0].Name)
		u, err := url.Parse(tn.KeyVaults[0].URL)
		require.NoError(t, err)
		require.Equal(t, "https", u.Scheme)
		require.Equal(t, "127.0.0.1", u.Hostname())
		require.Equal(t, "/", u.Path, "azsecrets needs the vault at the host root")
		require.NotEqual(t, info.AuthorityHost, tn.KeyVaults[0].URL)
	}
}

func TestTLSServesLoopbackNames(t *testing.T) {
	t.Parallel()
	e := setup(t)
	u, err := url.Parse(e.info.AuthorityHost)
	require.NoError(t, err)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := e.http.Get("https://" + host + ":" + u.Port() + "/" + e.info.Tenants[0].ID + "/v2.0/.well-known/openid-configuration")
		require.NoError(t, err, host)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
}

func TestARMAnswersNotFoundInARMShape(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tn := e.info.Tenants[0]
	tok, err := e.srv.MintToken(tn.ID, tn.Rotation.ClientID, e.info.ARMAudience+"/")
	require.NoError(t, err)
	status, body := e.do(t, http.MethodGet, e.info.ARMURL+"subscriptions?api-version=2022-12-01", nil,
		map[string]string{"Authorization": "Bearer " + tok})
	require.Equal(t, http.StatusNotFound, status)
	errObj, _ := body["error"].(map[string]any)
	require.NotEmpty(t, errObj["code"])
	require.NotEmpty(t, errObj["message"])
}

// TestARMRefusesBadTokens checks ARM's 401 shapes: a missing header, a
// token for another audience, and a token whose header has no kid.
func TestARMRefusesBadTokens(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tn := e.info.Tenants[0]
	graphTok, err := e.srv.MintToken(tn.ID, tn.Rotation.ClientID, e.info.GraphAudience)
	require.NoError(t, err)
	armTok, err := e.srv.MintToken(tn.ID, tn.Rotation.ClientID, e.info.ARMAudience)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, auth, code, msg string
	}{
		{"no header", "", "AuthenticationFailed", "header is missing"},
		{"graph token", "Bearer " + graphTok, "InvalidAuthenticationToken", "Invalid audience"},
		{"no kid", "Bearer " + withoutKid(t, armTok), "InvalidAuthenticationToken", "no kid"},
	} {
		hdr := map[string]string{}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		status, body := e.do(t, http.MethodGet, e.info.ARMURL+"subscriptions?api-version=2022-12-01", nil, hdr)
		require.Equal(t, http.StatusUnauthorized, status, tc.name)
		errObj, _ := body["error"].(map[string]any)
		require.Equal(t, tc.code, errObj["code"], tc.name)
		require.Contains(t, errObj["message"], tc.msg, tc.name)
	}
}

// withoutKid rewrites a token's header without kid, keeping its payload
// and signature: the signature no longer matches, but the simulator must
// refuse it for the missing kid before it gets that far.
func withoutKid(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(b, &h))
	delete(h, "kid")
	b, err = json.Marshal(h)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b) + "." + parts[1] + "." + parts[2]
}

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]sim.Options{
		"no state dir": {},
		"bad seed":     {StateDir: t.TempDir(), Seed: "apps=lots"},
		"bad faults":   {StateDir: t.TempDir(), Faults: sim.FaultConfig{ErrorRate: 2}},
	} {
		_, err := sim.New(opts)
		require.Error(t, err, name)
	}
}

func TestCloseIsIdempotentAndStopsServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := sim.New(sim.Options{StateDir: dir, Seed: "apps=1"})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	require.Error(t, srv.Start(t.Context()), "a second Start is refused")
	addr := srv.Info().AuthorityHost
	require.NoError(t, srv.Close())
	require.NoError(t, srv.Close())
	<-srv.Done()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // only checks the port is closed
	_, err = c.Get(addr)
	require.Error(t, err)
}
