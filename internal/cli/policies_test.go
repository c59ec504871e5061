package cli_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type policyRow struct {
	Name         string   `json:"name"`
	Connection   string   `json:"connection"`
	Applications string   `json:"applications"`
	Enabled      bool     `json:"enabled"`
	Kind         string   `json:"kind"`
	Lifetime     string   `json:"lifetime"`
	RenewBefore  string   `json:"renew_before"`
	Overlap      string   `json:"overlap"`
	Sinks        []string `json:"sinks"`
}

type connectionRow struct {
	Name        string `json:"name"`
	TenantID    string `json:"tenant_id"`
	Purpose     string `json:"purpose"`
	Cloud       string `json:"cloud"`
	Identity    string `json:"identity"`
	ClientID    string `json:"client_id"`
	Provisioned bool   `json:"provisioned"`
}

func TestPoliciesAndConnectionsList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)

	// Policies, in the order that decides: each tenant's narrow "web-"
	// policy before its broad one.
	var pols []policyRow
	e.mustJSON(&pols, "policies", "list")
	var names []string
	for _, p := range pols {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{"contoso-web", "contoso-owned", "fabrikam-web", "fabrikam-owned"}, names)
	web := pols[0]
	require.Equal(t, "contoso", web.Connection)
	require.Equal(t, `display name starts with "web-"`, web.Applications)
	require.True(t, web.Enabled)
	require.Equal(t, "secret", web.Kind)
	require.Equal(t, []string{"30d", "10d", "1h"}, []string{web.Lifetime, web.RenewBefore, web.Overlap})
	require.Equal(t, []string{"keyvault"}, web.Sinks)
	require.Equal(t, "all applications rotor owns", pols[1].Applications)

	out, _ := e.mustRun("policies", "list")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, 5)
	require.Regexp(t, `^NAME\s+CONNECTION\s+APPLICATIONS\s+ENABLED\s+KIND\s+LIFETIME\s+RENEW BEFORE\s+OVERLAP\s+SINKS$`, lines[0])
	require.Regexp(t, `^contoso-web\s+contoso\s+display name starts with "web-"\s+yes\s+secret\s+30d\s+10d\s+1h\s+keyvault$`, lines[1])

	// Connections: who and where, never a secret (env checks every output
	// for the rotation identities' secrets at the end).
	var conns []connectionRow
	e.mustJSON(&conns, "connections", "list")
	require.Len(t, conns, len(e.info.Tenants))
	for i, tn := range e.info.Tenants {
		c := conns[i]
		require.Equal(t, tn.Name, c.Name)
		require.Equal(t, tn.ID, c.TenantID)
		require.Equal(t, "rotation", c.Purpose)
		require.Equal(t, "sim", c.Cloud)
		require.Equal(t, "client_secret", c.Identity)
		require.Equal(t, tn.Rotation.ClientID, c.ClientID)
		require.True(t, c.Provisioned)
	}
	out, _ = e.mustRun("connections", "list", "-o", "json")
	require.NotRegexp(t, `(?i)secret"\s*:`, out, "no field carries a secret")
	out, _ = e.mustRun("connections", "list")
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, len(e.info.Tenants)+1)
	require.Regexp(t, `^NAME\s+TENANT\s+PURPOSE\s+CLOUD\s+IDENTITY\s+CLIENT ID\s+LAST OK\s+LAST FAILURE$`, lines[0])
	require.Regexp(t, `^contoso\s+`+regexp.QuoteMeta(e.info.Tenants[0].ID)+`\s+rotation\s+sim\s+client_secret\s+`, lines[1])

	// A run state that does not exist is a usage error, not an empty list.
	code, out, errOut := e.run("runs", "list", "--state", "retiring,finished")
	require.Equal(t, 2, code, errOut)
	require.Empty(t, out)
	require.Contains(t, errOut, `--state: "finished" is not a run state`)
	require.Contains(t, errOut, "Run 'rotor runs list --help' for usage.")
}

func TestPoliciesAndConnectionsUsage(t *testing.T) {
	t.Parallel()
	for _, path := range [][]string{{"policies", "list"}, {"connections", "list"}} {
		name := "rotor " + strings.Join(path, " ")
		code, out, errOut := execute(append(path, "--help")...)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, name)
		require.Contains(t, out, "--output")
		require.Contains(t, out, "Examples:")

		code, out, errOut = execute(append(path, "-o", "yaml", "--config", "/nonexistent/rotor.yaml")...)
		require.Equal(t, 2, code, errOut)
		require.Empty(t, out)
		require.Contains(t, errOut, `--output must be table or json, not "yaml"`)
		require.Contains(t, errOut, "Run '"+name+" --help' for usage.")

		code, _, errOut = execute(append(path, "extra")...)
		require.Equal(t, 2, code, errOut)
		require.Contains(t, errOut, "takes no arguments")

		code, _, errOut = execute(append(path, "--config", "/nonexistent/rotor.yaml")...)
		require.Equal(t, 1, code, errOut)
		require.Contains(t, errOut, "rotor demo")
	}
	// The groups list their subcommand, and refuse unknown ones.
	for _, g := range []string{"policies", "connections"} {
		code, out, _ := execute(g)
		require.Equal(t, 0, code)
		require.Contains(t, out, "list")
		code, _, errOut := execute(g, "lst")
		require.Equal(t, 2, code, errOut)
		require.Contains(t, errOut, "unknown command")
	}
	code, out, _ := execute("--help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "policies ")
	require.Contains(t, out, "connections ")
}
