package keyvault

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim/core"
)

func TestVaultByHost(t *testing.T) {
	t.Parallel()
	s := &Service{}
	c, err := core.New(core.Options{StateDir: t.TempDir(), Seed: "apps=1,tenants=2"}, s)
	require.NoError(t, err)
	require.NoError(t, c.Start(t.Context()))
	t.Cleanup(func() { _ = c.Close() })
	for _, tn := range c.Info().Tenants {
		u, err := url.Parse(tn.KeyVaults[0].URL)
		require.NoError(t, err)
		for _, host := range []string{u.Host, "localhost:" + u.Port(), "[::1]:" + u.Port()} {
			v := s.vaultByHost(host)
			require.NotNil(t, v, host)
			require.Equal(t, tn.KeyVaults[0].Name, v.Name)
			require.Equal(t, tn.ID, v.TenantID)
		}
	}
	require.Nil(t, s.vaultByHost("127.0.0.1:1"))
	require.Nil(t, s.vaultByHost("garbage"))
	mainURL, err := url.Parse(c.Info().AuthorityHost)
	require.NoError(t, err)
	require.Nil(t, s.vaultByHost(mainURL.Host), "the main listener is no vault")
}
