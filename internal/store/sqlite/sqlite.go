// Package sqlite is rotor's default Store: one SQLite file in WAL mode, on
// the pure-Go modernc.org/sqlite driver, with its schema migrated from
// embedded numbered SQL files when it is opened.
//
// The store keeps two pools on the file. Writes go through a pool of one
// connection whose transactions begin IMMEDIATE, so writers queue in Go
// instead of failing with SQLITE_BUSY when a deferred transaction tries to
// upgrade its lock. Reads go through a small pool of query-only
// connections, which WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store on one SQLite file.
type Store struct {
	path  string
	w     *sql.DB // one connection; every write
	r     *sql.DB // query-only connections; every read
	clock clock.Clock
}

type config struct {
	clock     clock.Clock
	syncFull  bool
	readConns int
	report    func(version int, name string)
}

// Option changes how Open sets up the store.
type Option func(*config)

// WithClock sets the clock that stamps rows whose time the caller left
// zero (organization creation, a run's CreatedAt, an event's At). The
// default is the wall clock.
func WithClock(c clock.Clock) Option { return func(cfg *config) { cfg.clock = c } }

// WithSynchronousFull makes every commit wait for fsync of the WAL
// (PRAGMA synchronous=FULL), so that even power loss cannot lose a
// committed transaction, at the cost of write throughput. The default,
// NORMAL, already survives a crash or SIGKILL of the process.
func WithSynchronousFull() Option { return func(cfg *config) { cfg.syncFull = true } }

// WithMigrationReport makes Open tell fn each migration it applied (none
// when the database was up to date, or another process migrated it
// first).
func WithMigrationReport(fn func(version int, name string)) Option {
	return func(cfg *config) { cfg.report = fn }
}

// WithReadConns caps the read pool (default: GOMAXPROCS, at least 4).
func WithReadConns(n int) Option { return func(cfg *config) { cfg.readConns = n } }

// Open opens (creating if needed) the SQLite database at path and brings
// its schema up to date. path is a file name; ":memory:" is refused
// because the store's two pools would each see their own empty database.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{clock: clock.Real{}, readConns: max(4, runtime.GOMAXPROCS(0))}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" || strings.Contains(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite store: path %q must be a plain file name", path)
	}
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite store: path %q must not contain '?'", path)
	}

	// Durability: the rotation journal is written before each side effect
	// in Azure, and must survive the process dying right after. In WAL
	// mode with synchronous=NORMAL a commit is in the WAL file (the OS
	// page cache) when Commit returns, which survives SIGKILL or a crash
	// of rotor; only power loss or a kernel crash can lose the last
	// commits, because the WAL is fsynced at checkpoints, not at every
	// commit. WithSynchronousFull closes that window too.
	syncMode := "NORMAL"
	if cfg.syncFull {
		syncMode = "FULL"
	}
	wq := url.Values{}
	wq.Add("_pragma", "busy_timeout(10000)")
	wq.Add("_pragma", "journal_mode(WAL)")
	wq.Add("_pragma", "foreign_keys(1)")
	wq.Add("_pragma", "synchronous("+syncMode+")")
	// The writer's page cache, checkpoints and statement journals are
	// sized for an inventory sync: applications have random object ids,
	// so a transaction of 5,000 of them touches pages all over five
	// B-trees. With SQLite's defaults (2 MiB of cache, a checkpoint every
	// 1,000 WAL pages, statement journals in temporary files) the first
	// sync of 100,000 applications spent most of its time re-reading
	// evicted pages, copying the same hot pages back at every checkpoint,
	// and writing the journals of multi-row statements to disk. The cache
	// grows only as far as the database does; the WAL is checkpointed
	// every 10,000 pages (40 MiB) instead.
	//
	// The cache is 16 MiB of pages, which costs about twice that: the
	// pure-Go SQLite allocates memory in power-of-two slots, so each 4 KiB
	// page with its header takes an 8 KiB one. A 64 MiB cache made a
	// `rotor serve` doing its first sync of 100,000 applications peak at
	// 306–343 MiB resident, 16 MiB at 184–220 MiB, and the sync took as
	// long (9–21 s either way on the shared 2-core machine; the store's
	// BenchmarkSyncApplications Insert 3.7 s against 5.1 s, AllChanged
	// 8.1 s against 7.7 s); see docs/benchmarks.md, BenchmarkServeRSS100k.
	wq.Add("_pragma", "cache_size(-16384)")
	wq.Add("_pragma", "wal_autocheckpoint(10000)")
	wq.Add("_pragma", "temp_store(MEMORY)")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	unlock, err := lockFile(path + ".migrate-lock")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	err = migrate(ctx, w, migrationFS, cfg.clock.Now(), cfg.report)
	unlock()
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}

	rq := url.Values{}
	rq.Add("_pragma", "busy_timeout(10000)")
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	r.SetMaxOpenConns(cfg.readConns)
	r.SetMaxIdleConns(cfg.readConns)
	if err := r.PingContext(ctx); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return &Store{path: path, w: w, r: r, clock: cfg.clock}, nil
}

// DB returns the store's write pool, for the River job system:
// riversqlite.New(store.DB()). The pool already has the single connection
// riversqlite asks for (SetMaxOpenConns(1)), with WAL, busy_timeout,
// foreign keys and IMMEDIATE transactions, so River's writes and the
// store's queue behind each other in Go rather than contending for
// SQLite's write lock. Sharing is a choice, not a requirement: River may
// instead open its own single-connection pool on Path(). Do not change
// the pool's settings, and stop River before closing the store, which
// closes this pool. Never call the Store while holding a transaction on
// this pool: with one connection, that waits forever.
func (s *Store) DB() *sql.DB { return s.w }

// BulkWrites keeps the writer's statement journals on disk
// (temp_store=FILE) until done: a full sync of 100,000 applications holds
// them in memory otherwise, the largest part of a first start's peak
// resident memory (BenchmarkServeRSS100k). The writer is one connection
// kept for the store's life, so the setting holds for every write until
// done puts it back.
func (s *Store) BulkWrites(ctx context.Context) (func(), error) {
	if _, err := s.w.ExecContext(ctx, "PRAGMA temp_store = FILE"); err != nil {
		return nil, fmt.Errorf("sqlite: statement journals to disk: %w", err)
	}
	return func() { _, _ = s.w.ExecContext(context.Background(), "PRAGMA temp_store = MEMORY") }, nil
}

// WithMigrationLock runs fn holding the lock under which Open migrates
// rotor's schema: other schemas on the same file (River's) migrate under
// it too, so processes starting at once never race on a CREATE TABLE.
func (s *Store) WithMigrationLock(fn func() error) error {
	unlock, err := lockFile(s.path + ".migrate-lock")
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// Path returns the database file's name as given to Open.
func (s *Store) Path() string { return s.path }

// Close lets SQLite refresh its query planner statistics and closes both
// pools.
func (s *Store) Close() error {
	ctx := context.Background()
	_, _ = s.w.ExecContext(ctx, "PRAGMA optimize")
	return errors.Join(s.r.Close(), s.w.Close())
}

// sqliteCode returns the extended SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func isUniqueViolation(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
