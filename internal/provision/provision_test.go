package provision_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/provision"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

const (
	tenant   = "11111111-1111-1111-1111-111111111111"
	clientID = "22222222-2222-2222-2222-222222222222"
	// inlineSecret is written literally in rotor.yaml; it must never reach
	// the database file.
	inlineSecret = "Inl1ne~Secr3t.Value_that-must-not-be-stored"
)

// bundle is what each test needs: a directory, a store in it, and a way
// to write and load rotor.yaml.
type bundle struct {
	dir   string
	db    string
	store *sqlite.Store
}

func setup(t *testing.T) *bundle {
	t.Helper()
	dir := t.TempDir()
	b := &bundle{dir: dir, db: filepath.Join(dir, "rotor.db")}
	s, err := sqlite.Open(t.Context(), b.db)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	b.store = s
	return b
}

// load writes yaml as rotor.yaml and loads it.
func (b *bundle) load(t *testing.T, yaml string) *config.Config {
	t.Helper()
	path := filepath.Join(b.dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	cfg, err := config.Load(path, config.LoadOptions{Getenv: func(k string) string {
		if k == "CONTOSO_SECRET" {
			return "from-the-environment"
		}
		return ""
	}})
	require.NoError(t, err)
	return cfg
}

const base = `
connections:
  - name: contoso
    tenant_id: ` + tenant + `
    client_id: ` + clientID + `
    client_secret: {env: CONTOSO_SECRET}
  - name: contoso-read
    purpose: read
    tenant_id: ` + tenant + `
    managed_identity: true
policies:
  - name: web
    connection: contoso
    applications: {name_prefix: web-}
  - name: rest
    connection: contoso
    applications: {all_owned: true}
`

func TestWithoutOrganizationProvisionsTheDefaultOrg(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.load(t, base)
	rep, err := provision.Provision(t.Context(), b.store, cfg)
	require.NoError(t, err)
	require.Equal(t, domain.DefaultOrg, rep.Result.Org)
	require.Equal(t, []string{"contoso", "contoso-read"}, rep.Result.ConnectionsCreated)
	require.Equal(t, []string{"web", "rest"}, rep.Result.PoliciesCreated)
	require.Equal(t, cfg.Source, rep.Source)

	c, err := b.store.GetConnection(t.Context(), domain.DefaultOrg, "contoso")
	require.NoError(t, err)
	require.True(t, c.Provisioned)
	require.Equal(t, filepath.Join(b.dir, "rotor.yaml"), c.Source)
	require.Equal(t, &store.SecretRef{Kind: store.SecretEnv, Env: "CONTOSO_SECRET"}, c.Identity.ClientSecret)
	mi, err := b.store.GetConnection(t.Context(), domain.DefaultOrg, "contoso-read")
	require.NoError(t, err)
	require.Equal(t, "managed_identity", mi.Identity.Method)
	require.Nil(t, mi.Identity.ClientSecret)

	pols, err := b.store.ListPolicies(t.Context(), domain.DefaultOrg)
	require.NoError(t, err)
	require.Len(t, pols, 2)
	require.Equal(t, cfg.Policies[0], pols[0].Policy, "the stored policy is the configured one, defaults and all")
	require.Equal(t, cfg.Policies[1], pols[1].Policy)

	// A second start changes nothing.
	rep, err = provision.Provision(t.Context(), b.store, b.load(t, base))
	require.NoError(t, err)
	require.False(t, rep.Changed(), "%s", rep)
	require.Contains(t, rep.String(), "nothing changed")
}

func TestAnObjectThatLeftTheFileIsDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := provision.Provision(t.Context(), b.store, b.load(t, base))
	require.NoError(t, err)
	// Made in rotor (the UI), not provisioned: never touched.
	require.NoError(t, b.store.UpsertPolicy(t.Context(), store.UpsertPolicyParams{Org: domain.DefaultOrg,
		Policy: domain.Policy{Name: "ui", Connection: "contoso-read", Selector: domain.Selector{AllOwned: true}, Kind: domain.KindSecret,
			Lifetime: domain.DefaultLifetime, RenewBefore: domain.DefaultRenewBefore(domain.DefaultLifetime), Overlap: domain.DefaultOverlap}}))

	less := strings.Replace(base, `  - name: web
    connection: contoso
    applications: {name_prefix: web-}
`, "", 1)
	rep, err := provision.Provision(t.Context(), b.store, b.load(t, less))
	require.NoError(t, err)
	require.Equal(t, []string{"web"}, rep.Result.PoliciesDeleted)
	require.Equal(t, []string{"rest"}, rep.Result.PoliciesUpdated, "rest moved up to position 0")
	pols, err := b.store.ListPolicies(t.Context(), domain.DefaultOrg)
	require.NoError(t, err)
	require.Len(t, pols, 2)
	require.Equal(t, "rest", pols[0].Policy.Name)
	require.Equal(t, "ui", pols[1].Policy.Name)
}

func TestRenamingTheOrganizationMovesWhatTheFileProvisions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := provision.Provision(t.Context(), b.store, b.load(t, base))
	require.NoError(t, err)
	// Another file's objects in another org are not this file's to delete.
	_, err = b.store.Provision(t.Context(), store.ProvisionParams{Org: "fabrikam", Source: "/other/rotor.yaml",
		Connections: []store.Connection{{Name: "contoso", TenantID: tenant, Cloud: "public", Purpose: "read",
			Identity: store.ConnectionIdentity{Method: "managed_identity"}}}})
	require.NoError(t, err)

	rep, err := provision.Provision(t.Context(), b.store, b.load(t, "organization: tailspin\n"+base))
	require.NoError(t, err)
	require.Equal(t, domain.OrgID("tailspin"), rep.Result.Org)
	require.ElementsMatch(t, []string{"policy web", "policy rest", "connection contoso", "connection contoso-read"}, rep.Elsewhere[domain.DefaultOrg])
	require.NotContains(t, rep.Elsewhere, domain.OrgID("fabrikam"))
	left, err := b.store.ListConnections(t.Context(), domain.DefaultOrg)
	require.NoError(t, err)
	require.Empty(t, left)
	other, err := b.store.ListConnections(t.Context(), "fabrikam")
	require.NoError(t, err)
	require.Len(t, other, 1)
	moved, err := b.store.ListConnections(t.Context(), "tailspin")
	require.NoError(t, err)
	require.Len(t, moved, 2)
}

func TestANameTakenInRotorStopsProvisioning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.store.EnsureOrg(t.Context(), domain.DefaultOrg, "default"))
	require.NoError(t, b.store.UpsertConnection(t.Context(), store.UpsertConnectionParams{Connection: store.Connection{
		Org: domain.DefaultOrg, Name: "contoso-read", TenantID: tenant, Cloud: "public", Purpose: "read",
		Identity: store.ConnectionIdentity{Method: "managed_identity"},
	}}))
	_, err := provision.Provision(t.Context(), b.store, b.load(t, base))
	require.ErrorIs(t, err, store.ErrConflict)
	pols, err := b.store.ListPolicies(t.Context(), domain.DefaultOrg)
	require.NoError(t, err)
	require.Empty(t, pols, "nothing of the file was written")
}

// TestAnInlineSecretNeverReachesTheDatabase provisions a connection whose
// rotor.yaml holds its client secret literally, then reads every byte of
// the database's files: the value is not there, only the marker that says
// it is inline in rotor.yaml (rotor keeps the value in memory).
func TestAnInlineSecretNeverReachesTheDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	yaml := strings.Replace(base, "client_secret: {env: CONTOSO_SECRET}", "client_secret: "+inlineSecret, 1)
	cfg := b.load(t, yaml)
	require.Equal(t, inlineSecret, cfg.Connections[0].Identity.ClientSecret.Reveal(), "the value is in memory")
	_, err := provision.Provision(t.Context(), b.store, cfg)
	require.NoError(t, err)

	c, err := b.store.GetConnection(t.Context(), domain.DefaultOrg, "contoso")
	require.NoError(t, err)
	require.Equal(t, &store.SecretRef{Kind: store.SecretInline}, c.Identity.ClientSecret)
	require.Equal(t, "a value inline in rotor.yaml", c.Identity.ClientSecret.String())

	require.NoError(t, b.store.Close())
	matches, err := filepath.Glob(b.db + "*") // rotor.db, -wal, -shm
	require.NoError(t, err)
	require.NotEmpty(t, matches)
	for _, f := range matches {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		require.NotContains(t, string(data), inlineSecret, "%s holds the inline secret", f)
		require.NotContains(t, string(data), "from-the-environment", "%s holds a resolved secret", f)
	}
	data, err := os.ReadFile(b.db)
	require.NoError(t, err)
	require.Contains(t, string(data), `"kind":"inline"`, "the marker is stored")
}
