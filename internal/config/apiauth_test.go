package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
)

// entraBase is a valid api_auth.entra, with the tweak applied.
func entraBase(tweak func(e map[string]any)) map[string]any {
	e := map[string]any{
		"tenants":    []any{strings.ToUpper(tenantID)},
		"app_id_uri": "api://rotor-prod",
		"client_id":  clientID,
		"roles": []any{
			map[string]any{"app_role": "Rotor.Admin", "organization": "default", "role": "admin"},
			map[string]any{"app_role": "Rotor.Viewer", "organization": "other", "role": "viewer"},
		},
	}
	if tweak != nil {
		tweak(e)
	}
	return e
}

func TestAPIAuthDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg, err := b.parse(t, base())
	require.NoError(t, err)
	require.Equal(t, APIAuthSettings{APIKeys: true, RequestsPerSecond: 10, Burst: 60}, cfg.APIAuth, "API keys on, Entra off")

	m := base()
	m["api_auth"] = map[string]any{"entra": entraBase(nil)}
	cfg, err = b.parse(t, m)
	require.NoError(t, err)
	require.Equal(t, &EntraSettings{
		Cloud: azure.Public, Authority: "https://login.microsoftonline.com/", Tenants: []string{tenantID},
		AppIDURI: "api://rotor-prod", ClientID: clientID, TokenVersions: []int{1, 2},
		ClockSkew: 5 * time.Minute, KeyRefreshInterval: time.Minute, KeyMaxAge: 24 * time.Hour,
		Roles:    []RoleBinding{{"Rotor.Admin", "default", "admin"}, {"Rotor.Viewer", "other", "viewer"}},
		CLIScope: "user_impersonation",
	}, cfg.APIAuth.Entra)
}

func TestAPIAuthSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		auth  map[string]any
		env   map[string]string
		check func(t *testing.T, a APIAuthSettings)
	}{
		{"KeysOffAndRate", map[string]any{"api_keys": false, "rate_limit": map[string]any{"requests_per_second": 2, "burst": 5}},
			nil, func(t *testing.T, a APIAuthSettings) {
				require.False(t, a.APIKeys)
				require.Equal(t, 2, a.RequestsPerSecond)
				require.Equal(t, 5, a.Burst)
			}},
		{"Simulator", map[string]any{"entra": entraBase(func(e map[string]any) { e["cloud"] = "sim"; e["sim_file"] = "sim/sim.json" })},
			nil, func(t *testing.T, a APIAuthSettings) {
				require.Equal(t, azure.Sim, a.Entra.Cloud)
				require.True(t, strings.HasSuffix(a.Entra.SimFile, "sim/sim.json"))
				require.Empty(t, a.Entra.Authority, "the simulator's, read from sim.json when the server starts")
			}},
		{"USGovVersion2Only", map[string]any{"entra": entraBase(func(e map[string]any) {
			e["cloud"], e["token_versions"], e["clock_skew"] = "usgov", []any{2, 2}, "30s"
		})}, nil, func(t *testing.T, a APIAuthSettings) {
			require.Equal(t, "https://login.microsoftonline.us/", a.Entra.Authority)
			require.Equal(t, []int{2}, a.Entra.TokenVersions)
			require.Equal(t, 30*time.Second, a.Entra.ClockSkew)
		}},
		{"CLI", map[string]any{"entra": entraBase(func(e map[string]any) {
			e["cli_client_id"], e["cli_scope"] = strings.ToUpper(clientID), "access_as_user"
		})}, nil, func(t *testing.T, a APIAuthSettings) {
			require.Equal(t, clientID, a.Entra.CLIClientID, "lower case, as tokens carry it")
			require.Equal(t, "access_as_user", a.Entra.CLIScope)
		}},
		{"AuthorityGetsItsSlash", map[string]any{"entra": entraBase(func(e map[string]any) { e["authority"] = "https://login.example.com" })},
			nil, func(t *testing.T, a APIAuthSettings) {
				require.Equal(t, "https://login.example.com/", a.Entra.Authority)
			}},
		{"EnvironmentMakesAndChangesEntra", nil, map[string]string{
			"ROTOR_API_AUTH_API_KEYS": "false", "ROTOR_API_AUTH_ENTRA_TENANTS": tenantID + ", " + tenantID,
			"ROTOR_API_AUTH_ENTRA_CLIENT_ID": clientID, "ROTOR_API_AUTH_ENTRA_TOKEN_VERSIONS": "1",
			"ROTOR_API_AUTH_RATE_LIMIT_BURST": "7",
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			for k, v := range tc.env {
				b.env[k] = v
			}
			m := base()
			if tc.auth != nil {
				m["api_auth"] = tc.auth
			}
			cfg, err := b.parse(t, m)
			if tc.check == nil {
				// The environment alone cannot bind roles: refused, naming it.
				require.ErrorContains(t, err, "api_auth.entra: roles is missing")
				return
			}
			require.NoError(t, err)
			tc.check(t, cfg.APIAuth)
		})
	}
}

func TestAPIAuthProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		tweak func(e map[string]any)
		auth  map[string]any
		want  string
	}{
		{"NoTenants", func(e map[string]any) { delete(e, "tenants") }, nil, "api_auth.entra: tenants is missing"},
		{"Common", func(e map[string]any) { e["tenants"] = []any{"common"} }, nil, `"common" is not a tenant id (a GUID)`},
		{"Domain", func(e map[string]any) { e["tenants"] = []any{"contoso.onmicrosoft.com"} }, nil, "is not a tenant id"},
		{"NoAudience", func(e map[string]any) { delete(e, "app_id_uri"); delete(e, "client_id") }, nil, "app_id_uri or client_id is required"},
		{"ClientIDNotGUID", func(e map[string]any) { e["client_id"] = "rotor" }, nil, `client_id "rotor" is not an app id`},
		{"HTTPAuthority", func(e map[string]any) { e["authority"] = "http://login.example.com/" }, nil, "must be an https URL"},
		{"UnknownCloud", func(e map[string]any) { e["cloud"] = "mars" }, nil, `cloud "mars" is not known`},
		{"SimWithoutFile", func(e map[string]any) { e["cloud"] = "sim" }, nil, "api_auth.entra: sim_file is missing"},
		{"SimFileWithoutSim", func(e map[string]any) { e["sim_file"] = "sim/sim.json" }, nil, "sim_file is only used with cloud: sim"},
		{"Version3", func(e map[string]any) { e["token_versions"] = []any{3} }, nil, `token_versions: "3" is not 1 or 2`},
		{"LongSkew", func(e map[string]any) { e["clock_skew"] = "10m" }, nil, "api_auth.entra.clock_skew (10m, line 5) is too long: use at most 5m"},
		{"FastRefresh", func(e map[string]any) { e["key_refresh_interval"] = "100ms" }, nil, "key_refresh_interval (100ms, line 5) is too short"},
		{"OldKeys", func(e map[string]any) { e["key_max_age"] = "30d" }, nil, "key_max_age (30d, line 5) is too long"},
		{"NoRoles", func(e map[string]any) { delete(e, "roles") }, nil, "no token gets in"},
		{"BadRole", func(e map[string]any) {
			e["roles"] = []any{map[string]any{"app_role": "x", "organization": "default", "role": "owner"}}
		}, nil, `api_auth.entra.roles[0]: role "owner" is not viewer, operator or admin`},
		{"BadOrg", func(e map[string]any) {
			e["roles"] = []any{map[string]any{"app_role": "x", "organization": "a b", "role": "admin"}}
		}, nil, `organization "a b" must be`},
		{"NoAppRole", func(e map[string]any) {
			e["roles"] = []any{map[string]any{"organization": "default", "role": "admin"}}
		}, nil, "app_role is missing"},
		{"CLIClientIDNotGUID", func(e map[string]any) { e["cli_client_id"] = "rotor-cli" }, nil, `cli_client_id "rotor-cli" is not an app id`},
		{"CLIScopeWithURI", func(e map[string]any) {
			e["cli_client_id"], e["cli_scope"] = clientID, "api://rotor-prod/user_impersonation"
		}, nil, "without the API's URI"},
		{"CLIScopeWithoutClient", func(e map[string]any) { e["cli_scope"] = "user_impersonation" }, nil, "cli_scope is only used with cli_client_id"},
		{"UnknownKey", func(e map[string]any) { e["audience"] = "x" }, nil, `unknown key "audience"`},
		{"ZeroRate", nil, map[string]any{"rate_limit": map[string]any{"requests_per_second": 0}}, "api_auth.rate_limit.requests_per_second (0) must be between 1 and 10000"},
		{"HugeBurst", nil, map[string]any{"rate_limit": map[string]any{"burst": 1000000}}, "api_auth.rate_limit.burst (1000000) must be between 1 and 100000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := base()
			m["api_auth"] = tc.auth
			if tc.tweak != nil {
				m["api_auth"] = map[string]any{"entra": entraBase(tc.tweak)}
			}
			_, err := b.parse(t, m)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
