package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
)

// TestDemoPostgresRefusesClearly: a --postgres URL that is wrong, or a
// database that cannot be reached, stops the demo at once with one line
// saying why, never the password, never a stack trace.
func TestDemoPostgresRefusesClearly(t *testing.T) {
	t.Parallel()
	const pw = "sekrit-do-not-print"
	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"NotAURL":        {[]string{"--postgres", "postgres://rotor:" + pw + "@[::1/rotor"}, 1, "--postgres: not a URL (missing ']' in host)"},
		"NotPostgres":    {[]string{"--postgres", "mysql://rotor:" + pw + "@db/rotor"}, 1, "--postgres: not a postgres:// URL"},
		"KeyValue":       {[]string{"--postgres", "host=db password=" + pw}, 1, "--postgres: not a postgres:// URL"},
		"Unreachable":    {[]string{"--postgres", "postgres://rotor:" + pw + "@127.0.0.1:1/rotor?sslmode=disable"}, 1, "--postgres: connect to PostgreSQL: failed to connect to `user=rotor database=rotor`"},
		"EnvUnset":       {[]string{"--postgres", "postgres://rotor@127.0.0.1:1/rotor", "--postgres-password-env", "ROTOR_TEST_SURELY_UNSET"}, 1, "the environment variable ROTOR_TEST_SURELY_UNSET is empty or not set"},
		"EnvWithoutURL":  {[]string{"--postgres-password-env", "PW"}, 2, "--postgres-password-env needs --postgres"},
		"PasswordTwice":  {[]string{"--postgres", "postgres://rotor:" + pw + "@127.0.0.1:1/rotor", "--postgres-password-env", "PATH"}, 1, "give one"},
		"EnvNotAName":    {[]string{"--postgres", "postgres://rotor@127.0.0.1:1/rotor", "--postgres-password-env", "PW}"}, 2, "is not an environment variable's name"},
		"EmptyURLIsNone": {[]string{"--postgres", "", "--postgres-password-env", "PW"}, 2, "--postgres-password-env needs --postgres"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := execute(append([]string{"demo", "--addr", "127.0.0.1:0"}, tc.args...)...)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.Contains(t, errOut, tc.want)
			require.NotContains(t, out+errOut, pw)
			require.NotContains(t, out, "Starting the Azure simulator", "nothing starts before the database is known to work")
			noStack(t, errOut)
		})
	}
}

var (
	demoSchemaLine   = regexp.MustCompile(`schema (rotor_demo_[0-9a-f]+), owned by (\S+) \(which migrates it\); rotor runs as role (rotor_demo_[0-9a-f]+_app)\n`)
	demoRetiringLine = regexp.MustCompile(`\n  \d\d:\d\d:\d\d  \S+\s+retiring\s+older rotor secrets retire at`)
)

// TestDemoOnPostgres runs `rotor demo --postgres` as a role that is not a
// superuser but may create roles and schemas, its password in the URL and
// then from an environment variable. The demo makes its schema and
// application role, rotor rotates through River on PostgreSQL as that
// role, the command the demo suggests works on its rotor.yaml, and when
// the demo stops both are gone and the password was never printed.
func TestDemoOnPostgres(t *testing.T) {
	t.Parallel()
	admin := pgtest.Admin(t)
	ctx := t.Context()
	role, pw := "rt_demo_"+randomHex(6), randomHex(16)
	var database string
	require.NoError(t, admin.QueryRow(ctx, `SELECT current_database()`).Scan(&database))
	r := pgx.Identifier{role}.Sanitize()
	for _, q := range []string{
		// Random hex: safe to quote literally.
		`CREATE ROLE ` + r + ` LOGIN CREATEROLE NOSUPERUSER PASSWORD '` + pw + `'`,
		`GRANT CREATE ON DATABASE ` + pgx.Identifier{database}.Sanitize() + ` TO ` + r,
	} {
		_, err := admin.Exec(ctx, q)
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = admin.Exec(ctx, `DROP OWNED BY `+r)
		_, _ = admin.Exec(ctx, `DROP ROLE `+r)
	})
	u, err := url.Parse(pgtest.URL(t))
	require.NoError(t, err)

	t.Run("PasswordInURL", func(t *testing.T) {
		t.Parallel()
		u := *u
		u.User = url.UserPassword(role, pw)
		runDemoOnPostgres(t, admin, pw, true, "--postgres", u.String())
	})
	t.Run("PasswordFromEnv", func(t *testing.T) {
		t.Parallel()
		// os.Setenv, not t.Setenv, so the test may run in parallel: the
		// variable is this test's alone.
		env := "ROTOR_TEST_DEMO_PW_" + strings.ToUpper(randomHex(4))
		require.NoError(t, os.Setenv(env, pw))
		t.Cleanup(func() { _ = os.Unsetenv(env) })
		u := *u
		u.User = url.User(role)
		runDemoOnPostgres(t, admin, pw, false, "--postgres", u.String(), "--postgres-password-env", env)
	})
}

// runDemoOnPostgres runs the demo with args until it serves (and, with
// rotations, until one has been verified), checks it is on PostgreSQL as
// its own application role, stops it and checks it dropped what it made.
func runDemoOnPostgres(t *testing.T, admin *pgxpool.Pool, pw string, rotations bool, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runExecute(ctx, append([]string{"demo", "--addr", "127.0.0.1:0"}, args...), out, errOut)
	}()
	// wait watches the output from the test goroutine, so that a demo
	// that exits early fails the test here.
	wait := func(re *regexp.Regexp, what string) {
		t.Helper()
		deadline := time.After(90 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for !re.MatchString(out.String()) {
			select {
			case code := <-done:
				t.Fatalf("demo exited early with %d:\n%s\n%s", code, out.String(), errOut.String())
			case <-deadline:
				t.Fatalf("the demo did not print %s within 90s:\n%s", what, out.String())
			case <-tick.C:
			}
		}
	}
	wait(demoStatusLine, "where it serves")
	m := demoSchemaLine.FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	schema, appRole := m[1], m[3]
	t.Cleanup(func() { // in case the demo did not drop them
		_, _ = admin.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		_, _ = admin.Exec(context.Background(), `DROP ROLE IF EXISTS `+pgx.Identifier{appRole}.Sanitize())
	})

	var conns int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND application_name = 'rotor'`, appRole).Scan(&conns))
	require.Positive(t, conns, "rotor runs as the demo's application role")
	if rotations {
		wait(demoRetiringLine, "a verified rotation")
		// The run journals retiring, then schedules its retire job.
		require.Eventually(t, func() bool {
			var rotates, retires int
			err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'rotate'), count(*) FILTER (WHERE kind = 'retire') FROM `+
				pgx.Identifier{schema, "river_job"}.Sanitize()).Scan(&rotates, &retires)
			return err == nil && rotates > 0 && retires > 0
		}, 30*time.Second, 50*time.Millisecond, "River's rotate jobs, and the retire job a verified rotation schedules, are in the demo's schema")
	}
	a := demoAppsLine.FindStringSubmatch(out.String())
	require.NotNil(t, a, out.String())
	code, appsOut, appsErr := execute("apps", "list", "--config", a[1])
	require.Equal(t, 0, code, "the demo's suggested command works on PostgreSQL: %s", appsErr)
	require.Contains(t, appsOut, "web-storefront")

	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, errOut.String())
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not stop within 60s of cancellation")
	}
	require.Contains(t, out.String(), "The demo's schema "+schema+" and role "+appRole+" are dropped.")
	var left int
	require.NoError(t, admin.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $2)`,
		schema, appRole).Scan(&left))
	require.Zero(t, left, "the demo drops its schema and role")
	require.NotContains(t, out.String()+errOut.String()+appsOut+appsErr, pw, "the password is never printed")
	noStack(t, errOut.String())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
