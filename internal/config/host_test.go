package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
)

func TestHostIdentity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		host    map[string]any
		wantErr string
		check   func(t *testing.T, c *Connection)
	}{
		{"NotSet", nil, "", func(t *testing.T, c *Connection) { require.Nil(t, c) }},
		{"SystemAssignedManagedIdentityNeedsNoTenant", map[string]any{"managed_identity": true}, "", func(t *testing.T, c *Connection) {
			require.Equal(t, azure.ManagedIdentity, c.Identity.Method)
			require.Equal(t, azure.Public, c.Cloud)
			require.Equal(t, HostIdentityName, c.Name)
		}},
		{"ClientSecretOnTheSimulator", map[string]any{
			"cloud": "sim", "sim_file": "./sim/sim.json", "tenant_id": "contoso", "client_id": clientID,
			"client_secret": map[string]any{"env": secretName},
		}, "", func(t *testing.T, c *Connection) {
			require.Equal(t, tenantID, c.TenantID, "the simulator's tenant name becomes its id")
			require.Equal(t, theSecret, c.Identity.ClientSecret.Reveal())
		}},
		{"ItsOwnSecretCannotBeInKeyVault", map[string]any{
			"tenant_id": tenantID, "client_id": clientID,
			"client_secret": map[string]any{"keyvault": map[string]any{"vault_url": vaultURL, "secret": "host"}},
		}, "host_identity's own secret cannot be a Key Vault reference", nil},
		{"ClientSecretNeedsATenant", map[string]any{"client_id": clientID, "client_secret": map[string]any{"env": secretName}},
			"host_identity: tenant_id is missing", nil},
		{"UnknownKey", map[string]any{"managed_identity": true, "purpose": "read"}, `unknown key "purpose"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := base()
			if tc.host != nil {
				m["host_identity"] = tc.host
			}
			cfg, err := b.parse(t, m)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, cfg.HostIdentity)
		})
	}
}
