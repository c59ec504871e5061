package cli_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTargets: a first rotation pins each sink's target; `targets list`
// shows it, `targets move` of a target that was not renamed moves nothing,
// and a move without --sink is a usage error.
func TestTargets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	e.mustRun("sync")
	storefront := e.app("contoso", "web-storefront")

	var before struct {
		Targets []struct {
			Target string `json:"target"`
			Pinned bool   `json:"pinned"`
			Moved  bool   `json:"moved"`
		} `json:"targets"`
	}
	e.mustJSON(&before, "targets", "list", storefront.objectID)
	require.Len(t, before.Targets, 1)
	require.False(t, before.Targets[0].Pinned, "nothing is pinned before the first delivery")
	require.Contains(t, before.Targets[0].Target, "web-storefront-secret")

	e.mustRun("rotate", storefront.objectID)
	var after struct {
		Targets []struct {
			Target string `json:"target"`
			Pinned bool   `json:"pinned"`
			Moved  bool   `json:"moved"`
		} `json:"targets"`
	}
	e.mustJSON(&after, "targets", "list", storefront.objectID)
	require.True(t, after.Targets[0].Pinned, "the first delivery pinned the target")
	require.False(t, after.Targets[0].Moved)
	require.Equal(t, before.Targets[0].Target, after.Targets[0].Target)

	out, _ := e.mustRun("targets", "list", storefront.objectID)
	require.Contains(t, out, "DELIVERS TO")
	require.Contains(t, out, "web-storefront-secret")

	out, _ = e.mustRun("targets", "move", storefront.objectID, "--sink", "1")
	require.Contains(t, out, "nothing to move")
	code, _, errOut := e.run("targets", "move", storefront.objectID)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--sink N is required")
	code, _, errOut = e.run("targets", "move", storefront.objectID, "--sink", "9")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "has 1 sink(s)")
	e.checkNoSecretLeaked()
}

// TestConnectionsTest signs a connection in and shows its roles; an
// unknown name is a clear error.
func TestConnectionsTest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	var in struct {
		Connection string   `json:"connection"`
		TenantID   string   `json:"tenant_id"`
		Roles      []string `json:"roles"`
	}
	e.mustJSON(&in, "connections", "test", "contoso")
	require.Equal(t, "contoso", in.Connection)
	require.NotEmpty(t, in.TenantID)
	require.Contains(t, in.Roles, "Application.ReadWrite.OwnedBy")
	out, _ := e.mustRun("connections", "test", "contoso")
	require.Contains(t, out, "Connection contoso signs in.")
	code, _, errOut := e.run("connections", "test", "nope")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `no connection "nope"`)
	e.checkNoSecretLeaked()
}
