package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/sink"
)

const (
	tenantID   = "8f2b1c4e-0d3a-4e5f-9a6b-7c8d9e0f1a2b"
	clientID   = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
	vaultURL   = "https://127.0.0.1:9443"
	theSecret  = "Sup3r-S3cret-Value!xyz" // must never appear in an error
	limit60d   = "1440h0m0s"              // the simulator writes Go durations
	secretName = "CONTOSO_ROTATION_SECRET"
)

// bundle is what a config test needs: a directory with a simulator file,
// an environment, and a sink registry.
type bundle struct {
	// t is the test the bundle was set up for: tweaks assert with it, in
	// their own subtest.
	t    testing.TB
	dir  string
	env  map[string]string
	opts LoadOptions
}

func setup(t testing.TB) *bundle {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sim"), 0o700))
	require.NoError(t, simfile.Write(filepath.Join(dir, "sim"), &simfile.Info{
		AuthorityHost: "https://127.0.0.1:8443/",
		GraphURL:      "https://127.0.0.1:8443/graph/v1.0",
		CAFile:        filepath.Join(dir, "sim", "ca.pem"),
		Tenants: []simfile.Tenant{{
			ID: tenantID, Name: "contoso",
			Rotation:              simfile.Identity{ClientID: clientID, ClientSecret: "sim-secret", ObjectID: "sp-object-id"},
			KeyVaults:             []simfile.KeyVault{{Name: "kv", URL: vaultURL}},
			PasswordLifetimeLimit: limit60d,
		}},
	}))
	b := &bundle{t: t, dir: dir, env: map[string]string{secretName: theSecret}}
	b.opts = LoadOptions{
		Sinks:  sink.NewRegistry(fakeKeyVault{}),
		Getenv: func(k string) string { return b.env[k] },
	}
	return b
}

// fakeKeyVault checks keyvault sink specs the way a sink package would; the
// registry is an input boundary of the loader.
type fakeKeyVault struct{}

func (fakeKeyVault) Type() string { return "keyvault" }
func (fakeKeyVault) CheckSpec(spec domain.SinkSpec) error {
	for k := range spec.Settings {
		if k != "vault_url" && k != "secret" {
			return fmt.Errorf("unknown key %q: use vault_url and secret", k)
		}
	}
	if spec.Settings["vault_url"] == nil {
		return errors.New("vault_url is missing")
	}
	return nil
}
func (fakeKeyVault) NewBuilder(sink.Deps) (sink.Builder, error) {
	return nil, errors.New("not in this test")
}

// base is a valid configuration as a tree the tweaks edit.
func base() map[string]any {
	return map[string]any{
		"listen":   "127.0.0.1:8080",
		"data_dir": "./rotor-data",
		"connections": []any{map[string]any{
			"name":          "contoso",
			"cloud":         "sim",
			"sim_file":      "./sim/sim.json",
			"tenant_id":     tenantID,
			"purpose":       "rotation",
			"client_id":     clientID,
			"client_secret": map[string]any{"env": secretName},
		}},
		"policies": []any{map[string]any{
			"name":         "web",
			"connection":   "contoso",
			"applications": map[string]any{"name_prefix": "web-"},
			"kind":         "secret",
			"lifetime":     "21d",
			"renew_before": "1h",
			"overlap":      "24h",
			"sinks": []any{map[string]any{
				"keyvault": map[string]any{"vault_url": vaultURL, "secret": "{{ .App.DisplayName }}-secret"},
			}},
		}},
	}
}

func conn(m map[string]any) map[string]any { return m["connections"].([]any)[0].(map[string]any) }
func pol(m map[string]any) map[string]any  { return m["policies"].([]any)[0].(map[string]any) }

func (b *bundle) parse(t *testing.T, m map[string]any) (*Config, error) {
	t.Helper()
	data, err := yaml.Marshal(m)
	require.NoError(t, err)
	return Parse(data, b.dir, b.opts)
}

func TestParseValidBase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg, err := b.parse(t, base())
	require.NoError(t, err)

	require.Equal(t, domain.DefaultOrg, cfg.Organization)
	require.Equal(t, "127.0.0.1:8080", cfg.Listen)
	require.Equal(t, filepath.Join(b.dir, "rotor-data"), cfg.DataDir)
	require.Equal(t, Database{Driver: "sqlite", Path: filepath.Join(b.dir, "rotor-data", "rotor.db")}, cfg.Database)
	require.Equal(t, cfg.Database.Path, cfg.DatabasePath())
	require.Equal(t, RotationSettings{Jitter: 30 * time.Second, ConcurrencyPerTenant: 4, MaxInFlight: 512, VerifyTimeout: 5 * time.Minute, PlanInterval: time.Minute, SyncInterval: time.Minute, FullSyncInterval: 24 * time.Hour, OwnershipInterval: time.Hour, LeaseTTL: 30 * time.Second, RetryAfter: 30 * time.Second, RetryPermanentAfter: time.Hour}, cfg.Rotation)
	require.Equal(t, "text", cfg.Log.Format)
	require.True(t, cfg.Metrics.Enabled, "/metrics is on by default")
	require.Empty(t, cfg.Notes)

	require.Len(t, cfg.Connections, 1)
	c, ok := cfg.Connection("contoso")
	require.True(t, ok)
	require.Equal(t, PurposeRotation, c.Purpose)
	require.Equal(t, 60*day, c.PasswordLifetimeLimit)
	ac := c.AzureConnection()
	require.Equal(t, azure.Connection{
		Name: "contoso", TenantID: tenantID, Cloud: azure.Sim, SimFile: filepath.Join(b.dir, "sim", "sim.json"),
		Identity: azure.Identity{Method: azure.ClientSecret, ClientID: clientID, ClientSecret: secret.New(theSecret)},
	}, ac)
	require.Equal(t, "environment variable "+secretName, c.ClientSecretRef.String())

	require.Equal(t, []domain.Policy{{
		Name: "web", Connection: "contoso", Selector: domain.Selector{NamePrefix: "web-"},
		Enabled: true, Kind: domain.KindSecret, Lifetime: 21 * day, RenewBefore: time.Hour, Overlap: 24 * time.Hour,
		NotifyBefore: 14 * day, Verify: true,
		Sinks: []domain.SinkSpec{{Type: "keyvault", Settings: map[string]any{"vault_url": vaultURL, "secret": "{{ .App.DisplayName }}-secret"}}},
	}}, cfg.Policies)
}

// verbatim is the example of docs/configuration.md, placeholders and all.
const verbatim = `listen: 127.0.0.1:8080
data_dir: ./rotor-data
connections:
  - name: contoso
    cloud: sim
    sim_file: ./sim/sim.json
    tenant_id: "<tenant id>"
    purpose: rotation
    client_id: "<client id>"
    client_secret: {env: CONTOSO_ROTATION_SECRET}
policies:
  - name: web
    connection: contoso
    applications: {name_prefix: "web-"}     # or {ids: [<appId>, …]} or {all_owned: true}
    kind: secret
    lifetime: 21d
    renew_before: 1h
    overlap: 24h
    sinks:
      - keyvault: {vault_url: "<vault url>", secret: "{{ .App.DisplayName }}-secret"}
`

// TestLoadVerbatim loads the example of docs/configuration.md exactly as
// written, with only its placeholders filled in.
func TestLoadVerbatim(t *testing.T) {
	t.Parallel()
	b := setup(t)
	text := verbatim
	text = strings.NewReplacer("<tenant id>", tenantID, "<client id>", clientID, "<vault url>", vaultURL).Replace(text)
	path := filepath.Join(b.dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))

	cfg, err := Load(path, b.opts)
	require.NoError(t, err)
	require.Len(t, cfg.Connections, 1)
	require.Len(t, cfg.Policies, 1)
	require.Equal(t, 21*day, cfg.Policies[0].Lifetime)
	require.Equal(t, "{{ .App.DisplayName }}-secret", cfg.Policies[0].Sinks[0].Settings["secret"])
	require.Equal(t, theSecret, cfg.Connections[0].Identity.ClientSecret.Reveal())
}

// TestParseProblems: each case breaks the valid base in one way and names
// the problem it must produce.
func TestParseProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tweak func(m map[string]any, b *bundle)
		// want has one entry per problem line, in order; "|" separates
		// fragments the line must contain.
		want []string
		// path is the Problem.Path of the first problem, when checked.
		path string
	}{
		{
			name:  "UnknownTopLevelKey",
			tweak: func(m map[string]any, _ *bundle) { m["listn"] = ":9090" },
			want:  []string{`unknown key "listn" (line |did you mean "listen"?`},
			path:  "listn",
		},
		{
			name:  "UnknownPolicyKey",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["renew_befor"] = "1h" },
			want:  []string{`policies[0] "web": unknown key "renew_befor" (line |did you mean "renew_before"?`},
			path:  "policies[0].renew_befor",
		},
		{
			name:  "UnknownNestedKey",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["applications"] = map[string]any{"name_prefx": "web-"} },
			want:  []string{`policies[0] "web": unknown key "name_prefx" in applications (line |did you mean "name_prefix"?`},
		},
		{
			name:  "UnknownKeyFarFromAnyKnown",
			tweak: func(m map[string]any, _ *bundle) { m["rotation"] = map[string]any{"zzzzzz": 1} },
			want:  []string{`unknown key "zzzzzz" in rotation (line |known keys: jitter, concurrency_per_tenant`},
		},
		{
			name: "UnknownSecretRefKey",
			tweak: func(m map[string]any, _ *bundle) {
				conn(m)["client_secret"] = map[string]any{"environment": secretName}
			},
			want: []string{`connections[0] "contoso": client_secret: unknown key "environment"`},
		},
		{
			name:  "UnknownConnection",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["connection"] = "fabrikam" },
			want:  []string{`policies[0] "web": connection "fabrikam" is not defined: use one of contoso`},
			path:  "policies[0].connection",
		},
		{
			name: "DuplicateConnection",
			tweak: func(m map[string]any, _ *bundle) {
				m["connections"] = append(m["connections"].([]any), conn(base()))
			},
			want: []string{`connections[1] "contoso": name "contoso" is already used by connections[0]`},
		},
		{
			name: "ConnectionNamesShareEnvPrefix",
			tweak: func(m map[string]any, _ *bundle) {
				c1, c2 := conn(base()), conn(base())
				c1["name"], c2["name"] = "a-b", "a_b"
				m["connections"] = []any{c1, c2}
				pol(m)["connection"] = "a-b"
			},
			want: []string{`connections[1] "a_b": name "a_b" and connections[0] "a-b" share the environment variable prefix ROTOR_CONNECTIONS_A_B_`},
		},
		{
			name: "DuplicatePolicy",
			tweak: func(m map[string]any, _ *bundle) {
				m["policies"] = append(m["policies"].([]any), pol(base()))
			},
			want: []string{`policies[1] "web": name "web" is already used by policies[0]`},
		},
		{
			name:  "MissingTenantID",
			tweak: func(m map[string]any, _ *bundle) { delete(conn(m), "tenant_id") },
			want:  []string{`connections[0] "contoso": tenant_id is missing: set the directory (tenant) id, or ROTOR_CONNECTIONS_CONTOSO_TENANT_ID`},
		},
		{
			name:  "MissingClientID",
			tweak: func(m map[string]any, _ *bundle) { delete(conn(m), "client_id") },
			want:  []string{`connections[0] "contoso": client_id is missing`},
		},
		{
			name:  "PlaceholderClientID",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["client_id"] = "<client id>" },
			want:  []string{`client_id "<client id>" is not an application (client) id`},
		},
		{
			name:  "EnvVarUnset",
			tweak: func(_ map[string]any, b *bundle) { delete(b.env, secretName) },
			want:  []string{`connections[0] "contoso": client_secret: environment variable CONTOSO_ROTATION_SECRET is not set or is empty`},
			path:  "connections[0].client_secret",
		},
		{
			name:  "EnvVarEmpty",
			tweak: func(_ map[string]any, b *bundle) { b.env[secretName] = "" },
			want:  []string{`environment variable CONTOSO_ROTATION_SECRET is not set or is empty`},
		},
		{
			name:  "SecretFileMissing",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["client_secret"] = map[string]any{"file": "nope.txt"} },
			want:  []string{`client_secret: cannot read secret file |nope.txt: no such file or directory`},
		},
		{
			name:  "SecretFileIsADevice",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["client_secret"] = map[string]any{"file": "/dev/zero"} },
			want:  []string{`client_secret: secret file /dev/zero is not a regular file`},
		},
		{
			name: "SecretFileTooLarge",
			tweak: func(m map[string]any, b *bundle) {
				require.NoError(b.t, os.WriteFile(filepath.Join(b.dir, "big"), []byte(strings.Repeat(theSecret, 4000)), 0o600))
				conn(m)["client_secret"] = map[string]any{"file": "big"}
			},
			want: []string{`client_secret: secret file |big is over 64 KiB`},
		},
		{
			name:  "SimFileIsADirectory",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["sim_file"] = "./sim" },
			want:  []string{`connections[0] "contoso": sim_file |sim is not a regular file: name the simulator's sim.json`},
		},
		{
			name:  "EmptySecret",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["client_secret"] = "" },
			want:  []string{`connections[0] "contoso": client_secret: is empty`},
		},
		{
			name:  "RenewBeforeNotShorterThanLifetime",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["renew_before"] = "21d" },
			want:  []string{`policies[0] "web": renew_before (21d) must be shorter than lifetime (21d): a credential would be due the moment it is made`},
		},
		{
			name: "DefaultOverlapTooLongForLifetime",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["lifetime"] = "12h"
				delete(pol(m), "overlap")
			},
			want: []string{`overlap (1d) must be shorter than lifetime (12h); overlap was not set and defaults to 1d`},
		},
		{
			name:  "BadDuration",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["lifetime"] = "3x" },
			want:  []string{`policies[0] "web": lifetime "3x" (line |) is not a duration`},
			path:  "policies[0].lifetime",
		},
		{
			name:  "DurationIsAList",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["overlap"] = []any{"1h"} },
			want:  []string{`policies[0] "web": overlap must be a duration`},
		},
		{
			name:  "NoSelector",
			tweak: func(m map[string]any, _ *bundle) { delete(pol(m), "applications") },
			want:  []string{`applications must set exactly one of name_prefix, ids or all_owned`},
		},
		{
			name:  "SelectorWrongShape",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["applications"] = "web-" },
			want:  []string{`policies[0] "web": applications must be a map (line `},
		},
		{
			name: "UnreadableSelectorAndOtherPolicyProblems",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["applications"] = map[string]any{"name_prefx": "web-"}
				pol(m)["renew_before"] = "21d"
			},
			want: []string{
				`policies[0] "web": unknown key "name_prefx" in applications`,
				`policies[0] "web": renew_before (21d) must be shorter than lifetime (21d)`,
			},
		},
		{
			name:  "BoolWrongShape",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["enabled"] = "yes please" },
			want:  []string{`policies[0] "web": enabled must be true or false (line `},
		},
		{
			name:  "UnknownKind",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["kind"] = "password" },
			want:  []string{`kind "password" is not known`},
		},
		{
			name: "UnknownSinkType",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["sinks"] = []any{map[string]any{"vercel": map[string]any{"project": "x"}}}
			},
			want: []string{`policies[0] "web": sinks[0] (vercel, line |unknown sink type "vercel" (known: [keyvault])`},
			path: "policies[0].sinks[0]",
		},
		{
			name: "BadSinkSettings",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["sinks"] = []any{map[string]any{"keyvault": map[string]any{"vault_uri": vaultURL}}}
			},
			want: []string{`sinks[0] (keyvault, line |unknown key "vault_uri"`},
		},
		{
			name: "SinkNotSingleKey",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["sinks"] = []any{map[string]any{"keyvault": map[string]any{}, "github": map[string]any{}}}
			},
			want: []string{`sinks[0] must be a map with one key, the sink type`},
		},
		{
			name: "CertificateSettingsOnASecretPolicy",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["certificate"] = map[string]any{"key_type": "rsa-3072"}
			},
			want: []string{`certificate is set but kind is "secret"`},
		},
		{
			name: "CertificateBadSettings",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["kind"] = "certificate"
				pol(m)["lifetime"] = "365d"
				pol(m)["certificate"] = map[string]any{"key_type": "ec-p256", "subject": "O=Contoso", "bootstrap": map[string]any{"url": "x"}}
			},
			want: []string{`certificate.subject: subject "O=Contoso" has no CN`, `certificate.bootstrap: unknown key "url"`, `certificate.key_type ec-p256 cannot sign in to Entra`},
		},
		{
			name: "KeyVaultKeySourceWithoutVault",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["kind"] = "certificate"
				pol(m)["certificate"] = map[string]any{"key_source": "keyvault-key", "vault_name": "{{ .App.DisplayName }}_x"}
			},
			want: []string{`certificate.vault_name: template "{{ .App.DisplayName }}_x" renders "sample-app_x"`, `certificate.key_source keyvault-key needs certificate.vault_url`},
		},
		{
			name: "KeySourceUnknown",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["kind"] = "certificate"
				pol(m)["certificate"] = map[string]any{"key_source": "hsm", "vault_url": vaultURL}
			},
			want: []string{`certificate.key_source "hsm" is not known`},
		},
		{
			name: "KeyVaultCertificateShortLifetime",
			tweak: func(m map[string]any, _ *bundle) {
				pol(m)["kind"] = "certificate"
				pol(m)["lifetime"] = "20d"
				pol(m)["renew_before"] = "5d"
				pol(m)["overlap"] = "1d"
				pol(m)["certificate"] = map[string]any{"key_source": "keyvault-certificate", "vault_url": vaultURL}
			},
			want: []string{`Key Vault issues certificates for whole months`},
		},
		{
			name: "RetireUnmanagedWithoutSinks",
			tweak: func(m map[string]any, _ *bundle) {
				delete(pol(m), "sinks")
				pol(m)["retire_unmanaged"] = true
			},
			want: []string{`sinks is empty but retire_unmanaged is true`},
		},
		{
			name:  "SimFileMissing",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["sim_file"] = "./elsewhere/sim.json" },
			want:  []string{`connections[0] "contoso": sim_file |elsewhere/sim.json cannot be read (no such file or directory): start the simulator`},
		},
		{
			name:  "SimFileNotSet",
			tweak: func(m map[string]any, _ *bundle) { delete(conn(m), "sim_file") },
			want:  []string{`sim_file is missing: cloud: sim needs the path of the simulator's sim.json`},
		},
		{
			name:  "TenantNotInSimulator",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["tenant_id"] = "00000000-0000-0000-0000-000000000000" },
			want:  []string{`tenant_id "00000000-0000-0000-0000-000000000000" is not a tenant of the simulator in |it has: ` + tenantID + ` (contoso)`},
		},
		{
			name:  "LifetimeAboveTenantLimit",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["lifetime"] = "120d" },
			want:  []string{`policies[0] "web": lifetime 120d exceeds tenant contoso's app management policy maximum of 60d; lower lifetime to at most 60d`},
		},
		{
			name:  "SimFileWithRealCloud",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["cloud"] = "public" },
			want:  []string{`sim_file is only used with cloud: sim`},
		},
		{
			name:  "UnknownCloud",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["cloud"] = "mars" },
			want:  []string{`cloud "mars" is not known: use public, usgov, china or sim`},
		},
		{
			name:  "UnknownPurpose",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["purpose"] = "admin" },
			want:  []string{`purpose "admin" is not known`},
		},
		{
			name:  "PolicyThroughAReadConnection",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["purpose"] = "read" },
			want:  []string{`policies[0] "web": connection "contoso" has purpose read: a policy rotates through a connection with purpose rotation`},
		},
		{
			name:  "LeaseTTLTooShort",
			tweak: func(m map[string]any, _ *bundle) { m["rotation"] = map[string]any{"lease_ttl": "1s"} },
			want:  []string{`rotation.lease_ttl (1s, line 26) is too short: use at least 2s`},
		},
		{
			name:  "NoIdentity",
			tweak: func(m map[string]any, _ *bundle) { delete(conn(m), "client_secret") },
			want:  []string{`no identity: set one of client_secret, certificate, managed_identity or workload_identity`},
		},
		{
			name:  "TwoIdentities",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["managed_identity"] = true },
			want:  []string{`client_secret and managed_identity are all set: choose one identity`},
		},
		{
			name: "CertificateFileMissing",
			tweak: func(m map[string]any, _ *bundle) {
				delete(conn(m), "client_secret")
				conn(m)["certificate"] = map[string]any{"file": "missing.pem"}
			},
			want: []string{`certificate.file |missing.pem cannot be read (no such file or directory)`},
		},
		{
			name: "WorkloadIdentityWithoutTokenFile",
			tweak: func(m map[string]any, _ *bundle) {
				delete(conn(m), "client_secret")
				conn(m)["workload_identity"] = map[string]any{}
			},
			want: []string{`workload_identity.token_file is missing and AZURE_FEDERATED_TOKEN_FILE is not set`},
		},
		{
			name: "ClientIDWithManagedIdentity",
			tweak: func(m map[string]any, _ *bundle) {
				delete(conn(m), "client_secret")
				conn(m)["managed_identity"] = true
			},
			want: []string{`client_id is not used with managed_identity`},
		},
		{
			name: "KeyVaultRefBadURL",
			tweak: func(m map[string]any, _ *bundle) {
				conn(m)["client_secret"] = map[string]any{"keyvault": map[string]any{"vault_url": "http://kv", "secret": "s"}}
			},
			want: []string{`client_secret: keyvault.vault_url "http://kv" must be the vault's https URL`},
		},
		{
			name: "PostgresURLWithAPassword",
			tweak: func(m map[string]any, _ *bundle) {
				m["database"] = map[string]any{"url": "postgres://rotor:" + theSecret + "@db/rotor",
					"migrate_url": "postgres://owner@db/rotor?password=" + theSecret}
			},
			want: []string{
				`database.url postgres://rotor:xxxxx@db/rotor carries a password: take it out, and give it as database.password: {env: NAME} or {file: PATH}`,
				`database.migrate_url postgres://owner@db/rotor?password=xxxxx carries a password|database.migrate_password: {env: NAME}`,
			},
		},
		{
			name: "PostgresURLProblems",
			tweak: func(m map[string]any, _ *bundle) {
				m["database"] = map[string]any{"url": "postgres://db?sslmode=maybe&pool_max_conns=0", "migrate_url": "sqlite://x.db"}
			},
			want: []string{
				`database.url postgres://db?sslmode=maybe&pool_max_conns=0 names no user`,
				`database.url postgres://db?sslmode=maybe&pool_max_conns=0 names no database`,
				`database.url: sslmode "maybe" is not known: use disable, allow, prefer, require, verify-ca, verify-full`,
				`database.url: pool_max_conns "0" must be a number from 1 to 1000`,
				`database.migrate_url must be a postgres:// URL`,
			},
		},
		{
			name: "PostgresPasswordReferences",
			tweak: func(m map[string]any, _ *bundle) {
				m["database"] = map[string]any{"url": "postgres://rotor@db/rotor",
					"password":         map[string]any{"keyvault": map[string]any{"vault_url": "https://kv.vault.azure.net", "secret": "db"}},
					"migrate_password": map[string]any{"env": "NOT_SET_ANYWHERE"}}
			},
			want: []string{
				`database.password: a Key Vault reference is not supported for the database password: use {env: NAME} or {file: PATH}`,
				`database.migrate_password: environment variable NOT_SET_ANYWHERE is not set`,
				`database.migrate_password is set without database.migrate_url`,
			},
		},
		{
			name: "PostgresKeysOnSQLite",
			tweak: func(m map[string]any, _ *bundle) {
				m["database"] = map[string]any{"password": map[string]any{"env": secretName}, "migrate_url": "postgres://o@db/rotor"}
			},
			want: []string{
				`database.password is only for PostgreSQL`,
				`database.migrate_url is only for PostgreSQL`,
			},
		},
		{
			name: "UnknownDatabaseScheme",
			tweak: func(m map[string]any, _ *bundle) {
				m["database"] = map[string]any{"url": "mysql://u:" + theSecret + "@h/db"}
			},
			want: []string{`database.url: scheme "mysql" is not supported`},
		},
		{
			name:  "BadListen",
			tweak: func(m map[string]any, _ *bundle) { m["listen"] = "localhost" },
			want:  []string{`listen "localhost" must be host:port`},
		},
		{
			name:  "BadLogLevel",
			tweak: func(m map[string]any, _ *bundle) { m["log"] = map[string]any{"level": "loud"} },
			want:  []string{`log.level "loud" is not known: use debug, info, warn or error`},
		},
		{
			name: "BadRotationSettings",
			tweak: func(m map[string]any, _ *bundle) {
				m["rotation"] = map[string]any{"jitter": "-1s", "concurrency_per_tenant": 0, "plan_interval": "0s"}
			},
			want: []string{`rotation.jitter (-1s, line |) must not be negative`, `rotation.plan_interval (0s, line |) is too short: use at least 1s`, `rotation.concurrency_per_tenant (0) must be at least 1`},
		},
		{
			name:  "BadEnvOverride",
			tweak: func(_ map[string]any, b *bundle) { b.env["ROTOR_ROTATION_CONCURRENCY_PER_TENANT"] = "many" },
			want:  []string{`environment variable ROTOR_ROTATION_CONCURRENCY_PER_TENANT="many": want a whole number`},
		},
		{
			name:  "BadEnvDuration",
			tweak: func(_ map[string]any, b *bundle) { b.env["ROTOR_POLICIES_WEB_LIFETIME"] = "soon" },
			want:  []string{`policies[0] "web": lifetime "soon" (ROTOR_POLICIES_WEB_LIFETIME) is not a duration`},
		},
		{
			name:  "ConnectionNotAMap",
			tweak: func(m map[string]any, _ *bundle) { m["connections"] = append(m["connections"].([]any), "fabrikam") },
			want:  []string{`connections[1] must be a map (line `},
		},
		{
			name: "EveryProblemAtOnce",
			tweak: func(m map[string]any, b *bundle) {
				m["listn"] = ":9090"
				delete(conn(m), "tenant_id")
				delete(b.env, secretName)
				pol(m)["renew_before"] = "30d"
				pol(m)["connection"] = "fabrikam"
			},
			want: []string{
				`unknown key "listn"`,
				`connections[0] "contoso": tenant_id is missing`,
				`connections[0] "contoso": client_secret: environment variable CONTOSO_ROTATION_SECRET is not set`,
				`policies[0] "web": connection "fabrikam" is not defined`,
				`policies[0] "web": renew_before (30d) must be shorter than lifetime (21d)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := base()
			tt.tweak(m, b)
			cfg, err := b.parse(t, m)
			require.Error(t, err)
			require.Nil(t, cfg, "a configuration with problems must not be returned")
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			msg := err.Error()
			lines := strings.Split(msg, "\n")
			require.Len(t, lines, len(tt.want), "problems:\n%s", msg)
			for i, w := range tt.want {
				for _, frag := range strings.Split(w, "|") {
					require.Contains(t, lines[i], frag, "problems:\n%s", msg)
				}
			}
			if tt.path != "" {
				require.Equal(t, tt.path, ve.Problems[0].Path)
			}
			require.NotContains(t, msg, theSecret)
		})
	}
}

// TestStrictDecoderAgrees checks the unknown-key walk against yaml.v3's own
// KnownFields(true): both must reject the same files.
func TestStrictDecoderAgrees(t *testing.T) {
	t.Parallel()
	for _, tweak := range []func(m map[string]any){
		func(m map[string]any) {},
		func(m map[string]any) { m["listn"] = "x" },
		func(m map[string]any) { pol(m)["renew_befor"] = "1h" },
		func(m map[string]any) { conn(m)["certificate"] = map[string]any{"file": "x", "pasword": "y"} },
		func(m map[string]any) { m["database"] = map[string]any{"uri": "x"} },
		func(m map[string]any) { conn(m)["workload_identity"] = map[string]any{"tokenfile": "x"} },
		func(m map[string]any) { m["log"] = map[string]any{"lvl": "x"} },
	} {
		m := base()
		tweak(m)
		data, err := yaml.Marshal(m)
		require.NoError(t, err)

		var ps problems
		var doc yaml.Node
		require.NoError(t, yaml.Unmarshal(data, &doc))
		checkKeys(doc.Content[0], reflect.TypeFor[rawConfig](), "", "", "", &ps, map[string]bool{})

		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		strictErr := dec.Decode(&rawConfig{})
		require.Equal(t, strictErr != nil, len(ps.list) > 0, "yaml: %v, walk: %v\n%s", strictErr, ps.list, data)
	}
}

func TestParseNotes(t *testing.T) {
	t.Parallel()
	t.Run("DefaultLifetimeClampedToTenantLimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := base()
		delete(pol(m), "lifetime")
		cfg, err := b.parse(t, m)
		require.NoError(t, err)
		require.Equal(t, 60*day, cfg.Policies[0].Lifetime)
		require.Equal(t, time.Hour, cfg.Policies[0].RenewBefore)
		require.Equal(t, []string{`policy "web": lifetime defaults to 90d, but tenant contoso's app management policy allows at most 60d; using 60d`}, cfg.Notes)
	})
	t.Run("DefaultRenewBeforeIsAThirdOfClampedLifetime", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := base()
		delete(pol(m), "lifetime")
		delete(pol(m), "renew_before")
		cfg, err := b.parse(t, m)
		require.NoError(t, err)
		require.Equal(t, 20*day, cfg.Policies[0].RenewBefore)
	})
	t.Run("CertificateKind", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := base()
		pol(m)["kind"] = "certificate"
		pol(m)["lifetime"] = "365d" // the password limit does not apply
		cfg, err := b.parse(t, m)
		require.NoError(t, err)
		require.Equal(t, domain.KindCertificate, cfg.Policies[0].Kind)
		require.Empty(t, cfg.Notes)
		require.True(t, cfg.Policies[0].Certificate.IsZero(), "every default")
	})
	t.Run("CertificateSettings", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := base()
		pol(m)["kind"] = "certificate"
		pol(m)["certificate"] = map[string]any{"key_type": "rsa-4096", "subject": "CN=payroll, O=Contoso",
			"dns_names": []any{"payroll.example.com"}, "bootstrap": map[string]any{"file": "boot.pem"}}
		cfg, err := b.parse(t, m)
		require.NoError(t, err)
		c := cfg.Policies[0].Certificate
		require.Equal(t, "rsa-4096", c.KeyType)
		require.Equal(t, "CN=payroll, O=Contoso", c.Subject)
		require.Equal(t, []string{"payroll.example.com"}, c.DNSNames)
		require.True(t, filepath.IsAbs(c.Bootstrap["file"].(string)), "relative to rotor.yaml: %v", c.Bootstrap)
	})
	t.Run("KeyVaultKeySource", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := base()
		pol(m)["kind"] = "certificate"
		pol(m)["certificate"] = map[string]any{"key_source": "KeyVault-Key", "vault_url": "https://signing.vault.azure.net", "hsm": true,
			"vault_name": "cert-{{ .App.AppID }}"}
		cfg, err := b.parse(t, m)
		require.NoError(t, err)
		c := cfg.Policies[0].Certificate
		require.Equal(t, domain.KeySourceKeyVaultKey, c.KeySource)
		require.Equal(t, "https://signing.vault.azure.net/", c.VaultURL)
		require.True(t, c.HSM)
		require.Equal(t, "cert-{{ .App.AppID }}", c.VaultName)
	})
	t.Run("InlineSecrets", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.NoError(t, os.WriteFile(filepath.Join(b.dir, "id.pfx"), []byte("pfx"), 0o600))
		m := base()
		conn(m)["client_secret"] = theSecret
		c2 := conn(base())
		c2["name"] = "contoso-cert"
		delete(c2, "client_secret")
		c2["certificate"] = map[string]any{"file": "id.pfx", "password": theSecret + "-pw"}
		c3 := conn(base())
		c3["name"] = "contoso-env" // an override is the secret itself, but not in the file
		delete(c3, "client_secret")
		b.env["ROTOR_CONNECTIONS_CONTOSO_ENV_CLIENT_SECRET"] = theSecret
		m["connections"] = append(m["connections"].([]any), c2, c3)
		cfg, err := b.parse(t, m)
		require.NoError(t, err)
		require.Equal(t, theSecret, cfg.Connections[0].Identity.ClientSecret.Reveal(), "an inline secret still works")
		require.Equal(t, theSecret+"-pw", cfg.Connections[1].Identity.CertificatePassword.Reveal())
		require.Len(t, cfg.Notes, 2, "%q", cfg.Notes)
		require.Contains(t, cfg.Notes[0], `connection "contoso": client_secret is written inline in the configuration file (line `)
		require.Contains(t, cfg.Notes[0], `use client_secret: {env: NAME} or {file: PATH} instead`)
		require.Contains(t, cfg.Notes[1], `connection "contoso-cert": certificate.password is written inline in the configuration file (line `)
		for _, n := range cfg.Notes {
			require.NotContains(t, n, "Sup3r-S3cret", "a note must never show the secret")
		}

		// With a problem elsewhere, the error shows no secret either.
		pol(m)["renew_before"] = "30d"
		_, err = b.parse(t, m)
		require.Error(t, err)
		require.NotContains(t, err.Error(), "Sup3r-S3cret")
	})
	t.Run("NoSinks", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m := base()
		delete(pol(m), "sinks")
		cfg, err := b.parse(t, m)
		require.NoError(t, err)
		require.Equal(t, []string{`policy "web" has no sinks: new credentials it creates reach no consumer`}, cfg.Notes)
	})
}

func TestParseDefaultsAndShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tweak func(m map[string]any, b *bundle)
		check func(t *testing.T, cfg *Config, b *bundle)
	}{
		{
			name: "PolicyDefaults",
			tweak: func(m map[string]any, _ *bundle) {
				p := pol(m)
				for _, k := range []string{"kind", "renew_before", "overlap"} {
					delete(p, k)
				}
				p["lifetime"] = "30d"
			},
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				p := cfg.Policies[0]
				require.Equal(t, domain.KindSecret, p.Kind)
				require.Equal(t, 10*day, p.RenewBefore)
				require.Equal(t, 24*time.Hour, p.Overlap)
				require.Equal(t, 14*day, p.NotifyBefore)
				require.True(t, p.Enabled)
				require.True(t, p.Verify)
				require.False(t, p.RetireUnmanaged)
			},
		},
		{
			name: "SelectorIDsAndFlags",
			tweak: func(m map[string]any, _ *bundle) {
				p := pol(m)
				p["applications"] = map[string]any{"ids": []any{"a1", "a2"}}
				p["enabled"], p["verify"], p["retire_unmanaged"] = false, false, true
				p["notify_before"] = "7d"
			},
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				p := cfg.Policies[0]
				require.Equal(t, domain.Selector{IDs: []string{"a1", "a2"}}, p.Selector)
				require.False(t, p.Enabled)
				require.False(t, p.Verify)
				require.True(t, p.RetireUnmanaged)
				require.Equal(t, 7*day, p.NotifyBefore)
			},
		},
		{
			name:  "AllOwned",
			tweak: func(m map[string]any, _ *bundle) { pol(m)["applications"] = map[string]any{"all_owned": true} },
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				require.True(t, cfg.Policies[0].Selector.AllOwned)
			},
		},
		{
			name:  "TenantByName",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["tenant_id"] = "contoso" },
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				require.Equal(t, tenantID, cfg.Connections[0].TenantID)
			},
		},
		{
			name: "SecretFromFileTrimmed",
			tweak: func(m map[string]any, b *bundle) {
				require.NoError(t, os.WriteFile(filepath.Join(b.dir, "secret.txt"), []byte("  "+theSecret+"\n"), 0o600))
				conn(m)["client_secret"] = map[string]any{"file": "secret.txt"}
			},
			check: func(t *testing.T, cfg *Config, b *bundle) {
				require.Equal(t, theSecret, cfg.Connections[0].Identity.ClientSecret.Reveal())
				require.Equal(t, "file "+filepath.Join(b.dir, "secret.txt"), cfg.Connections[0].ClientSecretRef.String())
			},
		},
		{
			name:  "InlineSecret",
			tweak: func(m map[string]any, _ *bundle) { conn(m)["client_secret"] = theSecret },
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				require.Equal(t, theSecret, cfg.Connections[0].Identity.ClientSecret.Reveal())
				require.Equal(t, []string{`connection "contoso": client_secret is written inline in the configuration file (line 3), so anyone who can read the file or a copy of it has the secret; use client_secret: {env: NAME} or {file: PATH} instead`}, cfg.Notes)
			},
		},
		{
			name: "ManagedIdentitySystemAssigned",
			tweak: func(m map[string]any, _ *bundle) {
				c := conn(m)
				delete(c, "client_secret")
				delete(c, "client_id")
				c["managed_identity"] = true
			},
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				require.Equal(t, azure.Identity{Method: azure.ManagedIdentity}, cfg.Connections[0].Identity)
			},
		},
		{
			name: "ManagedIdentityUserAssigned",
			tweak: func(m map[string]any, _ *bundle) {
				c := conn(m)
				delete(c, "client_secret")
				delete(c, "client_id")
				c["managed_identity"] = map[string]any{"client_id": clientID}
			},
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				require.Equal(t, azure.Identity{Method: azure.ManagedIdentity, ManagedIdentityClientID: clientID}, cfg.Connections[0].Identity)
			},
		},
		{
			name: "WorkloadIdentityFromEnvironment",
			tweak: func(m map[string]any, b *bundle) {
				c := conn(m)
				delete(c, "client_secret")
				delete(c, "client_id")
				c["workload_identity"] = map[string]any{}
				b.env["AZURE_CLIENT_ID"] = clientID
				b.env["AZURE_FEDERATED_TOKEN_FILE"] = "/var/run/secrets/azure/tokens/azure-identity-token"
			},
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				require.Equal(t, azure.Identity{Method: azure.WorkloadIdentity, ClientID: clientID, FederatedTokenFile: "/var/run/secrets/azure/tokens/azure-identity-token"}, cfg.Connections[0].Identity)
			},
		},
		{
			name: "Certificate",
			tweak: func(m map[string]any, b *bundle) {
				require.NoError(t, os.WriteFile(filepath.Join(b.dir, "id.pem"), []byte("pem"), 0o600))
				c := conn(m)
				delete(c, "client_secret")
				c["certificate"] = map[string]any{"file": "id.pem", "password": map[string]any{"env": "CERT_PW"}, "send_certificate_chain": true}
				b.env["CERT_PW"] = theSecret
			},
			check: func(t *testing.T, cfg *Config, b *bundle) {
				id := cfg.Connections[0].Identity
				require.Equal(t, azure.Certificate, id.Method)
				require.Equal(t, filepath.Join(b.dir, "id.pem"), id.CertificatePath)
				require.Equal(t, theSecret, id.CertificatePassword.Reveal())
				require.True(t, id.SendCertificateChain)
			},
		},
		{
			name: "OtherTopLevelKeys",
			tweak: func(m map[string]any, b *bundle) {
				m["organization"] = "acme"
				m["database"] = map[string]any{"url": "sqlite://" + filepath.Join(b.dir, "rotor.db")}
				m["rotation"] = map[string]any{"jitter": "0s", "concurrency_per_tenant": 8, "verify_timeout": "10m", "plan_interval": "30s", "sync_interval": "1h", "lease_ttl": "1m"}
				m["log"] = map[string]any{"level": "debug", "format": "json"}
				conn(m)["auxiliary_tenants"] = []any{"fabrikam.onmicrosoft.com"}
				m["policies"] = nil
				conn(m)["purpose"] = "read"
			},
			check: func(t *testing.T, cfg *Config, b *bundle) {
				require.Equal(t, domain.OrgID("acme"), cfg.Organization)
				require.Equal(t, filepath.Join(b.dir, "rotor.db"), cfg.DatabasePath())
				require.Equal(t, RotationSettings{ConcurrencyPerTenant: 8, MaxInFlight: 512, VerifyTimeout: 10 * time.Minute, PlanInterval: 30 * time.Second, SyncInterval: time.Hour, FullSyncInterval: 24 * time.Hour, OwnershipInterval: time.Hour, LeaseTTL: time.Minute, RetryAfter: 30 * time.Second, RetryPermanentAfter: time.Hour}, cfg.Rotation)
				require.Equal(t, LogSettings{Level: -4, Format: "json"}, cfg.Log)
				require.Equal(t, []string{"fabrikam.onmicrosoft.com"}, cfg.Connections[0].AuxiliaryTenants)
				require.Equal(t, PurposeRead, cfg.Connections[0].Purpose)
			},
		},
		{
			name: "Postgres",
			tweak: func(m map[string]any, b *bundle) {
				require.NoError(b.t, os.WriteFile(filepath.Join(b.dir, "owner-pw"), []byte("owner-"+theSecret+"\n"), 0o600))
				m["database"] = map[string]any{
					"url":              "postgres://rotor_app@db.example.com:5432/rotor?sslmode=verify-full&pool_max_conns=20",
					"password":         map[string]any{"env": secretName},
					"migrate_url":      "postgresql://rotor_owner@db.example.com/rotor?sslmode=verify-full",
					"migrate_password": map[string]any{"file": "owner-pw"},
				}
			},
			check: func(t *testing.T, cfg *Config, b *bundle) {
				db := cfg.Database
				require.Equal(t, "postgres", db.Driver)
				require.Empty(t, cfg.DatabasePath())
				require.Equal(t, "postgres://rotor_app@db.example.com:5432/rotor?sslmode=verify-full&pool_max_conns=20", db.URL)
				require.Equal(t, theSecret, db.Password.Value().Reveal())
				require.Equal(t, "postgresql://rotor_owner@db.example.com/rotor?sslmode=verify-full", db.MigrateURL)
				require.Equal(t, "owner-"+theSecret, db.MigratePassword.Value().Reveal())
				require.Equal(t, "file "+filepath.Join(b.dir, "owner-pw"), db.MigratePassword.String())
				require.NotContains(t, fmt.Sprintf("%+v", db), theSecret)
			},
		},
		{
			name: "PostgresFromTheEnvironment",
			tweak: func(_ map[string]any, b *bundle) {
				b.env["ROTOR_DATABASE_URL"] = "postgres://rotor_app@db/rotor"
				b.env["ROTOR_DATABASE_PASSWORD"] = theSecret
			},
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				require.Equal(t, "postgres", cfg.Database.Driver)
				require.Equal(t, "postgres://rotor_app@db/rotor", cfg.Database.URL)
				require.Equal(t, theSecret, cfg.Database.Password.Value().Reveal())
				require.Equal(t, "environment variable ROTOR_DATABASE_PASSWORD", cfg.Database.Password.String())
				require.Empty(t, cfg.Database.MigrateURL)
			},
		},
		{
			name: "DatabasePlainPath",
			tweak: func(m map[string]any, b *bundle) {
				require.NoError(b.t, os.Mkdir(filepath.Join(b.dir, "state"), 0o700))
				m["database"] = map[string]any{"url": "state/rotor.db"}
			},
			check: func(t *testing.T, cfg *Config, b *bundle) {
				require.Equal(t, filepath.Join(b.dir, "state", "rotor.db"), cfg.DatabasePath())
			},
		},
		{
			name: "EnvOverrides",
			tweak: func(_ map[string]any, b *bundle) {
				delete(b.env, secretName) // the override replaces the reference
				require.NoError(b.t, os.Mkdir(filepath.Join(b.dir, "db"), 0o700))
				for k, v := range map[string]string{
					"ROTOR_LISTEN":                                ":9999",
					"ROTOR_DATA_DIR":                              filepath.Join(b.dir, "srv", "rotor"),
					"ROTOR_DATABASE_URL":                          filepath.Join(b.dir, "db", "rotor.db"),
					"ROTOR_ROTATION_JITTER":                       "2m",
					"ROTOR_ROTATION_CONCURRENCY_PER_TENANT":       "2",
					"ROTOR_LOG_LEVEL":                             "warn",
					"ROTOR_CONNECTIONS_CONTOSO_CLIENT_SECRET":     theSecret,
					"ROTOR_CONNECTIONS_CONTOSO_CLIENT_ID":         "2b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
					"ROTOR_CONNECTIONS_CONTOSO_TENANT_ID":         "contoso",
					"ROTOR_CONNECTIONS_CONTOSO_AUXILIARY_TENANTS": "a.onmicrosoft.com, b.onmicrosoft.com",
					"ROTOR_POLICIES_WEB_LIFETIME":                 "30d",
					"ROTOR_POLICIES_WEB_APPLICATIONS_NAME_PREFIX": "api-",
					"ROTOR_POLICIES_WEB_ENABLED":                  "false",
					"ROTOR_POLICIES_NOPE_LIFETIME":                "1d", // no such policy: ignored
				} {
					b.env[k] = v
				}
			},
			check: func(t *testing.T, cfg *Config, b *bundle) {
				require.Equal(t, ":9999", cfg.Listen)
				require.Equal(t, filepath.Join(b.dir, "srv", "rotor"), cfg.DataDir)
				require.Equal(t, filepath.Join(b.dir, "db", "rotor.db"), cfg.DatabasePath())
				require.Equal(t, 2*time.Minute, cfg.Rotation.Jitter)
				require.Equal(t, 2, cfg.Rotation.ConcurrencyPerTenant)
				require.Equal(t, LogSettings{Level: 4, Format: "text"}, cfg.Log)
				c := cfg.Connections[0]
				require.Equal(t, theSecret, c.Identity.ClientSecret.Reveal())
				require.Equal(t, "environment variable ROTOR_CONNECTIONS_CONTOSO_CLIENT_SECRET", c.ClientSecretRef.String())
				require.Equal(t, "2b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9", c.Identity.ClientID)
				require.Equal(t, tenantID, c.TenantID)
				require.Equal(t, []string{"a.onmicrosoft.com", "b.onmicrosoft.com"}, c.AuxiliaryTenants)
				p := cfg.Policies[0]
				require.Equal(t, 30*day, p.Lifetime)
				require.Equal(t, "api-", p.Selector.NamePrefix)
				require.False(t, p.Enabled)
			},
		},
		{
			name: "EnvManagedIdentity",
			tweak: func(m map[string]any, b *bundle) {
				delete(conn(m), "client_secret")
				delete(conn(m), "client_id")
				b.env["ROTOR_CONNECTIONS_CONTOSO_MANAGED_IDENTITY_CLIENT_ID"] = clientID
			},
			check: func(t *testing.T, cfg *Config, _ *bundle) {
				require.Equal(t, azure.Identity{Method: azure.ManagedIdentity, ManagedIdentityClientID: clientID}, cfg.Connections[0].Identity)
			},
		},
		{
			name:  "MetricsOff",
			tweak: func(m map[string]any, _ *bundle) { m["metrics"] = map[string]any{"enabled": false} },
			check: func(t *testing.T, cfg *Config, _ *bundle) { require.False(t, cfg.Metrics.Enabled) },
		},
		{
			name: "MetricsOffByEnv",
			tweak: func(m map[string]any, b *bundle) {
				m["metrics"] = map[string]any{"enabled": true}
				b.env["ROTOR_METRICS_ENABLED"] = "false"
			},
			check: func(t *testing.T, cfg *Config, _ *bundle) { require.False(t, cfg.Metrics.Enabled) },
		},
		{
			name:  "EmptyEnvIsUnset",
			tweak: func(_ map[string]any, b *bundle) { b.env["ROTOR_LISTEN"] = "" },
			check: func(t *testing.T, cfg *Config, _ *bundle) { require.Equal(t, "127.0.0.1:8080", cfg.Listen) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := base()
			tt.tweak(m, b)
			cfg, err := b.parse(t, m)
			require.NoError(t, err)
			tt.check(t, cfg, b)
		})
	}
}

func TestParseEmptyFile(t *testing.T) {
	t.Parallel()
	cfg, err := Parse(nil, t.TempDir(), LoadOptions{Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	require.Empty(t, cfg.Connections)
	require.Len(t, cfg.Notes, 1)
}

func TestParseNotYAML(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"listen: [", "- a\n- b\n", "just a string"} {
		_, err := Parse([]byte(text), t.TempDir(), LoadOptions{})
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, text)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	path := filepath.Join(b.dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(path, []byte("listn: x\n"), 0o600))
	_, err := Load(path, b.opts)
	require.ErrorContains(t, err, "configuration "+path+" has 1 problem:\nunknown key \"listn\" (line 1)")

	_, err = Load(filepath.Join(b.dir, "missing.yaml"), b.opts)
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestSecretsNeverShown puts the secret everywhere a secret can be and
// checks that neither errors nor printed configurations show it.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, os.WriteFile(filepath.Join(b.dir, "pw"), []byte(theSecret), 0o600))

	m := base()
	c := conn(m)
	c["client_secret"] = theSecret
	c2 := conn(base())
	c2["name"] = "fabrikam"
	delete(c2, "client_secret")
	c2["certificate"] = map[string]any{"file": "nope.pem", "password": map[string]any{"file": "pw"}}
	c3 := conn(base())
	c3["name"] = "tailspin"
	c3["client_secret"] = map[string]any{"keyvault": map[string]any{"vault_url": "http://kv", "secret": "s"}}
	m["connections"] = append(m["connections"].([]any), c2, c3)
	m["database"] = map[string]any{"url": "postgres://u:" + theSecret + "@h:bad/db", "migrate_url": "postgres://o:" + theSecret + "@h/db"}
	m["listn"] = theSecret
	pol(m)["lifetime"] = "999d"
	b.env["ROTOR_ROTATION_JITTER"] = "x"
	b.env["ROTOR_CONNECTIONS_FABRIKAM_CLIENT_SECRET"] = theSecret

	_, err := b.parse(t, m)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "Sup3r-S3cret-Value!")
	delete(b.env, "ROTOR_ROTATION_JITTER")
	delete(b.env, "ROTOR_CONNECTIONS_FABRIKAM_CLIENT_SECRET")

	// And a valid configuration, printed every way fmt can.
	m = base()
	conn(m)["client_secret"] = theSecret
	m["database"] = map[string]any{"url": "postgres://u@h/db", "password": theSecret}
	cfg, err := b.parse(t, m)
	require.NoError(t, err)
	require.Contains(t, strings.Join(cfg.Notes, "\n"), "database.password is written inline")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		require.NotContains(t, fmt.Sprintf(verb, cfg), theSecret, verb)
		require.NotContains(t, fmt.Sprintf(verb, *cfg), theSecret, verb)
		require.NotContains(t, fmt.Sprintf(verb, cfg.Connections[0]), theSecret, verb)
		require.NotContains(t, fmt.Sprintf(verb, *cfg.Connections[0].ClientSecretRef), theSecret, verb)
	}
}

type fakeResolver struct{ calls int }

func (f *fakeResolver) KeyVaultSecret(_ context.Context, vault, name string) (secret.Value, error) {
	f.calls++
	if name == "missing" {
		return secret.Value{}, errors.New("SecretNotFound")
	}
	return secret.New(theSecret), nil
}

func TestResolveKeyVaultSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := base()
	conn(m)["client_secret"] = map[string]any{"keyvault": map[string]any{"vault_url": vaultURL, "secret": "contoso-rotation"}}
	cfg, err := b.parse(t, m)
	require.NoError(t, err)
	c := &cfg.Connections[0]
	require.True(t, c.ClientSecretRef.IsKeyVault())
	require.False(t, c.ClientSecretRef.Resolved())
	require.True(t, c.Identity.ClientSecret.IsZero(), "Key Vault secrets are resolved later")

	_, err = c.ClientSecretRef.Resolve(context.Background(), nil)
	require.ErrorIs(t, err, ErrNoResolver)

	r := &fakeResolver{}
	require.NoError(t, cfg.ResolveSecrets(context.Background(), r))
	require.NoError(t, cfg.ResolveSecrets(context.Background(), r))
	require.Equal(t, 1, r.calls, "a resolved reference is remembered")
	require.Equal(t, theSecret, c.AzureConnection().Identity.ClientSecret.Reveal())

	m = base()
	conn(m)["client_secret"] = map[string]any{"keyvault": map[string]any{"vault_url": vaultURL, "secret": "missing"}}
	cfg, err = b.parse(t, m)
	require.NoError(t, err)
	err = cfg.ResolveSecrets(context.Background(), r)
	require.ErrorContains(t, err, `connection "contoso": client_secret: read Key Vault secret "missing" in `+vaultURL+`: SecretNotFound`)
}

func TestPolicyFor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := base()
	p2, p3, p4 := pol(base()), pol(base()), pol(base())
	p2["name"], p2["applications"] = "web-paused", map[string]any{"ids": []any{"paused-app"}}
	p2["enabled"] = false
	p3["name"], p3["applications"] = "owned", map[string]any{"all_owned": true}
	p4["name"] = "web-again" // same selector as the first: never wins
	// First in file order: the paused narrow policy goes before the broad ones.
	m["policies"] = []any{p2, pol(m), p3, p4}
	cfg, err := b.parse(t, m)
	require.NoError(t, err)

	tenant := cfg.Connections[0].TenantID
	app := func(name, appID string, manageable bool) domain.Application {
		return domain.Application{TenantID: tenant, DisplayName: name, AppID: appID, ObjectID: "obj-" + appID, Manageable: manageable,
			Access: []domain.Access{{Connection: "contoso", CanChange: manageable}}}
	}
	tests := []struct {
		name string
		app  domain.Application
		want string
	}{
		{name: "FirstMatchInFileOrder", app: app("web-shop", "x", true), want: "web"},
		{name: "DisabledPolicyStillGoverns", app: app("web-paused", "paused-app", true), want: "web-paused"},
		{name: "FallsThroughToBroader", app: app("api", "y", true), want: "owned"},
		{name: "NoMatch", app: app("api", "y", false), want: ""},
		{name: "OtherTenant", app: func() domain.Application { a := app("web-shop", "x", true); a.TenantID = "other-tenant"; return a }(), want: ""},
		{name: "SeenOnlyByAReadConnection", app: func() domain.Application {
			a := app("web-shop", "x", false)
			a.Access = []domain.Access{{Connection: "contoso-read"}}
			return a
		}(), want: "web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := cfg.PolicyFor(tt.app)
			if tt.want == "" {
				require.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			require.Equal(t, tt.want, got.Name)
		})
	}
}

// TestEveryEnvVarIsDocumented keeps docs/configuration.md honest.
func TestEveryEnvVarIsDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	vars := EnvVars()
	require.Contains(t, vars, "ROTOR_LISTEN")
	require.Contains(t, vars, "ROTOR_CONNECTIONS_<NAME>_CLIENT_SECRET")
	require.Contains(t, vars, "ROTOR_CONNECTIONS_<NAME>_MANAGED_IDENTITY")
	for _, v := range vars {
		require.Contains(t, string(doc), "`"+v+"`", "docs/configuration.md does not mention %s", v)
	}
}
