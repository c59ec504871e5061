package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// storage checks, without creating anything, that rotor serve will be able
// to create data_dir and open the SQLite database in it. Opening the store
// is the first thing rotor does on disk; a configuration that passes here
// but fails there would leave a half-created data directory behind, so
// everything that can be known in advance is a configuration problem.
func (b *builder) storage(raw rawDatabase) {
	top := scope{}
	dataDir := filepath.Clean(b.cfg.DataDir)
	dataDirOK := true
	if msg := dirProblem(dataDir); msg != "" {
		b.bad(top, "data_dir", 0, "data_dir %s %s", dataDir, msg)
		dataDirOK = false
	}

	db := b.cfg.Database.Path
	if db == "" {
		return // database.url is already reported
	}
	// The key to blame: the database is data_dir/rotor.db unless
	// database.url says otherwise.
	key, what := "database.url", "database.url: the database file "+db
	if raw.URL == "" {
		if !dataDirOK {
			return
		}
		key, what = "data_dir", "data_dir: the database file "+db
	}
	// SQLite's driver takes the path as a URI: these would change what
	// it opens (sqlite.Open refuses them).
	if strings.ContainsRune(db, '?') || strings.Contains(db, ":memory:") {
		b.bad(top, key, 0, "%s must not contain '?' or ':memory:': the SQLite driver would read them as options; choose another path", what)
		return
	}
	st, err := os.Stat(db)
	switch {
	case err == nil && st.IsDir():
		b.bad(top, key, 0, "%s is a directory: name a file, e.g. %s", what, filepath.Join(db, DefaultDatabaseFile))
		return
	case err == nil && !st.Mode().IsRegular():
		b.bad(top, key, 0, "%s is not a regular file", what)
		return
	case err == nil:
		if werr := writable(db, false); werr != nil {
			b.bad(top, key, 0, "%s is not writable (%s): rotor writes its journal there", what, reason(werr))
			return
		}
	case !missing(err):
		b.bad(top, key, 0, "%s cannot be checked (%s)", what, reason(err))
		return
	}
	// SQLite creates the file and its -wal and -shm files beside it, but
	// not the directory; rotor creates data_dir and nothing else.
	parent := filepath.Dir(filepath.Clean(db))
	if parent == dataDir {
		return // checked above
	}
	pst, err := os.Stat(parent)
	switch {
	case missing(err):
		b.bad(top, key, 0, "%s cannot be created: its directory %s does not exist; create it, or leave database.url empty to use data_dir/%s", what, parent, DefaultDatabaseFile)
	case err != nil:
		b.bad(top, key, 0, "%s cannot be checked (%s)", what, reason(err))
	case !pst.IsDir():
		b.bad(top, key, 0, "%s cannot be created: %s is not a directory", what, parent)
	default:
		if werr := writable(parent, true); werr != nil {
			b.bad(top, key, 0, "%s cannot be used: its directory %s is not writable (%s), and SQLite keeps its -wal and -shm files beside the database", what, parent, reason(werr))
		}
	}
}

// dirProblem says why directory p cannot be used, or created the way
// os.MkdirAll would, by this process; "" when it can. It only looks.
func dirProblem(p string) string {
	st, err := os.Stat(p)
	switch {
	case err == nil && !st.IsDir():
		return "exists and is not a directory: point data_dir at a directory, or move the file away"
	case err == nil:
		if werr := writable(p, true); werr != nil {
			return fmt.Sprintf("is not writable (%s): rotor keeps its database there; fix its permissions or choose another data_dir", reason(werr))
		}
		return ""
	case !missing(err):
		return fmt.Sprintf("cannot be checked (%s)", reason(err))
	}
	// Missing: the nearest existing ancestor decides whether MkdirAll
	// can create it.
	for q := filepath.Dir(p); ; q = filepath.Dir(q) {
		st, err := os.Stat(q)
		switch {
		case err == nil && !st.IsDir():
			return fmt.Sprintf("cannot be created: %s is a file, not a directory", q)
		case err == nil:
			if werr := writable(q, true); werr != nil {
				return fmt.Sprintf("cannot be created: %s is not writable (%s); create data_dir yourself, or choose another", q, reason(werr))
			}
			return ""
		case !missing(err):
			return fmt.Sprintf("cannot be created: %s cannot be checked (%s)", q, reason(err))
		}
		if q == filepath.Dir(q) {
			return "cannot be created: no part of its path exists"
		}
	}
}

// missing reports whether err says the path does not exist, including
// because a part of it is a file (ENOTDIR), which the ancestor walk then
// finds.
func missing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// reason is an error without the path the message already names.
func reason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return pathErrReason(err)
}
