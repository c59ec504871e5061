package cli_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/server"
)

// TestAppsListRemote: `apps list --server URL` asks a running rotor's API
// with the API key in the environment and prints what the local listing
// prints; without a token it says where to put one, and a token refused
// is the server's problem, said as such.
func TestAppsListRemote(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	e.mustRun("sync")
	srv, err := server.Open(context.Background(), e.cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	org := srv.Config().Organization
	key, err := srv.App().CreateAPIKey(context.Background(), app.Scope{Org: org, Actor: app.CLI}, app.NewAPIKey{Name: "cli", Role: app.RoleViewer})
	require.NoError(t, err)
	h, err := srv.HTTPHandler(context.Background(), false)
	require.NoError(t, err)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)

	// A variable of this test's own: the tests run in parallel.
	tokenEnv := "ROTOR_TEST_TOKEN_" + strings.ToUpper(strings.ReplaceAll(t.Name(), "/", "_"))
	require.NoError(t, os.Setenv(tokenEnv, key.Key.Reveal()))
	t.Cleanup(func() { _ = os.Unsetenv(tokenEnv) })

	type row struct {
		Name, ObjectID, Connection, Policy, Status string
		Manageable                                 bool
		Secrets                                    int
	}
	decode := func(out string) []row {
		var raw []map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &raw))
		var rows []row
		for _, r := range raw {
			str := func(k string) string { v, _ := r[k].(string); return v }
			status := str("status")
			if strings.HasPrefix(status, "due in") {
				status = "due in …" // minutes tick between the two calls
			}
			rows = append(rows, row{Name: str("name"), ObjectID: str("object_id"), Connection: str("connection"),
				Policy: str("policy"), Status: status, Manageable: r["manageable"].(bool), Secrets: int(r["secrets"].(float64))})
		}
		return rows
	}
	for _, args := range [][]string{{}, {"--manageable", "--prefix", "web-"}, {"--expiring", "30d"}} {
		local, _ := e.mustRun(append([]string{"apps", "list", "-o", "json"}, args...)...)
		code, remote, stderr := e.runCtx(context.Background(), append([]string{"apps", "list", "-o", "json", "--server", hs.URL, "--token-env", tokenEnv}, args...)...)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, decode(local), decode(remote), "apps list %v", args)
		require.NotEmpty(t, decode(remote))
	}
	code, table, stderr := e.runCtx(context.Background(), "apps", "list", "--server", hs.URL, "--token-env", tokenEnv)
	require.Equal(t, 0, code, stderr)
	require.True(t, strings.HasPrefix(table, "NAME"), table)

	code, _, stderr = e.runCtx(context.Background(), "apps", "list", "--server", hs.URL, "--token-env", tokenEnv+"_UNSET")
	require.NotZero(t, code)
	require.Contains(t, stderr, "needs a bearer token or API key in $"+tokenEnv+"_UNSET")

	require.NoError(t, os.Setenv(tokenEnv+"_BAD", "rtr_"+string(org)+"_aaaaaaaaaaaaaaaa_"+strings.Repeat("a", 52)))
	t.Cleanup(func() { _ = os.Unsetenv(tokenEnv + "_BAD") })
	code, _, stderr = e.runCtx(context.Background(), "apps", "list", "--server", hs.URL, "--token-env", tokenEnv+"_BAD")
	require.NotZero(t, code)
	require.Contains(t, stderr, "the server answered 401 invalid_token")
	require.NotContains(t, stderr, strings.Repeat("a", 52), "the key is never printed")
}
