package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/rotor-dev/rotor/internal/jobs"
	"github.com/rotor-dev/rotor/internal/store/postgres"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// BackupParams says where Backup writes.
type BackupParams struct {
	// To is the backup file. It must not exist unless Force.
	To    string
	Force bool
	// PgDump is the pg_dump program on PostgreSQL ("" finds pg_dump on
	// PATH).
	PgDump string
}

// BackupReport is what Backup wrote.
type BackupReport struct {
	Driver string `json:"driver"` // "sqlite" or "postgres"
	// Path is the backup file, absolute.
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
	// Source is what was backed up: the SQLite file, or the PostgreSQL
	// schema and database.
	Source string `json:"source"`
	// SchemaVersion is the newest of rotor's migrations in the backup;
	// RiverVersion River's schema version.
	SchemaVersion int `json:"schema_version"`
	RiverVersion  int `json:"river_version"`
	// Command is the pg_dump command line that was run (PostgreSQL; the
	// password went in its environment).
	Command string `json:"command,omitempty"`
}

// BackupExistsError is Backup refusing to replace a file without Force.
type BackupExistsError struct{ Path string }

func (e *BackupExistsError) Error() string { return e.Path + " already exists" }

// Backup writes a consistent backup of the database the configuration
// names to p.To while rotor may be running: SQLite's VACUUM INTO on the
// database file, or pg_dump's custom format of rotor's PostgreSQL schema,
// taken as the owner role (docs/backup.md, ADR 19). The backup holds the
// inventory, the run journal, leases, policies, connections and River's
// jobs, and never a secret value: rotor stores none, only references.
//
// The file is written beside p.To under a temporary name, checked (SQLite:
// PRAGMA integrity_check; PostgreSQL: pg_restore --list when pg_restore is
// beside pg_dump), synced, given mode 0600, and only then put in place,
// so p.To is either the old file or a whole new backup. Without p.Force an
// existing p.To is a *BackupExistsError, checked again at the moment the
// backup is put in place.
func Backup(ctx context.Context, configPath string, opts Options, p BackupParams) (*BackupReport, error) {
	db, err := loadDatabase(configPath, opts)
	if err != nil {
		return nil, err
	}
	if p.To == "" {
		return nil, errors.New("no backup file given")
	}
	to, err := filepath.Abs(p.To)
	if err != nil {
		return nil, err
	}
	rep := &BackupReport{Driver: db.Driver, Path: to}
	if st, err := os.Stat(to); err == nil {
		if st.IsDir() {
			return nil, fmt.Errorf("%s is a directory: name the backup file", to)
		}
		if !p.Force {
			return nil, &BackupExistsError{Path: to}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	dir := filepath.Dir(to)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("directory %s does not exist: create it first", dir)
	}
	if db.Driver != "postgres" {
		src, err := filepath.Abs(db.Path)
		if err != nil {
			return nil, err
		}
		if sameFile(src, to) || slices.Contains([]string{src + "-wal", src + "-shm", src + "-journal", src + ".migrate-lock"}, to) {
			return nil, fmt.Errorf("%s is the database itself (or one of its files): write the backup elsewhere", to)
		}
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("there is no database at %s (data_dir in %s): nothing to back up; has rotor run with this configuration?", src, configPath)
		}
	}

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(to)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create the backup file: %w", err)
	}
	tmpName := tmp.Name()
	_ = tmp.Close()
	defer os.Remove(tmpName) // gone after the rename; removes a failed attempt
	if err := os.Chmod(tmpName, 0o600); err != nil {
		return nil, err
	}

	if db.Driver == "postgres" {
		if db.MigrateURL == "" {
			return nil, errors.New("database.migrate_url is not set: a PostgreSQL backup is taken as the owner role, because row-level security hides every organization's rows from the application role (docs/backup.md)")
		}
		password := ""
		if db.MigratePassword != nil {
			password = db.MigratePassword.Value().Reveal()
		}
		info, err := postgres.Dump(ctx, postgres.DumpParams{URL: db.MigrateURL, Password: password, PgDump: p.PgDump, File: tmpName, ShowFile: to})
		if err != nil {
			return nil, err
		}
		rep.Source = fmt.Sprintf("schema %s of database %s (as role %s)", info.Schema, info.Database, info.Role)
		rep.SchemaVersion = info.SchemaVersion
		rep.Command = info.Command
		if rep.RiverVersion, _, err = postgresRiverVersions(ctx, db.MigrateURL, password); err != nil {
			return nil, fmt.Errorf("read River's schema version: %w", err)
		}
	} else {
		if err := sqlite.BackupInto(ctx, db.Path, tmpName); err != nil {
			return nil, err
		}
		if rep.SchemaVersion, err = sqlite.CheckBackup(ctx, tmpName); err != nil {
			return nil, err
		}
		rdb, err := sqlite.OpenReadOnly(ctx, tmpName)
		if err != nil {
			return nil, err
		}
		rep.RiverVersion, _, err = jobs.SQLite(rdb).Versions(ctx)
		_ = rdb.Close()
		if err != nil {
			return nil, err
		}
		rep.Source, _ = filepath.Abs(db.Path)
	}

	if err := syncFile(tmpName); err != nil {
		return nil, fmt.Errorf("sync the backup file: %w", err)
	}
	if err := publish(tmpName, to, p.Force); err != nil {
		return nil, err
	}
	if err := syncFile(dir); err != nil {
		return nil, fmt.Errorf("sync the backup's directory: %w", err)
	}
	st, err := os.Stat(to)
	if err != nil {
		return nil, err
	}
	rep.Bytes = st.Size()
	return rep, nil
}

// publish puts the finished backup tmp at to: a rename when replacing is
// allowed; otherwise a hard link, which fails if to appeared meanwhile
// (falling back to check-then-rename where the file system has no links).
func publish(tmp, to string, replace bool) error {
	if replace {
		return os.Rename(tmp, to)
	}
	err := os.Link(tmp, to)
	switch {
	case err == nil:
		return os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		return &BackupExistsError{Path: to}
	}
	if _, serr := os.Lstat(to); serr == nil {
		return &BackupExistsError{Path: to}
	}
	return os.Rename(tmp, to)
}

// syncFile fsyncs a file or a directory.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sameFile reports whether a and b name one existing file.
func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}
