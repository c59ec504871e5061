package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/server"
)

func newBackupCmd() *cobra.Command {
	var (
		cfg    configFlag
		out    outputFlag
		to     string
		force  bool
		pgDump string
	)
	c := &cobra.Command{
		Use:   "backup --config FILE --to BACKUP",
		Short: "Write a consistent backup of rotor's database, while rotor runs",
		Long: `Write a backup of the database the configuration names: the inventory, the
rotation journal, leases, policies, connections and River's jobs. It holds no
secret value: rotor stores none, only references ({env}, {file},
{keyvault}) to the secrets it signs in with.

It is safe while 'rotor serve' runs. On SQLite it is SQLite's VACUUM INTO:
one consistent snapshot of the database file, which neither waits for rotor's
writes nor holds them up; the copy's integrity is checked before it is kept.
On PostgreSQL it runs pg_dump (its custom format, rotor's schema only) as the
owner role, database.migrate_url, since row-level security hides every
organization's rows from the application role; without pg_dump on PATH (or
--pg-dump) it prints the exact command to run instead.

The backup is written under a temporary name beside BACKUP, synced, given
mode 0600 and then renamed, so BACKUP is never half written. An existing
BACKUP is kept unless --force.

To restore: stop every rotor process, put the backup in place (SQLite: the
database file, without its -wal and -shm files; PostgreSQL: pg_restore into
an empty schema), and start rotor. Runs that were in flight when the backup
was taken are taken over and finished or replaced, never repeated for
nothing; docs/backup.md says how, and what happens to each.`,
		Example: `  rotor backup --config rotor.yaml --to /backups/rotor-$(date +%F).db
  rotor backup --to rotor.dump --pg-dump /usr/lib/postgresql/16/bin/pg_dump
  rotor backup --to rotor.db --force -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(cmd); err != nil {
				return err
			}
			if to == "" {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--to BACKUP is required: the file to write the backup to")}
			}
			if err := cfg.check(); err != nil {
				return err
			}
			rep, err := server.Backup(cmd.Context(), cfg.path, server.Options{Logger: quietLogger(cmd)}, server.BackupParams{To: to, Force: force, PgDump: pgDump})
			if err != nil {
				return explainBackupError(err)
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			w := cmd.OutOrStdout()
			kind := "SQLite"
			if rep.Driver == "postgres" {
				kind = "PostgreSQL (pg_dump custom format)"
			}
			fmt.Fprintf(w, "Wrote %s: %s, %s backup of %s.\n", rep.Path, humanBytes(rep.Bytes), kind, rep.Source)
			fmt.Fprintf(w, "Schema: rotor migration %d, River schema version %d. Mode 0600; it holds no secret value.\n", rep.SchemaVersion, rep.RiverVersion)
			if rep.Command != "" {
				fmt.Fprintf(w, "Ran: %s\n", rep.Command)
			}
			_, err = fmt.Fprintln(w, "To restore it, see docs/backup.md.")
			return err
		},
	}
	cfg.register(c)
	out.register(c)
	c.Flags().StringVar(&to, "to", "", "the backup file to write (required)")
	c.Flags().BoolVar(&force, "force", false, "replace the backup file if it exists")
	c.Flags().StringVar(&pgDump, "pg-dump", "", "the pg_dump program, on PostgreSQL (default: pg_dump on PATH); its major version must be at least the server's")
	return c
}

// explainBackupError says what a backup error means and what to do.
func explainBackupError(err error) error {
	if exists, ok := errors.AsType[*server.BackupExistsError](err); ok {
		return fmt.Errorf("%s already exists: choose another file, or pass --force to replace it", exists.Path)
	}
	return fmt.Errorf("backup failed: %w", err)
}

// humanBytes prints a size for people: 512 B, 1.5 KiB, 3.2 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
