package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t)
	})
}

// openTemp opens a fresh store in the test's temporary directory; the
// caller closes it.
func openTemp(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"), opts...)
	require.NoError(t, err)
	return s
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

func seed(t *testing.T, s *Store) *domain.Run {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.EnsureOrg(ctx, domain.DefaultOrg, "Default"))
	_, err := s.SyncApplications(ctx, store.SyncApplicationsParams{
		Org: domain.DefaultOrg, Connection: "c", SyncStarted: t0,
		Applications: []domain.Application{{
			TenantID: "t", ObjectID: "o1", AppID: "a1", DisplayName: "one",
			Credentials: []domain.Credential{{KeyID: "k1", Kind: domain.KindSecret, End: t0.Add(time.Hour)}},
		}},
	})
	require.NoError(t, err)
	run := &domain.Run{Org: domain.DefaultOrg, ID: "r1", TenantID: "t", AppObjectID: "o1", CreatedAt: t0}
	require.NoError(t, s.CreateRun(ctx, run))
	require.NoError(t, s.TransitionRun(ctx, store.TransitionRunParams{
		Org: domain.DefaultOrg, RunID: "r1", From: []domain.RunState{domain.RunPlanned}, To: domain.RunCreated,
		NewKeyID: "k2", Event: domain.RunEvent{At: t0, Step: domain.StepCreated.Step(), Message: "created k2"},
	}))
	return run
}

func requireSeeded(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	app, err := s.GetApplication(ctx, domain.DefaultOrg, "one")
	require.NoError(t, err)
	require.Equal(t, "o1", app.ObjectID)
	require.Len(t, app.Credentials, 1)
	run, err := s.GetRun(ctx, domain.DefaultOrg, "r1")
	require.NoError(t, err)
	require.Equal(t, domain.RunCreated, run.State)
	require.Equal(t, "k2", run.NewKeyID)
	require.Len(t, run.Events, 1)
}

func versions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.DB().QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestMigrationsAreIdempotentOnReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rotor.db")
	ms, err := loadMigrations(migrationFS)
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	var want []int
	for _, m := range ms {
		want = append(want, m.version)
	}
	for range 3 {
		s, err := Open(t.Context(), path)
		require.NoError(t, err)
		require.Equal(t, want, versions(t, s))
		require.NoError(t, s.Close())
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rotor.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	seed(t, s)
	require.Equal(t, path, s.Path())
	require.NoError(t, s.Close())

	s, err = Open(t.Context(), path)
	require.NoError(t, err)
	defer s.Close()
	requireSeeded(t, s)
}

func TestRefusesASchemaFromANewerRotor(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rotor.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	_, err = s.DB().ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 'x')`)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = Open(t.Context(), path)
	require.ErrorContains(t, err, "newer than this rotor")
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		files   fstest.MapFS
		want    []int
		wantErr string
	}{
		{"Ordered", fstest.MapFS{
			"migrations/0010_b.sql": {Data: []byte("b")},
			"migrations/0002_a.sql": {Data: []byte("a")},
			"migrations/README.md":  {Data: []byte("ignored")},
		}, []int{2, 10}, ""},
		{"BadName", fstest.MapFS{"migrations/init.sql": {Data: []byte("x")}}, nil, "NNNN_name.sql"},
		{"ZeroVersion", fstest.MapFS{"migrations/0000_x.sql": {Data: []byte("x")}}, nil, "NNNN_name.sql"},
		{"Duplicate", fstest.MapFS{
			"migrations/0001_a.sql": {Data: []byte("a")},
			"migrations/001_b.sql":  {Data: []byte("b")},
		}, nil, "share version 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.files)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestFailedMigrationLeavesNoTrace(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	defer s.Close()
	bad := fstest.MapFS{
		"migrations/0001_init.sql":                  {Data: []byte("SELECT 1")}, // already applied, skipped
		"migrations/0002_leases_access_targets.sql": {Data: []byte("SELECT 1")},
		"migrations/0099_bad.sql":                   {Data: []byte("CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);")},
	}
	before := versions(t, s)
	err := migrate(t.Context(), s.DB(), bad, t0, nil)
	require.ErrorContains(t, err, "0099_bad.sql")
	require.Equal(t, before, versions(t, s))
	var n int
	require.NoError(t, s.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n))
	require.Zero(t, n, "the migration's transaction was rolled back")
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []Option
		sync int
	}{
		{"Default", nil, 1},
		{"SynchronousFull", []Option{WithSynchronousFull()}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t, tc.opts...)
			defer s.Close()
			ctx := t.Context()
			var mode string
			var fk, sync, busy int
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk))
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync))
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy))
			require.Equal(t, "wal", mode)
			require.Equal(t, 1, fk)
			require.Equal(t, tc.sync, sync)
			require.Equal(t, 10000, busy)
			var cache, ckpt, temp int
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cache))
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&ckpt))
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&temp))
			require.Equal(t, -8192, cache, "8 MiB of page cache for the writer (about 10 MiB resident)")
			require.Equal(t, 2500, ckpt, "40 MiB of 16 KiB pages")
			require.Equal(t, 2, temp, "temporary tables in memory")
			var page int
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA page_size`).Scan(&page))
			require.Equal(t, 16384, page, "a new database has 16 KiB pages")
			done, err := s.BulkWrites(ctx)
			require.NoError(t, err)
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&ckpt))
			require.Equal(t, 10000, ckpt, "a bulk write leaves checkpoints to its own connection")
			done()
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&ckpt))
			require.Equal(t, 2500, ckpt, "and the writer checkpoints again after it")
			// An inventory page turns foreign keys off for its
			// transaction only.
			require.NoError(t, s.EnsureOrg(ctx, domain.DefaultOrg, "d"))
			_, err = s.SyncApplications(ctx, store.SyncApplicationsParams{Org: domain.DefaultOrg, Connection: "c", SyncStarted: time.Now(),
				Applications: []domain.Application{{TenantID: "t", ObjectID: "o", AppID: "a", DisplayName: "n"}}})
			require.NoError(t, err)
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk))
			require.Equal(t, 1, fk, "foreign keys are back on after an inventory page")
			require.Equal(t, 1, s.DB().Stats().MaxOpenConnections, "River's riversqlite wants one connection")

			_, err = s.r.ExecContext(ctx, `INSERT INTO organizations (id, name, created_at) VALUES ('x', 'x', 'x')`)
			require.Error(t, err, "the read pool is query-only")
		})
	}
}

// TestAFailedInventoryPageLeavesNothing: a page's INSERTs of many rows
// run without foreign key checks and say OR ROLLBACK (no statement
// journal); a statement failing halfway through must still leave none of
// the page, and the writer must have its foreign keys back for the next
// transaction.
func TestAFailedInventoryPageLeavesNothing(t *testing.T) {
	// ABORT is how a constraint fails by default; ROLLBACK how the
	// page's OR ROLLBACK statements fail.
	for _, how := range []string{"ABORT", "ROLLBACK"} {
		t.Run(how, func(t *testing.T) {
			s := openTemp(t)
			defer s.Close()
			ctx := t.Context()
			require.NoError(t, s.EnsureOrg(ctx, domain.DefaultOrg, "d"))
			_, err := s.DB().ExecContext(ctx, `CREATE TEMP TRIGGER boom BEFORE INSERT ON credentials
				WHEN NEW.key_id = 'boom' BEGIN SELECT RAISE(`+how+`, 'boom'); END`)
			require.NoError(t, err)
			page := func(bad bool) []domain.Application {
				var apps []domain.Application
				for i := range 300 {
					key := fmt.Sprintf("k%d", i)
					if bad && i == 250 {
						key = "boom"
					}
					apps = append(apps, domain.Application{TenantID: "t", ObjectID: fmt.Sprintf("o%03d", i), AppID: fmt.Sprintf("a%d", i), DisplayName: "n",
						Credentials: []domain.Credential{{KeyID: key, Kind: domain.KindSecret, Start: t0, End: t0.Add(time.Hour)}}})
				}
				return apps
			}
			p := store.SyncApplicationsParams{Org: domain.DefaultOrg, Connection: "c", SyncStarted: t0, Applications: page(true)}
			_, err = s.SyncApplications(ctx, p)
			require.ErrorContains(t, err, "boom")
			n, err := s.CountApplications(ctx, domain.DefaultOrg, "")
			require.NoError(t, err)
			require.Zero(t, n, "none of the failed page is kept")
			var creds int
			require.NoError(t, s.DB().QueryRowContext(ctx, `SELECT count(*) FROM credentials`).Scan(&creds))
			require.Zero(t, creds)

			var fk int
			require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk))
			require.Equal(t, 1, fk, "the writer has its foreign keys back after a failed page")
			_, err = s.DB().ExecContext(ctx, `INSERT INTO credentials (org_id, tenant_id, app_object_id, key_id, kind, display_name, hint, thumbprint, start_at, end_at)
				VALUES ('default', 't', 'nowhere', 'x', 'secret', '', '', '', '', '')`)
			require.Error(t, err, "a credential of no application is refused again")

			p.Applications = page(false)
			changed, err := s.SyncApplications(ctx, p)
			require.NoError(t, err)
			require.Equal(t, 300, changed)
		})
	}
}

// TestADatabaseWith4KiBPagesKeepsThem: rotor before ADR 38 made its
// databases with SQLite's default 4 KiB pages; Open must take such a file
// as it is (a WAL database changes its page size only by VACUUM) and sync
// into it as before.
func TestADatabaseWith4KiBPagesKeepsThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", path+"?_pragma=page_size(4096)&_journal_mode=WAL")
	require.NoError(t, err)
	_, err = old.Exec(`CREATE TABLE before_adr_38 (x)`)
	require.NoError(t, err)
	require.NoError(t, old.Close())

	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	defer s.Close()
	ctx := t.Context()
	var page int
	require.NoError(t, s.DB().QueryRowContext(ctx, `PRAGMA page_size`).Scan(&page))
	require.Equal(t, 4096, page)
	require.NoError(t, s.EnsureOrg(ctx, domain.DefaultOrg, "d"))
	done, err := s.BulkWrites(ctx)
	require.NoError(t, err)
	changed, err := s.SyncApplications(ctx, store.SyncApplicationsParams{Org: domain.DefaultOrg, Connection: "c", SyncStarted: t0,
		Applications: []domain.Application{{TenantID: "t", ObjectID: "o", AppID: "a", DisplayName: "n"}}})
	done()
	require.NoError(t, err)
	require.Equal(t, 1, changed)
}

func TestOpenRefusesMemoryAndURIs(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", ":memory:", "file::memory:?cache=shared", "file:x.db", "a?b.db"} {
		_, err := Open(t.Context(), p)
		require.Error(t, err, "path %q", p)
	}
}

// TestOneActiveRunIsEnforcedByTheDatabase bypasses the store: even raw SQL
// cannot journal two active runs for one application.
func TestOneActiveRunIsEnforcedByTheDatabase(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	defer s.Close()
	seed(t, s) // r1 is active (created) for o1
	insert := func(id, state string) error {
		_, err := s.DB().ExecContext(t.Context(), `INSERT INTO runs (org_id, id, connection, tenant_id, app_object_id,
			app_id, app_name, policy, kind, "trigger", state, new_key_id, sinks_started, error, attempts, replaces,
			created_at, updated_at) VALUES ('default', ?, '', 't', 'o1', '', '', '', '', '', ?, '', 0, '', 0, '', 'x', 'x')`, id, state)
		return err
	}
	for _, st := range []string{"planned", "created", "propagated", "verified"} {
		err := insert("raw-"+st, st)
		require.Error(t, err)
		require.True(t, isUniqueViolation(err), "state %s: %v", st, err)
	}
	for _, st := range []string{"retiring", "done", "failed", "abandoned"} {
		require.NoError(t, insert("raw-"+st, st))
	}
}

func TestUnknownOrgIsNotFound(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	defer s.Close()
	_, err := s.SyncApplications(t.Context(), store.SyncApplicationsParams{
		Org: "nobody", Connection: "c", SyncStarted: t0,
		Applications: []domain.Application{{TenantID: "t", ObjectID: "o"}},
	})
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.CreateRun(t.Context(), &domain.Run{Org: "nobody", TenantID: "t", AppObjectID: "o"})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestRejectsTimesOutsideTheStoredRange(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	defer s.Close()
	require.NoError(t, s.EnsureOrg(t.Context(), domain.DefaultOrg, ""))
	_, err := s.SyncApplications(t.Context(), store.SyncApplicationsParams{
		Org: domain.DefaultOrg, Connection: "c", SyncStarted: t0,
		Applications: []domain.Application{{TenantID: "t", ObjectID: "o", Credentials: []domain.Credential{
			{KeyID: "k", End: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		}}},
	})
	require.ErrorContains(t, err, "outside years")
}

func TestListUsesTheNameIndex(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	defer s.Close()
	rows, err := s.r.QueryContext(t.Context(), `EXPLAIN QUERY PLAN
		SELECT object_id FROM applications WHERE org_id = ? AND display_name >= ? AND display_name < ?
		ORDER BY display_name, object_id, tenant_id LIMIT 10`, "o", "a", "b")
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	joined := strings.Join(plan, "\n")
	require.Contains(t, joined, "applications_by_name")
	require.NotContains(t, joined, "TEMP B-TREE", "no sort: the index gives the order")
}

// TestReconcileReadsOnlyTheConnectionIndex: comparing 100,000 views with
// the owned set every sync must read the index alone, in its order.
func TestReconcileReadsOnlyTheConnectionIndex(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	defer s.Close()
	for _, q := range []string{sqlManageableIDs, sqlViews} {
		rows, err := s.r.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+q, "o", "c")
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		joined := strings.Join(plan, "\n")
		require.Contains(t, joined, "USING COVERING INDEX app_access_by_connection", joined)
		if q == sqlViews {
			require.NotContains(t, joined, "TEMP B-TREE", "the index gives the order: "+joined)
		}
	}
}

// TestJournalSurvivesSIGKILL journals a transition in a child process,
// kills it with SIGKILL before it can close the store, and reads the
// journal back: what TransitionRun returned for is on disk.
func TestJournalSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv("ROTOR_SQLITE_KILL_CHILD"); path != "" {
		s, err := Open(context.Background(), path)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		seed(t, s)
		fmt.Println("journaled")
		select {} // wait for SIGKILL, never closing the store
	}
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "rotor.db")
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestJournalSurvivesSIGKILL$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ROTOR_SQLITE_KILL_CHILD="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "journaled\n", line)
	require.NoError(t, cmd.Process.Kill()) // SIGKILL on Unix
	_ = cmd.Wait()

	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	defer s.Close()
	requireSeeded(t, s)
}
