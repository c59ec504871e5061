package cli_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAppsSettings: without flags the command prints each setting with
// its source; flags set values here, --clear inherits them again, and a
// bad value is a usage error naming the flag.
func TestAppsSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	e.mustRun("sync")
	storefront := e.app("contoso", "web-storefront")

	out, _ := e.mustRun("apps", "settings", storefront.objectID)
	require.Contains(t, out, "SETTING")
	require.Regexp(t, `lifetime\s+\S+\s+policy`, out)

	type setting struct{ Value, Source, Policy string }
	var got struct {
		Policy      string  `json:"policy"`
		Lifetime    setting `json:"lifetime"`
		RenewBefore setting `json:"renew_before"`
		Enabled     setting `json:"enabled"`
	}
	e.mustJSON(&got, "apps", "settings", storefront.objectID, "--lifetime", "20d", "--renew-before", "36h", "--enabled=false")
	require.NotEmpty(t, got.Policy)
	require.Equal(t, setting{"20d", "application", got.Lifetime.Policy}, got.Lifetime)
	require.Equal(t, "36h", got.RenewBefore.Value)
	require.Equal(t, "false", got.Enabled.Value)

	// A later call changes only what it names.
	e.mustJSON(&got, "apps", "settings", storefront.objectID, "--clear", "enabled", "-o", "json")
	require.Equal(t, "application", got.Lifetime.Source)
	require.Equal(t, "policy", got.Enabled.Source)

	out, _ = e.mustRun("explain", storefront.objectID)
	require.Contains(t, out, "lifetime 20d (this application's setting; policy says")

	code, _, errOut := e.run("apps", "settings", storefront.objectID, "--lifetime", "400d")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--lifetime")
	code, _, errOut = e.run("apps", "settings", storefront.objectID, "--clear", "colour")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--clear")

	e.mustJSON(&got, "apps", "settings", storefront.objectID, "--clear", "all")
	require.Equal(t, "policy", got.Lifetime.Source)
	require.Equal(t, "policy", got.RenewBefore.Source)
}
