package cli_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sim"
)

// TestVaults: the contoso connection's identity sees its tenant's vault
// (not kv-contoso-finance, on which it has no role); a vault's secrets
// are listed by name with whether rotor manages them; a vault it cannot
// see is refused; the flags are required.
func TestVaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	tn, ok := e.info.Tenant("contoso")
	require.True(t, ok)
	kv := tn.KeyVaults[0]
	now := e.sim.Clock().Now()
	e.sim.World().Update(func() {
		v := e.sim.World().TenantLocked(tn.ID).Vaults[kv.Name]
		v.Secrets["theirs"] = &sim.VaultSecret{Name: "theirs", Versions: []*sim.SecretVersion{{Version: "1", Value: "s3cr3t-never-shown", Enabled: true, Created: now, Updated: now}}}
		v.Secrets["mine"] = &sim.VaultSecret{Name: "mine", Versions: []*sim.SecretVersion{{Version: "1", Value: "s3cr3t-never-shown", Enabled: true, Created: now, Updated: now,
			Tags: map[string]string{"managed-by": "rotor"}}}}
	})

	var vaults []struct {
		Name, URL     string
		ResourceGroup string `json:"resource_group"`
	}
	e.mustJSON(&vaults, "vaults", "list", "--connection", "contoso", "-o", "json")
	require.Len(t, vaults, 1)
	require.Equal(t, kv.URL, vaults[0].URL)
	require.Equal(t, "rg-rotor", vaults[0].ResourceGroup)
	out, _ := e.mustRun("vaults", "list", "--connection", "contoso")
	require.Contains(t, out, "RESOURCE GROUP")
	require.NotContains(t, out, "kv-contoso-finance")

	var secrets []struct {
		Name           string
		ManagedByRotor bool `json:"managed_by_rotor"`
	}
	e.mustJSON(&secrets, "vaults", "secrets", "--connection", "contoso", "--vault", kv.URL, "-o", "json")
	require.Equal(t, []struct {
		Name           string
		ManagedByRotor bool `json:"managed_by_rotor"`
	}{{"mine", true}, {"theirs", false}}, secrets)
	out, _ = e.mustRun("vaults", "secrets", "--connection", "contoso", "--vault", kv.URL)
	require.Contains(t, out, "adopt: true")
	require.NotContains(t, out, "s3cr3t-never-shown")

	code, _, errOut := e.run("vaults", "secrets", "--connection", "contoso", "--vault", tn.KeyVaults[1].URL)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "is not a vault the connection's identity can see")
	code, _, errOut = e.run("vaults", "list")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--connection NAME is required")
	code, _, _ = e.run("vaults", "list", "--connection", "nope")
	require.Equal(t, 1, code)
	e.checkNoSecretLeaked()
}
