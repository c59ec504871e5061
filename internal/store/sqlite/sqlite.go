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
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

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
	wq.Add("_pragma", "page_size(16384)")
	// After page_size (the driver runs the _pragma list sorted by name,
	// then this): a new database takes its page size from the first write.
	wq.Set("_journal_mode", "WAL")
	wq.Add("_pragma", "foreign_keys(1)")
	wq.Add("_pragma", "synchronous("+syncMode+")")
	// The writer's pages, cache and checkpoints are sized for an
	// inventory sync (ADR 38): applications have random object ids, so a
	// transaction of 5,000 of them touches pages all over nine B-trees,
	// and the cost of a first sync of 100,000 is the pages it moves
	// between SQLite and the kernel (each a system call, dear on a VM).
	//
	//   - 16 KiB pages (page_size, for a new database; one made with
	//     4 KiB pages keeps them until a VACUUM): a quarter of the WAL
	//     frames, reads and checkpoint copies; that first sync went from
	//     8.8 s to 6.3 s.
	//   - 8 MiB of cache. The pure-Go SQLite gives each 16 KiB page a
	//     region of its own (about 20 KiB resident), so the cache costs
	//     about 10 MiB: 16 MiB made that first sync 1.1 s faster but a
	//     first `rotor serve` on 100,000 applications peak at 150-160 MiB
	//     resident instead of 136 (BenchmarkServeRSS100k; issue 9's
	//     bound is 150).
	//   - A checkpoint every 2,500 pages (40 MiB); a full sync moves them
	//     to a connection of their own (BulkWrites).
	//   - Temporary tables in memory: nothing big goes there now that an
	//     inventory page's statements need no statement journal
	//     (withoutForeignKeys).
	wq.Add("_pragma", "cache_size(-8192)")
	wq.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walAutocheckpoint))
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

// BulkWrites moves the WAL's checkpoints off the writer until done: a
// full sync of 100,000 applications is bound by its one writer
// connection, and copying the WAL back into the database (every
// wal_autocheckpoint pages) was a tenth of that writer's time. Until
// done, a connection of its own checkpoints (PASSIVE: it never waits for
// the writer or a reader) every checkpointEvery, while the writer's own
// automatic checkpoint waits for four times as many pages, a bound on
// the WAL should the checkpointer fall behind.
func (s *Store) BulkWrites(ctx context.Context) (func(), error) {
	cp, err := sql.Open("sqlite", s.path+"?"+url.Values{"_pragma": {"busy_timeout(10000)"}}.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: checkpoint connection: %w", err)
	}
	cp.SetMaxOpenConns(1)
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", 4*walAutocheckpoint)); err != nil {
		_ = cp.Close()
		return nil, fmt.Errorf("sqlite: checkpoints off the writer: %w", err)
	}
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				// A failed checkpoint is retried at the next tick, and the
				// writer's own checkpoint bounds the WAL meanwhile.
				_, _ = cp.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		_ = cp.Close()
		_, _ = s.w.ExecContext(context.Background(), fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walAutocheckpoint))
	}, nil
}

// walAutocheckpoint is the writer's checkpoint threshold in pages, and
// checkpointEvery how often BulkWrites' checkpointer runs.
const (
	walAutocheckpoint = 2500
	checkpointEvery   = 100 * time.Millisecond
)

// withoutForeignKeys turns SQLite's foreign key checks off on conn, a
// writer connection held for one transaction whose writes keep the keys
// by construction (an inventory page: an application's credentials and
// views are written with it). With the checks on, SQLite must be able to
// undo a statement of many rows halfway, so each multi-row INSERT copies
// every page it touches to a statement journal first: in a first sync of
// 100,000 applications with random object ids that was 1.7 s of writes
// to the journal file, a fifth of the sync, and the journal's memory
// when it was kept in memory (BenchmarkInventorySync100k). Those INSERTs
// say OR ROLLBACK, so no other constraint needs the journal either. The
// returned func turns the checks back on; if it cannot, the connection is
// discarded rather than returned to the pool without them.
func withoutForeignKeys(ctx context.Context, conn *sql.Conn) (func(), error) {
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return nil, fmt.Errorf("sqlite: foreign keys off for a bulk write: %w", err)
	}
	return func() {
		if _, err := conn.ExecContext(context.Background(), "PRAGMA foreign_keys = ON"); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}, nil
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
