package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
	"github.com/rotor-dev/rotor/internal/store/storetest"
)

// TestMain says, where anyone running `go test ./...` sees it, that the
// PostgreSQL store went untested.
func TestMain(m *testing.M) {
	if os.Getenv(pgtest.EnvURL) == "" {
		fmt.Fprint(os.Stderr, "\n*** "+pgtest.SkipMessage+"\n\n")
	}
	os.Exit(m.Run())
}

// open opens a store on db as its application role, migrating first as its
// owner; the test closes it.
func open(t testing.TB, db *pgtest.DB, opts ...Option) *Store {
	t.Helper()
	opts = append([]Option{WithPassword(db.AppPassword), WithMigrations(db.OwnerURL, db.OwnerPassword)}, opts...)
	s, err := Open(t.Context(), db.AppURL, opts...)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.New(t))
	}, storetest.TimePrecision(time.Microsecond))
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)

// populate gives org every kind of row rotor keeps, under the same names
// and ids whatever the org, so that only org_id tells them apart.
func populate(t *testing.T, s *Store, org domain.OrgID) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.EnsureOrg(ctx, org, string(org)))
	conn := store.Connection{Org: org, Name: "c", TenantID: "t", Cloud: "public", Purpose: "rotation",
		Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: "id",
			ClientSecret: &store.SecretRef{Kind: store.SecretEnv, Env: "S"}}}
	require.NoError(t, s.UpsertConnection(ctx, store.UpsertConnectionParams{Connection: conn}))
	require.NoError(t, s.UpsertPolicy(ctx, store.UpsertPolicyParams{Org: org, Policy: domain.Policy{
		Name: "p", Connection: "c", Selector: domain.Selector{AllOwned: true}, Enabled: true, Kind: domain.KindSecret,
		Lifetime: 90 * 24 * time.Hour, RenewBefore: 30 * 24 * time.Hour, Overlap: 24 * time.Hour, Verify: true}}))
	_, err := s.SyncApplications(ctx, store.SyncApplicationsParams{Org: org, Connection: "c", SyncStarted: t0,
		Applications: []domain.Application{{TenantID: "t", ObjectID: "o1", AppID: "a1", DisplayName: "app of " + string(org),
			Manageable:  true,
			Credentials: []domain.Credential{{KeyID: "k1", Kind: domain.KindSecret, End: t0.Add(time.Hour)}}}}})
	require.NoError(t, err)
	require.NoError(t, s.CreateRun(ctx, &domain.Run{Org: org, ID: "r1", TenantID: "t", AppObjectID: "o1", CreatedAt: t0,
		Events: []domain.RunEvent{{Step: domain.StepPlanned.Step(), Message: "planned"}}}))
	require.NoError(t, s.PinTarget(ctx, store.PinTargetParams{Org: org, TenantID: "t", AppObjectID: "o1", Policy: "p",
		Target: store.PinnedTarget{SinkType: "keyvault", Target: "keyvault:https://v/secrets/s", PinnedByRun: "r1"}}))
	require.NoError(t, s.RecordConnectionHealth(ctx, store.ConnectionHealth{Org: org, Connection: "c", Success: true, At: t0}))
	require.NoError(t, s.SaveSyncState(ctx, store.SaveSyncStateParams{Org: org, Connection: "c", Scope: "t/id", SyncStarted: t0, Full: true}))
	_, err = s.AppendAudit(ctx, audit.Record{Org: org, At: t0, Actor: audit.Rotor, Action: "sync", Object: "inventory", Outcome: audit.OutcomeOK})
	require.NoError(t, err)
	require.NoError(t, s.CreateAPIKey(ctx, store.APIKey{Org: org, ID: "k1", Name: "ci", Role: "viewer",
		Hash: make([]byte, 32), CreatedAt: t0}))
	require.NoError(t, s.CreateSession(ctx, store.Session{Org: org, IDHash: make([]byte, 32), Method: "entra",
		Subject: "u1", Role: "viewer", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	require.NoError(t, s.CreateLocalAdmin(ctx, store.LocalAdmin{Org: org, Name: "breakglass",
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", CreatedAt: t0}))
	lifetime := 30 * 24 * time.Hour
	require.NoError(t, s.RecordSinkDelivery(ctx, store.RecordSinkDeliveryParams{Org: org, TenantID: "t", AppObjectID: "o1",
		Delivery: store.SinkDelivery{Target: "keyvault:https://v/secrets/a", KeyID: "k1", Version: "v1", RunID: "r1"}}))
	require.NoError(t, s.PutCertificateDetails(ctx, store.PutCertificateDetailsParams{Org: org, TenantID: "t",
		Details: []store.CertificateDetails{{AppObjectID: "o1", KeyID: "c1", Info: domain.CertificateInfo{ThumbprintSHA1: "AB", Subject: "CN=x"}}}}))
	require.NoError(t, s.PutApplicationSettings(ctx, store.ApplicationSettings{Org: org, ObjectID: "o1",
		Settings: domain.AppSettings{Lifetime: &lifetime}, UpdatedAt: t0}))
}

func count(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table string) int {
	t.Helper()
	var n int
	require.NoError(t, q.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n))
	return n
}

// TestRowLevelSecurity looks past the store, as the application role: a
// query without the org setting sees nothing of any table, and one under
// an org's setting never sees, writes or changes another's rows, even
// when it forgets its filter.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	s := open(t, db)
	defer s.Close()
	populate(t, s, "org-a")
	populate(t, s, "org-b")
	ctx := t.Context()
	app := db.ConnectApp(t)

	t.Run("NoSettingSeesNothing", func(t *testing.T) {
		for _, table := range orgTables {
			require.Zero(t, count(t, app, table), "%s without rotor.org", table)
		}
		var n int
		require.NoError(t, app.QueryRow(ctx, `SELECT count(*) FROM applications WHERE org_id IN ('org-a', 'org-b')`).Scan(&n))
		require.Zero(t, n, "not even by naming the orgs")
		require.NoError(t, app.QueryRow(ctx, `SELECT count(*) FROM leases`).Scan(&n), "leases hold no organization data")
	})

	t.Run("OneOrgSeesOnlyItsOwn", func(t *testing.T) {
		tx, err := app.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx)
		_, err = tx.Exec(ctx, `SELECT set_config('rotor.org', 'org-a', true)`)
		require.NoError(t, err)
		for _, table := range orgTables {
			col := "org_id"
			if table == "organizations" {
				col = "id"
			}
			var orgs []string
			require.NoError(t, tx.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT `+col+`), '{}') FROM `+table).Scan(&orgs))
			require.Equal(t, []string{"org-a"}, orgs, "%s under org-a", table)
		}
		// A query that forgets its filter.
		var names []string
		require.NoError(t, tx.QueryRow(ctx, `SELECT array_agg(display_name) FROM applications`).Scan(&names))
		require.Equal(t, []string{"app of org-a"}, names)
		// Another org's rows cannot be changed or deleted…
		for _, q := range []string{
			`UPDATE applications SET display_name = 'stolen' WHERE org_id = 'org-b'`,
			`UPDATE runs SET lease_holder = 'me'`,
			`DELETE FROM connections WHERE org_id = 'org-b'`,
		} {
			tag, err := tx.Exec(ctx, q)
			require.NoError(t, err, q)
			if strings.HasPrefix(q, "UPDATE runs") {
				require.EqualValues(t, 1, tag.RowsAffected(), "only org-a's run")
			} else {
				require.Zero(t, tag.RowsAffected(), q)
			}
		}
		// …nor can a row be written into another org, or moved there.
		_, err = tx.Exec(ctx, `SAVEPOINT s`)
		require.NoError(t, err)
		for _, q := range []string{
			`INSERT INTO connection_health (org_id, connection) VALUES ('org-b', 'x')`,
			`UPDATE policies SET org_id = 'org-b'`,
		} {
			_, err = tx.Exec(ctx, q)
			require.Error(t, err, q)
			require.Equal(t, "42501", pgCode(err), "%s: %v", q, err) // new row violates row-level security policy
			_, err = tx.Exec(ctx, `ROLLBACK TO SAVEPOINT s`)
			require.NoError(t, err)
		}
	})

	t.Run("TheSettingEndsWithTheTransaction", func(t *testing.T) {
		// What the store sets never outlives its transaction on a pooled
		// connection.
		_, err := s.ListApplications(ctx, store.ListApplicationsParams{Org: "org-a"})
		require.NoError(t, err)
		for range 4 {
			c, err := s.Pool().Acquire(ctx)
			require.NoError(t, err)
			var setting *string
			require.NoError(t, c.QueryRow(ctx, `SELECT nullif(current_setting('rotor.org', true), '')`).Scan(&setting))
			require.Nil(t, setting)
			require.Zero(t, count(t, c, "applications"))
			c.Release()
		}
	})

	t.Run("TheApplicationRoleCannotTurnItOff", func(t *testing.T) {
		_, err := app.Exec(ctx, `ALTER TABLE applications DISABLE ROW LEVEL SECURITY`)
		require.Error(t, err, "only the owner may")
		_, err = app.Exec(ctx, `SET row_security = off`)
		require.NoError(t, err)
		_, err = app.Exec(ctx, `SELECT count(*) FROM applications`)
		require.Error(t, err, "row_security = off makes a query that policies would filter fail, never pass")
		_, err = app.Exec(ctx, `RESET row_security`)
		require.NoError(t, err)
	})

	t.Run("EveryOrganizationTableHasAPolicy", func(t *testing.T) {
		// A table added later without row-level security fails here.
		rows, err := app.Query(ctx, `SELECT c.relname, c.relrowsecurity,
				EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
			FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
			ORDER BY c.relname`)
		require.NoError(t, err)
		var tables []string
		for rows.Next() {
			var name string
			var rls, policy bool
			require.NoError(t, rows.Scan(&name, &rls, &policy))
			tables = append(tables, name)
			if name == "leases" || name == "schema_migrations" {
				continue
			}
			require.True(t, rls && policy, "table %s has no row-level security policy", name)
		}
		require.NoError(t, rows.Err())
		want := append(slices.Clone(orgTables), "leases", "schema_migrations")
		slices.Sort(want)
		require.Equal(t, want, tables, "orgTables lists every organization table")
	})

	t.Run("OnlyTheOrgListCrossesOrgs", func(t *testing.T) {
		orgs, err := s.ListOrgs(ctx)
		require.NoError(t, err)
		require.Len(t, orgs, 2)
		require.Zero(t, count(t, app, "organizations"), "the table itself shows nothing")
	})
}

// TestOpenRefusesRolesThatBypassRowSecurity: the owner, a superuser and a
// BYPASSRLS role are each refused as the application role.
func TestOpenRefusesRolesThatBypassRowSecurity(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	open(t, db).Close()
	ctx := t.Context()

	_, err := Open(ctx, db.OwnerURL, WithPassword(db.OwnerPassword))
	require.ErrorContains(t, err, "owns")
	_, err = Open(ctx, db.AppURL, WithPassword(db.AppPassword), WithMigrations(db.AppURL, db.AppPassword))
	require.Error(t, err, "the application role cannot migrate: it may not create in the schema")

	admin := pgtest.Admin(t)
	su, err := pgx.ParseConfig(db.AdminURL)
	require.NoError(t, err)
	adminURL := db.AdminURL
	if !strings.Contains(adminURL, "search_path") {
		sep := "?"
		if strings.Contains(adminURL, "?") {
			sep = "&"
		}
		adminURL += sep + "search_path=" + db.Schema
	}
	_, err = Open(ctx, adminURL)
	require.ErrorContains(t, err, "superuser", "role %s", su.User)

	_, err = admin.Exec(ctx, `ALTER ROLE `+pgx.Identifier{db.AppRole}.Sanitize()+` BYPASSRLS`)
	require.NoError(t, err)
	_, err = Open(ctx, db.AppURL, WithPassword(db.AppPassword))
	require.ErrorContains(t, err, "BYPASSRLS")
	_, err = admin.Exec(ctx, `ALTER ROLE `+pgx.Identifier{db.AppRole}.Sanitize()+` NOBYPASSRLS`)
	require.NoError(t, err)

	// Row security switched off on one table (by its owner): refused too.
	owner := db.ConnectOwner(t)
	_, err = owner.Exec(ctx, `ALTER TABLE runs DISABLE ROW LEVEL SECURITY`)
	require.NoError(t, err)
	_, err = Open(ctx, db.AppURL, WithPassword(db.AppPassword))
	require.ErrorContains(t, err, "row-level security is not enabled on [runs]")

	_, err = owner.Exec(ctx, `ALTER TABLE runs ENABLE ROW LEVEL SECURITY`)
	require.NoError(t, err)
	s, err := Open(ctx, db.AppURL, WithPassword(db.AppPassword))
	require.NoError(t, err, "a migrated schema opens without the owner")
	require.NoError(t, s.Close())
}

func TestOpenWithoutMigrationsNeedsTheSchema(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	_, err := Open(t.Context(), db.AppURL, WithPassword(db.AppPassword))
	require.ErrorContains(t, err, "database.migrate_url")
}

func versions(t *testing.T, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) []int {
	t.Helper()
	rows, err := q.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return vs
}

// TestReplicasStartingAtOnceMigrateOnce opens many stores on one fresh
// schema at the same moment: the advisory lock lets one migrate, the
// others find the schema done.
func TestReplicasStartingAtOnceMigrateOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	const n = 8
	errs := make([]error, n)
	stores := make([]*Store, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), db.AppURL, WithPassword(db.AppPassword), WithMigrations(db.OwnerURL, db.OwnerPassword))
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "replica %d", i)
		defer stores[i].Close()
	}
	ms, err := loadMigrations(migrationFS)
	require.NoError(t, err)
	var want []int
	for _, m := range ms {
		want = append(want, m.version)
	}
	require.Equal(t, want, versions(t, db.ConnectOwner(t)))
	populate(t, stores[0], "org-a")
	orgs, err := stores[n-1].ListOrgs(t.Context())
	require.NoError(t, err)
	require.Len(t, orgs, 1)
}

func TestMigrationsAreIdempotentOnReopen(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	s := open(t, db)
	populate(t, s, "org-a")
	require.NoError(t, s.Close())
	before := versions(t, db.ConnectOwner(t))
	for range 2 {
		s = open(t, db)
		require.NoError(t, s.Close())
	}
	require.Equal(t, before, versions(t, db.ConnectOwner(t)))
	s = open(t, db)
	defer s.Close()
	run, err := s.GetRun(t.Context(), "org-a", "r1")
	require.NoError(t, err)
	require.Len(t, run.Events, 1, "the data survives")
}

func TestRefusesASchemaFromANewerRotor(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	open(t, db).Close()
	_, err := db.ConnectOwner(t).Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`)
	require.NoError(t, err)
	_, err = Open(t.Context(), db.AppURL, WithPassword(db.AppPassword), WithMigrations(db.OwnerURL, db.OwnerPassword))
	require.ErrorContains(t, err, "newer than this rotor")
	_, err = Open(t.Context(), db.AppURL, WithPassword(db.AppPassword))
	require.ErrorContains(t, err, "newer than this rotor", "checked without migrations too")
}

func TestFailedMigrationLeavesNoTrace(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	open(t, db).Close()
	owner := db.ConnectOwner(t)
	before := versions(t, owner)
	bad := fstest.MapFS{
		"migrations/0001_schema.sql": {Data: []byte("SELECT 1")}, // already applied, skipped
		"migrations/0099_bad.sql":    {Data: []byte("CREATE TABLE half (x integer); INSERT INTO nowhere VALUES (1);")},
	}
	_, err := Open(t.Context(), db.AppURL, WithPassword(db.AppPassword), WithMigrations(db.OwnerURL, db.OwnerPassword),
		func(c *config) { c.migrations = bad })
	require.ErrorContains(t, err, "0099_bad.sql")
	require.Equal(t, before, versions(t, owner))
	var n int
	require.NoError(t, owner.QueryRow(t.Context(), `SELECT count(*) FROM pg_class WHERE relname = 'half'`).Scan(&n))
	require.Zero(t, n, "the migration's transaction was rolled back")
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
		{"Duplicate", fstest.MapFS{
			"migrations/0001_a.sql": {Data: []byte("a")},
			"migrations/001_b.sql":  {Data: []byte("b")},
		}, nil, "share version 1"},
		{"None", fstest.MapFS{"migrations/README.md": {Data: []byte("x")}}, nil, "no migrations"},
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

// TestPasswordsNeverInErrors: neither a wrong password nor a URL that
// carries one (refused by rotor's configuration, but not by pgx) ever
// reaches an error message.
func TestPasswordsNeverInErrors(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-do-not-print-me"
	for _, u := range []string{
		"postgres://rotor:" + secret + "@127.0.0.1:notaport/rotor",
		"postgres://rotor:" + secret + "@[::1/rotor",
		"host=127.0.0.1 port=x password=" + secret,
	} {
		_, err := Open(t.Context(), u)
		require.Error(t, err)
		require.NotContains(t, err.Error(), secret, "%q", u)
	}
	db := pgtest.New(t)
	open(t, db).Close()
	_, err := Open(t.Context(), db.AppURL, WithPassword(secret))
	require.Error(t, err, "a wrong password is refused")
	require.NotContains(t, err.Error(), secret)
	_, err = Open(t.Context(), db.AppURL, WithPassword(db.AppPassword), WithMigrations(db.OwnerURL, secret))
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)
}

// TestRunSequenceUnderConcurrentCreates: processes creating and finishing
// runs of one application at once never give two runs one number.
func TestRunSequenceUnderConcurrentCreates(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	s := open(t, db)
	defer s.Close()
	ctx := t.Context()
	require.NoError(t, s.EnsureOrg(ctx, "org-a", "A"))
	const workers, each = 4, 10
	var mu sync.Mutex
	var seqs []int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < each; {
				r := &domain.Run{Org: "org-a", ID: fmt.Sprintf("w%d-%d", w, i), TenantID: "t", AppObjectID: "o"}
				err := s.CreateRun(ctx, r)
				if err != nil {
					if !errors.Is(err, store.ErrConflict) {
						errs <- err
						return
					}
					continue // another worker's run is active: try again
				}
				if err := s.TransitionRun(ctx, store.TransitionRunParams{Org: "org-a", RunID: r.ID,
					From: []domain.RunState{domain.RunPlanned}, To: domain.RunDone}); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				seqs = append(seqs, r.Seq)
				mu.Unlock()
				i++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	slices.Sort(seqs)
	want := make([]int64, workers*each)
	for i := range want {
		want[i] = int64(i + 1)
	}
	require.Equal(t, want, seqs)
}

// TestLeaseExpiryIsTheDatabasesClock: a store whose clock is a day ahead
// (the demo's offset clock, a host whose clock is wrong) neither expires
// another process's live lease nor keeps a dead one alive, and returns
// expiries in its own clock.
func TestLeaseExpiryIsTheDatabasesClock(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ahead := offsetClock(24 * time.Hour)
	s := open(t, db, WithClock(ahead))
	defer s.Close()
	ctx := t.Context()
	require.NoError(t, s.EnsureOrg(ctx, "org-a", "A"))
	exp, err := s.RenewLease(ctx, store.RenewLeaseParams{Holder: "p1", Description: "p1", TTL: time.Minute})
	require.NoError(t, err)
	require.WithinDuration(t, ahead.Now().Add(time.Minute), exp, 5*time.Second, "the expiry is in the caller's clock")
	require.NoError(t, s.CreateRun(ctx, &domain.Run{Org: "org-a", ID: "r1", TenantID: "t", AppObjectID: "o", Holder: "p1"}))

	orphans, err := s.ListRuns(ctx, store.ListRunsParams{Org: "org-a", Orphaned: true})
	require.NoError(t, err)
	require.Empty(t, orphans, "p1's lease is live by the database's clock")
	_, err = s.ClaimRun(ctx, store.ClaimRunParams{Org: "org-a", RunID: "r1", Holder: "p2", TTL: time.Minute})
	require.ErrorIs(t, err, store.ErrLeaseHeld)

	// p1's lease ran out (by the database's clock) a second ago.
	_, err = db.ConnectOwner(t).Exec(ctx, `UPDATE leases SET expires_at = now() - interval '1 second' WHERE holder = 'p1'`)
	require.NoError(t, err)
	orphans, err = s.ListRuns(ctx, store.ListRunsParams{Org: "org-a", Orphaned: true})
	require.NoError(t, err)
	require.Len(t, orphans, 1)
	prev, err := s.ClaimRun(ctx, store.ClaimRunParams{Org: "org-a", RunID: "r1", Holder: "p2", TTL: time.Minute})
	require.NoError(t, err)
	require.Equal(t, "p1", prev)
	var dbExp time.Time
	require.NoError(t, db.ConnectOwner(t).QueryRow(ctx, `SELECT expires_at FROM leases WHERE holder = 'p2'`).Scan(&dbExp))
	require.WithinDuration(t, time.Now().Add(time.Minute), dbExp, 5*time.Second, "stored in the database's clock")
}

type offsetClock time.Duration

func (o offsetClock) Now() time.Time { return time.Now().Add(time.Duration(o)) }

// TestOverlappingSyncsAtOnce: processes syncing one connection's tenant at
// the same moment, with pages in any order and FinishSync between them,
// neither deadlock nor fail (a transaction that loses a race PostgreSQL
// detects is retried), and the application every sync saw survives.
func TestOverlappingSyncsAtOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	s := open(t, db)
	defer s.Close()
	ctx := t.Context()
	require.NoError(t, s.EnsureOrg(ctx, "org-a", "A"))
	apps := make([]domain.Application, 40)
	for i := range apps {
		apps[i] = domain.Application{TenantID: "t", ObjectID: fmt.Sprintf("o%03d", i), DisplayName: fmt.Sprintf("app-%03d", i),
			Credentials: []domain.Credential{{KeyID: "k", Kind: domain.KindSecret, End: t0.Add(time.Duration(i) * time.Hour)}}}
	}
	const workers, rounds = 4, 6
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				page := slices.Clone(apps[w%2*5:]) // app 39 is in every page
				if (w+r)%2 == 1 {
					slices.Reverse(page)
				}
				for i := range page {
					page[i].DisplayName = fmt.Sprintf("app-%03d-w%d-r%d", i, w, r) // every sync rewrites content
				}
				at := t0.Add(time.Duration(r*workers+w) * time.Second)
				if _, err := s.SyncApplications(ctx, store.SyncApplicationsParams{Org: "org-a", Connection: "c", SyncStarted: at, Applications: page}); err != nil {
					errs <- err
					return
				}
				if _, err := s.FinishSync(ctx, store.FinishSyncParams{Org: "org-a", Connection: "c", SyncStarted: at}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := s.GetApplication(ctx, "org-a", "o039")
	require.NoError(t, err)
	require.Len(t, got.Credentials, 1)
}

func TestPrefixSuccessor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prefix, want string
		ok           bool
	}{
		{"pay", "paz", true},
		{"a", "b", true},
		{"é", "ê", true},
		{"¿", "À", true}, // U+00BF → U+00C0: the last byte would wrap
		{"x\uD7FF", "x\uE000", true},
		{"x\U0010FFFF", "y", true},
		{"\U0010FFFF", "", false},
	} {
		got, ok := prefixSuccessor(tc.prefix)
		require.Equal(t, tc.ok, ok, "%q", tc.prefix)
		require.Equal(t, tc.want, got, "%q", tc.prefix)
	}
}

// TestReplicasProvisionAtOnce: replicas starting together provision the
// same new file into one organization; each succeeds, and the set is
// written once.
func TestReplicasProvisionAtOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	s := open(t, db)
	defer s.Close()
	conn := store.Connection{Name: "c", TenantID: "t", Cloud: "public", Purpose: "rotation",
		Identity: store.ConnectionIdentity{Method: "client_secret", ClientID: "id", ClientSecret: &store.SecretRef{Kind: store.SecretEnv, Env: "S"}}}
	pol := domain.Policy{Name: "p", Connection: "c", Selector: domain.Selector{AllOwned: true}, Enabled: true, Kind: domain.KindSecret,
		Lifetime: 90 * 24 * time.Hour, RenewBefore: 30 * 24 * time.Hour, Overlap: 24 * time.Hour, Verify: true}
	// The organization exists (an earlier version of the file provisioned
	// it): creating it is no lock then.
	require.NoError(t, s.EnsureOrg(t.Context(), "org-new", "New"))
	const n = 6
	results := make([]store.ProvisionResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = s.Provision(t.Context(), store.ProvisionParams{Org: "org-new", Source: "/etc/rotor/rotor.yaml",
				Connections: []store.Connection{conn}, Policies: []domain.Policy{pol}})
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		require.NoError(t, errs[i], "replica %d", i)
		created += len(results[i].ConnectionsCreated)
	}
	require.Equal(t, 1, created, "one replica created the connection, the others found it")
}

// TestMigrationsAlsoMigrateRiverAndGrantIt: what WithMigrations' also
// creates (River's tables) runs under the lock and is granted to the
// application role, which still may not write the schema version.
func TestMigrationsAlsoMigrateRiverAndGrantIt(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := t.Context()
	calls := 0
	also := func(ctx context.Context, owner *pgxpool.Pool) error {
		calls++
		_, err := owner.Exec(ctx, `CREATE TABLE IF NOT EXISTS river_like (id bigserial PRIMARY KEY, v text NOT NULL)`)
		return err
	}
	for range 2 {
		s, err := Open(ctx, db.AppURL, WithPassword(db.AppPassword), WithMigrations(db.OwnerURL, db.OwnerPassword, also))
		require.NoError(t, err)
		require.NoError(t, s.Close())
	}
	require.Equal(t, 2, calls, "run at every migration pass: it is the other schema's to be idempotent")
	app := db.ConnectApp(t)
	_, err := app.Exec(ctx, `INSERT INTO river_like (v) VALUES ('job')`)
	require.NoError(t, err, "the application role writes River's tables and sequences")
	_, err = app.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (99, 'x')`)
	require.Equal(t, "42501", pgCode(err), "but not the schema version: %v", err)
}

// TestMigrationURLMustReachTheSameSchema: migrating one schema and
// running in another is refused.
func TestMigrationURLMustReachTheSameSchema(t *testing.T) {
	t.Parallel()
	a, b := pgtest.New(t), pgtest.New(t)
	_, err := Open(t.Context(), a.AppURL, WithPassword(a.AppPassword), WithMigrations(b.OwnerURL, b.OwnerPassword))
	require.ErrorContains(t, err, "both must name the same database and search_path")
}

// BenchmarkStoreOps100k is the store operation latency at 100,000
// applications (storetest.Bench; the same benchmark runs on SQLite). The
// store runs as the application role, under row-level security.
//
//	go test -run '^$' -bench BenchmarkStoreOps100k -count=3 ./internal/store/sqlite/ ./internal/store/postgres/
func BenchmarkStoreOps100k(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return open(b, pgtest.New(b)) })
}
