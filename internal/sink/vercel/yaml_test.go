package vercel

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rotor-dev/rotor/internal/domain"
)

// TestYAMLSpec: the settings as rotor.yaml decodes them (lists as []any)
// pass CheckSpec.
func TestYAMLSpec(t *testing.T) {
	t.Parallel()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(`{project: storefront, team_id: team_x, key: "{{ .App.DisplayName | envname }}_CLIENT_SECRET",
  type: sensitive, targets: [production, preview], token: {env: VERCEL_TOKEN}, redeploy: true, redeploy_timeout: 10m}`), &m))
	require.NoError(t, Kind{}.CheckSpec(domain.SinkSpec{Type: Type, Settings: m}))
}
