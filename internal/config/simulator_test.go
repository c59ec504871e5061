package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/simfile"
)

// TestSimulatorYAMLLoads: what SimulatorYAML writes is a valid rotor.yaml
// that says what was asked.
func TestSimulatorYAMLLoads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	simPath := filepath.Join(b.dir, "sim", simfile.FileName)
	info, err := simfile.Load(simPath)
	require.NoError(t, err)
	out, err := SimulatorYAML(info, SimulatorConfig{
		SimFile: simPath, DataDir: filepath.Join(b.dir, "data"), LogLevel: "warn",
		Secret:   func(t simfile.Tenant) string { return "{env: " + secretName + "}" },
		Rotation: SimulatorRotation{Jitter: "2s", PlanInterval: "1s", ConcurrencyPerTenant: 8},
		Policies: []SimulatorPolicy{
			{Name: "web", Applications: `{name_prefix: "web-"}`, Lifetime: "30d", RenewBefore: "10d", Overlap: "4s"},
			{Name: "owned"},
		},
	})
	require.NoError(t, err)
	path := filepath.Join(b.dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o600))

	cfg, err := Load(path, b.opts)
	require.NoError(t, err, string(out))
	require.Len(t, cfg.Connections, 1)
	require.Equal(t, tenantID, cfg.Connections[0].TenantID)
	require.Equal(t, 2*time.Second, cfg.Rotation.Jitter)
	require.Equal(t, 8, cfg.Rotation.ConcurrencyPerTenant)
	require.Len(t, cfg.Policies, 2)
	require.Equal(t, "contoso-web", cfg.Policies[0].Name)
	require.Equal(t, domain.Selector{NamePrefix: "web-"}, cfg.Policies[0].Selector)
	require.Equal(t, 4*time.Second, cfg.Policies[0].Overlap)
	require.True(t, cfg.Policies[1].Selector.AllOwned)
	require.Equal(t, "keyvault", cfg.Policies[1].Sinks[0].Type)
	require.Equal(t, vaultURL, cfg.Policies[1].Sinks[0].Settings["vault_url"])

	_, err = SimulatorYAML(info, SimulatorConfig{SimFile: simPath})
	require.ErrorContains(t, err, "required")
}

// TestSimulatorYAMLPostgres: a Database puts rotor's state in PostgreSQL,
// the passwords by reference.
func TestSimulatorYAMLPostgres(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.env["DB_PW"], b.env["DB_OWNER_PW"] = "app-pw", "owner-pw"
	simPath := filepath.Join(b.dir, "sim", simfile.FileName)
	info, err := simfile.Load(simPath)
	require.NoError(t, err)
	const appURL, ownerURL = "postgres://rotor_app@db:5432/rotor?sslmode=disable&search_path=s", "postgres://rotor_owner@db:5432/rotor?sslmode=disable"
	out, err := SimulatorYAML(info, SimulatorConfig{
		SimFile: simPath, DataDir: filepath.Join(b.dir, "data"),
		Secret:   func(simfile.Tenant) string { return "{env: " + secretName + "}" },
		Database: &SimulatorDatabase{URL: appURL, Password: "{env: DB_PW}", MigrateURL: ownerURL, MigratePassword: "{env: DB_OWNER_PW}"},
	})
	require.NoError(t, err)
	path := filepath.Join(b.dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o600))

	cfg, err := Load(path, b.opts)
	require.NoError(t, err, string(out))
	require.Equal(t, "postgres", cfg.Database.Driver)
	require.Equal(t, appURL, cfg.Database.URL)
	require.Equal(t, ownerURL, cfg.Database.MigrateURL)
	require.Equal(t, "environment variable DB_PW", cfg.Database.Password.String())
	require.Equal(t, "environment variable DB_OWNER_PW", cfg.Database.MigratePassword.String())
}

// TestSimulatorYAMLQuotes: a data directory with YAML's special characters
// stays one value.
func TestSimulatorYAMLQuotes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	simPath := filepath.Join(b.dir, "sim", simfile.FileName)
	info, err := simfile.Load(simPath)
	require.NoError(t, err)
	odd := filepath.Join(b.dir, `data: {x: "y"} # not a comment`)
	out, err := SimulatorYAML(info, SimulatorConfig{SimFile: simPath, DataDir: odd,
		Secret: func(simfile.Tenant) string { return "{env: " + secretName + "}" }})
	require.NoError(t, err)
	path := filepath.Join(b.dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	cfg, err := Load(path, b.opts)
	require.NoError(t, err, string(out))
	require.Equal(t, odd, cfg.DataDir)
}
