package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rotor-dev/rotor/internal/audit"
	"github.com/rotor-dev/rotor/internal/azure"
	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/domain"
	rsecret "github.com/rotor-dev/rotor/internal/secret"
	"github.com/rotor-dev/rotor/internal/sim"
	"github.com/rotor-dev/rotor/internal/sim/simtest"
	"github.com/rotor-dev/rotor/internal/simfile"
	"github.com/rotor-dev/rotor/internal/store"
	"github.com/rotor-dev/rotor/internal/store/postgres"
	"github.com/rotor-dev/rotor/internal/store/postgres/pgtest"
)

// TestRotationOnPostgres: rotor.yaml's database.url names PostgreSQL (the
// application role, its password by {env: …} reference) and migrate_url
// its owner. Three replicas start at once and each migrates, provisions
// and opens River on PostgreSQL; one syncs and rotates an application
// through the Key Vault sink, whose retirement River schedules in
// PostgreSQL; another runs its jobs there; the consumer reads a secret
// Entra accepts.
func TestRotationOnPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st := simtest.Start(t, simtest.Options{Seed: "apps=3,tenants=1,expiring=1h,replication=0s"})
	info := st.Info
	tn := info.Tenants[0]

	yaml, err := config.SimulatorYAML(info, config.SimulatorConfig{
		SimFile: filepath.Join(filepath.Dir(info.CAFile), simfile.FileName), DataDir: filepath.Join(dir, "data"), LogLevel: "warn",
		Secret:   func(simfile.Tenant) string { return "{env: ROTATION_SECRET}" },
		Policies: []config.SimulatorPolicy{{Name: "all", Lifetime: "30d", RenewBefore: "10d", Overlap: "1h"}},
		Database: pgDatabase(db),
	})
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "rotor.yaml")
	require.NoError(t, os.WriteFile(cfgPath, yaml, 0o600))
	env := envMap{"ROTATION_SECRET": tn.Rotation.ClientSecret, "ROTOR_DB_PASSWORD": db.AppPassword, "ROTOR_DB_OWNER_PASSWORD": db.OwnerPassword}
	opts := Options{Logger: slog.New(slog.DiscardHandler), Getenv: env.get}

	const replicas = 3
	srvs := make([]*Server, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { srvs[i], errs[i] = Open(ctx, cfgPath, opts) })
	}
	wg.Wait()
	for i := range replicas {
		require.NoError(t, errs[i], "replica %d", i)
		defer srvs[i].Close()
	}
	srv := srvs[0]
	_, onPostgres := srv.Store().(*postgres.Store)
	require.True(t, onPostgres)
	for _, s := range srvs {
		require.NoError(t, s.openJobs(ctx, 0), "River on PostgreSQL, as the application role")
	}
	require.NoError(t, srv.Sync(ctx, nil))
	org := srv.Config().Organization

	apps, err := srvs[1].Store().ListApplications(ctx, store.ListApplicationsParams{Org: org, ManageableOnly: true})
	require.NoError(t, err)
	require.NotEmpty(t, apps, "every replica reads what one synced")
	var app *domain.Application
	var pol *domain.Policy
	for i := range apps {
		if p := srv.PolicyFor(apps[i]); p != nil && p.Enabled && len(p.Sinks) > 0 {
			app, pol = &apps[i], p
			break
		}
	}
	require.NotNil(t, app)
	run, err := srv.Engine().Rotate(ctx, org, *app, *pol, domain.TriggerManual)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, run.State)

	got, err := srvs[2].Store().GetRun(ctx, org, run.ID)
	require.NoError(t, err)
	require.Equal(t, domain.RunRetiring, got.State, "another replica reads the journal")
	// Each of the run's steps is in the audit trail in PostgreSQL, which
	// another replica finds intact.
	steps, err := srvs[2].Store().ListAudit(ctx, store.ListAuditParams{Org: org, Run: run.ID})
	require.NoError(t, err)
	require.Len(t, steps, len(got.Events))
	trail, err := audit.Verify(ctx, org, store.AuditSource(srvs[2].Store(), org), audit.VerifyOptions{})
	require.NoError(t, err)
	require.True(t, trail.Intact, "%+v", trail.Problem)
	var retires int
	require.NoError(t, db.ConnectApp(t).QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'retire' AND state = 'scheduled'`).Scan(&retires))
	require.Equal(t, 1, retires, "the retirement is a River job in PostgreSQL")

	st.GrantSecrets(t, tn.ID, tn.KeyVaults[0].Name, tn.Consumer.PrincipalID, sim.AllSecretPermissions...)
	kv := st.SecretsClient(t, tn.KeyVaults[0].URL, st.ConsumerCredential(t, tn.ID))
	secret, err := kv.GetSecret(ctx, sinkSecretName(t, srv, org, run.ID), "", nil)
	require.NoError(t, err)
	// River works on PostgreSQL as the application role: a replica's
	// jobs start, and the sync it enqueues at start completes.
	require.NoError(t, srvs[1].jobs.Start(ctx))
	app2 := db.ConnectApp(t)
	require.Eventually(t, func() bool {
		var n int
		return app2.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'sync' AND state = 'completed'`).Scan(&n) == nil && n > 0
	}, 30*time.Second, 50*time.Millisecond)
	stopCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	require.NoError(t, srvs[1].jobs.Stop(stopCtx))

	graph := srv.conns.byKey[connKey{app.Org, pol.Connection}]
	require.NoError(t, azure.VerifySecret(ctx, graph.ep, tn.ID, app.AppID, rsecret.New(*secret.Value)),
		"the consumer's secret is one Entra accepts")
}

// pgDatabase is the database block of rotor.yaml for db, the passwords by
// reference to ROTOR_DB_PASSWORD and ROTOR_DB_OWNER_PASSWORD.
func pgDatabase(db *pgtest.DB) *config.SimulatorDatabase {
	return &config.SimulatorDatabase{URL: db.AppURL, Password: "{env: ROTOR_DB_PASSWORD}", MigrateURL: db.OwnerURL, MigratePassword: "{env: ROTOR_DB_OWNER_PASSWORD}"}
}

// TestOpenRefusesAnOwnerAsTheApplicationRole: a database.url naming the
// role that owns the tables would run without row-level security, so
// rotor stops, saying why; one without migrate_url on an empty schema
// says how to migrate.
func TestOpenRefusesAnOwnerAsTheApplicationRole(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	s, err := postgres.Open(t.Context(), db.AppURL, postgres.WithPassword(db.AppPassword), postgres.WithMigrations(db.OwnerURL, db.OwnerPassword))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	fresh := pgtest.New(t)
	for name, tc := range map[string]struct {
		database, want string
	}{
		"Owner":       {fmt.Sprintf("database: {url: %q, password: {env: PW}}\n", db.OwnerURL), "owns"},
		"NotMigrated": {fmt.Sprintf("database: {url: %q, password: {env: APP_PW}}\n", fresh.AppURL), "database.migrate_url"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "rotor.yaml")
			require.NoError(t, os.WriteFile(path, []byte("data_dir: ./data\n"+tc.database), 0o600))
			_, err := Open(t.Context(), path, Options{Logger: slog.New(slog.DiscardHandler),
				Getenv: envMap{"PW": db.OwnerPassword, "APP_PW": fresh.AppPassword}.get})
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), db.OwnerPassword)
		})
	}
}
