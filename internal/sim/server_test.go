package sim_test

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
)

func TestStartWritesSimJSON(t *testing.T) {
	t.Parallel()
	e := simtest.StartEnv(t)
	info := e.Info

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
	require.Equal(t, info, e.Server.Info())

	st, err := os.Stat(info.CAFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	leftovers, err := filepath.Glob(filepath.Join(e.Dir, ".*.tmp-*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "atomic writes leave no temp files")
	st, err = os.Stat(filepath.Join(e.Dir, "admin-token"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	tokFile, err := os.ReadFile(filepath.Join(e.Dir, "admin-token"))
	require.NoError(t, err)
	require.Equal(t, e.Server.AdminToken(), strings.TrimSpace(string(tokFile)))
	raw, err := os.ReadFile(filepath.Join(e.Dir, simfile.FileName))
	require.NoError(t, err)
	require.NotContains(t, string(raw), e.Server.AdminToken(), "sim.json must not hand out the admin token")

	require.Len(t, info.Tenants, 2)
	contoso, fabrikam := e.Tenant(t, "contoso"), e.Tenant(t, "fabrikam")
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
		require.Len(t, tn.KeyVaults, 2) // rotor's vault and one it cannot see
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
	e := simtest.StartEnv(t)
	u, err := url.Parse(e.Info.AuthorityHost)
	require.NoError(t, err)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := e.Client.Get("https://" + host + ":" + u.Port() + "/" + e.Info.Tenants[0].ID + "/v2.0/.well-known/openid-configuration")
		require.NoError(t, err, host)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
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
