package postgres

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
)

func TestSplitPassword(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		in, clean, password, err string
	}{
		"UserInfo":  {in: "postgres://admin:s3cret@db:5432/rotor?sslmode=disable", clean: "postgres://admin@db:5432/rotor?sslmode=disable", password: "s3cret"},
		"Parameter": {in: "postgresql://admin@db/rotor?password=s3cret&sslmode=require", clean: "postgresql://admin@db/rotor?sslmode=require", password: "s3cret"},
		"None":      {in: "postgres://admin@db/rotor", clean: "postgres://admin@db/rotor"},
		"NotAURL":   {in: "postgres://admin:s3cret@[::1/rotor", err: "not a URL"},
		"BadPort":   {in: "postgres://admin:s3cret@db:port/rotor", err: "not a URL"},
		"KeyValue":  {in: "host=db password=s3cret", err: "not a postgres:// URL"},
		"OtherKind": {in: "mysql://admin:s3cret@db/rotor", err: "not a postgres:// URL"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clean, password, err := SplitPassword(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.NotContains(t, err.Error(), "s3cret")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.clean, clean)
			require.Equal(t, tc.password, password)
		})
	}
}

// TestSandbox: a sandbox made as a superuser is a schema its owner
// migrates and an application role rotor opens as, row-level security
// binding it (Open's checks pass); Drop leaves nothing.
func TestSandbox(t *testing.T) {
	t.Parallel()
	admin := pgtest.Admin(t)
	ctx := t.Context()
	sb, err := NewSandbox(ctx, SandboxParams{URL: pgtest.URL(t)})
	require.NoError(t, err)
	dropped := false
	t.Cleanup(func() {
		if !dropped {
			_ = sb.Drop(context.Background())
		}
	})
	require.Equal(t, sb.Schema+"_app", sb.AppRole)
	for _, u := range []string{sb.OwnerURL, sb.AppURL} {
		pu, err := url.Parse(u)
		require.NoError(t, err)
		require.Equal(t, sb.Schema, pu.Query().Get("search_path"))
		_, has := pu.User.Password()
		require.False(t, has, "no password in %s", u)
		require.NotEmpty(t, pu.User.Username())
	}

	st, err := Open(ctx, sb.AppURL, WithPassword(sb.AppPassword), WithMigrations(sb.OwnerURL, ""))
	require.NoError(t, err)
	var schema, role string
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT current_schema(), current_user`).Scan(&schema, &role))
	require.Equal(t, sb.Schema, schema)
	require.Equal(t, sb.AppRole, role)
	require.NoError(t, st.Close())

	require.NoError(t, sb.Drop(ctx))
	dropped = true
	var schemas, roles int
	require.NoError(t, admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = $1), (SELECT count(*) FROM pg_roles WHERE rolname = $2)`,
		sb.Schema, sb.AppRole).Scan(&schemas, &roles))
	require.Zero(t, schemas+roles, "Drop removes the schema and the role")
}

// TestSandboxSaysWhatTheRoleLacks: a role that may not create a schema,
// or roles, is told which, and nothing is left half made; its password
// (in the URL, or apart) is never repeated.
func TestSandboxSaysWhatTheRoleLacks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtest.New(t) // its owner role: NOCREATEROLE, no CREATE on the database
	withPassword := func(u, password string) string {
		pu, err := url.Parse(u)
		require.NoError(t, err)
		pu.User = url.UserPassword(pu.User.Username(), password)
		return pu.String()
	}

	_, err := NewSandbox(ctx, SandboxParams{URL: withPassword(db.OwnerURL, db.OwnerPassword)})
	require.ErrorContains(t, err, "may not create a schema in database")
	require.NotContains(t, err.Error(), db.OwnerPassword)

	admin := pgtest.Admin(t)
	var database string
	require.NoError(t, admin.QueryRow(ctx, `SELECT current_database()`).Scan(&database))
	owner := pgx.Identifier{db.OwnerRole}.Sanitize()
	_, err = admin.Exec(ctx, `GRANT CREATE ON DATABASE `+pgx.Identifier{database}.Sanitize()+` TO `+owner)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), `REVOKE CREATE ON DATABASE `+pgx.Identifier{database}.Sanitize()+` FROM `+owner)
	})
	_, err = NewSandbox(ctx, SandboxParams{URL: db.OwnerURL, Password: db.OwnerPassword})
	require.ErrorContains(t, err, "may not create roles")
	require.NotContains(t, err.Error(), db.OwnerPassword)
	var left int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspowner = $1::regrole`, db.OwnerRole).Scan(&left))
	require.Equal(t, 1, left, "only the test's own schema: the sandbox's was rolled back with the role")

	_, err = NewSandbox(ctx, SandboxParams{URL: withPassword(db.OwnerURL, "wrong-"+db.OwnerPassword)})
	require.Error(t, err, "a wrong password is refused")
	require.NotContains(t, err.Error(), db.OwnerPassword)
	_, err = NewSandbox(ctx, SandboxParams{URL: withPassword(db.OwnerURL, db.OwnerPassword), Password: db.OwnerPassword})
	require.ErrorContains(t, err, "give one")
}
