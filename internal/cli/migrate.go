package cli

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/server"
)

func newMigrateCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Show or apply the database's schema migrations",
		Long: `rotor keeps its state in the database that database.url names (SQLite
under data_dir by default, or PostgreSQL), whose schema rotor's own numbered
migrations and River's (the job queue's) build.

Every rotor process migrates when it starts, under a lock, so you need not
run these by hand; 'migrate up' lets you do it as a separate deployment
step (on PostgreSQL with the owner role, database.migrate_url) and
'migrate status' shows where a database stands.`,
		Args: groupArgs,
		RunE: showHelp,
	}
	c.AddCommand(newMigrateStatusCmd(), newMigrateUpCmd())
	return c
}

func migrationLine(r server.MigrationRow) string {
	at := "-"
	if r.AppliedAt != nil {
		at = orDash(*r.AppliedAt, time.DateTime)
	}
	return r.Schema + "\t" + strconv.Itoa(r.Version) + "\t" + r.Name + "\t" + r.State + "\t" + at
}

func newMigrateStatusCmd() *cobra.Command {
	var (
		cfg configFlag
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "status",
		Short: "List the schema migrations, applied or pending",
		Long: `List each of rotor's schema migrations as applied or pending, and River's
schema version, for the database the configuration names. Nothing is
migrated: a database that is behind shows its pending migrations, and a
SQLite file that does not exist yet is not created.`,
		Example: `  rotor migrate status --config rotor.yaml
  rotor migrate status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(cmd); err != nil {
				return err
			}
			if err := cfg.check(); err != nil {
				return err
			}
			rep, err := server.MigrationStatus(cmd.Context(), cfg.path, server.Options{Logger: quietLogger(cmd)})
			if err != nil {
				return err
			}
			return printRows(cmd, &out, rep.Rows, "SCHEMA\tVERSION\tNAME\tSTATE\tAPPLIED", migrationLine)
		},
	}
	cfg.register(c)
	out.register(c)
	return c
}

func newMigrateUpCmd() *cobra.Command {
	var (
		cfg configFlag
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "up",
		Short: "Apply the pending schema migrations",
		Long: `Apply every pending migration, rotor's and River's, to the database the
configuration names, and print what was applied. On an up-to-date database
it does nothing.

It migrates exactly as 'rotor serve' does when it starts: under a lock (a
lock file beside the SQLite database, an advisory lock on PostgreSQL), so
several replicas or 'migrate up' runs starting at once apply each migration
once. On PostgreSQL it connects as the owner role, database.migrate_url,
and grants the application role (database.url) what it needs.`,
		Example: `  rotor migrate up --config rotor.yaml
  rotor migrate up -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(cmd); err != nil {
				return err
			}
			if err := cfg.check(); err != nil {
				return err
			}
			rep, err := server.Migrate(cmd.Context(), cfg.path, server.Options{Logger: quietLogger(cmd)})
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), rep.Rows)
			}
			if len(rep.Rows) == 0 {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "The database is up to date: nothing to apply.")
				return err
			}
			return printRows(cmd, &out, rep.Rows, "SCHEMA\tVERSION\tNAME\tSTATE\tAPPLIED", migrationLine)
		},
	}
	cfg.register(c)
	out.register(c)
	return c
}

func quietLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
