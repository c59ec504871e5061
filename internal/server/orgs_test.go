package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// orgsBundle is a running simulator with one tenant and a directory for
// rotor.yaml.
type orgsBundle struct {
	ctx     context.Context
	dir     string
	simFile string
	tn      simfile.Tenant
}

func setupOrgs(t *testing.T) *orgsBundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	st := simtest.Start(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=1h,replication=0s"})
	info := st.Info
	tn := info.Tenants[0]
	// The tests' host identity is the rotation identity itself, so it
	// also needs to read secret values (the seed grants it list, set and recover).
	st.GrantSecrets(t, tn.ID, tn.KeyVaults[0].Name, tn.Rotation.ObjectID, sim.SecretGet, sim.SecretList, sim.SecretSet, sim.SecretRecover)
	return &orgsBundle{ctx: ctx, dir: dir, simFile: filepath.Join(filepath.Dir(info.CAFile), simfile.FileName), tn: tn}
}

// setVaultSecret writes a secret into the tenant's vault as the test,
// with the tenant's rotation identity.
func (b *orgsBundle) setVaultSecret(t *testing.T, name, value string) {
	t.Helper()
	ep, err := azure.ResolveEndpoints(azure.Sim, b.simFile)
	require.NoError(t, err)
	cred, err := azure.NewCredential(azure.Connection{Name: "test", TenantID: b.tn.ID, Cloud: azure.Sim, SimFile: b.simFile,
		Identity: azure.Identity{Method: azure.ClientSecret, ClientID: b.tn.Rotation.ClientID, ClientSecret: secretOf(b.tn.Rotation.ClientSecret)}}, ep)
	require.NoError(t, err)
	kv, err := azure.NewSecretsClient(b.tn.KeyVaults[0].URL, cred, ep)
	require.NoError(t, err)
	_, err = kv.SetSecret(b.ctx, name, azsecrets.SetSecretParameters{Value: &value}, nil)
	require.NoError(t, err)
}

// open writes rotor.yaml and opens rotor on it; HOST_SECRET is the host
// identity's secret.
func (b *orgsBundle) open(t *testing.T, yaml string) (*Server, error) {
	t.Helper()
	path := filepath.Join(b.dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	return Open(b.ctx, path, Options{
		Logger: slog.New(slog.DiscardHandler),
		Getenv: envMap{"HOST_SECRET": b.tn.Rotation.ClientSecret, "ROTATION_SECRET": b.tn.Rotation.ClientSecret}.get,
	})
}

// yaml is a rotor.yaml with a host identity on the simulator and one
// rotation connection whose client secret is clientSecret (YAML).
func (b *orgsBundle) yaml(clientSecret string, host bool) string {
	y := fmt.Sprintf(`data_dir: %q
connections:
  - name: contoso
    cloud: sim
    sim_file: %q
    tenant_id: %q
    client_id: %q
    client_secret: %s
policies:
  - name: all
    connection: contoso
    applications: {all_owned: true}
    lifetime: 30d
    renew_before: 10d
    overlap: 1h
`, filepath.Join(b.dir, "data"), b.simFile, b.tn.ID, b.tn.Rotation.ClientID, clientSecret)
	if host {
		y += fmt.Sprintf(`host_identity:
  cloud: sim
  sim_file: %q
  tenant_id: %q
  client_id: %q
  client_secret: {env: HOST_SECRET}
`, b.simFile, b.tn.ID, b.tn.Rotation.ClientID)
	}
	return y
}

// TestConnectionSecretInKeyVault: a connection whose client secret lives
// in a (simulator) Key Vault is read with the host identity at start,
// signs in and syncs; when the vault's value changes and Entra refuses the
// one rotor read, rotor reads the vault again at once.
func TestConnectionSecretInKeyVault(t *testing.T) {
	t.Parallel()
	b := setupOrgs(t)
	kvRef := fmt.Sprintf("{keyvault: {vault_url: %q, secret: rotation-secret}}", b.tn.KeyVaults[0].URL)

	t.Run("WithoutHostIdentityStartIsRefused", func(t *testing.T) {
		_, err := b.open(t, b.yaml(kvRef, false))
		require.ErrorContains(t, err, `connection "contoso": client_secret`)
		require.ErrorContains(t, err, "set host_identity")
	})
	t.Run("AMissingSecretStopsTheStart", func(t *testing.T) {
		_, err := b.open(t, b.yaml(fmt.Sprintf("{keyvault: {vault_url: %q, secret: nowhere}}", b.tn.KeyVaults[0].URL), true))
		require.ErrorContains(t, err, `connection "contoso": client_secret: Key Vault secret "nowhere"`)
		// And it changed nothing the other replicas read.
		st, err := sqlite.Open(b.ctx, filepath.Join(b.dir, "data", "rotor.db"))
		require.NoError(t, err)
		defer st.Close()
		pols, err := st.ListPolicies(b.ctx, domain.DefaultOrg)
		require.NoError(t, err)
		require.Empty(t, pols, "a file that cannot start provisions nothing")
	})

	// The vault holds a stale value at start; the right one arrives after.
	b.setVaultSecret(t, "rotation-secret", "stale-value-Entra-refuses")
	srv, err := b.open(t, b.yaml(kvRef, true))
	require.NoError(t, err)
	defer srv.Close()
	b.setVaultSecret(t, "rotation-secret", b.tn.Rotation.ClientSecret)

	require.NoError(t, srv.Sync(b.ctx, nil), "refused with the stale value, rotor reads the vault again and signs in")
	n, err := srv.Store().CountApplications(b.ctx, domain.DefaultOrg, "contoso")
	require.NoError(t, err)
	require.Positive(t, n)

	c, err := srv.Store().GetConnection(b.ctx, domain.DefaultOrg, "contoso")
	require.NoError(t, err)
	require.Equal(t, &store.SecretRef{Kind: store.SecretKeyVault, VaultURL: b.tn.KeyVaults[0].URL, Secret: "rotation-secret"}, c.Identity.ClientSecret,
		"the store keeps the reference")
}

// TestEveryOrganizationIsServed: an organization made outside rotor.yaml
// (as the UI would) with a connection and a policy of the same names as
// the file's is synced and governed by its own policy, and each org's
// applications are its own.
func TestEveryOrganizationIsServed(t *testing.T) {
	t.Parallel()
	b := setupOrgs(t)
	b.setVaultSecret(t, "fabrikam-rotation", b.tn.Rotation.ClientSecret)
	yaml := b.yaml("{env: ROTATION_SECRET}", true)
	first, err := b.open(t, yaml)
	require.NoError(t, err)
	srv := first
	st := srv.Store()
	const other = domain.OrgID("fabrikam")
	require.NoError(t, st.EnsureOrg(b.ctx, other, "Fabrikam"))
	// Provisioned by another organization's own rotor.yaml (its secret in
	// Key Vault, read with the host identity): a connection made in the
	// UI may not have the host identity read Key Vault for it, since the
	// host can read other organizations' vaults (see secrets.fromOutside).
	_, err = st.Provision(b.ctx, store.ProvisionParams{Org: other, Name: "Fabrikam", Source: "/etc/rotor/fabrikam.yaml",
		Connections: []store.Connection{{
			Org: other, Name: "contoso", TenantID: b.tn.ID, Cloud: "sim", SimFile: b.simFile, Purpose: "rotation",
			Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: b.tn.Rotation.ClientID,
				ClientSecret: &store.SecretRef{Kind: store.SecretKeyVault, VaultURL: b.tn.KeyVaults[0].URL, Secret: "fabrikam-rotation"}},
		}},
		Policies: []domain.Policy{{
			Name: "all", Connection: "contoso", Selector: domain.Selector{NamePrefix: "no-such-app-"}, Enabled: true, Kind: domain.KindSecret,
			Lifetime: 30 * 24 * time.Hour, RenewBefore: 10 * 24 * time.Hour, Overlap: time.Hour,
		}},
	})
	require.NoError(t, err)
	// One made in the UI that asks for rotor's own environment is left
	// out: only rotor.yaml's connections may read it.
	require.NoError(t, st.UpsertConnection(b.ctx, store.UpsertConnectionParams{Connection: store.Connection{
		Org: other, Name: "greedy", TenantID: b.tn.ID, Cloud: "sim", SimFile: b.simFile, Purpose: "read",
		Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: b.tn.Rotation.ClientID,
			ClientSecret: &store.SecretRef{Kind: store.SecretEnv, Env: "HOST_SECRET"}},
	}}))
	// The UI cannot change the file's policy.
	err = st.DeletePolicy(b.ctx, store.DeleteParams{Org: domain.DefaultOrg, Name: "all"})
	require.ErrorIs(t, err, store.ErrProvisioned)

	// The running rotor picks the new organization up at its next sync.
	err = srv.Sync(b.ctx, nil)
	require.ErrorContains(t, err, `connection "greedy"`, "the refused connection is reported")
	require.NotContains(t, err.Error(), `connection "contoso"`)
	for _, org := range []domain.OrgID{domain.DefaultOrg, other} {
		apps, err := srv.Store().ListApplications(b.ctx, store.ListApplicationsParams{Org: org, ManageableOnly: true})
		require.NoError(t, err)
		require.NotEmpty(t, apps, "org %s was synced", org)
		for _, a := range apps {
			require.Equal(t, org, a.Org)
			p := srv.PolicyFor(a)
			if org == domain.DefaultOrg {
				require.NotNil(t, p, "the file's all_owned policy governs %s", a.DisplayName)
				require.Equal(t, "all", p.Name)
				require.True(t, p.Selector.AllOwned)
			} else {
				require.Nil(t, p, "fabrikam's own policy selects nothing; the default org's never reaches it")
			}
		}
	}
	_, err = srv.Conns().Directory(other, "contoso")
	require.NoError(t, err)
	_, err = srv.Conns().Directory("nobody", "contoso")
	require.Error(t, err)
	_, err = srv.Conns().Directory(other, "greedy")
	require.ErrorContains(t, err, `has no connection "greedy"`)

	// Deleted in the store: gone at the next sync. A restart provisions
	// nothing new and serves what is left.
	require.NoError(t, st.DeleteConnection(b.ctx, store.DeleteParams{Org: other, Name: "greedy"}))
	require.NoError(t, st.DeletePolicy(b.ctx, store.DeleteParams{Org: other, Name: "all", ProvisionedBy: "/etc/rotor/fabrikam.yaml"}))
	require.NoError(t, st.DeleteConnection(b.ctx, store.DeleteParams{Org: other, Name: "contoso", ProvisionedBy: "/etc/rotor/fabrikam.yaml"}))
	require.NoError(t, srv.Sync(b.ctx, nil))
	_, err = srv.Conns().Directory(other, "contoso")
	require.Error(t, err)
	require.NoError(t, first.Close())
	srv, err = b.open(t, yaml)
	require.NoError(t, err)
	defer srv.Close()
	_, err = srv.Conns().Directory(domain.DefaultOrg, "contoso")
	require.NoError(t, err)
}

func secretOf(s string) secret.Value { return secret.New(s) }
