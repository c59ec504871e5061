package cli_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
)

type backupReport struct {
	Driver        string `json:"driver"`
	Path          string `json:"path"`
	Bytes         int64  `json:"bytes"`
	SchemaVersion int    `json:"schema_version"`
	RiverVersion  int    `json:"river_version"`
	Command       string `json:"command"`
}

// TestBackupSQLite: `rotor backup` while `rotor serve` rotates: the file
// is written with mode 0600 and reported (size, schema versions), is not
// replaced without --force, and restored into another data directory it
// is a database the other commands read — with the runs serve journaled
// before the backup. No secret value is in it (the env's clean-up scans
// the data directory, where the backups are).
func TestBackupSQLite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "apps=5,tenants=1,expiring=1h,replication=0s", 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := e.newBuffer(), e.newBuffer()
	done := make(chan int, 1)
	go func() { done <- runExecute(ctx, []string{"serve", "--config", e.cfg}, out, errOut) }()
	require.Eventually(t, func() bool { return e.issuedCount() >= 2 }, 30*time.Second, 20*time.Millisecond,
		"serve must be rotating; log:\n%s", errOut.String())

	backups := filepath.Join(e.dataDir, "backups")
	require.NoError(t, os.MkdirAll(backups, 0o700))
	b1 := filepath.Join(backups, "rotor-1.db")
	stdout, _ := e.mustRun("backup", "--to", b1)
	require.Regexp(t, `^Wrote `+regexp.QuoteMeta(b1)+`: [0-9.]+ (B|KiB|MiB), SQLite backup of `+regexp.QuoteMeta(filepath.Join(e.dataDir, "rotor.db"))+"\\.\n"+
		`Schema: rotor migration \d+, River schema version \d+\. Mode 0600; it holds no secret value\.`+"\n"+
		`To restore it, see docs/backup\.md\.`+"\n$", stdout)
	st, err := os.Stat(b1)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	first, err := os.ReadFile(b1)
	require.NoError(t, err)

	// Never over an existing file without --force; nothing is left behind.
	code, stdout, stderr := e.run("backup", "--to", b1)
	require.Equal(t, 1, code, stderr)
	require.Empty(t, stdout)
	require.Equal(t, "rotor: "+b1+" already exists: choose another file, or pass --force to replace it\n", stderr)
	again, err := os.ReadFile(b1)
	require.NoError(t, err)
	require.Equal(t, first, again, "the existing backup is untouched")
	var rep backupReport
	e.mustJSON(&rep, "backup", "--to", b1, "--force")
	require.Equal(t, "sqlite", rep.Driver)
	require.Equal(t, b1, rep.Path)
	require.Positive(t, rep.Bytes)
	require.Positive(t, rep.SchemaVersion)
	require.Positive(t, rep.RiverVersion)
	entries, err := os.ReadDir(backups)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left: %v", entries)

	// Usage and refusals: one clear line each.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"backup"}, 2, "--to BACKUP is required"},
		{[]string{"backup", "--to", filepath.Join(e.dataDir, "rotor.db"), "--force"}, 1, "is the database itself"},
		{[]string{"backup", "--to", filepath.Join(e.dataDir, "rotor.db-wal"), "--force"}, 1, "is the database itself"},
		{[]string{"backup", "--to", backups}, 1, "is a directory"},
		{[]string{"backup", "--to", filepath.Join(e.dir, "no", "such", "dir", "b.db")}, 1, "does not exist: create it first"},
	} {
		code, stdout, stderr := e.run(tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		require.Empty(t, stdout, tc.args)
		require.Contains(t, stderr, tc.want, tc.args)
		require.Equal(t, 1, countLines(strings.SplitN(stderr, "\nRun '", 2)[0]), "%v: one line: %q", tc.args, stderr)
		noStack(t, stderr)
	}

	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}

	// Restore as docs/backup.md says: rotor stopped, the backup in place of
	// the database file, without the old -wal and -shm. (The same
	// rotor.yaml path: an organization is provisioned from one file.)
	db := filepath.Join(e.dataDir, "rotor.db")
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		require.NoError(t, os.RemoveAll(f))
	}
	b, err := os.ReadFile(b1)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(db, b, 0o600))
	var runs []runRow
	e.mustJSON(&runs, "runs", "list")
	require.NotEmpty(t, runs, "the backup holds the runs serve had journaled")
	var status []migrationRow
	e.mustJSON(&status, "migrate", "status")
	require.Zero(t, states(status, "rotor")["pending"], "the backup's schema is current")
}

// TestBackupPostgres: on PostgreSQL `rotor backup` runs pg_dump as the
// owner role (the password in its environment, never in the output), in
// the custom format pg_restore reads; without pg_dump it prints the exact
// command instead, and without migrate_url it says why it needs it. Runs
// when ROTOR_TEST_DATABASE_URL names a throwaway cluster.
func TestBackupPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	pgDump := pgBin(t, "pg_dump")
	e := newEnv(t, "demo", 0)
	ownerPw := filepath.Join(e.dir, "db-owner")
	appPw := filepath.Join(e.dir, "db-app")
	require.NoError(t, os.WriteFile(ownerPw, []byte(db.OwnerPassword), 0o600))
	require.NoError(t, os.WriteFile(appPw, []byte(db.AppPassword), 0o600))
	base, err := os.ReadFile(e.cfg)
	require.NoError(t, err)
	withOwner := append(append([]byte{}, base...), fmt.Sprintf(`
database:
  url: %q
  password: {file: %s}
  migrate_url: %q
  migrate_password: {file: %s}
`, db.AppURL, appPw, db.OwnerURL, ownerPw)...)
	require.NoError(t, os.WriteFile(e.cfg, withOwner, 0o600))
	e.mustRun("sync")

	to := filepath.Join(e.dataDir, "rotor.dump")
	require.NoError(t, os.MkdirAll(e.dataDir, 0o700))
	stdout, _ := e.mustRun("backup", "--to", to, "--pg-dump", pgDump)
	require.Contains(t, stdout, "Wrote "+to+": ")
	require.Contains(t, stdout, "PostgreSQL (pg_dump custom format) backup of schema "+db.Schema)
	require.Contains(t, stdout, "as role "+db.OwnerRole)
	require.Contains(t, stdout, "Ran: "+pgDump+" --format=custom '--schema=\""+db.Schema+"\"' --no-password --file="+to+" '--dbname=postgres://"+db.OwnerRole+"@")
	require.NotContains(t, stdout, "search_path", "libpq is given only what it knows")
	require.NotContains(t, stdout, db.OwnerPassword)
	st, err := os.Stat(to)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	toc, err := exec.Command(pgBin(t, "pg_restore"), "--list", to).CombinedOutput()
	require.NoError(t, err, string(toc))
	for _, want := range []string{"TABLE " + db.Schema + " runs", "TABLE DATA " + db.Schema + " applications", "POLICY " + db.Schema + " runs", "TABLE " + db.Schema + " river_job"} {
		require.Contains(t, string(toc), want)
	}
	b, err := os.ReadFile(to)
	require.NoError(t, err)
	require.NotContains(t, string(b), db.OwnerPassword)
	require.NotContains(t, string(b), db.AppPassword)

	// No pg_dump: the command to run, with the file asked for.
	missing := filepath.Join(e.dir, "nope", "pg_dump")
	code, stdout, stderr := e.run("backup", "--to", filepath.Join(e.dataDir, "other.dump"), "--pg-dump", missing)
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, missing+" was not found")
	require.Contains(t, stderr, "PGPASSWORD set to database.migrate_password: "+missing+" --format=custom '--schema=\""+db.Schema+"\"' --no-password --file="+filepath.Join(e.dataDir, "other.dump"))
	require.NotContains(t, stderr, db.OwnerPassword)
	_, err = os.Stat(filepath.Join(e.dataDir, "other.dump"))
	require.True(t, os.IsNotExist(err))

	// Without the owner role: refused, saying why.
	appOnly := append(append([]byte{}, base...), fmt.Sprintf("\ndatabase:\n  url: %q\n  password: {file: %s}\n", db.AppURL, appPw)...)
	require.NoError(t, os.WriteFile(e.cfg, appOnly, 0o600))
	code, _, stderr = e.run("backup", "--to", filepath.Join(e.dataDir, "other.dump"), "--pg-dump", pgDump)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "database.migrate_url is not set")
	require.Contains(t, stderr, "row-level security")
	noStack(t, stderr)
}

// pgBin finds one of PostgreSQL's client programs: on PATH, else where
// Debian's packages put them.
func pgBin(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		t.Skipf("PostgreSQL's %s is not installed", name)
	}
	return matches[len(matches)-1]
}
