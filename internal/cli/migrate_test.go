package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
)

type migrationRow struct {
	Schema  string `json:"schema"`
	Version int    `json:"version"`
	Name    string `json:"name"`
	State   string `json:"state"`
}

func states(rows []migrationRow, schema string) map[string]int {
	out := map[string]int{}
	for _, r := range rows {
		if r.Schema == schema {
			out[r.State]++
		}
	}
	return out
}

func TestMigrateSQLite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	db := filepath.Join(e.dataDir, "rotor.db")

	// A fresh data dir: everything pending, and status creates nothing.
	var rows []migrationRow
	e.mustJSON(&rows, "migrate", "status")
	st := states(rows, "rotor")
	require.Zero(t, st["applied"])
	require.Positive(t, st["pending"])
	nRotor := st["pending"]
	require.Equal(t, map[string]int{"pending": 1}, states(rows, "river"))
	_, err := os.Stat(db)
	require.ErrorIs(t, err, os.ErrNotExist, "status must not create the database")

	out, _ := e.mustRun("migrate", "status")
	require.Regexp(t, `^SCHEMA\s+VERSION\s+NAME\s+STATE\s+APPLIED\n`, out)
	require.Contains(t, out, "pending")

	// up applies every migration, rotor's and River's, and says so.
	var applied []migrationRow
	e.mustJSON(&applied, "migrate", "up")
	require.Equal(t, nRotor, states(applied, "rotor")["applied"])
	require.Positive(t, states(applied, "river")["applied"])

	e.mustJSON(&rows, "migrate", "status")
	require.Equal(t, map[string]int{"applied": nRotor}, states(rows, "rotor"))
	require.Equal(t, map[string]int{"applied": 1}, states(rows, "river"))

	// up again is a no-op.
	out, _ = e.mustRun("migrate", "up")
	require.Equal(t, "The database is up to date: nothing to apply.\n", out)
	e.mustJSON(&applied, "migrate", "up")
	require.Empty(t, applied)
}

func TestMigrateSQLiteConcurrentUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	const n = 3
	var wg sync.WaitGroup
	codes := make([]int, n)
	outs := make([]string, n)
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], outs[i], errs[i] = e.runCtx(context.Background(), "migrate", "up", "--config", e.cfg)
		}()
	}
	wg.Wait()
	tables := 0
	for i := range n {
		require.Equal(t, 0, codes[i], "stdout:\n%s\nstderr:\n%s", outs[i], errs[i])
		if !strings.Contains(outs[i], "nothing to apply") {
			tables++
		}
	}
	require.GreaterOrEqual(t, tables, 1, "one of the runs applied the migrations")
	var rows []migrationRow
	e.mustJSON(&rows, "migrate", "status")
	require.Zero(t, states(rows, "rotor")["pending"])
	require.Equal(t, map[string]int{"applied": 1}, states(rows, "river"))
}

func TestMigrateBadPostgresURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo", 0)
	b, err := os.ReadFile(e.cfg)
	require.NoError(t, err)
	cfg := string(b) + "\ndatabase:\n  url: postgres://rotor@127.0.0.1:1/rotor?connect_timeout=2\n  migrate_url: postgres://owner@127.0.0.1:1/rotor?connect_timeout=2\n"
	require.NoError(t, os.WriteFile(e.cfg, []byte(cfg), 0o600))
	for _, sub := range []string{"status", "up"} {
		code, _, stderr := e.run("migrate", sub)
		require.NotEqual(t, 0, code, stderr)
		require.Contains(t, stderr, "rotor: ")
		require.NotContains(t, stderr, "goroutine")
	}
}

// TestMigratePostgres: the same on PostgreSQL (runs when
// ROTOR_TEST_DATABASE_URL names a throwaway cluster, as in CI): status on
// an empty schema shows every migration pending and changes nothing, up
// applies rotor's and River's as the owner role, status then shows them
// applied, and up again is a no-op. The passwords, passed by {file:}
// reference, never appear in the output.
func TestMigratePostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	e := newEnv(t, "demo", 0)
	appPw, ownerPw := filepath.Join(e.dir, "db-app"), filepath.Join(e.dir, "db-owner")
	require.NoError(t, os.WriteFile(appPw, []byte(db.AppPassword), 0o600))
	require.NoError(t, os.WriteFile(ownerPw, []byte(db.OwnerPassword), 0o600))
	cfg, err := os.ReadFile(e.cfg)
	require.NoError(t, err)
	cfg = append(cfg, fmt.Sprintf(`
database:
  url: %q
  password: {file: %s}
  migrate_url: %q
  migrate_password: {file: %s}
`, db.AppURL, appPw, db.OwnerURL, ownerPw)...)
	require.NoError(t, os.WriteFile(e.cfg, cfg, 0o600))

	var rows []migrationRow
	e.mustJSON(&rows, "migrate", "status")
	st := states(rows, "rotor")
	require.Zero(t, st["applied"])
	require.Positive(t, st["pending"])
	nRotor := st["pending"]

	out, _ := e.mustRun("migrate", "up")
	require.NotContains(t, out, db.AppPassword)
	require.NotContains(t, out, db.OwnerPassword)
	e.mustJSON(&rows, "migrate", "status")
	require.Equal(t, map[string]int{"applied": nRotor}, states(rows, "rotor"))
	require.Equal(t, map[string]int{"applied": 1}, states(rows, "river"))
	out, _ = e.mustRun("migrate", "up")
	require.Equal(t, "The database is up to date: nothing to apply.\n", out)
}
