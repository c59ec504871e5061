package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/sink/keyvault"
)

// TestSinkSharedByEveryApplicationIsRefused: a Key Vault secret name
// without a template, under a policy that selects several applications,
// would have each rotation overwrite the previous application's secret.
// It is a configuration problem naming the policy; one application by id
// may have a fixed name.
func TestSinkSharedByEveryApplicationIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.opts.Sinks = sink.NewRegistry(keyvault.Kind{})
	withSink := func(secretName string, sel map[string]any) map[string]any {
		m := base()
		p := pol(m)
		p["applications"] = sel
		p["sinks"] = []any{map[string]any{"keyvault": map[string]any{"vault_url": vaultURL, "secret": secretName}}}
		return m
	}
	_, err := b.parse(t, withSink("shared-secret", map[string]any{"name_prefix": "web-"}))
	require.ErrorContains(t, err, `policy "web" selects several applications, but sinks[0] (keyvault) writes every one of them to the same target`)
	_, err = b.parse(t, withSink("{{ .App.DisplayName }}-secret", map[string]any{"name_prefix": "web-"}))
	require.NoError(t, err)
	_, err = b.parse(t, withSink("shared-secret", map[string]any{"ids": []any{"11111111-2222-3333-4444-555555555555"}}))
	require.NoError(t, err, "one application may have a fixed name")
}
