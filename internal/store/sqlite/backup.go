package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// BackupInto writes a consistent copy of the database at path into dest,
// online: rotor processes may be writing the database meanwhile. dest must
// not exist or be an empty file (the caller's temporary file); the copy is
// not yet synced to disk, so check it (CheckBackup) and sync it before
// putting it where a restore would look.
//
// The copy is SQLite's VACUUM INTO on a connection of its own: one read
// transaction, so it is the database as of one commit, WAL included, and
// in WAL mode it neither waits for writers nor makes them wait (see
// docs/adr/0019-backup-and-restore.md). The connection never creates the
// database: a missing file is an error wrapping fs.ErrNotExist.
func BackupInto(ctx context.Context, path, dest string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("back up sqlite store %s: %w", path, err)
	}
	db, err := openExisting(path, "rw")
	if err != nil {
		return fmt.Errorf("back up sqlite store %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		return fmt.Errorf("back up sqlite store %s: %w", path, err)
	}
	return nil
}

// CheckBackup opens the copy at path read-only, checks its integrity
// (PRAGMA integrity_check) and returns the newest of rotor's migrations it
// has. A copy that fails the check is an error saying what SQLite found.
func CheckBackup(ctx context.Context, path string) (schemaVersion int, err error) {
	db, err := openExisting(path, "ro")
	if err != nil {
		return 0, fmt.Errorf("check backup %s: %w", path, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return 0, fmt.Errorf("check backup %s: %w", path, err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return 0, fmt.Errorf("check backup %s: %w", path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("check backup %s: %w", path, err)
	}
	if len(problems) > 0 {
		return 0, fmt.Errorf("check backup %s: integrity check failed: %s", path, strings.Join(problems, "; "))
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("check backup %s: read schema version: %w", path, err)
	}
	return int(v.Int64), nil
}

// openExisting opens path on one connection in SQLite's mode ro or rw,
// neither of which creates a missing file.
func openExisting(path, mode string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	q := url.Values{}
	q.Set("mode", mode)
	q.Add("_pragma", "busy_timeout(10000)")
	u := url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}
	// url.URL writes "file:///abs"; SQLite wants "file:/abs" or
	// "file:///abs", both fine.
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
