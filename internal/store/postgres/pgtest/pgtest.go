// Package pgtest gives a test its own PostgreSQL schema and the two roles
// rotor runs with there: an owner that migrates, and an application role
// that row-level security binds. Tests get a fresh pair each, so they run
// in parallel and leave nothing behind.
//
// The cluster is the one ROTOR_TEST_DATABASE_URL names, as a superuser (a
// throwaway cluster: .ci/run starts one on a loopback port). When it is
// not set, New skips the test, loudly: nothing PostgreSQL was tested.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL names the environment variable with the superuser URL of the
// test cluster, e.g. postgres://postgres@127.0.0.1:55432/rotor_test?sslmode=disable.
const EnvURL = "ROTOR_TEST_DATABASE_URL"

// SkipMessage is what a test says when EnvURL is not set.
const SkipMessage = "PostgreSQL NOT TESTED: " + EnvURL + " is not set. Set it to a superuser URL of a throwaway cluster " +
	"(e.g. postgres://postgres@127.0.0.1:55432/rotor_test?sslmode=disable; .ci/run starts one) to run the PostgreSQL tests."

// DB is one test's schema and roles. Passwords are random per test and
// passed apart from the URLs, as rotor passes a database password.
type DB struct {
	Schema string
	// OwnerRole owns the schema and runs the migrations.
	OwnerRole, OwnerURL, OwnerPassword string
	// AppRole is the application role: not a superuser, without
	// BYPASSRLS, owning nothing.
	AppRole, AppURL, AppPassword string
	// AdminURL is the superuser URL (EnvURL's value).
	AdminURL string
}

// URL returns EnvURL's value, or skips t with SkipMessage.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Skip(SkipMessage)
	}
	return u
}

var admins sync.Map // admin URL → *pgxpool.Pool, for the test process's life

func admin(ctx context.Context, u string) (*pgxpool.Pool, error) {
	if p, ok := admins.Load(u); ok {
		return p.(*pgxpool.Pool), nil
	}
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	cfg.MaxConns = 4
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if prev, loaded := admins.LoadOrStore(u, p); loaded {
		p.Close()
		return prev.(*pgxpool.Pool), nil
	}
	return p, nil
}

// Admin returns a pool on the test cluster as its superuser (skipping t
// when EnvURL is not set). Do not close it.
func Admin(t testing.TB) *pgxpool.Pool {
	t.Helper()
	p, err := admin(t.Context(), URL(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return p
}

// New creates a schema owned by a new owner role, and a new application
// role, for t; both go when t ends. It skips t when EnvURL is not set.
func New(t testing.TB) *DB {
	t.Helper()
	adminURL := URL(t)
	ctx := t.Context()
	a, err := admin(ctx, adminURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := "rt_" + randHex(6)
	db := &DB{
		Schema:    name,
		OwnerRole: name + "_owner", OwnerPassword: randHex(16),
		AppRole: name + "_app", AppPassword: randHex(16),
		AdminURL: adminURL,
	}
	if db.OwnerURL, err = roleURL(adminURL, db.OwnerRole, name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if db.AppURL, err = roleURL(adminURL, db.AppRole, name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	owner, app, schema := pgx.Identifier{db.OwnerRole}.Sanitize(), pgx.Identifier{db.AppRole}.Sanitize(), pgx.Identifier{name}.Sanitize()
	for _, q := range []string{
		// Random hex: safe to quote literally (utility statements take no parameters).
		`CREATE ROLE ` + owner + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '` + db.OwnerPassword + `'`,
		`CREATE ROLE ` + app + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '` + db.AppPassword + `'`,
		`CREATE SCHEMA ` + schema + ` AUTHORIZATION ` + owner,
	} {
		if _, err := a.Exec(ctx, q); err != nil {
			t.Fatalf("pgtest: set up %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, q := range []string{
			`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename IN ('` + db.OwnerRole + `', '` + db.AppRole + `') AND pid <> pg_backend_pid()`,
			`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`,
			`DROP OWNED BY ` + owner + `, ` + app,
			`DROP ROLE ` + app,
			`DROP ROLE ` + owner,
		} {
			if _, err := a.Exec(ctx, q); err != nil {
				t.Errorf("pgtest: clean up %s: %v", name, err)
				return
			}
		}
	})
	return db
}

// roleURL is the admin URL as role (no password: it goes apart), with
// rotor's schema first in the search_path.
func roleURL(adminURL, role, schema string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%s must be a postgres:// URL", EnvURL)
	}
	u.User = url.User(role)
	q := u.Query()
	q.Del("password")
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// ConnectApp opens a plain connection as the application role, in the
// test's schema, closed when t ends: for tests that look past the store.
func (db *DB) ConnectApp(t testing.TB) *pgx.Conn {
	t.Helper()
	return connect(t, db.AppURL, db.AppPassword)
}

// ConnectOwner is ConnectApp as the owner role.
func (db *DB) ConnectOwner(t testing.TB) *pgx.Conn {
	t.Helper()
	return connect(t, db.OwnerURL, db.OwnerPassword)
}

func connect(t testing.TB, u, password string) *pgx.Conn {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	cfg.Password = password
	c, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("pgtest: connect as %s: %v", cfg.User, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
