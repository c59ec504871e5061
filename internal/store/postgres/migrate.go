package postgres

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema change, migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the numbered .sql files of fsys's migrations
// directory, in version order. Versions must be unique and positive. (The
// SQLite store reads its own the same way; the two schemas are numbered
// apart.)
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, "migrations/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no migrations")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrationLockKey is the advisory lock every rotor process takes, in one
// database and schema, to migrate: a stable hash of both, so two schemas
// (two rotor installations, or parallel tests) never wait for each other.
func migrationLockKey(database, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("rotor migrations\x00" + database + "\x00" + schema))
	return int64(h.Sum64())
}

// migrate connects as the owner role, takes the migration lock, applies
// in order each migration the schema has not seen (one transaction each,
// recorded in schema_migrations), then grants appRole what the store
// needs. It is a no-op on an up-to-date schema apart from the grants,
// waits for another process migrating the same schema, and refuses a
// schema migrated by a newer rotor.
func migrate(ctx context.Context, cc *pgx.ConnConfig, fsys fs.FS, appRole string, also []MigrateFunc, report func(version int, name string)) (*place, error) {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connect for migrations: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var database, schema, owner string
	if err := conn.QueryRow(ctx, `SELECT current_database(), coalesce(current_schema(), ''), current_user`).Scan(&database, &schema, &owner); err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if schema == "" {
		return nil, fmt.Errorf("migrations: no schema of the search_path exists in database %s: create it, or fix search_path in the URL", database)
	}
	key := migrationLockKey(database, schema)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return nil, fmt.Errorf("migrations: take the migration lock: %w", err)
	}
	// Closing the connection releases the lock too; unlock first so a
	// connection kept by a pooler would not hold it.
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key) }()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer NOT NULL PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest *int64
	if err := conn.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	if newest != nil && *newest > int64(ms[len(ms)-1].version) {
		return nil, fmt.Errorf("database schema version %d is newer than this rotor knows (%d): upgrade rotor", *newest, ms[len(ms)-1].version)
	}
	for _, m := range ms {
		applied, err := applyMigration(ctx, conn, schema, m)
		if err != nil {
			return nil, err
		}
		if applied && report != nil {
			report(m.version, m.name)
		}
	}
	if len(also) > 0 {
		if err := migrateAlso(ctx, cc, also); err != nil {
			return nil, err
		}
	}
	at := &place{database: database, schema: schema}
	if appRole == "" || appRole == owner {
		return at, nil // Open refuses an owner as the application role
	}
	return at, grant(ctx, conn, schema, appRole)
}

// migrateAlso runs the other schemas' migrations on a small pool of the
// owner's (River's driver takes a pool), while the caller holds the lock.
func migrateAlso(ctx context.Context, cc *pgx.ConnConfig, also []MigrateFunc) error {
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return err
	}
	pc.ConnConfig = cc.Copy()
	pc.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("connect for migrations: %w", err)
	}
	defer pool.Close()
	for _, fn := range also {
		if err := fn(ctx, pool); err != nil {
			return err
		}
	}
	return nil
}

// applyMigration applies m unless the schema has it, and says whether it
// did.
func applyMigration(ctx context.Context, conn *pgx.Conn, schema string, m migration) (bool, error) {
	applied := false
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if n > 0 {
			return nil
		}
		// Only rotor's schema (and pg_temp last) while migrating: what a
		// migration creates lands there, and a function fixing its
		// search_path FROM CURRENT fixes exactly that.
		if _, err := tx.Exec(ctx, `SELECT set_config('search_path', quote_ident($1) || ', pg_temp', true)`, schema); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		applied = true
		return nil
	})
	return applied, err
}

// Migration is one of rotor's schema migrations and whether a schema has
// it.
type Migration struct {
	Version   int
	Name      string
	Applied   bool
	AppliedAt time.Time // zero when pending
}

// MigrationStatus lists every migration this rotor knows, in order, with
// whether the schema that url (and password, when not empty) reaches has
// it. It only reads: the owner's or the application role's URL will do.
func MigrationStatus(ctx context.Context, url, password string) ([]Migration, error) {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, len(ms))
	for i, m := range ms {
		out[i] = Migration{Version: m.version, Name: m.name}
	}
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", redactParseError(err))
	}
	if password != "" {
		cc.Password = password
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "rotor migrate status"
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	rows, err := conn.Query(ctx, `SELECT version, applied_at FROM schema_migrations`)
	if pgCode(err) == "42P01" { // undefined_table: nothing applied yet
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	have := map[int]time.Time{}
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read schema version: %w", err)
		}
		have[v] = at
	}
	rows.Close()
	if err := rows.Err(); pgCode(err) == "42P01" { // undefined_table: nothing applied yet
		return out, nil
	} else if err != nil {
		return nil, fmt.Errorf("read schema version: %w", err)
	}
	for i := range out {
		if at, ok := have[out[i].Version]; ok {
			out[i].Applied, out[i].AppliedAt = true, at
		}
		delete(have, out[i].Version)
	}
	if len(have) > 0 {
		return out, fmt.Errorf("the schema has migrations this rotor does not know: upgrade rotor")
	}
	return out, nil
}

// grant gives the application role what the store (and River) need:
// the schema, the rows of every table in it (row-level security decides
// which of rotor's; River's hold every organization's jobs, like leases)
// and its sequences, reading but not writing the schema version, adding
// to but not changing the audit trail, and the list of organizations. The schema is rotor's alone: whatever else is
// put in it is granted too.
func grant(ctx context.Context, conn *pgx.Conn, schema, role string) error {
	sch, r := pgx.Identifier{schema}.Sanitize(), pgx.Identifier{role}.Sanitize()
	stmts := []string{
		`GRANT USAGE ON SCHEMA ` + sch + ` TO ` + r,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + sch + ` TO ` + r,
		`REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE ` + sch + `.schema_migrations FROM ` + r,
		// The audit trail is append-only for the role rotor runs as
		// (ADR 20): records are added, never changed or removed; the head
		// is moved, never removed.
		`REVOKE UPDATE, DELETE, TRUNCATE ON TABLE ` + sch + `.audit_events FROM ` + r,
		`REVOKE DELETE, TRUNCATE ON TABLE ` + sch + `.audit_heads FROM ` + r,
		`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ` + sch + ` TO ` + r,
		`GRANT EXECUTE ON FUNCTION ` + sch + `.rotor_list_organizations() TO ` + r,
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("grant the application role %s its privileges: %w", role, err)
	}
	return nil
}
