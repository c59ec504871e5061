package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/cli"
)

// execute runs rotor in-process without a simulator.
func execute(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Execute(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpTeaches(t *testing.T) {
	t.Parallel()
	cases := []struct {
		path []string
		want []string // what the help must say
	}{
		{nil, []string{"rotates Microsoft Entra ID application client secrets", "rotor demo", "docs/configuration.md",
			"sim ", "serve ", "demo ", "sync ", "apps ", "explain ", "rotate ", "runs ", "backup ", "audit "}},
		{[]string{"sim"}, []string{"Azure simulator", "sim.json", "apps=N,tenants=T", "--state", "Examples:", "rotor sim --state ./sim"}},
		{[]string{"serve"}, []string{"Run rotor as a service", "/healthz", "SIGTERM", "--config"}},
		{[]string{"demo"}, []string{"Azure simulator", "loopback", "--addr", "--keep", "--postgres URL", "--postgres-password-env", "docs/configuration.md", "demo only"}},
		{[]string{"sync"}, []string{"Microsoft Graph", "manageable", "--config"}},
		{[]string{"apps"}, []string{"applications rotor knows", "list"}},
		{[]string{"apps", "list"}, []string{"STATUS says what rotor will do", "rotor explain", "--expiring", "--manageable", "--connection", "--output", "Examples:", "rotor apps list --expiring 30d"}},
		{[]string{"explain"}, []string{"chain of named checks", "whether rotor owns it", "Examples:", "rotor explain web-storefront"}},
		{[]string{"rotate"}, []string{"new secret", "verify it", "Examples:", "rotor rotate web-storefront"}},
		{[]string{"runs"}, []string{"rotation runs", "list", "show"}},
		{[]string{"runs", "list"}, []string{"newest first", "--state", "--app", "Examples:", "rotor runs list --state failed"}},
		{[]string{"runs", "show"}, []string{"journal", "RUN"}},
		{[]string{"backup"}, []string{"while 'rotor serve' runs", "VACUUM INTO", "pg_dump", "owner role", "no\nsecret value", "mode 0600", "--force", "--to", "--pg-dump", "docs/backup.md", "Examples:"}},
		{[]string{"audit"}, []string{"append-only and hash-chained", "No secret value", "verify", "export", "docs/audit.md"}},
		{[]string{"audit", "verify"}, []string{"the head\nrotor keeps", "SEQ:HASH", "--anchor", "exits 3", "edited", "missing", "inserted", "--org", "--output", "Examples:", "rotor audit verify --org contoso --anchor"}},
		{[]string{"audit", "export"}, []string{"one JSON object", "hash", "--since", "--until", "--out", "7d", "Examples:", "rotor audit export --since 7d -o audit-week.jsonl"}},
		{[]string{"apikey"}, []string{"one organization and one role", "shown once", "create", "list", "revoke"}},
		{[]string{"apikey", "create"}, []string{"printed once", "--role", "--name", "--expires", "Examples:"}},
	}
	for _, c := range cases {
		name := "rotor " + strings.Join(c.path, " ")
		t.Run(name, func(t *testing.T) {
			for _, form := range [][]string{append(append([]string{}, c.path...), "--help"), append([]string{"help"}, c.path...)} {
				code, out, errOut := execute(form...)
				require.Equal(t, 0, code, "%v: %s", form, errOut)
				require.Empty(t, errOut, form)
				require.Contains(t, out, "Usage:", form)
				require.Contains(t, out, strings.TrimSpace(name), form)
				for _, w := range c.want {
					require.Contains(t, out, w, "%v must mention %q", form, w)
				}
			}
		})
	}
}

func TestUnknownFlagIsAUsageError(t *testing.T) {
	t.Parallel()
	for _, path := range [][]string{nil, {"sim"}, {"serve"}, {"demo"}, {"sync"}, {"apps", "list"}, {"explain", "x"}, {"rotate", "x"}, {"runs", "list"}, {"runs", "show", "x"}, {"audit", "verify"}, {"audit", "export"}} {
		args := append(append([]string{}, path...), "--no-such-flag")
		code, out, errOut := execute(args...)
		require.Equal(t, 2, code, "%v: %s", args, errOut)
		require.Empty(t, out, args)
		require.Contains(t, errOut, "unknown flag: --no-such-flag", args)
		cmdPath := strings.Join(append([]string{"rotor"}, commandPart(path)...), " ")
		require.Contains(t, errOut, "Run '"+cmdPath+" --help' for usage.", args)
		noStack(t, errOut)
	}
}

// commandPart drops the positional arguments of a test's command path.
func commandPart(path []string) []string {
	var out []string
	for _, p := range path {
		if p == "x" {
			break
		}
		out = append(out, p)
	}
	return out
}

func TestWrongArgumentCount(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		cmd  string
		want string
	}{
		{[]string{"explain"}, "rotor explain", "expected APP (a display name, app id or object id)"},
		{[]string{"explain", "a", "b"}, "rotor explain", "expected APP"},
		{[]string{"rotate"}, "rotor rotate", "needs at least one APP"},
		{[]string{"runs", "show"}, "rotor runs show", "expected RUN (a run id from 'rotor runs list')"},
		{[]string{"runs", "show", "a", "b"}, "rotor runs show", "expected RUN"},
		{[]string{"sync", "extra"}, "rotor sync", `rotor sync takes no arguments, got "extra"`},
		{[]string{"serve", "rotor.yaml"}, "rotor serve", "takes no arguments"},
		{[]string{"apps", "list", "web-"}, "rotor apps list", "takes no arguments"},
		{[]string{"runs", "list", "a"}, "rotor runs list", "takes no arguments"},
		{[]string{"demo", "now"}, "rotor demo", "takes no arguments"},
		{[]string{"sim", "x"}, "rotor sim", "takes no arguments"},
		{[]string{"rotat"}, "rotor", `unknown command "rotat" for "rotor"`},
	}
	for _, c := range cases {
		code, out, errOut := execute(c.args...)
		require.Equal(t, 2, code, "%v: %s", c.args, errOut)
		require.Empty(t, out, c.args)
		require.Contains(t, errOut, c.want, c.args)
		require.Contains(t, errOut, "Run '"+c.cmd+" --help' for usage.", c.args)
		require.True(t, strings.HasPrefix(errOut, "rotor: "), c.args)
	}
	// A typo of a command gets a suggestion.
	_, _, errOut := execute("rotat")
	require.Contains(t, errOut, "Did you mean this?")
	require.Contains(t, errOut, "rotate")
}

func TestOutputFormatIsChecked(t *testing.T) {
	t.Parallel()
	// --output is checked before the configuration is read: the missing
	// file is not what the user hears about.
	for _, args := range [][]string{{"apps", "list"}, {"explain", "x"}, {"runs", "list"}, {"runs", "show", "x"}, {"audit", "verify"}} {
		for _, flag := range []string{"--output", "-o"} {
			a := append(append([]string{}, args...), flag, "yaml", "--config", "/nonexistent/rotor.yaml")
			code, out, errOut := execute(a...)
			require.Equal(t, 2, code, "%v: %s", a, errOut)
			require.Empty(t, out)
			require.Contains(t, errOut, `--output must be table or json, not "yaml"`, a)
			require.Contains(t, errOut, "Run 'rotor "+strings.Join(commandPart(args), " ")+" --help' for usage.", a)
			require.NotContains(t, errOut, "not found", a)
		}
	}
}

func TestMissingConfigPointsAtDemo(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope", "rotor.yaml")
	for _, args := range [][]string{{"serve"}, {"sync"}, {"apps", "list"}, {"explain", "web-storefront"}, {"rotate", "web-storefront"}, {"runs", "list"}, {"runs", "show", "r1"}, {"backup", "--to", "b.db"}, {"audit", "verify"}, {"audit", "export"}} {
		code, out, errOut := execute(append(args, "--config", missing)...)
		require.Equal(t, 1, code, "%v: %s", args, errOut)
		require.Empty(t, out, args)
		require.Contains(t, errOut, "configuration file "+missing+" not found", args)
		require.Contains(t, errOut, "rotor demo", args)
		require.Contains(t, errOut, "--config FILE", args)
		require.Equal(t, 1, countLines(errOut), "one clear line: %q", errOut)
		noStack(t, errOut)
	}
	_, err := os.Stat(filepath.Dir(missing))
	require.True(t, os.IsNotExist(err), "a missing configuration must not create anything")
}

func TestConfigProblemsAreAllListed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rotor.yaml")
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cr3t-value-never-printed"), 0o600))
	require.NoError(t, os.WriteFile(cfg, []byte(`listen: 127.0.0.1:0
data_dir: ./data
rotation:
  jitter: 0s
connections:
  - name: contoso
    tenant_id: 8f2b1c4e-0d3a-4e5f-9a6b-7c8d9e0f1a2b
    client_id: 1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9
    client_secret: {file: `+secret+`}
policies:
  - name: web
    connection: contoso
    applications: {name_prefix: "web-"}
    lifetime: 21d
    renew_before: 21d
    overlap: 1h
  - name: other
    connection: nosuchconn
    applications: {all_owned: true}
    lifetime: 30d
    renew_befor: 10d
`), 0o600))
	for _, args := range [][]string{{"sync"}, {"serve"}, {"apps", "list"}, {"explain", "x"}} {
		code, out, errOut := execute(append(args, "--config", cfg)...)
		require.Equal(t, 1, code, "%v: %s", args, errOut)
		require.Empty(t, out)
		require.Contains(t, errOut, "has 3 problems", args)
		require.Contains(t, errOut, `policies[0] "web": renew_before (21d) must be shorter than lifetime (21d)`, args)
		require.Contains(t, errOut, `connection "nosuchconn" is not defined: use one of contoso`, args)
		require.Contains(t, errOut, `unknown key "renew_befor"`, args)
		require.Contains(t, errOut, `did you mean "renew_before"`, args)
		require.NotContains(t, errOut, "s3cr3t-value-never-printed")
		noStack(t, errOut)
	}
	_, err := os.Stat(filepath.Join(dir, "data"))
	require.True(t, os.IsNotExist(err), "an invalid configuration must not create the data directory")
}
