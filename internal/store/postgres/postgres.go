// Package postgres is rotor's Store on PostgreSQL (pgx v5), for several
// rotor processes sharing one database: the same interface, and the same
// conformance suite (storetest), as the SQLite store.
//
// Two roles. The owner role runs the migrations (embedded numbered SQL,
// recorded in schema_migrations, under an advisory lock so replicas that
// start at once migrate once) and owns the tables; after every migration
// run it grants the application role what the store needs. The
// application role is what the store connects as for everything else: it
// must not be a superuser, have BYPASSRLS, or own (or be able to become
// the owner of) the tables, and Open refuses one that could, because
// row-level security is the second wall between organizations.
//
// Row-level security. Every organization's table has a policy keyed on
// the setting rotor.org, which the store sets at the start of each
// transaction (set_config(..., true): it ends with the transaction). A
// query that forgets its org filter still sees only its organization's
// rows; one run without the setting sees none. The one read across
// organizations, ListOrgs, goes through a SECURITY DEFINER function that
// returns ids, names and creation times only. Leases hold no organization
// data and have no policy.
//
// Times are timestamptz, kept to the microsecond: the store truncates
// what it writes (never rounds), so a time comes back as the caller's
// truncated to a microsecond. Lease expiry is judged by the database's
// clock, so replicas whose clocks disagree still agree on who holds a run
// (ADR 16); every other time is the caller's, or the injected clock's.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-dev/rotor/internal/clock"
	"github.com/rotor-dev/rotor/internal/domain"
	"github.com/rotor-dev/rotor/internal/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store on PostgreSQL.
type Store struct {
	pool  *pgxpool.Pool
	clock clock.Clock
}

type config struct {
	clock           clock.Clock
	password        string
	migrateURL      string
	migratePassword string
	migrations      fs.FS
	also            []MigrateFunc
	report          func(version int, name string)
}

// MigrateFunc migrates another schema beside rotor's (River's), as the
// owner role, while Open holds the migration lock.
type MigrateFunc func(ctx context.Context, owner *pgxpool.Pool) error

// Option changes how Open sets up the store.
type Option func(*config)

// WithClock sets the clock that stamps rows whose time the caller left
// zero (organization creation, a run's CreatedAt, an event's At) and that
// measures the lease expiries the store returns. Lease expiry itself is
// judged by the database's clock. The default is the wall clock.
func WithClock(c clock.Clock) Option { return func(cfg *config) { cfg.clock = c } }

// WithPassword sets the application role's password, resolved from a
// secret reference by the caller, so that it never has to sit in the URL
// (where an error or a log line could repeat it). It replaces any
// password the URL or the environment (PGPASSWORD, .pgpass) gives.
func WithPassword(p string) Option { return func(cfg *config) { cfg.password = p } }

// WithMigrations makes Open first bring rotor's schema up to date as the
// owner role that url names (password, when not empty, as WithPassword),
// run also (River's migrations) under the same lock, then grant the
// application role what it needs. url must reach the same database and
// schema as Open's. Without it Open only checks that the schema is up to
// date.
func WithMigrations(url, password string, also ...MigrateFunc) Option {
	return func(cfg *config) { cfg.migrateURL, cfg.migratePassword, cfg.also = url, password, also }
}

// WithMigrationReport makes Open tell fn each of rotor's migrations it
// applied (with WithMigrations; none when the schema was up to date, or
// another process migrated it first).
func WithMigrationReport(fn func(version int, name string)) Option {
	return func(cfg *config) { cfg.report = fn }
}

// Open connects to PostgreSQL as the application role that url names (a
// postgres:// URL or key=value string as pgx takes them: sslmode and the
// other TLS settings, pool_max_conns, search_path for the schema), runs the
// migrations first when WithMigrations is given, and checks that the
// schema is the one this rotor knows and that the role cannot bypass
// row-level security.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg := config{clock: clock.Real{}, migrations: migrationFS}
	for _, o := range opts {
		o(&cfg)
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: database URL: %w", redactParseError(err))
	}
	if cfg.password != "" {
		pc.ConnConfig.Password = cfg.password
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "rotor"
	}
	var migrated *place
	if cfg.migrateURL != "" {
		mc, err := pgx.ParseConfig(cfg.migrateURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres store: migration URL: %w", redactParseError(err))
		}
		if cfg.migratePassword != "" {
			mc.Password = cfg.migratePassword
		}
		if _, ok := mc.RuntimeParams["application_name"]; !ok {
			mc.RuntimeParams["application_name"] = "rotor migrate"
		}
		if migrated, err = migrate(ctx, mc, cfg.migrations, pc.ConnConfig.User, cfg.also, cfg.report); err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s := &Store{pool: pool, clock: cfg.clock}
	if err := s.check(ctx, cfg.migrations, migrated); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return s, nil
}

// place is a database and a schema in it.
type place struct{ database, schema string }

// redactParseError keeps pgx's reason for refusing a connection string
// without repeating the string, which may hold a password (pgx redacts
// best effort, and url.Parse's errors quote the whole URL).
func redactParseError(err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return err
	}
	inner := pe.Unwrap()
	var ue *url.Error
	if errors.As(inner, &ue) {
		inner = ue.Err
	}
	if inner == nil {
		return errors.New("cannot be parsed")
	}
	return fmt.Errorf("cannot be parsed: %s", inner)
}

// check verifies what Open promises: the schema is this rotor's, the role
// cannot bypass row-level security, and every organization table has it
// enabled.
func (s *Store) check(ctx context.Context, migrations fs.FS, migrated *place) error {
	ms, err := loadMigrations(migrations)
	if err != nil {
		return err
	}
	var role, database, schema string
	var super, bypass bool
	if err := s.pool.QueryRow(ctx, `SELECT current_user, current_database(), coalesce(current_schema(), ''), r.rolsuper, r.rolbypassrls
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&role, &database, &schema, &super, &bypass); err != nil {
		return fmt.Errorf("read the connection's role: %w", err)
	}
	if migrated != nil && (migrated.database != database || migrated.schema != schema) {
		return fmt.Errorf("the migration URL reaches schema %s of database %s, the database URL schema %q of database %s: both must name the same database and search_path",
			migrated.schema, migrated.database, schema, database)
	}
	if schema == "" {
		return fmt.Errorf("no schema of the search_path exists, or role %s may not use it: fix search_path in the database URL, or open once with the owner role's URL for migrations (database.migrate_url), which grants the application role its use", role)
	}
	var version *int64
	err = s.pool.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&version)
	if pgCode(err) == "42P01" { // undefined_table
		return fmt.Errorf("schema %s holds no rotor tables: open once with the owner role's URL for migrations (database.migrate_url)", schema)
	}
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	want := int64(ms[len(ms)-1].version)
	switch {
	case version == nil || *version < want:
		have := int64(0)
		if version != nil {
			have = *version
		}
		return fmt.Errorf("schema %s is at version %d, this rotor needs %d: open once with the owner role's URL for migrations (database.migrate_url)", schema, have, want)
	case *version > want:
		return fmt.Errorf("database schema version %d is newer than this rotor knows (%d): upgrade rotor", *version, want)
	}
	switch {
	case super:
		return fmt.Errorf("role %s is a superuser, which row-level security does not bind: connect as a role that is not (and run migrations as the owner with database.migrate_url)", role)
	case bypass:
		return fmt.Errorf("role %s has BYPASSRLS: connect as a role without it", role)
	}
	var owned []string
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}') FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
		AND pg_has_role(current_user, c.relowner, 'MEMBER')`).Scan(&owned); err != nil {
		return fmt.Errorf("check table owners: %w", err)
	}
	if len(owned) > 0 {
		return fmt.Errorf("role %s owns (or may become the owner of) rotor's tables (%s), and an owner is not bound by row-level security: connect as the application role, and give the owner's URL as database.migrate_url", role, owned[0])
	}
	var open []string
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(t ORDER BY t), '{}') FROM unnest($1::text[]) t
		WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
			AND c.relname = t AND c.relrowsecurity)`, orgTables).Scan(&open); err != nil {
		return fmt.Errorf("check row-level security: %w", err)
	}
	if len(open) > 0 {
		return fmt.Errorf("row-level security is not enabled on %v in schema %s: rotor will not run without it", open, schema)
	}
	return nil
}

// orgTables are the tables that hold organizations' rows, each under a
// row-level security policy on rotor.org.
var orgTables = []string{
	"organizations", "applications", "credentials", "app_access", "runs", "run_events",
	"sink_targets", "connections", "policies", "connection_health", "inventory_syncs",
	"audit_events", "audit_heads",
	"api_keys",
	"sessions", "local_admins",
	"application_settings",
	"sink_deliveries",
	"certificate_details",
}

// Pool returns the store's connection pool, as the application role: for
// River's PostgreSQL driver (riverpgxv5) and for tests. Do not change its
// settings; closing the store closes it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// inOrg runs fn in a read-write transaction that sees (and may write) only
// org's rows, committing when fn returns nil. A transaction that lost a
// race PostgreSQL detects (a deadlock, a serialization failure) is retried
// whole, a few times: fn must not keep state between attempts.
func (s *Store) inOrg(ctx context.Context, org domain.OrgID, fn func(pgx.Tx) error) error {
	return s.tx(ctx, org, pgx.TxOptions{}, fn)
}

// readOrg is inOrg for reads: one REPEATABLE READ snapshot, read only.
func (s *Store) readOrg(ctx context.Context, org domain.OrgID, fn func(pgx.Tx) error) error {
	return s.tx(ctx, org, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// tx runs fn in a transaction with rotor.org set to org ("" leaves it
// unset: only the leases table is visible then).
func (s *Store) tx(ctx context.Context, org domain.OrgID, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	const attempts = 5
	for i := 0; ; i++ {
		err := pgx.BeginTxFunc(ctx, s.pool, opts, func(tx pgx.Tx) error {
			if org != "" {
				if _, err := tx.Exec(ctx, `SELECT set_config('rotor.org', $1, true)`, string(org)); err != nil {
					return err
				}
			}
			return fn(tx)
		})
		if err == nil || i == attempts-1 || !retryable(err) || ctx.Err() != nil {
			return err
		}
		d := time.Duration(1+rand.N(10*(i+1))) * time.Millisecond
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return err
		}
	}
}

// Classes of the advisory transaction locks the store takes
// (pg_advisory_xact_lock(class, hashtext(key))); each ends with its
// transaction.
const (
	// lockAppSeq is taken per application by CreateRun, so that two
	// processes creating runs of one application read and write its
	// sequence one after the other.
	lockAppSeq int32 = 0x726f7472 // "rotr"
	// lockInventory is taken per organization by every write of the
	// inventory (a sync page, FinishSync, RemoveApplications,
	// ReconcileManageable's changes, SaveSyncState, SetCredentials,
	// deleting a connection). Overlapping syncs by two processes would otherwise lock
	// applications and their access rows in opposite orders (a page locks
	// applications, then their views; FinishSync views, then
	// applications) and deadlock. SQLite has one writer; this is the
	// same, for the inventory of one organization only.
	lockInventory int32 = 0x726f7469 // "roti"
	// lockCatalog is taken per organization by every write of its
	// connections and policies: replicas starting at once provision the
	// same file, and the second must see the first's rows rather than
	// collide with them. Taken before lockInventory when both are.
	lockCatalog int32 = 0x726f7463 // "rotc"
	// lockAudit is taken per organization by AppendAudit: the head is
	// read, the record numbered and chained, inserted and the head moved
	// by one process at a time, so replicas appending at once extend one
	// chain. (SELECT … FOR UPDATE on the head row would not cover an
	// organization's first record, which has no head row yet.)
	lockAudit int32 = 0x726f7461 // "rota"
)

// lock takes the advisory transaction lock of class for key.
func lock(ctx context.Context, tx pgx.Tx, class int32, key string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, class, key)
	return err
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

func isUniqueViolation(err error) bool { return pgCode(err) == "23505" }

// isOrgMissing reports a foreign key violation on a row's organization:
// the org does not exist (EnsureOrg was not called).
func isOrgMissing(err error) bool {
	if pgCode(err) != "23503" {
		return false
	}
	switch constraint(err) {
	case "applications_org_fk", "runs_org_fk", "sink_targets_org_fk", "connections_org_fk",
		"policies_org_fk", "connection_health_org_fk", "inventory_syncs_org_fk",
		"audit_events_org_fk", "audit_heads_org_fk", "api_keys_org_fk",
		"sessions_org_fk", "local_admins_org_fk", "application_settings_org_fk",
		"sink_deliveries_org_fk", "certificate_details_app_fk":
		return true
	}
	return false
}

// retryable reports a transaction that lost a race PostgreSQL detects and
// may simply run again: a deadlock or a serialization failure. (Writes
// that could race in other ways take an advisory lock instead.)
func retryable(err error) bool {
	switch pgCode(err) {
	case "40001", "40P01":
		return true
	}
	return false
}

// tz is t as stored: NULL for the zero time, else the UTC instant
// truncated to the microsecond (pgx would truncate too; doing it here
// makes the rule visible). t must have passed codec.CheckTime.
func tz(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t.UTC().Truncate(time.Microsecond), Valid: true}
}

// fromTZ is a stored time in UTC; NULL is the zero time.
func fromTZ(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}
