package github

import (
	"maps"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

func validSpec() domain.SinkSpec {
	return domain.SinkSpec{Type: Type, Settings: map[string]any{
		KeyOwner: "contoso", KeyRepo: "storefront", KeyName: "{{ .App.DisplayName | slug }}_SECRET",
		KeyToken: map[string]any{"env": "GITHUB_TOKEN"},
	}}
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		tweak func(map[string]any)
		want  []string // substrings of the error; none means valid
	}{
		{"valid repository", func(map[string]any) {}, nil},
		{"environment inferred", func(s map[string]any) { s[KeyEnvironment] = "production" }, nil},
		{"organization", func(s map[string]any) {
			delete(s, KeyOwner)
			delete(s, KeyRepo)
			s[KeyOrg] = "contoso"
			s[KeyVisibility] = "selected"
			s[KeySelectedRepositories] = []any{"storefront"}
		}, nil},
		{"enterprise api url", func(s map[string]any) { s[KeyAPIURL] = "https://ghe.example.com/api/v3" }, nil},
		{"unknown key", func(s map[string]any) { s["secret"] = "x" }, []string{"unknown setting(s) secret", "known: adopt"}},
		{"all problems at once", func(s map[string]any) {
			delete(s, KeyOwner)
			s[KeyName] = "1bad-name"
			s[KeyToken] = "ghp_literal"
			s[KeyAPIURL] = "http://api.github.com"
		}, []string{"owner: is required", "name: secret name", "token: must be a reference", "api_url:"}},
		{"reserved prefix", func(s map[string]any) { s[KeyName] = "github_token" }, []string{"GITHUB_"}},
		{"bad scope", func(s map[string]any) { s[KeyScope] = "team" }, []string{"scope: must be"}},
		{"environment scope needs environment", func(s map[string]any) { s[KeyScope] = "environment" }, []string{"environment: is required"}},
		{"visibility only for org", func(s map[string]any) { s[KeyVisibility] = "all" }, []string{"only for scope organization"}},
		{"selected needs repos", func(s map[string]any) {
			delete(s, KeyOwner)
			delete(s, KeyRepo)
			s[KeyOrg] = "contoso"
			s[KeyVisibility] = "selected"
		}, []string{"selected_repositories: must name at least one"}},
		{"adopt must be bool", func(s map[string]any) { s[KeyAdopt] = "yes" }, []string{"adopt: must be true or false"}},
		{"template with range", func(s map[string]any) { s[KeyName] = "{{ range 3 }}X{{ end }}" }, []string{"must not use range"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := validSpec()
			spec.Settings = maps.Clone(spec.Settings)
			tc.tweak(spec.Settings)
			err := Kind{}.CheckSpec(spec)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), "ghp_literal", "a pasted token is never repeated")
		})
	}
}

func TestTargetRoundTripAndCanonical(t *testing.T) {
	t.Parallel()
	b := &Builder{}
	app := domain.Application{DisplayName: "Payroll API (prod)", AppID: "a"}
	for _, tc := range []struct {
		tweak func(map[string]any)
		want  string
	}{
		{func(s map[string]any) { s[KeyOwner] = "Contoso"; s[KeyRepo] = "StoreFront" },
			"github:https://api.github.com/repos/contoso/storefront/actions/secrets/PAYROLL_API_PROD_SECRET"},
		{func(s map[string]any) { s[KeyEnvironment] = "Prod West" },
			"github:https://api.github.com/repos/contoso/storefront/environments/prod%20west/secrets/PAYROLL_API_PROD_SECRET"},
		{func(s map[string]any) {
			delete(s, KeyOwner)
			delete(s, KeyRepo)
			s[KeyOrg] = "Contoso"
			s[KeyName] = "shared_{{ .ClientID | slug }}"
			s[KeyAPIURL] = "https://GHE.example.com/api/v3/"
		}, "github:https://ghe.example.com/api/v3/orgs/contoso/actions/secrets/SHARED_A"},
	} {
		spec := validSpec()
		spec.Settings = maps.Clone(spec.Settings)
		tc.tweak(spec.Settings)
		tid, err := b.Resolve(sink.BuildRequest{Spec: spec, App: app})
		require.NoError(t, err)
		require.Equal(t, tc.want, tid.String())
		tg, err := ParseTarget(tid)
		require.NoError(t, err)
		back, err := tg.ID()
		require.NoError(t, err)
		require.Equal(t, tid, back)
	}
	for _, bad := range []string{
		"github:https://api.github.com/repos/contoso/storefront/actions/secrets/lower",
		"github:https://api.github.com/users/x",
		"keyvault:https://v.vault.azure.net/secrets/x",
	} {
		tid, err := sink.ParseTargetID(bad)
		require.NoError(t, err)
		_, err = ParseTarget(tid)
		require.ErrorIs(t, err, sink.ErrBadTargetID, bad)
	}
}

func TestSharesTarget(t *testing.T) {
	t.Parallel()
	spec := validSpec()
	require.False(t, Kind{}.SharesTarget(spec))
	spec.Settings = maps.Clone(spec.Settings)
	spec.Settings[KeyName] = "FIXED"
	require.True(t, Kind{}.SharesTarget(spec))
}

func TestSlug(t *testing.T) {
	t.Parallel()
	require.Equal(t, "PAYROLL_API_PROD_V2", Slug("Payroll API (prod)_v2"))
	require.Equal(t, "", Slug("--"))
}

func FuzzParseTarget(f *testing.F) {
	f.Add("https://api.github.com/repos/a/b/actions/secrets/X")
	f.Add("https://api.github.com/repos/a/b/environments/p%20q/secrets/X")
	f.Add("https://h/api/v3/orgs/o/actions/secrets/Y")
	f.Fuzz(func(t *testing.T, ref string) {
		tid, err := sink.NewTargetID(Type, ref)
		if err != nil {
			return
		}
		tg, err := ParseTarget(tid)
		if err != nil {
			return
		}
		back, err := tg.ID()
		require.NoError(t, err)
		require.Equal(t, tid, back, "a parsed target is canonical")
	})
}
