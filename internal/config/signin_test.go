package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/azure"
)

const groupID = "3f2a0b1c-4d5e-4f60-8a7b-9c0d1e2f3a4b"

// signInBase is a valid sign_in, with the tweak applied to its entra.
func signInBase(tweak func(e map[string]any)) map[string]any {
	e := map[string]any{
		"tenant":        tenantID,
		"client_id":     clientID,
		"client_secret": map[string]any{"env": secretName},
		"redirect_url":  "https://rotor.example.com/auth/callback",
		"roles": []any{
			map[string]any{"app_role": "Rotor.Admin", "organization": "default", "role": "admin"},
			map[string]any{"group": strings.ToUpper(groupID), "organization": "default", "role": "viewer"},
		},
	}
	if tweak != nil {
		tweak(e)
	}
	return map[string]any{"entra": e}
}

func TestSignInSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		signIn  map[string]any
		env     map[string]string
		check   func(t *testing.T, s *SignInSettings)
		noteHas string
	}{
		{"Valid", signInBase(nil), nil, func(t *testing.T, s *SignInSettings) {
			require.Equal(t, DefaultSessionLifetime, s.SessionLifetime)
			e := s.Entra
			require.Equal(t, azure.Public, e.Cloud)
			require.Equal(t, "https://login.microsoftonline.com/", e.Authority)
			require.Equal(t, "https://graph.microsoft.com/v1.0", e.GraphURL)
			require.Equal(t, tenantID, e.Tenant)
			require.Equal(t, clientID, e.ClientID)
			require.Equal(t, theSecret, e.ClientSecret.Value().Reveal())
			require.Equal(t, "https://rotor.example.com/auth/callback", e.RedirectURL)
			require.Equal(t, "https://rotor.example.com", e.PublicURL())
			require.False(t, e.Insecure())
			require.Equal(t, []SignInRole{
				{AppRole: "Rotor.Admin", Organization: "default", Role: "admin"},
				{Group: groupID, Organization: "default", Role: "viewer"},
			}, e.Roles)
		}, ""},
		{"LoopbackHTTPAndLifetime", func() map[string]any {
			m := signInBase(func(e map[string]any) { e["redirect_url"] = "http://127.0.0.1:8080/auth/callback" })
			m["session_lifetime"] = "24h"
			return m
		}(), nil, func(t *testing.T, s *SignInSettings) {
			require.True(t, s.Entra.Insecure())
			require.Equal(t, 24*time.Hour, s.SessionLifetime)
		}, ""},
		{"Simulator", signInBase(func(e map[string]any) { e["cloud"] = "sim"; e["sim_file"] = "sim/sim.json" }), nil,
			func(t *testing.T, s *SignInSettings) {
				require.Equal(t, azure.Sim, s.Entra.Cloud)
				require.True(t, strings.HasSuffix(s.Entra.SimFile, "sim/sim.json"))
				require.Empty(t, s.Entra.Authority, "the simulator's, read from sim.json when the server starts")
				require.Empty(t, s.Entra.GraphURL)
			}, ""},
		{"InlineSecretIsNoted", signInBase(func(e map[string]any) { e["client_secret"] = "inline-value" }), nil,
			func(t *testing.T, s *SignInSettings) {
				require.Equal(t, "inline-value", s.Entra.ClientSecret.Value().Reveal())
			}, "sign_in.entra.client_secret is written inline"},
		{"EnvironmentOverrides", signInBase(func(e map[string]any) { delete(e, "tenant") }), map[string]string{
			"ROTOR_SIGN_IN_ENTRA_TENANT": tenantID, "ROTOR_SIGN_IN_SESSION_LIFETIME": "2h",
			"ROTOR_SIGN_IN_ENTRA_CLIENT_SECRET": "from-env",
		}, func(t *testing.T, s *SignInSettings) {
			require.Equal(t, tenantID, s.Entra.Tenant)
			require.Equal(t, 2*time.Hour, s.SessionLifetime)
			require.Equal(t, "from-env", s.Entra.ClientSecret.Value().Reveal())
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			for k, v := range tc.env {
				b.env[k] = v
			}
			m := base()
			m["sign_in"] = tc.signIn
			cfg, err := b.parse(t, m)
			require.NoError(t, err)
			require.NotNil(t, cfg.SignIn)
			tc.check(t, cfg.SignIn)
			if tc.noteHas != "" {
				require.Contains(t, strings.Join(cfg.Notes, "\n"), tc.noteHas)
				require.NotContains(t, strings.Join(cfg.Notes, "\n"), "inline-value")
			}
		})
	}

	t.Run("AbsentIsOff", func(t *testing.T) {
		t.Parallel()
		cfg, err := setup(t).parse(t, base())
		require.NoError(t, err)
		require.Nil(t, cfg.SignIn)
	})
}

func TestSignInProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		tweak  func(e map[string]any)
		signIn map[string]any
		want   string
	}{
		{"NoTenant", func(e map[string]any) { delete(e, "tenant") }, nil, "sign_in.entra: tenant is missing"},
		{"CommonTenant", func(e map[string]any) { e["tenant"] = "common" }, nil, `sign_in.entra: tenant "common" is not a tenant id (a GUID)`},
		{"NoClientID", func(e map[string]any) { delete(e, "client_id") }, nil, "sign_in.entra: client_id is missing"},
		{"ClientIDNotGUID", func(e map[string]any) { e["client_id"] = "rotor-web" }, nil, `client_id "rotor-web" is not an application id`},
		{"NoSecret", func(e map[string]any) { delete(e, "client_secret") }, nil, "sign_in.entra: client_secret is missing"},
		{"SecretEnvUnset", func(e map[string]any) { e["client_secret"] = map[string]any{"env": "NOT_SET_ANYWHERE"} }, nil,
			"sign_in.entra: client_secret: environment variable NOT_SET_ANYWHERE is not set"},
		{"HTTPRedirectOffLoopback", func(e map[string]any) { e["redirect_url"] = "http://rotor.example.com/auth/callback" }, nil,
			`sign_in.entra: redirect_url "http://rotor.example.com/auth/callback" must be https (plain http only on a loopback address`},
		{"RedirectWithoutPath", func(e map[string]any) { e["redirect_url"] = "https://rotor.example.com" }, nil, "must be an absolute URL with a path"},
		{"RedirectOnARotorRoute", func(e map[string]any) { e["redirect_url"] = "https://rotor.example.com/ui/callback" }, nil, "one of rotor's own routes"},
		{"NoRedirect", func(e map[string]any) { delete(e, "redirect_url") }, nil, "sign_in.entra: redirect_url is missing"},
		{"HTTPGraph", func(e map[string]any) { e["graph_url"] = "http://graph.example.com/v1.0" }, nil, `sign_in.entra: graph_url "http://graph.example.com/v1.0" must be an https URL`},
		{"HTTPAuthority", func(e map[string]any) { e["authority"] = "http://login.example.com/" }, nil, "sign_in.entra: authority"},
		{"SimWithoutFile", func(e map[string]any) { e["cloud"] = "sim" }, nil, "sign_in.entra: sim_file is missing"},
		{"NoRoles", func(e map[string]any) { delete(e, "roles") }, nil, "sign_in.entra: roles is missing"},
		{"BothAppRoleAndGroup", func(e map[string]any) {
			e["roles"] = []any{map[string]any{"app_role": "x", "group": groupID, "organization": "default", "role": "admin"}}
		}, nil, "sign_in.entra.roles[0]: set exactly one of app_role"},
		{"GroupByName", func(e map[string]any) {
			e["roles"] = []any{map[string]any{"group": "rotor-admins", "organization": "default", "role": "admin"}}
		}, nil, `sign_in.entra.roles[0]: group "rotor-admins" is not a group object id`},
		{"BadRole", func(e map[string]any) {
			e["roles"] = []any{map[string]any{"app_role": "x", "organization": "default", "role": "owner"}}
		}, nil, `sign_in.entra.roles[0]: role "owner" is not viewer, operator or admin`},
		{"UnknownKey", func(e map[string]any) { e["scopes"] = "x" }, nil, `unknown key "scopes"`},
		{"LifetimeOverADay", nil, func() map[string]any {
			m := signInBase(nil)
			m["session_lifetime"] = "25h"
			return m
		}(), "sign_in.session_lifetime (25h"},
		{"LifetimeTooShort", nil, func() map[string]any {
			m := signInBase(nil)
			m["session_lifetime"] = "10s"
			return m
		}(), "sign_in.session_lifetime (10s"},
		{"NoEntra", nil, map[string]any{"session_lifetime": "8h"}, "sign_in: entra is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			m := base()
			m["sign_in"] = tc.signIn
			if tc.tweak != nil {
				m["sign_in"] = signInBase(tc.tweak)
			}
			_, err := b.parse(t, m)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), theSecret)
		})
	}
}
