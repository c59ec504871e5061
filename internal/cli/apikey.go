package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/internal/app"
	"github.com/rotor-dev/rotor/internal/config"
)

func newAPIKeyCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "apikey",
		Short: "Make, list and revoke API keys for machine access to rotor",
		Long: `API keys let automation call rotor's API without an Entra token: each is
scoped to one organization and one role (viewer, operator or admin), expires,
and can be revoked at once. rotor keeps only a hash of a key, so a key is
shown once, when it is made. docs/api-auth.md says how callers present one.`,
		Args: groupArgs,
		RunE: showHelp,
	}
	keys.AddCommand(newAPIKeyCreateCmd(), newAPIKeyListCmd(), newAPIKeyRevokeCmd())
	return keys
}

func newAPIKeyCreateCmd() *cobra.Command {
	var (
		cf      configFlag
		role    string
		name    string
		expires string
	)
	c := &cobra.Command{
		Use:   "create --role ROLE --name NAME [--expires 90d]",
		Short: "Make an API key and print it once",
		Long: `Make an API key for the configuration's organization with the given role:
viewer reads, operator also syncs and rotates, admin also manages API keys.
The key is printed once on standard output; store it where its user will read
it (a pipeline secret, a Key Vault secret). rotor keeps only its hash and
cannot show it again: a lost key is revoked and replaced.`,
		Example: `  rotor apikey create --role operator --name ci-deploy
  rotor apikey create --role viewer --name dashboards --expires 30d`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--name is required: say what the key is for")}
			}
			r, err := app.ParseRole(role)
			if err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--role: %w", err)}
			}
			var life time.Duration
			if expires != "" {
				if life, err = config.ParseDuration(expires); err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--expires: %w", err)}
				}
				if life <= 0 {
					return &usageError{cmd: cmd.CommandPath(), err: errors.New("--expires must be positive")}
				}
			}
			srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "apikey")
			if err != nil {
				return err
			}
			defer srv.Close()
			made, err := srv.App().CreateAPIKey(cmd.Context(), scope(srv), app.NewAPIKey{Name: name, Role: r, Lifetime: life})
			if err != nil {
				return explainError(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), made.Key.Reveal())
			fmt.Fprintf(cmd.ErrOrStderr(), "API key %s (%s, role %s in %s) expires %s.\nThis is the only time it is shown: store it now.\n",
				made.ID, made.Name, made.Role, scope(srv).Org, made.ExpiresAt.Local().Format("2006-01-02 15:04"))
			return nil
		},
	}
	cf.register(c)
	c.Flags().StringVar(&role, "role", "", "viewer, operator or admin (required)")
	c.Flags().StringVar(&name, "name", "", "what the key is for, e.g. ci-deploy (required)")
	c.Flags().StringVar(&expires, "expires", "", "how long the key works, e.g. 30d or 12h (default 90d, at most 730d)")
	return c
}

func newAPIKeyListCmd() *cobra.Command {
	var (
		cf  configFlag
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never the keys themselves)",
		Long: `List the organization's API keys, oldest first: id, name, role, when each
was made and by whom, when it expires, and its status (active, expired or
revoked). The keys themselves are not kept, so they are never shown.`,
		Example: `  rotor apikey list
  rotor apikey list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srv, err := cf.openReading(cmd, &out)
			if err != nil {
				return err
			}
			defer srv.Close()
			rows, err := srv.App().ListAPIKeys(cmd.Context(), scope(srv))
			if err != nil {
				return explainError(err)
			}
			return printRows(cmd, &out, rows, "ID\tNAME\tROLE\tSTATUS\tCREATED\tEXPIRES\tCREATED BY", func(k app.APIKeyRow) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", k.ID, k.Name, k.Role, k.Status,
					orDash(k.CreatedAt, "2006-01-02 15:04"), orDash(k.ExpiresAt, "2006-01-02 15:04"), k.CreatedBy)
			})
		},
	}
	cf.register(c)
	out.register(c)
	return c
}

func newAPIKeyRevokeCmd() *cobra.Command {
	var cf configFlag
	c := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key at once",
		Long: `Revoke an API key by its id (as 'rotor apikey list' shows it): every rotor
process refuses it from its next request on. Revoking a revoked key succeeds.`,
		Example: `  rotor apikey revoke 7hq2m4c5d6e7f2ab`,
		Args:    exactArgs(1, "ID (a key id, as 'rotor apikey list' shows it)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := cf.open(cmd.Context(), cmd.ErrOrStderr(), slog.LevelWarn, "apikey")
			if err != nil {
				return err
			}
			defer srv.Close()
			if err := srv.App().RevokeAPIKey(cmd.Context(), scope(srv), args[0]); err != nil {
				return explainError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "API key %s revoked\n", args[0])
			return nil
		},
	}
	cf.register(c)
	return c
}
