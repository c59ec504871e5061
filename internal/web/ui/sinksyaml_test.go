package ui

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestSinkSetting(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		kv     string
		want   any
		errHas string
		errNot string
	}{
		"Scalar":            {kv: "namespace=payments", want: "payments"},
		"List":              {kv: "targets=[production, preview]", want: []any{"production", "preview"}},
		"EnvReference":      {kv: "token={env: VERCEL_TOKEN}", want: map[string]any{"env": "VERCEL_TOKEN"}},
		"FileReference":     {kv: "pat={file: /run/secrets/pat}", want: map[string]any{"file": "/run/secrets/pat"}},
		"TokenValueRefused": {kv: "token=ghp_abcdef0123456789", errHas: "token holds a credential", errNot: "ghp_"},
		"PatNotYAMLRefused": {kv: "pat={ghp_abc: [", errHas: "pat holds a credential", errNot: "ghp_"},
		"EmptyTokenRefused": {kv: "signing_key=", errHas: "signing_key holds a credential"},
		"BadReferenceShape": {kv: "token={env: 1bad}", errHas: "env must name an environment variable"},
		"NumberIsANumber":   {kv: "group=12", want: 12},
		"NotYAML":           {kv: "secret={{ .App.DisplayName }}", errHas: "not YAML"},
		"BadKey":            {kv: "Name=x", errHas: "lower-case key"},
		"NoEquals":          {kv: "namespace", errHas: "KEY=VALUE"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := parseSinkSetting(c.kv)
			if c.errHas != "" {
				require.ErrorContains(t, err, c.errHas)
				if c.errNot != "" {
					require.NotContains(t, err.Error(), c.errNot, "a refused credential is not repeated")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, s.Item)
		})
	}
}

func TestYAMLScalar(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"payments":                            "payments",
		"Deployment/api":                      "Deployment/api",
		"12":                                  `"12"`,
		"true":                                `"true"`,
		"null":                                `"null"`,
		"{{ .App.DisplayName | slug }}-azure": `"{{ .App.DisplayName | slug }}-azure"`,
		"a: b":                                `"a: b"`,
		"":                                    `""`,
	} {
		require.Equal(t, want, yamlScalar(in), in)
		var back any
		require.NoError(t, yaml.Unmarshal([]byte(yamlScalar(in)), &back))
		if in != "" {
			require.Equal(t, in, back, "reads back as the string")
		}
	}
}

func TestSinkSettingsSpecAndSnippet(t *testing.T) {
	t.Parallel()
	ss, err := parseSinkSettings(url.Values{"set": {
		"kubeconfig=/etc/k", "namespace=default", "namespace=payments", // replaced
		"restart=Deployment/api", "restart=StatefulSet/db", "restart=Deployment/api", // added once each
	}})
	require.NoError(t, err)
	keys, spec := ss.spec("kubernetes")
	require.Equal(t, []string{"kubeconfig", "namespace", "restart"}, keys)
	require.Equal(t, "payments", spec["namespace"])
	require.Equal(t, []any{map[string]any{"kind": "Deployment", "name": "api"}, map[string]any{"kind": "StatefulSet", "name": "db"}}, spec["restart"])

	got, err := sinkSnippet("kubernetes", "contoso", ss)
	require.NoError(t, err)
	require.Equal(t, "# under a policy with connection: contoso\nsinks:\n  - kubernetes:\n      kubeconfig: /etc/k\n      namespace: payments\n"+
		"      restart: [{kind: Deployment, name: api}, {kind: StatefulSet, name: db}]\n", got)

	// A kind that needs a credential shows where it goes until one is
	// given; Azure DevOps not when it signs in as a connection.
	got, err = sinkSnippet("vercel", "", nil)
	require.NoError(t, err)
	require.Equal(t, "sinks:\n  - vercel:\n      token: {env: VERCEL_TOKEN} # a reference (or {file: PATH}); never the value\n", got)
	ent, err := parseSinkSettings(url.Values{"set": {"entra=true"}})
	require.NoError(t, err)
	got, err = sinkSnippet("adovariables", "", ent)
	require.NoError(t, err)
	require.NotContains(t, got, "pat:")
	got, err = sinkSnippet("webhook", "", nil)
	require.NoError(t, err)
	require.Contains(t, got, "signing_key: {env: ROTOR_WEBHOOK_KEY}")
	got, err = sinkSnippet("keyvault", "", nil)
	require.NoError(t, err)
	require.Equal(t, "sinks:\n  - keyvault: {}\n", got)
}
