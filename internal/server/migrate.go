package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-dev/rotor/internal/config"
	"github.com/rotor-dev/rotor/internal/jobs"
	"github.com/rotor-dev/rotor/internal/sink"
	"github.com/rotor-dev/rotor/internal/store/postgres"
	"github.com/rotor-dev/rotor/internal/store/sqlite"
)

// MigrationRow is one schema migration of the configured database: one of
// rotor's, or River's schema version (Schema "river", Version its newest).
type MigrationRow struct {
	Schema    string     `json:"schema"` // "rotor" or "river"
	Version   int        `json:"version"`
	Name      string     `json:"name"`
	State     string     `json:"state"` // "applied" or "pending"
	AppliedAt *time.Time `json:"applied_at,omitempty"`
}

// MigrationReport is what MigrationStatus reads or Migrate did.
type MigrationReport struct {
	Driver string         `json:"driver"` // "sqlite" or "postgres"
	Rows   []MigrationRow `json:"migrations"`
}

func loadDatabase(configPath string, opts Options) (config.Database, error) {
	cfg, err := config.Load(configPath, config.LoadOptions{Sinks: sink.NewRegistry(sinkKinds()...), Getenv: opts.Getenv})
	if err != nil {
		return config.Database{}, err
	}
	return cfg.Database, nil
}

// MigrationStatus lists, for the database the configuration names, each
// of rotor's migrations as applied or pending, and River's schema version.
// It migrates nothing, and does not create a missing SQLite file.
func MigrationStatus(ctx context.Context, configPath string, opts Options) (*MigrationReport, error) {
	db, err := loadDatabase(configPath, opts)
	if err != nil {
		return nil, err
	}
	rep := &MigrationReport{Driver: db.Driver}
	var ms []postgres.Migration
	riverHave, riverLatest := 0, 0
	if db.Driver == "postgres" {
		url, password := db.URL, ""
		if db.Password != nil {
			password = db.Password.Value().Reveal()
		}
		if db.MigrateURL != "" {
			url, password = db.MigrateURL, ""
			if db.MigratePassword != nil {
				password = db.MigratePassword.Value().Reveal()
			}
		}
		if ms, err = postgres.MigrationStatus(ctx, url, password); err != nil {
			return nil, fmt.Errorf("database.url: %w", err)
		}
		if riverHave, riverLatest, err = postgresRiverVersions(ctx, url, password); err != nil {
			return nil, fmt.Errorf("database.url: %w", err)
		}
	} else {
		sm, err := sqlite.MigrationStatus(ctx, db.Path)
		if err != nil {
			return nil, err
		}
		for _, m := range sm {
			ms = append(ms, postgres.Migration(m))
		}
		if _, err := os.Stat(db.Path); err == nil {
			rdb, err := sqlite.OpenReadOnly(ctx, db.Path)
			if err != nil {
				return nil, err
			}
			riverHave, riverLatest, err = jobs.SQLite(rdb).Versions(ctx)
			_ = rdb.Close()
			if err != nil {
				return nil, err
			}
		} else {
			riverLatest = jobs.RiverLatest()
		}
	}
	for _, m := range ms {
		row := MigrationRow{Schema: "rotor", Version: m.Version, Name: m.Name, State: "pending"}
		if m.Applied {
			row.State = "applied"
			if !m.AppliedAt.IsZero() {
				at := m.AppliedAt
				row.AppliedAt = &at
			}
		}
		rep.Rows = append(rep.Rows, row)
	}
	river := MigrationRow{Schema: "river", Version: riverHave, Name: "river schema version " + strconv.Itoa(riverHave) + " of " + strconv.Itoa(riverLatest), State: "applied"}
	if riverHave < riverLatest {
		river.State = "pending"
	}
	rep.Rows = append(rep.Rows, river)
	return rep, nil
}

func postgresRiverVersions(ctx context.Context, url, password string) (int, int, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return 0, 0, fmt.Errorf("database URL cannot be parsed")
	}
	if password != "" {
		pc.ConnConfig.Password = password
	}
	pc.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return 0, 0, err
	}
	defer pool.Close()
	return jobs.Postgres(pool).Versions(ctx)
}

// Migrate brings the configured database up to date, rotor's schema and
// River's, exactly as opening rotor does (under the same locks, so
// replicas starting at once are safe), and reports what it applied:
// nothing on an up-to-date database.
func Migrate(ctx context.Context, configPath string, opts Options) (*MigrationReport, error) {
	db, err := loadDatabase(configPath, opts)
	if err != nil {
		return nil, err
	}
	rep := &MigrationReport{Driver: db.Driver, Rows: []MigrationRow{}}
	now := time.Now()
	report := func(version int, name string) {
		rep.Rows = append(rep.Rows, MigrationRow{Schema: "rotor", Version: version, Name: name, State: "applied", AppliedAt: &now})
	}
	var river []int
	log := opts.Logger
	if db.Driver == "postgres" {
		if db.MigrateURL == "" {
			return nil, fmt.Errorf("database.migrate_url is not set: migrating PostgreSQL needs the owner role's URL (docs/configuration.md)")
		}
		popts := []postgres.Option{postgres.WithMigrationReport(report),
			postgres.WithMigrations(db.MigrateURL, db.MigratePassword.Value().Reveal(),
				func(ctx context.Context, owner *pgxpool.Pool) error {
					river, err = jobs.Postgres(owner).Migrate(ctx, log)
					return err
				})}
		if db.Password != nil {
			popts = append(popts, postgres.WithPassword(db.Password.Value().Reveal()))
		}
		st, err := postgres.Open(ctx, db.URL, popts...)
		if err != nil {
			return nil, fmt.Errorf("database.url: %w", err)
		}
		_ = st.Close()
	} else {
		if err := os.MkdirAll(filepath.Dir(db.Path), 0o700); err != nil {
			return nil, fmt.Errorf("create the database's directory: %w", err)
		}
		st, err := sqlite.Open(ctx, db.Path, sqlite.WithMigrationReport(report))
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", db.Path, err)
		}
		err = st.WithMigrationLock(func() error {
			var err error
			river, err = jobs.SQLite(st.DB()).Migrate(ctx, log)
			return err
		})
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	for _, v := range river {
		rep.Rows = append(rep.Rows, MigrationRow{Schema: "river", Version: v, Name: "river schema version " + strconv.Itoa(v), State: "applied", AppliedAt: &now})
	}
	return rep, nil
}
