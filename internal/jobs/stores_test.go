package jobs

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/postgres"
	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// Every test of the package runs once per store, as subtests /sqlite and
// /postgres: River keeps its jobs in the store's database, and what the
// jobs do is only true of a store it was seen to work on. PostgreSQL runs
// when pgtest.EnvURL names a cluster, and skips loudly when it does not.

// storeKind names a store the tests run on.
type storeKind string

const (
	onSQLite   storeKind = "sqlite"
	onPostgres storeKind = "postgres"
)

var storeKinds = []storeKind{onSQLite, onPostgres}

// eachStore runs test once per store, in parallel.
func eachStore(t *testing.T, test func(t *testing.T, kind storeKind)) {
	t.Helper()
	for _, kind := range storeKinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			test(t, kind)
		})
	}
}

// storeRig is an empty store with River's schema migrated beside rotor's,
// opened as the server opens it (server.openStore): River's driver on it,
// and a way to look at River's tables past River.
type storeRig struct {
	store store.Store
	river Driver
	// countJobs counts the rows of river_job of a kind in the store's
	// database, read on a connection of its own.
	countJobs func(t *testing.T, kind string) int
}

func openStore(t *testing.T, kind storeKind) storeRig {
	t.Helper()
	ctx := context.Background()
	switch kind {
	case onSQLite:
		path := filepath.Join(t.TempDir(), "rotor.db")
		st, err := sqlite.Open(ctx, path)
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		// River shares the store's single write connection, as in rotor.
		river := SQLite(st.DB())
		require.NoError(t, st.WithMigrationLock(func() error { _, err := river.Migrate(ctx, nil); return err }))
		return storeRig{store: st, river: river, countJobs: func(t *testing.T, kind string) int {
			db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
			require.NoError(t, err)
			defer db.Close()
			var n int
			require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE kind = ?`, kind).Scan(&n))
			return n
		}}
	case onPostgres:
		db := pgtest.New(t)
		// The owner migrates River beside rotor, under the store's lock,
		// and grants the application role its tables; River then runs as
		// the application role, on the store's pool.
		st, err := postgres.Open(ctx, db.AppURL, postgres.WithPassword(db.AppPassword),
			postgres.WithMigrations(db.OwnerURL, db.OwnerPassword, func(ctx context.Context, owner *pgxpool.Pool) error {
				_, err := Postgres(owner).Migrate(ctx, nil)
				return err
			}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return storeRig{store: st, river: Postgres(st.Pool()), countJobs: func(t *testing.T, kind string) int {
			conn := db.ConnectApp(t)
			var schema string
			var n int
			require.NoError(t, conn.QueryRow(ctx, `SELECT current_schema(), count(*) FROM river_job WHERE kind = $1`, kind).Scan(&schema, &n))
			require.Equal(t, db.Schema, schema, "River's tables are in the test's own schema")
			return n
		}}
	}
	t.Fatalf("unknown store kind %q", kind)
	return storeRig{}
}

// TestRiverKeepsItsJobsInTheStore: the jobs a test enqueues are rows of
// river_job in the database of the store the test runs on, so the
// /postgres subtests do run River on PostgreSQL (a SQLite driver would
// leave the PostgreSQL schema without a job, or without River's tables).
func TestRiverKeepsItsJobsInTheStore(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, kind storeKind) {
		b := setup(t, kind, 2)
		require.Equal(t, string(kind), b.jobs.cfg.River.name)
		require.Zero(t, b.rig.countJobs(t, KindRotate))
		require.NoError(t, b.jobs.RotateNow(b.ctx, b.org, b.apps[0]))
		require.NoError(t, b.jobs.RotateNow(b.ctx, b.org, b.apps[1]))
		require.Equal(t, 2, b.rig.countJobs(t, KindRotate))
	})
}
