package cli_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

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

	// What a sign-in learned is kept for every later process: `connections
	// list` is another process than the one that signed in.
	type listed struct {
		Name        string    `json:"name"`
		LastSuccess time.Time `json:"last_success"`
		LastFailure time.Time `json:"last_failure"`
		Failure     string    `json:"failure"`
		AADSTS      int       `json:"aadsts"`
		Failing     bool      `json:"failing"`
		Roles       []string  `json:"roles"`
	}
	contoso := func() listed {
		t.Helper()
		var conns []listed
		e.mustJSON(&conns, "connections", "list")
		for _, c := range conns {
			if c.Name == "contoso" {
				return c
			}
		}
		t.Fatal("no contoso in connections list")
		return listed{}
	}
	c := contoso()
	require.False(t, c.LastSuccess.IsZero())
	require.False(t, c.Failing)
	require.Contains(t, c.Roles, "Application.ReadWrite.OwnedBy")

	// A wrong secret: the test fails with Entra's code, and the list says
	// the connection is failing, with the code, until a sign-in works again.
	secretFile := filepath.Join(e.dir, "secrets", "contoso")
	good, err := os.ReadFile(secretFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(secretFile, []byte("not-the-secret\n"), 0o600))
	code, _, errOut = e.run("connections", "test", "contoso")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "AADSTS7000215")
	c = contoso()
	require.True(t, c.Failing)
	require.Equal(t, 7000215, c.AADSTS)
	require.Contains(t, c.Failure, "AADSTS7000215")
	require.NotContains(t, c.Failure, "not-the-secret")
	out, _ = e.mustRun("connections", "list")
	require.Contains(t, out, "(AADSTS7000215) FAILING")

	require.NoError(t, os.WriteFile(secretFile, good, 0o600))
	e.mustRun("connections", "test", "contoso")
	c = contoso()
	require.False(t, c.Failing)
	require.Equal(t, 7000215, c.AADSTS, "the last failure stays on record")
	e.checkNoSecretLeaked()
}
