package azure_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/sim"
)

// putSecret stores a secret version straight into a simulated vault.
func (e *simEnv) putSecret(t *testing.T, vault, name, value string, tags map[string]string) {
	t.Helper()
	now := e.sim.Now()
	e.srv.World().Update(func() {
		v := e.srv.World().TenantLocked(e.tenant.ID).Vaults[vault]
		require.NotNil(t, v)
		v.Secrets[name] = &sim.VaultSecret{Name: name, Versions: []*sim.SecretVersion{{
			Version: "v1", Value: value, Tags: tags, Enabled: true, Created: now, Updated: now,
		}}}
	})
}

func TestSimListVaultsSeesOnlyReadableVaults(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	cred, err := azure.NewCredential(e.rotationConn(), e.ep)
	require.NoError(t, err)

	vaults, err := azure.ListVaults(t.Context(), cred, azure.ClientOptions(e.ep))
	require.NoError(t, err)
	require.Len(t, vaults, 1, "kv-contoso-finance is in the same subscription but the identity has no role on it")
	v := vaults[0]
	seeded := e.tenant.KeyVaults[0]
	require.Equal(t, azure.Vault{
		Name: "kv-contoso", URL: seeded.URL, ResourceID: seeded.ResourceID,
		SubscriptionID: e.tenant.Subscriptions[0].ID, SubscriptionName: e.tenant.Subscriptions[0].DisplayName,
		ResourceGroup: "rg-rotor", Location: "westeurope", Tags: map[string]string{"env": "demo"},
	}, v)
}

// TestSimListVaultsFollowsNextLink gives the identity more vaults than
// one page holds: the SDK's pager must follow nextLink to the last.
func TestSimListVaultsFollowsNextLink(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	sub := e.tenant.Subscriptions[0].ID
	e.srv.World().Update(func() {
		tn := e.srv.World().TenantLocked(e.tenant.ID)
		for i := range 30 {
			n := fmt.Sprintf("kv-extra-%02d", i)
			tn.Vaults[n] = &sim.Vault{Name: n, TenantID: tn.ID, URL: "https://" + n + ".example/", SubscriptionID: sub, ResourceGroup: "rg-extra"}
		}
		tn.AssignRole(e.tenant.Rotation.ObjectID, sim.RoleReader, "/subscriptions/"+sub+"/resourceGroups/rg-extra")
	})
	cred, err := azure.NewCredential(e.rotationConn(), e.ep)
	require.NoError(t, err)
	vaults, err := azure.ListVaults(t.Context(), cred, azure.ClientOptions(e.ep))
	require.NoError(t, err)
	require.Len(t, vaults, 31)
	require.Equal(t, "kv-contoso", vaults[0].Name)
	require.Equal(t, "kv-extra-29", vaults[30].Name)
	require.Equal(t, "rg-extra", vaults[30].ResourceGroup)
}

func TestSimListVaultSecretsNamesAndTagsOnly(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	vault := e.tenant.KeyVaults[0]
	e.putSecret(t, vault.Name, "payroll-client-secret", "never-shown", map[string]string{"managed-by": "rotor", "rotor-app-id": "app-1"})
	e.putSecret(t, vault.Name, "db-password", "never-shown", map[string]string{"owner": "dba"})
	for i := range 26 { // more than Key Vault's page of 25
		e.putSecret(t, vault.Name, fmt.Sprintf("bulk-%02d", i), "x", nil)
	}
	cred, err := azure.NewCredential(e.rotationConn(), e.ep)
	require.NoError(t, err)

	// The rotation identity holds list, set and recover, not get: listing
	// works, so nothing here could read a value.
	secrets, err := azure.ListVaultSecrets(t.Context(), vault.URL, cred, azure.ClientOptions(e.ep), true)
	require.NoError(t, err)
	require.Len(t, secrets, 28)
	byName := map[string]azure.VaultSecret{}
	for _, s := range secrets {
		byName[s.Name] = s
	}
	require.Equal(t, map[string]string{"managed-by": "rotor", "rotor-app-id": "app-1"}, byName["payroll-client-secret"].Tags)
	require.Equal(t, "dba", byName["db-password"].Tags["owner"])
	require.True(t, byName["db-password"].Enabled)
	require.False(t, byName["db-password"].Updated.IsZero())
	require.Equal(t, "bulk-00", secrets[0].Name)

	// Without list, Key Vault refuses with 403, classified.
	require.NoError(t, e.srv.World().SetSecretPermissions(e.tenant.ID, vault.Name, e.tenant.Rotation.ObjectID, sim.SecretSet))
	_, err = azure.ListVaultSecrets(t.Context(), vault.URL, cred, azure.ClientOptions(e.ep), true)
	var le *azure.ListError
	require.True(t, errors.As(err, &le), "%v", err)
	require.Equal(t, http.StatusForbidden, le.Status)
	require.Equal(t, "Key Vault", le.Service)
	require.Contains(t, le.Message, "does not have secrets list permission")
	require.True(t, azure.IsForbidden(err))
}

func TestSimListVaultSecretsRefusesPlainHTTP(t *testing.T) {
	t.Parallel()
	e := setupSim(t, "contoso")
	cred, err := azure.NewCredential(e.rotationConn(), e.ep)
	require.NoError(t, err)
	_, err = azure.ListVaultSecrets(t.Context(), "http://127.0.0.1:1/", cred, azure.ClientOptions(e.ep), true)
	require.ErrorContains(t, err, "must be an https URL")
}
