package cli_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/apikey"
)

type apiKeyRow struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Status    string `json:"status"`
	CreatedBy string `json:"created_by"`
}

func TestAPIKeyCreateListRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "apps=1,tenants=1", 0)

	out, errOut := e.mustRun("apikey", "create", "--role", "operator", "--name", "ci-deploy", "--expires", "30d")
	key := strings.TrimSpace(out)
	ref, err := apikey.Parse(key)
	require.NoError(t, err, "stdout is the key and nothing else")
	require.Contains(t, errOut, "API key "+ref.ID+" (ci-deploy, role operator in default)")
	require.Contains(t, errOut, "only time it is shown")
	require.NotContains(t, errOut, key)

	var rows []apiKeyRow
	e.mustJSON(&rows, "apikey", "list")
	require.Equal(t, []apiKeyRow{{ID: ref.ID, Name: "ci-deploy", Role: "operator", Status: "active", CreatedBy: "system:cli"}}, rows)
	out, _ = e.mustRun("apikey", "list")
	require.Regexp(t, `^ID\s+NAME\s+ROLE\s+STATUS\s+CREATED\s+EXPIRES\s+CREATED BY\n`+ref.ID+`\s+ci-deploy\s+operator\s+active\s`, out)
	require.NotContains(t, out, key)

	out, _ = e.mustRun("apikey", "revoke", ref.ID)
	require.Equal(t, "API key "+ref.ID+" revoked\n", out)
	e.mustJSON(&rows, "apikey", "list")
	require.Equal(t, "revoked", rows[0].Status)

	// The key is nowhere in rotor's data: only its hash is kept.
	e.requireNotInDataDir(key)

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"apikey", "create", "--name", "x"}, 2, "--role"},
		{[]string{"apikey", "create", "--role", "owner", "--name", "x"}, 2, `"owner" is not a role`},
		{[]string{"apikey", "create", "--role", "viewer"}, 2, "--name is required"},
		{[]string{"apikey", "create", "--role", "viewer", "--name", "x", "--expires", "forever"}, 2, "--expires"},
		{[]string{"apikey", "create", "--role", "viewer", "--name", "x", "--expires", "800d"}, 1, "expires: must be between 1h and 730d"},
		{[]string{"apikey", "revoke", "aaaaaaaaaaaaaaaa"}, 1, "no API key \"aaaaaaaaaaaaaaaa\" in this organization"},
		{[]string{"apikey", "revoke", "x"}, 1, "must be a key id"},
		{[]string{"apikey", "revoke"}, 2, "expected ID"},
	} {
		code, _, errOut := e.run(c.args...)
		require.Equal(t, c.code, code, "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.want, c.args)
	}
}

// requireNotInDataDir fails the test if s, or the secret part of a key,
// is in any file under the data directory (the SQLite database and its
// WAL included).
func (e *env) requireNotInDataDir(s string) {
	e.t.Helper()
	secretPart := s[strings.LastIndexByte(s, '_')+1:]
	err := filepath.WalkDir(e.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		require.False(e.t, bytes.Contains(b, []byte(secretPart)), "the key is at rest in %s", path)
		return nil
	})
	require.NoError(e.t, err)
}
