package vercel

import (
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/sink"
)

func validSpec(tweak map[string]any) domain.SinkSpec {
	st := map[string]any{
		KeyProject: "storefront", KeyTeamID: "team_abc", KeyKey: "{{ .App.DisplayName | envname }}_SECRET",
		KeyToken: map[string]any{"env": "VERCEL_TOKEN"},
	}
	maps.Copy(st, tweak)
	for k, v := range st {
		if v == nil {
			delete(st, k)
		}
	}
	return domain.SinkSpec{Type: Type, Settings: st}
}

func TestCheckSpec(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		tweak map[string]any
		want  []string // substrings of the error; none means valid
	}{
		"valid":                       {nil, nil},
		"sensitive on two targets":    {map[string]any{KeyType: "sensitive", KeyTargets: []any{"production", "preview"}}, nil},
		"branch on preview":           {map[string]any{KeyTargets: []any{"preview"}, KeyGitBranch: "feature/x"}, nil},
		"redeploy with timeout":       {map[string]any{KeyRedeploy: true, KeyRedeployTimeout: "5m"}, nil},
		"personal account":            {map[string]any{KeyTeamID: nil}, nil},
		"unknown key":                 {map[string]any{"teamid": "x"}, []string{"unknown setting(s) teamid", "known: adopt, api_url"}},
		"missing project, key, token": {map[string]any{KeyProject: nil, KeyKey: nil, KeyToken: nil}, []string{"project: is required", "key: is required", "token: is required"}},
		"literal token":               {map[string]any{KeyToken: "vercel_pat_literal"}, []string{"must be a reference, not the secret itself"}},
		"bad type":                    {map[string]any{KeyType: "plain"}, []string{`type: must be "encrypted"`}},
		"sensitive in development":    {map[string]any{KeyType: "sensitive", KeyTargets: []any{"development"}}, []string{"sensitive variable cannot target development"}},
		"unknown target":              {map[string]any{KeyTargets: []any{"staging"}}, []string{"staging is not a target"}},
		"empty targets":               {map[string]any{KeyTargets: []any{}}, []string{"at least one"}},
		"branch on production":        {map[string]any{KeyGitBranch: "main"}, []string{"applies to preview only"}},
		"key renders an invalid name": {map[string]any{KeyKey: "{{ .App.DisplayName }}-secret"}, []string{`"sample-app-secret"`, "envname"}},
		"key template bad field":      {map[string]any{KeyKey: "{{ .App.Nope }}"}, []string{"template"}},
		"key template range":          {map[string]any{KeyKey: "{{ range 3 }}A{{ end }}"}, []string{"must not use range"}},
		"http api url":                {map[string]any{KeyAPIURL: "http://api.vercel.com"}, []string{"must be an https URL"}},
		"api url with path":           {map[string]any{KeyAPIURL: "https://api.vercel.com/v10"}, []string{"base URL only"}},
		"redeploy without production": {map[string]any{KeyRedeploy: true, KeyTargets: []any{"preview"}}, []string{"do not include production"}},
		"timeout without redeploy":    {map[string]any{KeyRedeployTimeout: "5m"}, []string{"without redeploy: true"}},
		"timeout too short":           {map[string]any{KeyRedeploy: true, KeyRedeployTimeout: "1s"}, []string{"between 10s and 2h"}},
		"adopt not a bool":            {map[string]any{KeyAdopt: "yes"}, []string{"adopt: must be true or false"}},
		"every problem at once":       {map[string]any{KeyType: "x", KeyAPIURL: "ftp://x", KeyRedeploy: "yes"}, []string{"type:", "api_url:", "redeploy:"}},
		"project with spaces":         {map[string]any{KeyProject: "my project"}, []string{"is not a Vercel project id"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := Kind{}.CheckSpec(validSpec(tc.tweak))
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "vercel_pat_literal", "a pasted token is never repeated")
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	st, err := parseSpec(validSpec(nil))
	require.NoError(t, err)
	require.Equal(t, TypeEncrypted, st.typ)
	require.Equal(t, []string{"preview", "production"}, st.targets)
	require.Equal(t, DefaultAPIURL, st.apiURL)
	require.Equal(t, DefaultRedeployTimeout, st.redeployTimeout)
	require.Equal(t, 15*time.Minute, st.redeployTimeout)
	require.False(t, st.redeploy)
}

func TestSharesTarget(t *testing.T) {
	t.Parallel()
	require.False(t, Kind{}.SharesTarget(validSpec(nil)))
	require.True(t, Kind{}.SharesTarget(validSpec(map[string]any{KeyKey: "AZURE_CLIENT_SECRET"})))
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Payroll API (prod)_v2": "PAYROLL_API_PROD_V2",
		"storefront":            "STOREFRONT",
		"  a--b  ":              "A_B",
		"Ünïcode":               "N_CODE",
	} {
		require.Equal(t, want, EnvName(in), in)
	}
}

func TestTargetRoundTrip(t *testing.T) {
	t.Parallel()
	for _, l := range []Locator{
		{Host: "api.vercel.com", TeamID: "team_a", Project: "storefront", Key: "K", Targets: []string{"preview", "production"}},
		{Host: "127.0.0.1:8443", Project: "prj_X", Key: "K_2", Targets: []string{"preview"}, GitBranch: "feature/a b"},
	} {
		tid, err := l.TargetID()
		require.NoError(t, err)
		back, err := ParseTarget(tid)
		require.NoError(t, err)
		require.Equal(t, l, back)
	}
	for _, bad := range []string{"vercel:api.vercel.com/team/p/env/K", "vercel:api.vercel.com/team/p/xenv/K/preview", "vercel:API.vercel.com/team/p/env/K/preview", "vercel:api.vercel.com/team/p/env/K/production,preview"} {
		tid, err := sink.ParseTargetID(bad)
		require.NoError(t, err)
		_, err = ParseTarget(tid)
		require.ErrorIs(t, err, sink.ErrBadTargetID, bad)
	}
}

func FuzzParseTarget(f *testing.F) {
	f.Add("api.vercel.com/team_a/storefront/env/K/preview,production")
	f.Add("127.0.0.1:1/~/p/env/K/preview/feature%2Fx")
	f.Fuzz(func(t *testing.T, ref string) {
		tid, err := sink.NewTargetID(Type, ref)
		if err != nil {
			return
		}
		l, err := ParseTarget(tid)
		if err != nil {
			return
		}
		back, err := l.TargetID()
		require.NoError(t, err)
		require.Equal(t, tid, back)
	})
}
