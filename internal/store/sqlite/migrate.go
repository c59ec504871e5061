package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
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
// directory, in version order. Versions must be unique and positive.
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
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies, in order, each migration the database has not seen,
// one transaction each, recording it in schema_migrations. It is a no-op
// on an up-to-date database, safe against another process migrating the
// same file at once (transactions begin IMMEDIATE and re-check), and
// refuses a database migrated by a newer rotor.
// report, when not nil, is told each migration this call applied.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS, now time.Time, report func(version int, name string)) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if len(ms) > 0 && newest.Valid && int(newest.Int64) > ms[len(ms)-1].version {
		return fmt.Errorf("database schema version %d is newer than this rotor knows (%d): upgrade rotor", newest.Int64, ms[len(ms)-1].version)
	}
	for _, m := range ms {
		applied, err := applyMigration(ctx, db, m, now)
		if err != nil {
			return err
		}
		if applied && report != nil {
			report(m.version, m.name)
		}
	}
	return nil
}

// applyMigration applies m unless the database has it, and says whether
// it did.
func applyMigration(ctx context.Context, db *sql.DB, m migration, now time.Time) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, encTime(now)); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %s: commit: %w", m.name, err)
	}
	return true, nil
}

// Migration is one of rotor's schema migrations and whether a database
// has it.
type Migration struct {
	Version   int
	Name      string
	Applied   bool
	AppliedAt time.Time // zero when pending
}

// MigrationStatus lists every migration this rotor knows, in order, with
// whether the database at path has it. It changes nothing: a missing
// file is reported as all pending without being created, and an existing
// one is read on a query-only connection.
func MigrationStatus(ctx context.Context, path string) ([]Migration, error) {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, len(ms))
	for i, m := range ms {
		out[i] = Migration{Version: m.version, Name: m.name}
	}
	db, err := OpenReadOnly(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("read schema version of %s: %w", path, err)
	}
	if n == 0 {
		return out, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read schema version of %s: %w", path, err)
	}
	defer rows.Close()
	have := map[int]string{}
	for rows.Next() {
		var v int
		var at string
		if err := rows.Scan(&v, &at); err != nil {
			return nil, fmt.Errorf("read schema version of %s: %w", path, err)
		}
		have[v] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema version of %s: %w", path, err)
	}
	for i := range out {
		if at, ok := have[out[i].Version]; ok {
			out[i].Applied = true
			out[i].AppliedAt, _ = time.Parse(timeLayout, at)
		}
		delete(have, out[i].Version)
	}
	if len(have) > 0 {
		return out, fmt.Errorf("database %s has migrations this rotor does not know: upgrade rotor", path)
	}
	return out, nil
}

// OpenReadOnly opens the existing database file at path on query-only
// connections, for reading its schema versions (rotor's and River's)
// without changing anything. It returns an error wrapping fs.ErrNotExist
// when there is no file.
func OpenReadOnly(ctx context.Context, path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return db, nil
}
